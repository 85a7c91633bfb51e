/**
 * `WorkspaceSync.prune` on a real runner (in this process, the cluster's storage in SQL) over SQLite and PostgreSQL:
 * syncs answered before the cutoff leave nothing in the fleet's database, those answered after it stay (sent before it
 * or not), and a run's name pruned syncs again.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { Sync } from "@intercom-scroll/sync"
import { Cron, DateTime, Effect, Fiber, HashMap, Layer, Logger, LogLevel, Schedule } from "effect"
import { Fleet, SyncCron, WorkspaceSync } from "../src/index.js"
import { acme, databases, globex, simulated, tokens } from "./support/inProcess.js"
import { freePort } from "./support/processes.js"

/** What the fleet's database holds: the cluster's requests and replies, and the runs with their labels. */
const held = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const count = (table: string) =>
    Effect.map(sql<{ n: number }>`SELECT CAST(count(*) AS INTEGER) AS n FROM ${sql(table)}`, ([row]) => Number(row.n))
  const runs = yield* sql<{ workspace: string; label: string; status: string }>`
    SELECT workspace, label, status FROM ${sql(Sync.runsTable)} ORDER BY id`
  return {
    requests: yield* count("cluster_messages"),
    replies: yield* count("cluster_replies"),
    runs: runs.map((run) => `${run.workspace} ${run.label} ${run.status}`)
  }
})

describe("WorkspaceSync.prune", () => {
  for (const [dialect, database] of Object.entries(databases)) {
    it.live(`deletes the requests answered and the runs ended before the cutoff, and keeps the rest (${dialect})`, () =>
      Effect.gen(function*() {
        const runner = Fleet.layerRunner({ database: yield* database, port: yield* freePort, maxSyncs: 2 }).pipe(
          Layer.provide([Simulator.layerClient(simulated), tokens]),
          Layer.orDie
        )
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* WorkspaceSync.sync(acme, { resources: ["users"], run: "r1" })
          yield* WorkspaceSync.sync(globex, { resources: ["users"], run: "r1" })
          // A run a dead process left `running`, started long ago: not history, whatever its age.
          yield* sql`INSERT INTO ${sql(Sync.runsTable)} (workspace, resource, status, started_at, label)
            VALUES ('initech', 'users', 'running', ${dialect === "postgres" ? new Date(0) : new Date(0).toISOString()}, 'r0')`
          // Another entity's request and reply, older than any: not the fleet's to prune.
          const isTrue = sql.literal(dialect === "postgres" ? "TRUE" : "1")
          yield* sql`INSERT INTO cluster_messages (id, shard_id, entity_type, entity_id, kind, processed, request_id)
            VALUES (1, 'default:1', 'Other', 'x', 0, ${isTrue}, 1)`
          yield* sql`INSERT INTO cluster_replies (id, kind, request_id, payload) VALUES (2, 0, 1, '{}')`
          // The cutoff comes while globex's r3 scrolls (its run begun, so its request stored): sent before the cutoff, not
          // answered, it stays; r1's two go, with their runs and replies.
          const underWay = yield* Effect.fork(WorkspaceSync.sync(globex, { resources: ["users"], run: "r3" }))
          yield* Effect.repeat(held, { schedule: Schedule.spaced("20 millis"), until: ({ runs }) => runs.includes("globex r3 running") })
          const cutoff = yield* DateTime.now
          expect(yield* held).toEqual({
            requests: 4,
            replies: 3,
            runs: ["acme r1 complete", "globex r1 complete", "initech r0 running", "globex r3 running"]
          })
          expect(yield* WorkspaceSync.prune(cutoff)).toEqual({ runs: 2, requests: 2, ticks: 0 })
          expect(yield* held).toEqual({ requests: 2, replies: 1, runs: ["initech r0 running", "globex r3 running"] })

          // Answered after the cutoff, r3 stays for its sender to read, though sent before it; so does r2, sent after.
          yield* Fiber.join(underWay)
          yield* Effect.sleep("10 millis")
          yield* WorkspaceSync.sync(acme, { resources: ["users"], run: "r2" })
          expect(yield* WorkspaceSync.prune(cutoff)).toEqual({ runs: 0, requests: 0, ticks: 0 })
          expect(yield* held).toEqual({
            requests: 3,
            replies: 3,
            runs: ["initech r0 running", "globex r3 complete", "acme r2 complete"]
          })
          expect(yield* WorkspaceSync.sentBefore(["acme", "globex"], "r1")).toBe(0)
          expect(yield* WorkspaceSync.sentBefore(["globex"], "r3")).toBe(1)
          expect(yield* WorkspaceSync.sentBefore(["acme"], "r2")).toBe(1)

          // A run's name pruned is a new run again: it syncs, where it would have been answered from storage.
          const [again] = yield* WorkspaceSync.sync(acme, { resources: ["users"], run: "r1" })
          expect(again.unchanged).toBe(150)
          expect((yield* held).runs).toEqual(["initech r0 running", "globex r3 complete", "acme r2 complete", "acme r1 complete"])
          // Nothing is older than a cutoff in the past.
          expect(yield* WorkspaceSync.prune(DateTime.unsafeMake(0))).toEqual({ runs: 0, requests: 0, ticks: 0 })

          // A request whose key passes 255 characters is kept under the key's digest: found there too.
          const long = `nightly/${"x".repeat(240)}`
          expect(yield* WorkspaceSync.sentBefore(["acme"], long)).toBe(0)
          yield* WorkspaceSync.sync(acme, { resources: ["users"], run: long })
          expect(yield* WorkspaceSync.sentBefore(["acme"], long)).toBe(1)
        }).pipe(Effect.provide(runner), Logger.withMinimumLogLevel(LogLevel.Warning))
      }).pipe(Effect.scoped), 60_000)

    it.live(`deletes a schedule's ticks whose rounds ended before the cutoff, but its first, which a runner started again would run again (${dialect})`, () =>
      Effect.gen(function*() {
        const db = yield* database
        const rounds: Array<string> = []
        const collect = Logger.make(({ annotations, message }) => {
          const text = String(message)
          if (text.startsWith("Round ")) rounds.push(`${text.split(":")[0]} ${String(HashMap.unsafeGet(annotations, "run"))}`)
        })
        // A runner holding a schedule that ticks every second, until `enough` rounds have ended in its life.
        const life = (enough: number) =>
          Effect.gen(function*() {
            const before = rounds.length
            const runner = SyncCron.layer({ name: "often", cron: Cron.unsafeParse("* * * * * *"), resources: ["users"], workspaces: [acme] }).pipe(
              Layer.provideMerge(Fleet.layerRunner({ database: db, port: yield* freePort, maxSyncs: 1 })),
              Layer.provide([Simulator.layerClient(simulated), tokens]),
              Layer.orDie
            )
            yield* Effect.repeat(Effect.sync(() => rounds.slice(before).filter((round) => round.startsWith("Round done")).length), {
              schedule: Schedule.spaced("50 millis"),
              until: (done) => done >= enough
            }).pipe(Effect.provide(runner), Effect.scoped)
            return rounds.slice(before)
          }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, collect)), Logger.withMinimumLogLevel(LogLevel.Info))
        const ticks = Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const rows = yield* sql<{ entity_id: string; processed: unknown }>`SELECT entity_id, processed FROM cluster_messages
            WHERE entity_type = 'ClusterCron/intercom-scroll/often' ORDER BY id`
          return rows.map((row) => `${row.entity_id === "initial" ? "initial" : "tick"} ${row.processed ? "answered" : "waiting"}`)
        }).pipe(Effect.provide(Fleet.layerClient({ database: db })), Effect.scoped)

        const first = yield* life(3)
        // The first tick's line (a round, or a skip where the next was due by the time it was read), under its time.
        expect(first[0]).toMatch(/^Round (started|skipped) often@\d{4}-\d\d-\d\dT[\d:.]+Z$/)
        const firstRun = first[0]!.split(" ").at(-1)!
        const held = yield* ticks
        const answered = held.filter((tick) => tick === "tick answered").length
        expect(held.slice(0, 2)).toEqual(["initial answered", "tick answered"])
        expect(held.filter((tick) => tick.endsWith("waiting")).length).toBeGreaterThanOrEqual(1)

        const pruned = yield* WorkspaceSync.prune(yield* DateTime.now).pipe(Effect.provide(Fleet.layerClient({ database: db })), Effect.scoped)
        expect(pruned.ticks).toBe(answered)
        expect(pruned.requests).toBe(first.filter((round) => round.startsWith("Round done")).length)
        expect(yield* ticks).toEqual(held.filter((tick) => tick === "initial answered" || tick.endsWith("waiting")))

        // Started again, the runner's schedule goes on from the tick it had sent next; its first tick does not run again.
        const second = yield* life(1)
        // Its first tick's run not again, nor any run twice (a first tick pruned would be sent again by the singleton,
        // at its cron's next time, a round beside the chain's of that time).
        const begun = second.filter((round) => !round.startsWith("Round done"))
        expect(begun.filter((round) => round.endsWith(firstRun))).toEqual([])
        expect(new Set(begun.map((round) => round.split(" ").at(-1))).size).toBe(begun.length)
      }).pipe(Effect.scoped), 60_000)
  }
})
