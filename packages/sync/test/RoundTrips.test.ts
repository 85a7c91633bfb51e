/**
 * The statements a sync sends PostgreSQL, counted where they leave: each is a round trip, which a database across a
 * network (a managed PostgreSQL, another zone) charges a millisecond or more, on every page.
 */
import { SqlClient, type SqlConnection } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { PostgresDatabase } from "@intercom-scroll/testing"
import { Effect } from "effect"
import { Sync } from "../src/index.js"
import { freshToken, intercom } from "./support/world.js"

/** A client whose reserved connections (the workspace lock's session, and so every transaction of a run) count what they send. */
const countingClient = (sql: SqlClient.SqlClient) => {
  const sent: Array<string> = []
  const count = (connection: SqlConnection.Connection): SqlConnection.Connection =>
    new Proxy(connection, {
      get: (target, property) => {
        const member: unknown = Reflect.get(target, property)
        if (typeof property !== "string" || !property.startsWith("execute") || typeof member !== "function") return member
        return (statement: unknown, ...rest: ReadonlyArray<unknown>) => {
          sent.push(String(statement))
          return Reflect.apply(member as (...args: ReadonlyArray<unknown>) => unknown, target, [statement, ...rest])
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
  })
})
