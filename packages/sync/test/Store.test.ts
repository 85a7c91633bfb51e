/**
 * The deletion pass that ends a complete run, on PostgreSQL: planned without a nested loop when the statistics are
 * stale (a workspace new to tables analyzed before it existed, which the planner takes for one row), reading the
 * records once, and counted in the run's time; a run interrupted in it, recorded so; and a run's end, recorded once.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Clock, Deferred, Duration, Effect, Fiber } from "effect"
import * as Store from "../src/internal/store.js"
import { Sync } from "../src/index.js"
import * as Databases from "./support/databases.js"
import { freshToken, intercom, live, rows, runs } from "./support/world.js"

describe("the deletion pass on PostgreSQL", () => {
  layer(Databases.postgres, { timeout: "60 seconds" })((it) => {
    it.effect("joins a new workspace's records to its seen rows without a nested loop (quadratic on stale statistics)", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const sync = (workspace: string) =>
          Effect.provide(Sync.run("users", { workspace }), intercom(freshToken(), { workspace: { users: 500 } }))
        yield* sync("first")
        for (const table of ["intercom_users_records", "intercom_users_seen"]) {
          // Statistics that know only the first workspace, and stay so.
          yield* sql.unsafe(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`)
          yield* sql.unsafe(`ANALYZE ${table}`)
        }
        yield* sync("second")
        const [{ id: run }] = yield* runs("second")
        const now = yield* Clock.currentTimeMillis

        const plan = yield* sql.withTransaction(Effect.gen(function*() {
          expect(yield* Store.make(sql, "pg", "second", "users").markDeleted(run, now)).toBe(0)
          // The statement's shape, planned where the pass ran: in its transaction, after it.
          const lines = yield* sql<{ readonly "QUERY PLAN": string }>`EXPLAIN SELECT count(*) FROM intercom_users_records
            WHERE workspace = ${"second"} AND deleted_at IS NULL AND id IN (
              SELECT id FROM intercom_users_seen WHERE workspace = ${"second"} AND last_seen_run <> ${run})`
          return lines.map((line) => line["QUERY PLAN"]).join("\n")
        }))
        expect(plan).toMatch(/Merge Join|Hash (Semi |Right Semi )?Join/)
        expect(plan).not.toContain("Nested Loop")
      }))

    it.effect("reads the workspace's records once: the rows it marks deleted are counted as they are marked", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const workspace = freshToken("one-pass")
        const summary = yield* Effect.provide(Sync.run("users", { workspace }), intercom(freshToken(), { workspace: { users: 60 } }))
        const now = yield* Clock.currentTimeMillis
        const scans = Effect.map(
          sql<{ readonly scans: number }>`SELECT CAST(COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0) AS integer) AS scans
            FROM pg_stat_xact_user_tables WHERE relname = 'intercom_users_records'`,
          ([row]) => Number(row?.scans ?? 0)
        )
        // The pass of a run that saw none of them, in a transaction whose own statistics count the scans of the table.
        const [deleted, scanned] = yield* sql.withTransaction(Effect.gen(function*() {
          const before = yield* scans
          const deleted = yield* Store.make(sql, "pg", workspace, "users").markDeleted(summary.runId + 1_000, now)
          return [deleted, (yield* scans) - before] as const
        }))
        expect(deleted).toBe(60)
        // A count first, then the update, read them twice: at 1,000,000 users each read was ~2 s of the pass.
        expect(scanned).toBe(1)
      }))

    it.effect("a run's duration and finished_at include the deletion pass, however long it takes", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const token = freshToken()
        const sync = (users: number) =>
          Effect.provide(Sync.run("users", { workspace: "slow-pass" }), intercom(token, { workspace: { users, seed: 7 } }))
        yield* sync(50)
        // Each record marked deleted takes 50 ms: the pass, not the scroll.
        yield* sql.unsafe(`CREATE FUNCTION slow_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN PERFORM pg_sleep(0.05); RETURN NEW; END $$`)
        yield* sql.unsafe(`CREATE TRIGGER slow_deletion AFTER UPDATE ON intercom_users_records FOR EACH ROW
          WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL) EXECUTE FUNCTION slow_deletion()`)
        const shrunk = yield* sync(40)
        expect(shrunk.deleted).toBe(10)
        expect(Duration.toMillis(shrunk.duration)).toBeGreaterThanOrEqual(500)
        const run = (yield* runs("slow-pass")).find((found) => found.id === shrunk.runId)!
        expect(run.finished_at! - run.started_at).toBeGreaterThanOrEqual(500)
      }).pipe(Effect.withClock(Clock.make())))
  })
})

describe("a run interrupted in its deletion pass on PostgreSQL", () => {
  layer(Databases.postgres, { timeout: "60 seconds" })((it) => {
    it.effect("is recorded interrupted as it marked the deletions, not before the scroll's end, and marks nothing deleted", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const token = freshToken()
        const sync = (users: number) =>
          Effect.provide(Sync.run("users", { workspace: "held-pass" }), intercom(token, { workspace: { users, seed: 5 } }))
        yield* sync(20)
        // The pass waits in a trigger for an advisory lock held by a transaction of the test's: a pass under way (at
        // 2,000,000 users, 800,000 deletions took 2 minutes), which the interruption lands in.
        yield* sql.unsafe(`CREATE FUNCTION held_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NEW; END $$`)
        yield* sql.unsafe(`CREATE TRIGGER held_deletion AFTER UPDATE ON intercom_users_records FOR EACH ROW
          WHEN (NEW.workspace = 'held-pass' AND OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
          EXECUTE FUNCTION held_deletion()`)
        const release = yield* Deferred.make<void>()
        const holder = yield* sql.withTransaction(
          Effect.zipRight(sql`SELECT pg_advisory_xact_lock(4242)`, Deferred.await(release))
        ).pipe(Effect.fork)
        const held = sql<{ readonly waiting: number }>`SELECT CAST(count(*) AS integer) AS waiting FROM pg_locks
          WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted`
        const running = yield* Effect.fork(sync(10))
        yield* Effect.repeat(held, { until: ([row]) => row.waiting > 0 })
        yield* Fiber.interrupt(running)
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        yield* sql.unsafe("DROP TRIGGER held_deletion ON intercom_users_records")

        const [, interrupted] = yield* runs("held-pass")
        expect(interrupted).toMatchObject({
          status: "interrupted",
          error: "Interrupted after the scroll reached its end, as it marked the deletions",
          deleted: 0
        })
        expect(live(yield* rows("held-pass", "users")).size).toBe(20)
        // The next run marks them.
        expect(yield* sync(10)).toMatchObject({ unchanged: 10, deleted: 10 })
      }))
  })
})

describe.each(Databases.both)("a run's end on %s", (_name, database) => {
  layer(database, { timeout: "60 seconds" })((it) => {
    it.effect("a run recorded complete stays complete: a failure recorded after it (an interruption as it committed) changes nothing", () =>
      Effect.gen(function*() {
        const sql = (yield* SqlClient.SqlClient).withoutTransforms()
        const { dialect } = yield* Databases.TestDatabase
        const workspace = freshToken("ended")
        const summary = yield* Effect.provide(Sync.run("users", { workspace }), intercom(freshToken(), { workspace: { users: 3 } }))
        const now = yield* Clock.currentTimeMillis
        yield* Store.make(sql, dialect, workspace, "users").finishRun(summary.runId, {
          status: "interrupted",
          now,
          counts: { inserted: 0, updated: 0, unchanged: 0, deleted: 0, restarts: 0 },
          error: "Interrupted before the scroll reached its end"
        })
        const [run] = yield* runs(workspace)
        expect(run).toMatchObject({ status: "complete", inserted: 3, error: null })
      }))
  })
})
