import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "@effect/vitest"
import { SyncError } from "../src/index.js"

describe("SyncError.explain", () => {
  it("follows a statement's failure with what the driver said", () => {
    const error = new SqlError({ message: "Failed to execute statement", cause: new Error("database is locked") })
    expect(SyncError.explain(error)).toBe("Failed to execute statement: database is locked")
  })

  it("says a message once: a cause that says nothing more, or is no Error, adds nothing", () => {
    const message = "connect ECONNREFUSED 127.0.0.1:5432"
    expect(SyncError.explain(new SqlError({ message, cause: new Error(message) }))).toBe(message)
    expect(SyncError.explain(new SqlError({ message, cause: new Error("") }))).toBe(message)
    expect(SyncError.explain(new SqlError({ message, cause: "a string" }))).toBe(message)
  })

  it("goes down the chain, with PostgreSQL's detail, which names what stands in the way", () => {
    const driver = Object.assign(new Error("cannot drop table intercom_users because other objects depend on it"), {
      detail: "view my_users depends on table intercom_users"
    })
    const statement = new SqlError({ message: "Failed to execute statement", cause: driver })
    const migration = new Error("Migration \"2_split_seen\" failed: Failed to execute statement", { cause: statement })
    expect(SyncError.explain(migration)).toBe(
      "Migration \"2_split_seen\" failed: Failed to execute statement: cannot drop table intercom_users because other objects depend on it (view my_users depends on table intercom_users)"
    )
  })

  it("says each refusal of a connection to a name of several addresses (Node's AggregateError, whose message is empty)", () => {
    const refused = new AggregateError([
      new Error("connect ECONNREFUSED ::1:5432"),
      new Error("connect ECONNREFUSED 127.0.0.1:5432")
    ], "")
    expect(SyncError.explain(new SqlError({ message: "Failed to acquire connection", cause: refused }))).toBe(
      "Failed to acquire connection: connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432"
    )
  })
})

describe("SyncError.TableLocked", () => {
  const blocker = new SyncError.Blocker({
    pid: 4242,
    applicationName: "psql",
    user: "ops",
    state: "idle in transaction",
    lock: "AccessExclusiveLock on intercom_sync_runs",
    transactionSeconds: 65,
    query: "LOCK TABLE intercom_sync_runs IN ACCESS EXCLUSIVE MODE"
  })
  const held = "held by pid 4242 (psql, user ops, idle in transaction for 65 s, AccessExclusiveLock on intercom_sync_runs: LOCK TABLE intercom_sync_runs IN ACCESS EXCLUSIVE MODE), and gave up."
  const end = "End that session's transaction (COMMIT or ROLLBACK it, or SELECT pg_terminate_backend(pid))"

  it("says that a migration's statement migrated nothing, and what bounds the wait of Sync.migrate, which takes no option", () => {
    expect(new SyncError.TableLocked({ migrating: true, waitedMillis: 60_000, blockers: [blocker] }).message).toBe(
      `A statement of the sync's migrations waited 60 s for a lock on its tables ${held} Nothing was migrated: the tables are as they were. ${end} and migrate again: Sync.migrate waits 1 minute for such a lock (Sync.run, its tableLockTimeout).`
    )
    expect(new SyncError.TableLocked({ workspace: "acme", migrating: true, waitedMillis: 5_000, blockers: [blocker] }).message).toBe(
      `A statement of the sync's migrations (at the start of the sync of workspace "acme") waited 5 s for a lock on its tables ${held} Nothing was migrated: the tables are as they were. ${end} and run the sync again, or give a longer tableLockTimeout.`
    )
  })

  it("a run's own statement, as before: migrating is false when not said (an older runner's error)", () => {
    const error = new SyncError.TableLocked({ workspace: "acme", waitedMillis: 5_000, blockers: [blocker] })
    expect(error.migrating).toBe(false)
    expect(error.message).toBe(
      `A statement of the sync of workspace "acme" waited 5 s for a lock on its tables ${held} Pages written before stay; nothing was marked deleted. ${end} and run the sync again, or give a longer tableLockTimeout.`
    )
  })
})
