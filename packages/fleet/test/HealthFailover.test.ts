/**
 * `Health.check`'s `SELECT 1` on a real PostgreSQL whose address fails over to another server (`BlackHole.failover`,
 * `Standby`): its connection silent, the check answers at its timeout without interrupting the statement. Interrupted,
 * @effect/sql-pg cancels a statement by `pg_cancel_backend(<pid>)` on another connection of the pool, by pid alone: on
 * the new server, that pid is someone else's session (packages/bench/NOTES.md, "The code read as Effect's maintainers
 * would read it").
 */
import { Sharding } from "@effect/cluster"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { SyncDatabase } from "@intercom-scroll/sync"
import { BlackHole, ClockSteps, PostgresDatabase, Standby } from "@intercom-scroll/testing"
import { Context, Effect, Fiber, Layer } from "effect"
import { Fleet, Health } from "../src/index.js"
import { atWork } from "./support/bystander.js"

if (!Standby.supported()) console.warn("HealthFailover.test.ts: no PID namespaces here (unshare --pid refused): its cases are skipped")

const steps = { step: "1 second", maxSteps: 30, realPause: "50 millis" } as const

describe("Health.check after a failover", () => {
  it.scoped.skipIf(!Standby.supported())("a check unanswered is not cancelled: another application's statement with its connection's pid on the new server runs on, and the next check answers", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const hole = yield* BlackHole.make(url)
      const standby = yield* Standby.make(url)
      // The cluster's side (its shards) on a path of its own that stays: only the check's pool fails over.
      const client = yield* Effect.flatten(Fiber.await(
        yield* Effect.fork(Layer.build(Fleet.layerClient({ database: SyncDatabase.Database.Postgres({ url }) })).pipe(Effect.orDie))
      ))
      const sql = Context.get(
        yield* Layer.build(Layer.orDie(Fleet.layerSql(SyncDatabase.Database.Postgres({ url: hole.url }), {
          connections: 4,
          applicationName: "intercom-scroll-fleet runner 127.0.0.1:47198"
        }))),
        SqlClient.SqlClient
      )
      const check = Health.check({ timeout: "5 seconds" }).pipe(
        Effect.provideService(Sharding.Sharding, Context.get(client, Sharding.Sharding)),
        Effect.provideService(SqlClient.SqlClient, sql)
      )
      expect(yield* check).toEqual({ healthy: true, database: "ok", shards: 0 })
      // The pool's one connection, idle: the next check takes it.
      const [{ pid }] = (yield* Effect.orDie(sql<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid`)) as [{ readonly pid: number }]

      // On the server the address moves to, another application's session by that pid, at work.
      const bystander = yield* atWork(standby, pid)

      yield* hole.failover(standby.url)
      expect(yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(check))).toEqual({
        healthy: false,
        database: "no answer within 5s",
        shards: 0
      })
      // The silent connection is not handed out again: the next check, on the new server, answers.
      expect(yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(check))).toEqual({ healthy: true, database: "ok", shards: 0 })
      // Before, the timeout interrupted the statement, which @effect/sql-pg cancels by pid on a new connection, there:
      // "canceling statement due to user request".
      yield* bystander.finish
      yield* hole.reset
    }), 120_000)
})
