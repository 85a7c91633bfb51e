/**
 * `FleetStatus.read` on a real runner (in this process, the cluster's storage in SQL) over SQLite and PostgreSQL: the
 * runner alive, a sync under way counted as pending, the runs' activity (a sync stopped mid-run counted apart from failures);
 * and a database no runner has used yet.
 */
import { SqlClient, Statement } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { Sync, SyncActivity, SyncDatabase } from "@intercom-scroll/sync"
import { Cron, DateTime, Effect, Fiber, Layer, Logger, LogLevel, Schedule, TestClock } from "effect"
import { Fleet, FleetStatus, Secrets, SyncCron, WorkspaceSync } from "../src/index.js"
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
          // It hosts the schedules (`schedules` defaults to true): its registered shard groups say so.
          expect(running.runners).toEqual([{ address: `127.0.0.1:${port}`, live: true, silentFor: expect.any(Number), schedules: true }])
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

    it.live(`each schedule's next tick, the first sent as its runner starts (${dialect})`, () =>
      Effect.gen(function*() {
        const fleetDatabase = yield* database
        const hourly = Cron.unsafeParse("0 0 * * * *", "UTC")
        const before = DateTime.toEpochMillis(yield* DateTime.now)
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
        // The schedule's first tick, sent as its runner started: at the next hour, whatever cron a runner has now. The
        // runner started between `before` and now: a start on either side of an hour's turn ticks at either hour.
        const after = DateTime.toEpochMillis(yield* DateTime.now)
        const ticks = [...new Set([before, after].map((at) => Cron.next(hourly, new Date(at)).getTime()))]
        expect(status.schedules).toHaveLength(1)
        expect(status.schedules[0].schedule).toBe("hourly")
        expect(ticks).toContain(DateTime.toEpochMillis(status.schedules[0].at))
      }).pipe(Effect.scoped), 60_000)

    it.live(`a runner started with a cron that ticks before the stored tick sends its own next tick, listed first, the stored one kept (${dialect})`, () =>
      Effect.gen(function*() {
        const fleetDatabase = yield* database
        /** The schedule's ticks, read on a runner with `cron` once `ready` holds of them; the runner then stops. */
        const ticksWith = (cron: string, ready: (ticks: ReadonlyArray<FleetStatus.ScheduledTick>) => boolean) =>
          Effect.flatMap(freePort, (port) =>
            FleetStatus.schedules.pipe(
              Effect.filterOrFail(ready),
              Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("30 seconds"))),
              Effect.provide(
                SyncCron.layer({ name: "changed", cron: Cron.unsafeParse(cron, "UTC"), resources: ["users"], workspaces: [acme] }).pipe(
                  Layer.provideMerge(Fleet.layerRunner({ database: fleetDatabase, port, maxSyncs: 1 })),
                  Layer.provide([Simulator.layerClient(simulated), tokens]),
                  Layer.orDie
                )
              ),
              Logger.withMinimumLogLevel(LogLevel.Warning)
            ))
        // Yearly: its first tick, the next 1 January, stored as its runner starts.
        const [yearly] = yield* ticksWith("0 0 0 1 1 *", (ticks) => ticks.length > 0)
        expect(DateTime.formatIso(yearly!.at)).toMatch(/-01-01T00:00:00\.000Z$/)
        // Every 20 seconds: its next tick sent as it starts, within 20 s, before the yearly one, which stays stored.
        const started = DateTime.toEpochMillis(yield* DateTime.now)
        const ticks = yield* ticksWith("*/20 * * * * *", (ticks) => ticks.length > 1)
        expect(ticks.map((tick) => tick.schedule)).toEqual(["changed", "changed"])
        expect(DateTime.toEpochMillis(ticks[0]!.at) - started).toBeLessThanOrEqual(21_000)
        expect(ticks[1]!.at).toEqual(yearly!.at)
      }).pipe(Effect.scoped), 90_000)
  }
})

describe("FleetStatus.attention", () => {
  const at = (iso: string) => DateTime.unsafeMake(iso)
  const hours = (n: number) => new Date(Date.parse("2026-12-06T12:00:00Z") - n * 3_600_000).toISOString()
  const staleBefore = at(hours(48))
  const run = (workspace: string, resource: string, status: string, endedHoursAgo: number | undefined, error?: string) => ({
    workspace,
    resource,
    status,
    started_at: hours((endedHoursAgo ?? 0) + 0.1),
    finished_at: endedHoursAgo === undefined ? null : hours(endedHoursAgo),
    error: error ?? null
  })
  /** A fleet's runs over days, and copies kept of workspaces whose runs were pruned. */
  const seed = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Sync.migrate
    const rows = [
      run("acme", "users", "complete", 1),
      run("acme", "leads", "complete", 1),
      run("acme", "users", "running", undefined),
      // globex's users failed three times in a row since 3 days (once abandoned: its runner died), an interrupted run
      // between: the token went missing.
      run("globex", "users", "complete", 120),
      run("globex", "users", "failed", 72, "RestartRequired: broke off"),
      run("globex", "users", "abandoned", 48.5, "Abandoned: its process died"),
      run("globex", "users", "interrupted", 24),
      run("globex", "users", "failed", 1, "MissingToken: GLOBEX_TOKEN is not set\non runner 10.0.0.7"),
      // Its leads completed within the bound, and its process died since.
      run("globex", "leads", "complete", 1),
      run("globex", "leads", "abandoned", 0.5, "Abandoned: its process died"),
      // umbrella's users last completed 4 days ago; its leads were only ever interrupted.
      run("umbrella", "users", "complete", 96),
      run("umbrella", "leads", "interrupted", 2),
      // wayne is not in the file any more.
      run("wayne", "users", "complete", 1)
    ]
    for (const row of rows) yield* sql`INSERT INTO ${sql(Sync.runsTable)} ${sql.insert(row)}`
    // hooli's and oldco's runs were pruned; their users' records stay.
    for (const workspace of ["hooli", "oldco"]) {
      yield* sql`INSERT INTO ${sql(`${Sync.tables.users}_records`)} ${
        sql.insert({ workspace, id: "1", record: "{}", first_seen_at: hours(2_000), first_seen_run: 1, changed_run: 1 })
      }`
    }
  })

  for (const [dialect, database] of Object.entries(databases)) {
    it.effect(`per workspace and resource: failing, stale, never synced, removed, and how many are fine (${dialect})`, () =>
      Effect.gen(function*() {
        const layer = SyncDatabase.layer(yield* database)
        const resources = ["users", "leads"] as const
        const workspaces = ["acme", "globex", "initech", "umbrella", "hooli"]
        // Before any sync: every workspace of the file never synced.
        const fresh = yield* FleetStatus.attention({ staleBefore, resources, workspaces: ["acme"] }).pipe(Effect.provide(layer))
        expect(fresh).toEqual({
          staleBefore,
          failing: [],
          stale: [],
          neverSynced: [{ workspace: "acme", resource: "users" }, { workspace: "acme", resource: "leads" }],
          removed: [],
          fine: 0
        })
        yield* seed.pipe(Effect.provide(layer))
        const withFile = yield* FleetStatus.attention({ staleBefore, resources, workspaces }).pipe(Effect.provide(layer))
        const globex = {
          workspace: "globex",
          resource: "users",
          failedInARow: 3,
          abandoned: 1,
          since: at(hours(72)),
          lastError: "MissingToken: GLOBEX_TOKEN is not set",
          lastCompleteAt: at(hours(120))
        }
        const globexLeads = {
          workspace: "globex",
          resource: "leads",
          failedInARow: 1,
          abandoned: 1,
          since: at(hours(0.5)),
          lastError: "Abandoned: its process died",
          lastCompleteAt: at(hours(1))
        }
        expect(withFile).toEqual({
          staleBefore,
          failing: [globex, globexLeads],
          stale: [{ workspace: "hooli", resource: "users", lastCompleteAt: undefined }, {
            workspace: "umbrella",
            resource: "users",
            lastCompleteAt: at(hours(96))
          }],
          neverSynced: [
            { workspace: "hooli", resource: "leads" },
            { workspace: "initech", resource: "users" },
            { workspace: "initech", resource: "leads" },
            { workspace: "umbrella", resource: "leads" }
          ],
          removed: ["oldco", "wayne"],
          fine: 2
        })
        // From the database alone: the workspaces it holds, failing or stale; a resource it has nothing of is not one
        // it knows to be synced.
        const alone = yield* FleetStatus.attention({ staleBefore, resources }).pipe(Effect.provide(layer))
        expect(alone).toEqual({
          staleBefore,
          failing: [globex, globexLeads],
          stale: [
            { workspace: "hooli", resource: "users", lastCompleteAt: undefined },
            { workspace: "oldco", resource: "users", lastCompleteAt: undefined },
            { workspace: "umbrella", resource: "users", lastCompleteAt: at(hours(96)) }
          ],
          neverSynced: [{ workspace: "umbrella", resource: "leads" }],
          removed: [],
          fine: 3
        })
        // A bound further back: umbrella's users are fine, and globex's first failures ended after its complete run.
        const week = yield* FleetStatus.attention({ staleBefore: at(hours(168)), resources: ["users"], workspaces: ["umbrella", "globex"] }).pipe(
          Effect.provide(layer)
        )
        expect(week).toMatchObject({ failing: [globex], stale: [], neverSynced: [], removed: ["acme", "hooli", "oldco", "wayne"], fine: 1 })
      }).pipe(Effect.scoped), 60_000)

    it.effect(`reads the runs and the records through indexes, never by scanning a table: a fleet keeps millions (${dialect})`, () =>
      Effect.gen(function*() {
        const layer = SyncDatabase.layer(yield* database)
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* seed
          // The statements `attention` sends, as the database receives them, each then explained in its turn.
          const sent: Array<readonly [string, ReadonlyArray<unknown>]> = []
          yield* FleetStatus.attention({ staleBefore, resources: ["users", "leads"], workspaces: ["acme", "globex", "umbrella"] }).pipe(
            Statement.withTransformer((statement) => Effect.sync(() => (sent.push(statement.compile()), statement)))
          )
          const reads = sent.filter(([text]) => !/information_schema|sqlite_master/.test(text))
          // The workspaces of the runs and of each resource's records; the window; the history of umbrella (stale);
          // the errors of globex's failures.
          expect(reads).toHaveLength(7)
          for (const [text, params] of reads) {
            // A small table is cheaper to scan: PostgreSQL is told to use an index wherever one can answer.
            const plan = dialect === "postgres"
              ? yield* Effect.flatMap(sql.unsafe("SET LOCAL enable_seqscan = off"), () =>
                // Run and VERBOSE: else the subquery of a row's value (each step of the walk over the workspaces) is not shown.
                sql.unsafe<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, VERBOSE) ${text}`, params)).pipe(
                  sql.withTransaction,
                  Effect.map((rows) => rows.map((row) => row["QUERY PLAN"]).join("\n"))
                )
              : yield* Effect.map(sql.unsafe<{ detail: string }>(`EXPLAIN QUERY PLAN ${text}`, params), (rows) =>
                rows.map((row) => row.detail).join("\n"))
            // Each table sought by an index's condition: not scanned whole, the table nor an index.
            if (dialect === "postgres") {
              expect(plan, text).not.toMatch(/Seq Scan/)
              // Every index scan with its condition (the lines up to the next node's): none walks a whole index.
              const lines = plan.split("\n")
              const unbounded = lines.flatMap((line, i) => {
                if (!/Index (Only )?Scan/.test(line)) return []
                const end = lines.findIndex((next, j) => j > i && next.includes("->"))
                return lines.slice(i + 1, end === -1 ? undefined : end).some((next) => next.includes("Index Cond")) ? [] : [line]
              })
              expect(unbounded, plan).toEqual([])
            } else {
              expect(plan, text).not.toMatch(/\bSCAN (t|intercom_\w+)\b/)
              expect(plan, text).toMatch(/\bSEARCH (t|intercom_\w+) USING (COVERING INDEX|INDEX|INTEGER PRIMARY KEY)/)
            }
          }
        }).pipe(Effect.provide(layer))
      }).pipe(Effect.scoped), 60_000)

    it.effect(`a resource named twice is looked at once, as a Sync request takes it (${dialect})`, () =>
      Effect.gen(function*() {
        const layer = SyncDatabase.layer(yield* database)
        const [once, twice] = yield* Effect.gen(function*() {
          yield* seed
          const workspaces = ["acme", "globex", "initech", "umbrella", "hooli"]
          return [
            yield* FleetStatus.attention({ staleBefore, resources: ["users", "leads"], workspaces }),
            yield* FleetStatus.attention({ staleBefore, resources: ["users", "leads", "users"], workspaces })
          ]
        }).pipe(Effect.provide(layer))
        expect(twice).toEqual(once)
      }).pipe(Effect.scoped), 60_000)

    it.effect(`a sync refused before its run began, as a runner records it, is a failing workspace, not one never synced (${dialect})`, () =>
      Effect.gen(function*() {
        const layer = SyncDatabase.layer(yield* database)
        const error = new Secrets.MissingToken({ workspace: "initech", tokenEnv: "INITECH_TOKEN" })
        const [before, after] = yield* Effect.gen(function*() {
          yield* Sync.migrate
          const before = yield* FleetStatus.attention({ staleBefore: DateTime.unsafeMake(0), resources: ["users"], workspaces: ["initech"] })
          yield* TestClock.adjust("1 hour")
          yield* Sync.recordRefused("users", { workspace: "initech", label: "cron@x", runner: "10.0.0.7:34431", error })
          return [before, yield* FleetStatus.attention({ staleBefore: DateTime.unsafeMake(0), resources: ["users"], workspaces: ["initech"] })]
        }).pipe(Effect.provide(layer))
        expect(before.neverSynced).toEqual([{ workspace: "initech", resource: "users" }])
        expect(after).toMatchObject({
          neverSynced: [],
          failing: [{ workspace: "initech", resource: "users", failedInARow: 1, abandoned: 0, since: DateTime.unsafeMake(3_600_000), lastError: `MissingToken: ${error.message}` }]
        })
      }).pipe(Effect.scoped), 60_000)
  }
})
