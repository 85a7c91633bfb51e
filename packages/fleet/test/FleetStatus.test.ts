/**
 * `FleetStatus.read` on a real runner (in this process, the cluster's storage in SQL) over SQLite and PostgreSQL: the
 * runner alive, a sync under way counted as pending, the runs' activity (a sync stopped mid-run counted apart from failures);
 * and a database no runner has used yet.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { Sync, SyncActivity, SyncDatabase } from "@intercom-scroll/sync"
import { Cron, DateTime, Effect, Fiber, Layer, Logger, LogLevel, Schedule } from "effect"
import { Fleet, FleetStatus, SyncCron, WorkspaceSync } from "../src/index.js"
import { acme, databases, globex, simulated, tokens } from "./support/inProcess.js"
import { freePort } from "./support/processes.js"

describe("FleetStatus.read", () => {
  for (const [dialect, database] of Object.entries(databases)) {
    it.live(`the runners, the syncs not answered yet, and the runs' activity (${dialect})`, () =>
      Effect.gen(function*() {
        const fleetDatabase = yield* database
        const start = yield* DateTime.now
        // Nothing has used the database yet: no tables, so no runner, nothing pending, no activity; and so once the sync
        // tables are made, before any runner.
        for (const migrated of [false, true]) {
          const unused = yield* Effect.gen(function*() {
            if (migrated) yield* Sync.migrate
            return yield* FleetStatus.read({ since: start })
          }).pipe(Effect.provide(SyncDatabase.layer(fleetDatabase)), Effect.orDie)
          expect(unused).toEqual({ runners: [], pending: { requests: 0, oldestSentAt: undefined }, activity: SyncActivity.none(start), schedules: [] })
        }

        const port = yield* freePort
        const runner = Fleet.layerRunner({ database: fleetDatabase, port, maxSyncs: 2 }).pipe(
          Layer.provide([Simulator.layerClient(simulated), tokens]),
          Layer.orDie
        )
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const [acmeUsers] = yield* WorkspaceSync.sync(acme, { resources: ["users"], run: "r1" })
          // Its runner counted the runs cut before it in this dialect too: none (absent, had the count failed).
          expect(acmeUsers.cutBefore).toBe(0)
          // globex is slow: its sync is under way, its request stored and not answered.
          const sentAt = yield* DateTime.now
          const underWay = yield* Effect.fork(WorkspaceSync.sync(globex, { resources: ["users"], run: "r1" }))
          const running = yield* FleetStatus.read({ since: start }).pipe(
            Effect.filterOrFail((status) => status.activity.running.length > 0),
            Effect.retry(Schedule.spaced("20 millis"))
          )
          expect(running.runners).toEqual([{ address: `127.0.0.1:${port}`, live: true, silentFor: expect.any(Number) }])
          expect(running.pending.requests).toBe(1)
          const sent = DateTime.toEpochMillis(running.pending.oldestSentAt!)
          expect(sent).toBeGreaterThanOrEqual(DateTime.toEpochMillis(sentAt) - 1000)
          expect(sent).toBeLessThanOrEqual(DateTime.toEpochMillis(yield* DateTime.now))
          // …with where it runs, to find its runner's log.
          expect(running.activity.running.map((run) => [run.workspace, run.label, run.runner])).toEqual([["globex", "r1", `127.0.0.1:${port}`]])
          expect(running.activity.ended.complete).toBe(1)
          // Another entity's request, not answered: not the fleet's.
          const isFalse = sql.literal(dialect === "postgres" ? "FALSE" : "0")
          yield* sql`INSERT INTO cluster_messages (id, shard_id, entity_type, entity_id, kind, processed, request_id)
            VALUES (1, 'default:1', 'Other', 'x', 0, ${isFalse}, 1)`

          yield* Fiber.join(underWay)
          const done = yield* FleetStatus.read({ since: start })
          expect(done.pending).toEqual({ requests: 0, oldestSentAt: undefined })
          expect(done.activity.running).toEqual([])
          expect(done.activity.ended).toEqual({ complete: 2, failed: 0, interrupted: 0, abandoned: 0 })
          expect(done.activity.rows.inserted).toBe(200)

          // A sync its sender stops mid-run (Ctrl-C on `fleet sync`; a workspace moving, a runner stopping, alike): the
          // runner stops its run, which is counted apart, and is no failure to list.
          const stopped = yield* Effect.fork(WorkspaceSync.sync(globex, { resources: ["users"], run: "r2" }))
          yield* FleetStatus.read({ since: start }).pipe(
            Effect.filterOrFail((status) => status.activity.running.length > 0),
            Effect.retry(Schedule.spaced("20 millis"))
          )
          yield* Fiber.interrupt(stopped)
          const after = yield* FleetStatus.read({ since: start }).pipe(
            Effect.filterOrFail((status) => status.activity.running.length === 0),
            Effect.retry(Schedule.spaced("20 millis")),
            Effect.timeout("30 seconds")
          )
          expect(after.activity.ended).toEqual({ complete: 2, failed: 0, interrupted: 1, abandoned: 0 })
          expect(after.activity.failures).toEqual([])
        }).pipe(Effect.provide(runner), Logger.withMinimumLogLevel(LogLevel.Warning))
      }).pipe(Effect.scoped), 60_000)

    it.live(`each schedule's next tick, which a changed cron starts from (${dialect})`, () =>
      Effect.gen(function*() {
        const fleetDatabase = yield* database
        const hourly = Cron.unsafeParse("0 0 * * * *", "UTC")
        const schedule = SyncCron.layer({ name: "hourly", cron: hourly, resources: ["users"], workspaces: [acme] }).pipe(
          Layer.provideMerge(Fleet.layerRunner({ database: fleetDatabase, port: yield* freePort, maxSyncs: 1 })),
          Layer.provide([Simulator.layerClient(simulated), tokens]),
          Layer.orDie
        )
        const status = yield* FleetStatus.read({ since: yield* DateTime.now }).pipe(
          Effect.filterOrFail((status) => status.schedules.length > 0),
          Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("30 seconds"))),
          Effect.provide(schedule),
          Logger.withMinimumLogLevel(LogLevel.Warning)
        )
        // The schedule's first tick, sent as its runner started: at the next hour, whatever cron a runner has now.
        const next = Cron.next(hourly, new Date(DateTime.toEpochMillis(yield* DateTime.now) - 30_000))
        expect(status.schedules).toEqual([{ schedule: "hourly", at: DateTime.unsafeMake(next) }])
      }).pipe(Effect.scoped), 60_000)
  }
})
