/**
 * PostgreSQL: a statement of a run blocked by another session's lock on the sync's tables (an operator's `LOCK TABLE`
 * left open, a `SELECT … FOR UPDATE` of its rows) fails the run after `tableLockTimeout` with `TableLocked`, naming
 * that session, instead of holding it without end. PostgreSQL's `lock_timeout` runs on real time: kept short here.
 */
import { expect, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Option } from "effect"
import { Sync, type SyncError } from "../src/index.js"
import * as Databases from "./support/databases.js"
import { freshToken, intercom, rows, runs } from "./support/world.js"

const failureOf = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

/** One Intercom workspace (one seed), the same 20 users to every token, as a workspace's tokens see it. */
const users = (token: string) => intercom(token, { pageSize: 5, workspace: { seed: 11, users: 20 } })

layer(Databases.postgres, { timeout: "60 seconds" })((it) => {
  it.effect("a run blocked by an operator's LOCK TABLE left open fails with TableLocked naming the session, and marks nothing deleted", () =>
    Effect.gen(function*() {
      const workspace = freshToken("locked")
      const first = yield* Effect.provide(Sync.run("users", { workspace }), users(freshToken()))
      expect(first.inserted).toBe(20)
      const exit = yield* Effect.scoped(Effect.gen(function*() {
        const pid = yield* Databases.openTransaction(() => "LOCK TABLE intercom_users_records IN ACCESS EXCLUSIVE MODE", workspace)
        const exit = yield* Effect.exit(
          Effect.provide(Sync.run("users", { workspace, tableLockTimeout: "300 millis" }), users(freshToken()))
        )
        return { exit, pid }
      }))
      const error = failureOf(exit.exit)
      expect(error?._tag).toBe("TableLocked")
      const locked = error as SyncError.TableLocked
      expect(locked.waitedMillis).toBe(300)
      expect(locked.blockers.map((blocker) => [blocker.pid, blocker.lock])).toEqual([
        [exit.pid, "AccessExclusiveLock on intercom_users_records"]
      ])
      expect(locked.blockers[0].state).toBe("idle in transaction")
      expect(locked.message).toMatch(/waited 0\.3 s for a lock on its tables held by pid \d+ \(intercom-scroll-test, user \w+, idle in transaction for [\d.]+ s, AccessExclusiveLock on intercom_users_records: BEGIN; LOCK TABLE/)
      expect(locked.message).toMatch(/pg_terminate_backend\(pid\)/)
      // Recorded failed with what blocked it; every row still live.
      const [, failed] = yield* runs(workspace)
      expect(failed).toMatchObject({ status: "failed", deleted: 0 })
      expect(failed.error).toMatch(/^TableLocked: .*AccessExclusiveLock on intercom_users_records/)
      expect([...(yield* rows(workspace, "users")).values()].filter((row) => row.deleted_at !== null)).toEqual([])
      // Once the session let go, the next run completes; a short timeout cuts no statement that waits for no one.
      const next = yield* Effect.provide(Sync.run("users", { workspace, tableLockTimeout: "50 millis" }), users(freshToken()))
      expect(next).toMatchObject({ unchanged: 20, deleted: 0 })
      // The longest PostgreSQL's lock_timeout takes is taken.
      const longest = yield* Effect.provide(Sync.run("users", { workspace, tableLockTimeout: 2 ** 31 - 1 }), users(freshToken()))
      expect(longest).toMatchObject({ unchanged: 20, deleted: 0 })
    }), { timeout: 20_000 })

  it.effect("a page blocked by another session's SELECT … FOR UPDATE of its seen rows fails with TableLocked naming it", () =>
    Effect.gen(function*() {
      const workspace = freshToken("rows")
      yield* Effect.provide(Sync.run("users", { workspace }), users(freshToken()))
      const { exit, pid } = yield* Effect.scoped(Effect.gen(function*() {
        const pid = yield* Databases.openTransaction(
          (workspace) => `SELECT id FROM intercom_users_seen WHERE workspace = '${workspace}' FOR UPDATE`,
          workspace
        )
        const exit = yield* Effect.exit(
          Effect.provide(Sync.run("users", { workspace, tableLockTimeout: "300 millis" }), users(freshToken()))
        )
        return { exit, pid }
      }))
      const error = failureOf(exit) as SyncError.TableLocked | undefined
      expect(error?._tag).toBe("TableLocked")
      expect(error?.blockers.map((blocker) => [blocker.pid, blocker.lock])).toEqual([[pid, "RowShareLock on intercom_users_seen"]])
      const [, failed] = yield* runs(workspace)
      expect(failed).toMatchObject({ status: "failed", unchanged: 0, deleted: 0 })
    }), { timeout: 20_000 })
})
