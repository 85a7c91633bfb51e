/**
 * A pooler that hands out PostgreSQL sessions per transaction (PgBouncer's `pool_mode = transaction` or `statement`)
 * breaks the session-level workspace lock: the lock stays on a session that other clients are then given. Reproduced
 * without a pooler, by the conditions one creates: a session of the pool that holds the lock for another client, and a
 * client whose statements go to whichever of two sessions is free. The sync refuses with `SessionPooled` rather than
 * hold the lock twice or write on a session without it.
 */
import { SqlClient, type SqlConnection } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { PostgresDatabase } from "@intercom-scroll/testing"
import { Cause, Effect, Exit, Option } from "effect"
import * as Lock from "../src/internal/lock.js"
import { Sync } from "../src/index.js"
import { freshToken, intercom as simulated, rows, runs } from "./support/world.js"

const intercom = (token: string, options: Parameters<typeof simulated>[1] = {}) =>
  simulated(token, { ...options, workspace: { seed: 11, ...options.workspace } })

const failureOf = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

/**
 * A client as a transaction pooler serves it: a reserved "connection" whose statements go to the first of two real
 * sessions until a statement matching `moveAfter` has gone, then to the second (with `"transactions"`, only the
 * transactions' statements); a transaction's statements all to the session its BEGIN went to.
 */
const pooledClient = (
  sql: SqlClient.SqlClient,
  moveAfter: { readonly statement: RegExp; readonly what: "all" | "transactions" }
) => {
  let moved: "none" | "all" | "transactions" = "none"
  const reserve = Effect.gen(function*() {
    const sessions = [yield* sql.reserve, yield* sql.reserve] as const
    let pinned: SqlConnection.Connection | undefined
    const route = (statement: unknown) => {
      const begins = typeof statement === "string" && /^BEGIN/i.test(statement)
      const session = pinned ?? sessions[moved === "all" || (moved === "transactions" && begins) ? 1 : 0]
      if (begins) pinned = session
      if (typeof statement === "string" && /^(COMMIT|ROLLBACK)/i.test(statement)) pinned = undefined
      if (typeof statement === "string" && moveAfter.statement.test(statement)) moved = moveAfter.what
      return session
    }
    return new Proxy(sessions[0], {
      get: (target, property) => {
        const member: unknown = Reflect.get(target, property)
        if (typeof property !== "string" || !property.startsWith("execute") || typeof member !== "function") return member
        return (statement: unknown, ...rest: ReadonlyArray<unknown>) => {
          const session = route(statement)
          return Reflect.apply(Reflect.get(session, property) as (...args: ReadonlyArray<unknown>) => unknown, session, [statement, ...rest])
        }
      }
    })
  })
  const client: SqlClient.SqlClient = new Proxy(sql, {
    get: (target, property) =>
      property === "reserve" ? reserve : property === "withoutTransforms" ? () => client : Reflect.get(target, property)
  })
  return client
}

/** A fresh database, and a client of it with one connection: one server session, as a pooler's few are shared. */
const database = PostgresDatabase.layer({ maxConnections: 1 })

describe("through a transaction pooler (PostgreSQL)", () => {
  layer(database, { timeout: "60 seconds" })((it) => {
    it.effect("a session that already holds the workspace's lock for another client is refused, and nothing is written", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const workspace = freshToken("shared-session")
        const [key1, key2] = Lock.workspaceKey(workspace)
        yield* Sync.migrate
        // Another client took the lock, and its session went back to the pool holding it, as a transaction pooler's does.
        yield* sql`SELECT pg_advisory_lock(${key1}, ${key2})`
        const exit = yield* Effect.exit(Effect.provide(Sync.run("users", { workspace }), intercom(freshToken(), { workspace: { users: 6 } })))
        const error = failureOf(exit)
        expect(error?._tag).toBe("SessionPooled")
        expect(error?.message).toMatch(/transaction or statement pooling is not supported.*pool_mode = session/)
        expect(yield* runs(workspace)).toEqual([])
        expect((yield* rows(workspace, "users")).size).toBe(0)
        // The other client's lock is left to it.
        yield* sql`SELECT pg_advisory_unlock(${key1}, ${key2})`
      }))
  })

  layer(PostgresDatabase.layer(), { timeout: "60 seconds" })((it) => {
    it.effect("checkSessions passes connections with sessions of their own, and refuses a second connection given the first one's session", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Sync.checkSessions
        // One server session for every connection, as a transaction pooler with one free session hands out.
        const shared = yield* sql.reserve
        const sharing: SqlClient.SqlClient = new Proxy(sql, {
          get: (target, property) => property === "reserve" ? Effect.succeed(shared) : Reflect.get(target, property)
        })
        const error = yield* Effect.flip(Effect.provideService(Sync.checkSessions, SqlClient.SqlClient, sharing))
        expect(error._tag).toBe("SessionPooled")
        expect(error.message).toMatch(/^The PostgreSQL connections were found to share their sessions with other clients \(a second connection was given the session the first one was using\): transaction or statement pooling is not supported/)
      }).pipe(Effect.scoped))

    /**
     * A sync of a fresh workspace whose pooler, once its run's row is written, gives `what` of its statements to a
     * session that does not hold the lock. The move is made by the pooler as it routes the run's INSERT, so that no
     * page's statement can come before it; nothing waits on the clock (a clock moved while a statement is on its way
     * makes the lock's silence watch see the idle session of an answer not yet read, and cut it: a `LockLost` instead
     * of the `SessionPooled` under test, seen on loaded machines). The run's error, its workspace.
     */
    const movedMidRun = (what: "all" | "transactions") =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const workspace = freshToken(`moved-${what}`)
        const client = pooledClient(sql, { statement: /^INSERT INTO "intercom_sync_runs"/, what })
        yield* Sync.migrate
        const exit = yield* Effect.exit(
          Effect.provide(Sync.run("users", { workspace }), intercom(freshToken(), { pageSize: 5, workspace: { users: 20 } }))
            .pipe(Effect.provideService(SqlClient.SqlClient, client))
        )
        return { error: failureOf(exit), workspace }
      })

    it.effect("a transaction given a session without the lock writes nothing, and the run is recorded failed", () =>
      Effect.gen(function*() {
        const { error, workspace } = yield* movedMidRun("all")
        expect(error?._tag).toBe("SessionPooled")
        expect((yield* rows(workspace, "users")).size).toBe(0)
        const [run] = yield* runs(workspace)
        expect(run).toMatchObject({ status: "failed", deleted: 0 })
        expect(run.error).toMatch(/^SessionPooled: /)
      }))

    it.effect("a page's transaction given a session without the lock is refused, though the lock's checks find it held", () =>
      Effect.gen(function*() {
        // The watchdog's questions still reach the lock's session; the first page's transaction does not.
        const { error, workspace } = yield* movedMidRun("transactions")
        expect(error?._tag).toBe("SessionPooled")
        expect(error?.message).toContain("a transaction of the run was given a server session that does not hold")
        expect((yield* rows(workspace, "users")).size).toBe(0)
        const [run] = yield* runs(workspace)
        expect(run).toMatchObject({ status: "failed", deleted: 0 })
      }))
  })
})
