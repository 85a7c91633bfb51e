/**
 * The statements a sync sends PostgreSQL, counted where they leave: each is a round trip, which a database across a
 * network (a managed PostgreSQL, another zone) charges a millisecond or more, on every page.
 */
import { SqlClient, type SqlConnection } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { PostgresDatabase } from "@intercom-scroll/testing"
import { Context, Effect, Layer, Schedule } from "effect"
import { Sync } from "../src/index.js"
import { freshToken, intercom } from "./support/world.js"

/**
 * A client whose reserved connections (the workspace lock's session, and so every transaction of a run) count what they
 * send; `before` runs ahead of each statement, and may hold it.
 */
const countingClient = (sql: SqlClient.SqlClient, before: (statement: string) => Effect.Effect<void> = () => Effect.void) => {
  const sent: Array<string> = []
  const count = (connection: SqlConnection.Connection): SqlConnection.Connection =>
    new Proxy(connection, {
      get: (target, property) => {
        const member: unknown = Reflect.get(target, property)
        if (typeof property !== "string" || !property.startsWith("execute") || typeof member !== "function") return member
        return (statement: unknown, ...rest: ReadonlyArray<unknown>) => {
          sent.push(String(statement))
          return Effect.zipRight(
            before(String(statement)),
            Reflect.apply(member as (...args: ReadonlyArray<unknown>) => unknown, target, [statement, ...rest]) as Effect.Effect<unknown>
          )
        }
      }
    })
  const client: SqlClient.SqlClient = new Proxy(sql, {
    get: (target, property) =>
      property === "reserve"
        ? Effect.map(sql.reserve, count)
        : property === "withoutTransforms"
        ? () => client
        : Reflect.get(target, property)
  })
  return { client, sent }
}

/**
 * A counting client whose run's first page write is held until `simulator` has served what `until` asks (or 3 s have
 * passed): a database slower than Intercom.
 */
const holdingFirstWrite = (
  sql: SqlClient.SqlClient,
  simulator: Simulator.Simulator["Type"],
  until: (served: Simulator.Counters) => boolean
) => {
  let held = false
  return countingClient(sql, (statement) =>
    held || !statement.startsWith("WITH page AS") ? Effect.void : Effect.gen(function*() {
      held = true
      for (let waited = 0; waited < 3_000 && !until((yield* simulator.stats).total); waited += 10) {
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
      }
    }))
}

/** `intercom`'s world built once in the scope, so that the run and the test see one simulator. */
const built = (token: string, options: Parameters<typeof intercom>[1]) =>
  Effect.map(Layer.build(intercom(token, options)), (context) => ({ context, simulator: Context.get(context, Simulator.Simulator) }))

describe("round trips to PostgreSQL", () => {
  layer(PostgresDatabase.layer(), { timeout: "60 seconds" })((it) => {
    it.effect("a page is four when it brings new or changed records, three when all are unchanged: the session check rides on the BEGIN", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Sync.migrate
        const workspaceOf = (users: number) => ({ workspace: freshToken("round-trips"), token: freshToken(), users })
        const statementsOf = ({ token, users, workspace }: ReturnType<typeof workspaceOf>) =>
          Effect.gen(function*() {
            const counting = countingClient(sql)
            yield* Effect.provide(Sync.run("users", { workspace }), intercom(token, { pageSize: 5, workspace: { users } })).pipe(
              Effect.provideService(SqlClient.SqlClient, counting.client)
            )
            return counting.sent.length
          })
        // Ten pages more: what a run does once (its row, the lock, the workspace's check, the deletion pass) cancels out.
        const [few, more] = [workspaceOf(10), workspaceOf(60)]
        const changed = ((yield* statementsOf(more)) - (yield* statementsOf(few))) / 10
        const unchanged = ((yield* statementsOf(more)) - (yield* statementsOf(few))) / 10
        // BEGIN with the session's check; the seen times, which answer the records that differ; their write; COMMIT.
        expect({ changed, unchanged }).toEqual({ changed: 4, unchanged: 3 })
      }))

    it.scoped("pagesPerTransaction: the pages that came in while a transaction ran are written together in the next one, up to that many", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Sync.migrate
        // The first page's write is held until Intercom has served 6 pages (or 3 s have passed): a database slower than
        // Intercom. What each transaction then writes: its pages, each first marked seen (from `json_array_elements`).
        const pagesEach = (options: Partial<Sync.Options>) =>
          Effect.gen(function*() {
            const world = yield* built(freshToken(), { pageSize: 5, workspace: { users: 60 } })
            const counting = holdingFirstWrite(sql, world.simulator, (served) => served.pagesServed >= 6)
            const summary = yield* Effect.provide(Sync.run("users", { workspace: freshToken("batched"), ...options }), world.context).pipe(
              Effect.provideService(SqlClient.SqlClient, counting.client)
            )
            expect(summary.inserted).toBe(60)
            const transactions = counting.sent.join("\n").split("BEGIN;").slice(1)
            return transactions.map((transaction) => transaction.split("json_array_elements(").length - 1).filter((pages) => pages > 0)
          })
        const batched = yield* pagesEach({ pagesPerTransaction: 4 })
        expect(batched.reduce((sum, pages) => sum + pages, 0)).toBe(12)
        expect(Math.max(...batched)).toBe(4)
        expect(batched.length).toBeLessThan(12)
        // By default, each page in its own transaction, however long the one before took.
        expect(yield* pagesEach({})).toEqual(Array.from({ length: 12 }, () => 1))
        expect(yield* Effect.flip(Effect.provide(Sync.run("users", { pagesPerTransaction: 0 }), intercom(freshToken())))).toMatchObject({
          _tag: "InvalidOptions",
          detail: "pagesPerTransaction 0 must be a whole number of 1 or more"
        })
      }))

    it.scoped("pagesPerTransaction: the pages that came in before the scroll failed are written before the run fails, as one by one", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Sync.migrate
        // Three pages served and the fourth a 500 (no restart) while the first page's write is held.
        const rowsWritten = (options: Partial<Sync.Options>) =>
          Effect.gen(function*() {
            const workspace = freshToken("failed-batch")
            const world = yield* built(freshToken(), { pageSize: 5, workspace: { users: 60, faults: { restartAt: [4] } } })
            const counting = holdingFirstWrite(sql, world.simulator, (served) => (served.errorsByStatus[500] ?? 0) >= 1)
            const error = yield* Effect.flip(Effect.provide(Sync.run("users", { workspace, restart: Schedule.stop, ...options }), world.context)).pipe(
              Effect.provideService(SqlClient.SqlClient, counting.client)
            )
            expect(error._tag).toBe("RestartRequired")
            const [stored] = yield* sql<{ readonly count: number }>`
              SELECT count(*)::int AS count FROM intercom_users WHERE workspace = ${workspace}`
            const [run] = yield* sql<{ readonly status: string; readonly inserted: number }>`
              SELECT status, inserted FROM intercom_sync_runs WHERE workspace = ${workspace}`
            return { stored: stored.count, run }
          })
        const failed = { stored: 15, run: { status: "failed", inserted: 15 } }
        expect(yield* rowsWritten({ pagesPerTransaction: 4 })).toEqual(failed)
        expect(yield* rowsWritten({})).toEqual(failed)
      }))
  })
})
