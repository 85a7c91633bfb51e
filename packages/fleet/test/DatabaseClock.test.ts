/**
 * Clocks that disagree, as machines without good NTP have them: every process of a fleet tells time by its PostgreSQL
 * server's clock. A skewed process is modelled by giving it a clock of its own (`skewed`); the database's clock is
 * the real one. Under faketime (packages/bench/NOTES.md, "Clocks that disagree") a runner 5 minutes ahead skipped every
 * tick of its schedule that landed on it as "superseded".
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { Sync, SyncDatabase } from "@intercom-scroll/sync"
import { Clock, Context, DateTime, Effect, Layer } from "effect"
import { Fleet, FleetStatus, WorkspaceSync } from "../src/index.js"
import { acme, databases, simulated, tokens } from "./support/inProcess.js"
import { freePort } from "./support/processes.js"

/** The current clock, `by` milliseconds ahead (behind, when negative: a `Duration` cannot be). */
const skewed = (base: Clock.Clock, by: number): Clock.Clock => {
  const nanos = BigInt(by) * 1_000_000n
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis() + by,
    unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos() + nanos,
    currentTimeMillis: Effect.map(base.currentTimeMillis, (millis) => millis + by),
    currentTimeNanos: Effect.map(base.currentTimeNanos, (time) => time + nanos),
    sleep: (duration) => base.sleep(duration)
  }
}

/** Runs `effect` on a clock `by` milliseconds off the current one. */
const skewedBy = (by: number) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.clock, (base) => Effect.withClock(effect, skewed(base, by)))

/** The database's time, in milliseconds since the epoch. */
const databaseNow = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.map(
    sql<{ readonly millis: number | string }>`SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS float8) AS millis`,
    ([row]) => Number(row?.millis)
  ))

const nowMillis = Effect.map(DateTime.now, DateTime.toEpochMillis)

describe("clocks that disagree (PostgreSQL)", () => {
  for (const [by, off] of [[3_600_000, "an hour ahead"], [-300_000, "5 minutes behind"]] as const) {
    it.scopedLive(`a runner ${off}, and what is built on it, tell the database's time, and stamp its runs with it`, () =>
      Effect.gen(function*() {
        const database = yield* databases.postgres
        // What a schedule's layer, given the runner as the CLI gives it, reads as the time.
        const probe = Layer.effect(Probe, nowMillis)
        const runner = probe.pipe(
          Layer.provideMerge(Fleet.layerRunner({ database, port: yield* freePort, maxSyncs: 2 })),
          Layer.provide([Simulator.layerClient(simulated), tokens]),
          Layer.orDie
        )
        yield* Effect.gen(function*() {
          const [probed, dbAtProbe] = [yield* Probe, yield* Effect.orDie(databaseNow)]
          expect(Math.abs(probed - dbAtProbe)).toBeLessThan(60_000)
          // The entity's sync, on the runner's fibers: its run's row in the database's time.
          const before = yield* Effect.orDie(databaseNow)
          yield* Effect.orDie(WorkspaceSync.sync(acme, { resources: ["users"], run: "skewed" }))
          const after = yield* Effect.orDie(databaseNow)
          const sql = yield* SqlClient.SqlClient
          const [run] = yield* Effect.orDie(sql<{ readonly started: number | string; readonly finished: number | string }>`SELECT
            CAST(EXTRACT(EPOCH FROM started_at) * 1000 AS float8) AS started,
            CAST(EXTRACT(EPOCH FROM finished_at) * 1000 AS float8) AS finished FROM ${sql(Sync.runsTable)} WHERE label = 'skewed'`)
          expect(Number(run?.started)).toBeGreaterThanOrEqual(before - 1_000)
          expect(Number(run?.finished)).toBeLessThanOrEqual(after + 1_000)
          // And this process's own time, under the runner.
          expect(Math.abs((yield* nowMillis) - (yield* Effect.orDie(databaseNow)))).toBeLessThan(1_000)
        }).pipe(Effect.provide(runner), skewedBy(by))
      }), 60_000)
  }

  it.scopedLive("a client off by an hour tells the database's time: what it stamps and the cutoffs it takes agree with the runners", () =>
    Effect.gen(function*() {
      const database = yield* databases.postgres
      const client = Fleet.layerClient({ database }).pipe(Layer.orDie)
      yield* Effect.gen(function*() {
        expect(Math.abs((yield* nowMillis) - (yield* Effect.orDie(databaseNow)))).toBeLessThan(1_000)
      }).pipe(Effect.provide(client), skewedBy(3_600_000))
    }), 60_000)

  for (const [by, off] of [[-300_000, "5 minutes behind"], [300_000, "5 minutes ahead"]] as const) {
    it.scopedLive(`FleetStatus.read from a machine ${off} judges a run's silence by the database's clock`, () =>
      Effect.gen(function*() {
        const database = yield* databases.postgres
        yield* Effect.gen(function*() {
          yield* Sync.migrate
          const sql = yield* SqlClient.SqlClient
          // Two runs under way, stamped by their runners on the database's clock: one alive now, one silent a minute.
          yield* sql`INSERT INTO ${sql(Sync.runsTable)} (workspace, resource, status, started_at, alive_at)
            VALUES ('acme', 'users', 'running', now(), now()),
              ('globex', 'users', 'running', now() - interval '60 seconds', now() - interval '60 seconds')`
          const status = yield* FleetStatus.read({ since: DateTime.unsafeMake(0) }).pipe(skewedBy(by))
          // Rows made here, no session holding their workspace's lock: listed cut off (`lockFree`), their silence the same.
          const { lockFree, running } = status.activity
          expect(running).toEqual([])
          const silentFor = Object.fromEntries(lockFree.map((run) => [run.workspace, run.silentFor]))
          expect(silentFor.acme).toBeLessThan(5)
          expect(silentFor.globex).toBeGreaterThanOrEqual(59)
          expect(silentFor.globex).toBeLessThan(65)
        }).pipe(Effect.provide(SyncDatabase.layer(database)), Effect.orDie)
      }), 60_000)
  }
})

class Probe extends Context.Tag("test/DatabaseClock/Probe")<Probe, number>() {}
