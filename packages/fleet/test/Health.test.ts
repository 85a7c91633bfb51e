/**
 * `Health.layerServer` beside a real runner (in this process, over a real PostgreSQL reached through a proxy the test
 * cuts or stalls): 200 with the shards it holds, 503 naming the fault while the database does not answer (refused, or
 * hung past the check's timeout), 200 again after.
 */
import { TestRunner } from "@effect/cluster"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { SyncDatabase } from "@intercom-scroll/sync"
import { PostgresDatabase } from "@intercom-scroll/testing"
import { Context, Effect, Exit, Fiber, Layer, Redacted, Schedule, Scope, TestClock } from "effect"
import { Fleet, Health } from "../src/index.js"
import { simulated, tokens } from "./support/inProcess.js"
import { freePort } from "./support/processes.js"
import { tcpProxy } from "./support/proxy.js"

const get = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url)
    return { status: response.status, body: await response.text() }
  })

describe("Health.layerServer", () => {
  it("is ready only while its database answers and it holds shards", () => {
    expect(Health.isReady({ healthy: true, database: "ok", shards: 300 })).toBe(true)
    expect(Health.isReady({ healthy: true, database: "ok", shards: 0 })).toBe(false)
    expect(Health.isReady({ healthy: false, database: "connect ECONNREFUSED", shards: 300 })).toBe(false)
  })

  it.scoped("a check whose pool has no connection free answers unhealthy at its timeout, and the connection it gets later is given back unused", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const context = yield* Layer.build(Layer.merge(TestRunner.layer, Layer.orDie(PostgresDatabase.layerAt(url, { maxConnections: 1 }))))
      const sql = Context.get(context, SqlClient.SqlClient)
      const other = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(url))), SqlClient.SqlClient)
      // The pool's one connection held by the test, its last statement one of the test's.
      const holding = yield* Scope.make()
      const held = yield* Effect.orDie(Scope.extend(sql.reserve, holding))
      const [{ pid }] = (yield* Effect.orDie(held.execute("SELECT pg_backend_pid() AS pid", [], undefined))) as ReadonlyArray<{ readonly pid: number }>
      const check = yield* Effect.fork(Effect.provide(Health.check({ timeout: "5 seconds" }), context))
      yield* TestClock.adjust("5 seconds")
      expect(yield* Fiber.join(check)).toMatchObject({ healthy: false, database: "no answer within 5s" })
      // Given back now: the check's wait for it came first, so the next reservation has it only once the check is done
      // with it, which must not send its SELECT 1 past its deadline.
      yield* Scope.close(holding, Exit.void)
      yield* Effect.scoped(Effect.orDie(sql.reserve))
      const [{ query }] = yield* Effect.orDie(other<{ readonly query: string }>`SELECT query FROM pg_stat_activity WHERE pid = ${pid}`)
      expect(query).toBe("SELECT pg_backend_pid() AS pid")
    }))

  it.scopedLive("answers 200 with the shards the runner holds, and 503 naming the fault while its database does not answer", () =>
    Effect.gen(function*() {
      const server = new URL(Redacted.value(yield* Effect.orDie(PostgresDatabase.make)))
      const proxy = yield* tcpProxy(server)
      yield* proxy.open
      const viaProxy = new URL(server)
      viaProxy.port = String(proxy.port)
      const healthPort = yield* freePort
      const runner = Health.layerServer({ port: healthPort, timeout: "2 seconds" }).pipe(
        Layer.provideMerge(Fleet.layerRunner({
          database: SyncDatabase.Database.Postgres({ url: Redacted.make(viaProxy.href) }),
          port: yield* freePort
        })),
        Layer.provide([Simulator.layerClient(simulated), tokens]),
        Layer.orDie
      )
      yield* Effect.gen(function*() {
        const health = `http://127.0.0.1:${healthPort}/health`
        // Healthy, once it holds its shards: the only runner, it takes all of them.
        const up = yield* get(health).pipe(
          Effect.filterOrFail((answer) => answer.status === 200 && JSON.parse(answer.body).shards === 300),
          Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 300 }),
          Effect.orDie
        )
        expect(JSON.parse(up.body)).toEqual({ healthy: true, database: "ok", shards: 300 })
        const live = `http://127.0.0.1:${healthPort}/live`
        const ready = `http://127.0.0.1:${healthPort}/ready`
        expect(yield* get(live)).toEqual({ status: 200, body: JSON.stringify({ live: true }) })
        expect((yield* get(ready)).status).toBe(200)
        expect((yield* get(`http://127.0.0.1:${healthPort}/other`)).status).toBe(404)

        // The database gone: 503, and why.
        yield* proxy.cut
        const down = yield* get(health)
        expect(down.status).toBe(503)
        const report: Health.Report = JSON.parse(down.body)
        expect(report.healthy).toBe(false)
        expect(report.database).toMatch(/ECONNREFUSED|terminated/)
        // Not ready, and alive all the same: a liveness probe must not restart it for its database's absence.
        expect((yield* get(ready)).status).toBe(503)
        expect((yield* get(live)).status).toBe(200)

        // One that takes the connection and never answers: 503 once the check gives up.
        yield* proxy.stall
        yield* proxy.open
        const hung = yield* get(health)
        expect(hung.status).toBe(503)
        expect(JSON.parse(hung.body)).toMatchObject({ healthy: false, database: "no answer within 2s" })
        yield* proxy.cut

        // Back: healthy again, without a restart.
        yield* proxy.unstall
        yield* proxy.open
        const again = yield* get(health).pipe(
          Effect.filterOrFail((answer) => answer.status === 200),
          Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 100 }),
          Effect.orDie
        )
        expect(JSON.parse(again.body)).toMatchObject({ healthy: true, database: "ok" })
      }).pipe(Effect.provide(runner))
    }), 120_000)
})
