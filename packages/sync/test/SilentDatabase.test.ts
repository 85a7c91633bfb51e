/**
 * PostgreSQL: a run whose connection goes silent without closing (a firewall, a NAT or a load balancer that dropped its
 * state: bytes vanish, no reset comes, and something on the way still acknowledges them) fails with `LockLost` once the
 * server, asked on another connection, says the run's session sits idle, instead of waiting for an answer that never
 * comes. The watch runs on the TestClock; the proxy of `BlackHole` (testing) makes the silence.
 */
import { expect, it } from "@effect/vitest"
import { Progress } from "@intercom-scroll/core"
import { BlackHole, ClockSteps, PostgresDatabase } from "@intercom-scroll/testing"
import { SqlClient } from "@effect/sql"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer, Option, Redacted, TestClock, TestServices } from "effect"
import { Sync, SyncDatabase, type SyncError } from "../src/index.js"
import { freshToken, intercom, rows, runs } from "./support/world.js"

const users = (token: string) => intercom(token, { pageSize: 5, workspace: { seed: 12, users: 20 } })

/** A reporter that runs `effect` as the `page`th page comes in. */
const atPage = (page: number, effect: Effect.Effect<void>): Progress.Reporter => {
  let pages = 0
  return { report: (event) => event._tag === "Page" && ++pages === page ? effect : Effect.void }
}

const steps = { step: "1 second", maxSteps: 150, realPause: "30 millis" } as const

// On TLS, node-postgres's stream is a TLSSocket over the socket: destroying it must close the connection as well.
for (const sslmode of ["disable", "require"] as const) {
  it.scoped(`a run whose connection goes silent fails with LockLost saying so, recorded failed, its session ended, nothing deleted (sslmode=${sslmode})`, () =>
    Effect.gen(function*() {
      const url = yield* PostgresDatabase.make
      const hole = yield* BlackHole.make(url)
      const through = new URL(Redacted.value(hole.url))
      through.searchParams.set("sslmode", sslmode)
      const proxied = SyncDatabase.layer(SyncDatabase.Database.Postgres({ url: Redacted.make(through.href) }))
      const direct = PostgresDatabase.layerAt(url)
      const workspace = freshToken("silent")
      const first = yield* Effect.provide(Sync.run("users", { workspace }), Layer.merge(users(freshToken()), proxied))
      expect(first.inserted).toBe(20)
      const [{ ssl }] = yield* Effect.provide(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ ssl: boolean }>`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`),
        proxied
      )
      expect(ssl).toBe(sslmode === "require")

      const fiber = yield* Effect.fork(
        Effect.provide(
          Sync.run("users", { workspace }).pipe(Effect.provideService(Progress.Progress, atPage(2, hole.silence))),
          Layer.merge(users(freshToken()), proxied)
        )
      )
      const exit = yield* Effect.exit(ClockSteps.runToEnd(steps)(fiber))
      const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
      expect(error?._tag).toBe("LockLost")
      expect((error as SyncError.LockLost).reason).toMatch(
        /^its PostgreSQL connection went silent: a statement waited \d+ s for an answer while its server session \(pid \d+\) sat (idle|idle in transaction): the answer, or the statement, was lost on the way/
      )

      yield* Effect.gen(function*() {
        // Recorded failed, on another connection; every row still live.
        const [, silent] = yield* runs(workspace)
        expect(silent).toMatchObject({ status: "failed", deleted: 0 })
        expect(silent.error).toMatch(/^LockLost: .*went silent/)
        expect([...(yield* rows(workspace, "users")).values()].filter((row) => row.deleted_at !== null)).toEqual([])
      }).pipe(Effect.provide(direct))

      // Its session was ended on the server, and with it the workspace's lock: the next run takes it at once.
      const next = yield* Effect.fork(
        Effect.provide(Sync.run("users", { workspace, lockTimeout: "5 seconds" }), Layer.merge(users(freshToken()), proxied))
      )
      expect(yield* ClockSteps.runToEnd(steps)(next)).toMatchObject({ unchanged: 20, deleted: 0 })
    }), { timeout: 60_000 })
}

it.scoped("a statement that waits long on a server that answers is waited for, however long the watch's clock runs", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const database = SyncDatabase.layer(SyncDatabase.Database.Postgres({ url }))
    const workspace = freshToken("long")
    yield* Effect.provide(Sync.run("users", { workspace }), Layer.merge(users(freshToken()), database))
    // From its second page on, the run's statements wait behind an operator's lock (its session `active` all along),
    // for a few seconds of real time, while the watch's clock runs two minutes on.
    const operator = yield* (yield* Layer.build(PostgresDatabase.layerAt(url, { maxConnections: 1 })).pipe(
      Effect.map(Context.get(SqlClient.SqlClient))
    )).reserve
    const locked = yield* Deferred.make<void>()
    const lock = Effect.zipRight(
      Effect.orDie(operator.executeRaw("BEGIN; LOCK TABLE intercom_users_records IN ACCESS EXCLUSIVE MODE", [])),
      Deferred.succeed(locked, undefined)
    )
    const fiber = yield* Effect.fork(
      Effect.provide(
        Sync.run("users", { workspace }).pipe(Effect.provideService(Progress.Progress, atPage(2, Effect.asVoid(lock)))),
        Layer.merge(users(freshToken()), database)
      )
    )
    yield* Deferred.await(locked)
    for (let step = 0; step < 120; step++) {
      yield* TestClock.adjust("1 second")
      yield* TestServices.provideLive(Effect.sleep("25 millis"))
    }
    expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
    yield* Effect.orDie(operator.executeRaw("ROLLBACK", []))
    expect(yield* ClockSteps.runToEnd(steps)(fiber)).toMatchObject({ unchanged: 20, deleted: 0 })
  }), { timeout: 60_000 })
