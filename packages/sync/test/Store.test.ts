/**
 * The deletion pass that ends a complete run, on PostgreSQL: planned without a nested loop when the statistics are
 * stale (a workspace new to tables analyzed before it existed, which the planner takes for one row), reading the
 * records once, and counted in the run's time; a run interrupted in it, recorded so; and a run's end, recorded once.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Progress } from "@intercom-scroll/core"
import { Cause, Chunk, Clock, Deferred, Duration, Effect, Exit, Fiber, Metric, Option, TestClock } from "effect"
import * as fs from "node:fs/promises"
import * as Store from "../src/internal/store.js"
import { Sync, SyncMetrics } from "../src/index.js"
import { awaitPaused, writeUntil } from "./support/chunks.js"
import * as Databases from "./support/databases.js"
import { freshToken, interruptAtPage, intercom, live, rows, type RunRow, runs } from "./support/world.js"

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

/**
 * PostgreSQL: an advisory lock held by a transaction of the test's, for a trigger of the sync's tables to wait for;
 * `waitedFor` once a session waits for it, `release` ends the transaction.
 */
const holdAdvisoryLock = (key: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const release = yield* Deferred.make<void>()
    const holder = yield* sql.withTransaction(
      Effect.zipRight(sql`SELECT pg_advisory_xact_lock(${key})`, Deferred.await(release))
    ).pipe(Effect.fork)
    const waiting = sql<{ readonly waiting: number }>`SELECT CAST(count(*) AS integer) AS waiting FROM pg_locks
      WHERE locktype = 'advisory' AND objid = ${key} AND NOT granted`
    return {
      waitedFor: Effect.repeat(waiting, { until: ([row]) => row.waiting > 0 }),
      release: Effect.zipRight(Deferred.succeed(release, undefined), Fiber.join(holder))
    }
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
        const held = yield* holdAdvisoryLock(4242)
        const running = yield* Effect.fork(sync(10))
        yield* held.waitedFor
        yield* Fiber.interrupt(running)
        yield* held.release
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

/**
 * PostgreSQL: a first run of `workspace` (10 users) interrupted while a COMMIT of its waits in a deferred trigger on
 * `table` (`when` picks the row), for an advisory lock of the test's that it lets go only once the interruption is
 * sent: the interruption comes while the server commits, as a Ctrl-C or a fleet's workspace moving may during any
 * COMMIT's round trip. The run's exit.
 */
const interruptedInCommit = (name: string, key: number, table: string, event: "INSERT" | "UPDATE", when: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Sync.migrate
    yield* sql.unsafe(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_advisory_xact_lock(${key}); RETURN NEW; END $$`)
    yield* sql.unsafe(`CREATE CONSTRAINT TRIGGER ${name} AFTER ${event} ON ${table}
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.workspace = '${name}' AND ${when}) EXECUTE FUNCTION ${name}()`)
    const held = yield* holdAdvisoryLock(key)
    const running = yield* Effect.fork(
      Effect.provide(Sync.run("users", { workspace: name }), intercom(freshToken(), { workspace: { users: 10, seed: key } }))
    )
    yield* held.waitedFor
    // Not waited for: the run ends only once its COMMIT has answered.
    yield* Fiber.interruptFork(running)
    yield* Effect.yieldNow()
    yield* held.release
    const exit = yield* Fiber.await(running)
    yield* sql.unsafe(`DROP TRIGGER ${name} ON ${table}`)
    return exit
  })

describe("a run interrupted as a transaction of its commits, on PostgreSQL", () => {
  layer(Databases.postgres, { timeout: "60 seconds" })((it) => {
    it.effect("counts the page its transaction committed on the run's row", () =>
      Effect.gen(function*() {
        const workspace = "held_commit"
        const exit = yield* interruptedInCommit(workspace, 4243, "intercom_users_records", "INSERT", "true")
        expect(Exit.isInterrupted(exit)).toBe(true)

        // The page was written, and its row says so.
        const [interrupted] = yield* runs(workspace)
        const stored = [...(yield* rows(workspace, "users")).values()].filter((row) => row.first_seen_run === interrupted.id)
        expect(stored).toHaveLength(10)
        expect(interrupted).toMatchObject({ status: "interrupted", inserted: 10, updated: 0, unchanged: 0 })
      }))

    it.effect("a run interrupted as its completing transaction commits is counted complete, as its row says", () =>
      Effect.gen(function*() {
        const workspace = "held_end"
        const ended = (status: "complete" | "interrupted") =>
          Effect.map(Metric.value(SyncMetrics.runsEnded("users", status)), (state) => state.count)
        const [completeBefore, interruptedBefore] = [yield* ended("complete"), yield* ended("interrupted")]
        const exit = yield* interruptedInCommit(workspace, 4244, "intercom_sync_runs", "UPDATE", "NEW.status = 'complete'")
        expect(Exit.isInterrupted(exit)).toBe(true)

        const [run] = yield* runs(workspace)
        expect(run).toMatchObject({ status: "complete", inserted: 10, error: null })
        expect(yield* ended("complete")).toBe(completeBefore + 1)
        expect(yield* ended("interrupted")).toBe(interruptedBefore)
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

describe("the deletion pass on SQLite, a chunk a transaction", () => {
  layer(Databases.sqlite, { timeout: "60 seconds" })((it) => {
    const marked = (workspace: string) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.map(
          sql<{ readonly marked: number }>`SELECT count(*) AS marked FROM intercom_users_records
            WHERE workspace = ${workspace} AND deleted_at IS NOT NULL`,
          ([row]) => Number(row.marked)
        ))

    it.effect("the pass in one statement is PostgreSQL's: asked of SQLite, it dies rather than hold the file's lock for the whole pass", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const exit = yield* Effect.exit(Store.make(sql, "sqlite", freshToken("one-statement"), "users").markDeleted(1, 0))
        expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      }))

    /** `writeUntil` the run's first deletions committed. */
    const writeBetween = (workspace: string, then: Effect.Effect<void, unknown, SqlClient.SqlClient>) =>
      writeUntil(marked(workspace), then)

    /** The ids the run saw (folded as it ends, or as it is recorded unfinished) and those it marked deleted. */
    const ofRun = (workspace: string, run: number) =>
      Effect.map(rows(workspace, "users"), (table) => ({
        seen: new Set([...table.values()].filter((row) => row.last_seen_run === run).map((row) => row.id)),
        marked: [...table.values()].filter((row) => row.deleted_at !== null && row.changed_run === run).map((row) => row.id)
      }))

    it.effect("another writer gets in between two chunks; a run interrupted there keeps its marks, all true, and the next finishes", () =>
      Effect.gen(function*() {
        const workspace = freshToken("chunked")
        const token = freshToken()
        const sync = (users: number) =>
          Effect.provide(Sync.run("users", { workspace }), intercom(token, { workspace: { users, seed: 5 } }))
        yield* sync(40)
        const sql = yield* SqlClient.SqlClient
        const checkpointEvery = Effect.map(sql<{ readonly wal_autocheckpoint: number }>`PRAGMA wal_autocheckpoint`, ([row]) =>
          Number(row.wal_autocheckpoint))
        const setting = yield* checkpointEvery
        let duringPass: { readonly pages: number; readonly run: RunRow } | undefined
        const running = yield* Effect.fork(sync(10).pipe(Effect.provideService(Store.DeletionChunk, 4)))
        // 30 to mark, 4 a transaction: the writer finds the first chunk's 4, not the pass's 30 at once.
        const interrupt = Effect.zipRight(
          Effect.map(Effect.zip(checkpointEvery, runs(workspace)), ([pages, [, run]]) => duringPass = { pages, run }),
          Fiber.interruptFork(running)
        )
        expect(yield* writeBetween(workspace, interrupt)).toBe(4)
        expect(Exit.isInterrupted(yield* Fiber.await(running))).toBe(true)
        // The chunk counted its marks on the run's row (what a run that dies there keeps); checkpoints were put off
        // during the pass, and the connection's setting put back as it stopped.
        expect(duringPass?.run).toMatchObject({ status: "running", deleted: 4 })
        expect(duringPass?.pages).toBe(0)
        expect(yield* checkpointEvery).toBe(setting)
        expect(setting).toBeGreaterThan(0)

        const [, interrupted] = yield* runs(workspace)
        expect(interrupted).toMatchObject({
          status: "interrupted",
          error: "Interrupted after the scroll reached its end, as it marked the deletions",
          unchanged: 10,
          deleted: 4
        })
        // What it marked is true: none of the 10 it saw in its complete scroll.
        const { marked: markedByIt, seen } = yield* ofRun(workspace, interrupted.id)
        expect(seen.size).toBe(10)
        expect(markedByIt).toHaveLength(4)
        for (const id of markedByIt) expect(seen.has(id)).toBe(false)
        expect(live(yield* rows(workspace, "users")).size).toBe(36)

        // The next run marks the rest, and the copy is the simulator's 10.
        const next = yield* sync(10)
        expect(next).toMatchObject({ unchanged: 10, deleted: 26 })
        const after = yield* ofRun(workspace, next.runId)
        expect(live(yield* rows(workspace, "users"))).toEqual(after.seen)
        expect(yield* marked(workspace)).toBe(30)
      }))

    it.effect("a run that loses its lock between two chunks writes no further chunk; its marks stay true, and the next run finishes", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const workspace = freshToken("chunked-lost")
        const token = freshToken()
        const sync = (users: number) =>
          Effect.provide(Sync.run("users", { workspace }), intercom(token, { workspace: { users, seed: 6 } }))
        yield* sync(30)
        const running = yield* Effect.fork(sync(10).pipe(Effect.provideService(Store.DeletionChunk, 5)))
        // Another process takes the lease over between two chunks.
        const takeOver = sql`UPDATE intercom_sync_locks SET holder = 'another' WHERE workspace = ${workspace}`
        expect(yield* writeBetween(workspace, takeOver)).toBe(5)
        yield* TestClock.adjust(Store.deletionPause)
        const exit = yield* Fiber.await(running)
        expect(exit).toMatchObject({ _tag: "Failure" })
        expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause)).toMatchObject({ _tag: "Some", value: { _tag: "LockLost" } })

        const [, lost] = yield* runs(workspace)
        expect(lost).toMatchObject({ status: "failed", deleted: 5 })
        const { marked: markedByIt, seen } = yield* ofRun(workspace, lost.id)
        expect(seen.size).toBe(10)
        expect(markedByIt).toHaveLength(5)
        for (const id of markedByIt) expect(seen.has(id)).toBe(false)

        yield* sql`DELETE FROM intercom_sync_locks WHERE workspace = ${workspace}`
        const next = yield* sync(10)
        expect(next).toMatchObject({ unchanged: 10, deleted: 15 })
        expect(live(yield* rows(workspace, "users"))).toEqual((yield* ofRun(workspace, next.runId)).seen)
      }))

    /** How many ids the `nth` run of `workspace` has folded into the seen table so far. */
    const folded = (workspace: string, nth: number) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.map(
          sql<{ readonly folded: number }>`SELECT count(*) AS folded FROM intercom_users_seen WHERE workspace = ${workspace}
            AND last_seen_run = (SELECT id FROM intercom_sync_runs WHERE workspace = ${workspace} ORDER BY id LIMIT 1 OFFSET ${
            nth - 1
          })`,
          ([row]) => Number(row.folded)
        ))

    /** `writeUntil` the first ids the `nth` run folded committed. */
    const writeBetweenFold = (workspace: string, nth: number, then: Effect.Effect<void, unknown, SqlClient.SqlClient>) =>
      writeUntil(folded(workspace, nth), then)

    const checkpointEvery = Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Effect.map(sql<{ readonly wal_autocheckpoint: number }>`PRAGMA wal_autocheckpoint`, ([row]) => Number(row.wal_autocheckpoint)))

    /** Runs `effect` with the connection's automatic checkpoints at a caller's own setting, not SQLite's default. */
    const withCallersSetting = <A, E, R>(pages: number, effect: Effect.Effect<A, E, R>) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.acquireUseRelease(
          Effect.flatMap(checkpointEvery, (before) => Effect.as(sql.unsafe(`PRAGMA wal_autocheckpoint = ${pages}`), before)),
          () => effect,
          (before) => Effect.orDie(sql.unsafe(`PRAGMA wal_autocheckpoint = ${before}`))
        ))

    const sortedCopies = Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Effect.map(
        sql<{ readonly copies: number }>`SELECT count(*) AS copies FROM sqlite_temp_master WHERE name LIKE 'intercom_scroll_fold_%'`,
        ([row]) => Number(row.copies)
      ))

    const logged = (workspace: string) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.map(
          sql<{ readonly logged: number }>`SELECT count(*) AS logged FROM intercom_users_seen_log
            WHERE run IN (SELECT id FROM intercom_sync_runs WHERE workspace = ${workspace})`,
          ([row]) => Number(row.logged)
        ))

    it.effect("the fold of the run's log gives way to another writer; a run interrupted in it marks nothing, and the next run is exact", () =>
      withCallersSetting(
        777,
        Effect.gen(function*() {
          const workspace = freshToken("fold-cut")
          const token = freshToken()
          const sync = (users: number) =>
            Effect.provide(Sync.run("users", { workspace }), intercom(token, { workspace: { users, seed: 7 } }))
          yield* sync(40)
          let duringFold: { readonly pages: number; readonly run: RunRow } | undefined
          const running = yield* Effect.fork(sync(10).pipe(Effect.provideService(Store.FoldChunk, 4)))
          // 10 logged ids, 4 a transaction: the writer finds the first chunk's 4 folded, not the 10 at once.
          const interrupt = Effect.zipRight(
            Effect.map(Effect.zip(checkpointEvery, runs(workspace)), ([pages, [, run]]) => duringFold = { pages, run }),
            Fiber.interruptFork(running)
          )
          expect(yield* writeBetweenFold(workspace, 2, interrupt)).toBe(4)
          expect(Exit.isInterrupted(yield* Fiber.await(running))).toBe(true)
          expect(duringFold?.run).toMatchObject({ status: "running" })
          // The fold leaves the connection's checkpoints as the caller set them; its sorted copy is gone.
          expect(duringFold?.pages).toBe(777)
          expect(yield* checkpointEvery).toBe(777)
          expect(yield* sortedCopies).toBe(0)

          const [, interrupted] = yield* runs(workspace)
          expect(interrupted).toMatchObject({
            status: "interrupted",
            error: "Interrupted after the scroll reached its end, as it marked the deletions",
            unchanged: 10,
            deleted: 0
          })
          // What it folded, it saw; it marked nothing; the rest of its log is left for the next run to discard.
          const { marked: markedByIt, seen } = yield* ofRun(workspace, interrupted.id)
          expect(seen.size).toBe(4)
          expect(markedByIt).toHaveLength(0)
          expect(live(yield* rows(workspace, "users")).size).toBe(40)
          expect(yield* logged(workspace)).toBe(10)

          // The next run marks the 30, and the copy is the simulator's 10.
          const next = yield* sync(10)
          expect(next).toMatchObject({ unchanged: 10, deleted: 30 })
          const after = yield* ofRun(workspace, next.runId)
          expect(after.seen.size).toBe(10)
          expect(live(yield* rows(workspace, "users"))).toEqual(after.seen)
          expect(yield* marked(workspace)).toBe(30)
          expect(yield* logged(workspace)).toBe(0)
        })
      ))

    /**
     * A first sync of 12 users interrupted in its fold once its first chunk (`FoldChunk` 4) is in: recorded
     * interrupted, 4 of its ids folded and all 12 still in its log, 8 of its records without a seen row of their own.
     * The workspace, and its sync of `users` against the same simulator.
     */
    const firstSyncStoppedInFold = (name: string, seed: number) =>
      Effect.gen(function*() {
        const workspace = freshToken(name)
        const token = freshToken()
        const sync = (users: number) =>
          Effect.provide(Sync.run("users", { workspace }), intercom(token, { workspace: { users, seed } }))
        // The tables made first: the writer reads them before the run has migrated (alone, the case failed there).
        yield* Sync.migrate
        const running = yield* Effect.fork(sync(12).pipe(Effect.provideService(Store.FoldChunk, 4)))
        expect(yield* writeBetweenFold(workspace, 1, Fiber.interruptFork(running))).toBe(4)
        expect(Exit.isInterrupted(yield* Fiber.await(running))).toBe(true)
        const [first] = yield* runs(workspace)
        expect(first).toMatchObject({ status: "interrupted", inserted: 12, deleted: 0 })
        expect(yield* loggedBy(workspace, 1)).toBe(12)
        return { workspace, sync }
      })

    it.effect("a first run interrupted in its fold leaves the records it stored deletable: the next run marks those gone", () =>
      Effect.gen(function*() {
        const { sync, workspace } = yield* firstSyncStoppedInFold("fold-cut-first", 8)
        expect(live(yield* rows(workspace, "users")).size).toBe(12)

        // 8 of its 12 records have no seen row of their own yet: the next run's sight of 5 marks the other 7.
        const next = yield* sync(5)
        expect(next).toMatchObject({ unchanged: 5, deleted: 7 })
        expect(live(yield* rows(workspace, "users"))).toEqual((yield* ofRun(workspace, next.runId)).seen)
        expect(yield* marked(workspace)).toBe(7)
      }))

    /** `effect` in a transaction of its own on the test's client: another writer of the file. */
    const sqlTransaction = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql.withTransaction(effect))

    /** How many of the ids the `nth` run of `workspace` logged are still in the log. */
    const loggedBy = (workspace: string, nth: number) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.map(
          sql<{ readonly logged: number }>`SELECT count(*) AS logged FROM intercom_users_seen_log
            WHERE run = (SELECT id FROM intercom_sync_runs WHERE workspace = ${workspace} ORDER BY id LIMIT 1 OFFSET ${nth - 1})`,
          ([row]) => Number(row.logged)
        ))

    it.effect("a run stopped in its scroll folds what it saw a key range a transaction as it records its end, another writer between two", () =>
      withCallersSetting(
        777,
        Effect.gen(function*() {
          const workspace = freshToken("scroll-cut")
          const token = freshToken()
          const sync = (users: number) =>
            Effect.provide(Sync.run("users", { workspace }), intercom(token, { pageSize: 10, workspace: { users, seed: 10 } }))
          yield* sync(40)
          let duringFold: RunRow | undefined
          const running = yield* Effect.fork(
            sync(40).pipe(Effect.provideService(Store.FoldChunk, 4), Effect.provideService(Progress.Progress, interruptAtPage(3)))
          )
          // 20 logged ids, 4 a transaction: the writer finds the first chunk's 4 folded, not the 20 at once.
          const look = Effect.map(runs(workspace), ([, run]) => duringFold = run)
          expect(yield* writeBetweenFold(workspace, 2, look)).toBe(4)
          expect(Exit.isInterrupted(yield* awaitPaused(running))).toBe(true)
          expect(duringFold).toMatchObject({ status: "running" })

          const [, interrupted] = yield* runs(workspace)
          expect(interrupted).toMatchObject({
            status: "interrupted",
            error: "Interrupted before the scroll reached its end",
            unchanged: 20,
            deleted: 0
          })
          // Every id it saw folded, as the one transaction did; its log and sorted copy gone, the caller's setting kept.
          const { marked: markedByIt, seen } = yield* ofRun(workspace, interrupted.id)
          expect(seen.size).toBe(20)
          expect(markedByIt).toHaveLength(0)
          expect(yield* logged(workspace)).toBe(0)
          expect(yield* sortedCopies).toBe(0)
          expect(yield* checkpointEvery).toBe(777)

          // The next run marks the 30 it does not see, and the copy is the simulator's 10.
          const next = yield* sync(10)
          expect(next).toMatchObject({ unchanged: 10, deleted: 30 })
          expect(live(yield* rows(workspace, "users"))).toEqual((yield* ofRun(workspace, next.runId)).seen)
          expect(yield* marked(workspace)).toBe(30)
        })
      ))

    it.effect("a first sync stopped in its scroll and cut in that fold keeps the chunks it folded; the next run is exact", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const workspace = freshToken("scroll-cut-first")
        const token = freshToken()
        const sync = (users: number) =>
          Effect.provide(Sync.run("users", { workspace }), intercom(token, { pageSize: 10, workspace: { users, seed: 11 } }))
        // The tables made first: the writer reads them before the run has migrated.
        yield* Sync.migrate
        const running = yield* Effect.fork(
          sync(40).pipe(Effect.provideService(Store.FoldChunk, 4), Effect.provideService(Progress.Progress, interruptAtPage(3)))
        )
        // The fold cut after its first chunk, as a second signal or a kill would cut it: here its sorted copy dropped,
        // so that its next chunk fails.
        const cut = Effect.flatMap(
          sql<{ readonly name: string }>`SELECT name FROM sqlite_temp_master WHERE name LIKE 'intercom_scroll_fold_%'`,
          (copies) => Effect.forEach(copies, ({ name }) => sql.unsafe(`DROP TABLE temp."${name}"`), { discard: true })
        )
        expect(yield* writeBetweenFold(workspace, 1, cut)).toBe(4)
        expect(Exit.isInterrupted(yield* awaitPaused(running))).toBe(true)
        const [first] = yield* runs(workspace)
        expect(first).toMatchObject({ status: "interrupted", inserted: 20, deleted: 0 })
        expect(yield* folded(workspace, 1)).toBe(4)
        expect(yield* loggedBy(workspace, 1)).toBe(20)

        // The next run discards the rest of its log (16 of its records get a seen row of their first sighting) and marks
        // deleted every one of the 20 it does not see.
        const next = yield* sync(10)
        expect(next.inserted + next.unchanged).toBe(10)
        expect(next.deleted).toBe(20 - next.unchanged)
        expect(live(yield* rows(workspace, "users"))).toEqual((yield* ofRun(workspace, next.runId)).seen)
        expect(yield* marked(workspace)).toBe(20 - next.unchanged)
        expect(yield* logged(workspace)).toBe(0)
      }))

    it.effect("the marking sizes each next chunk by the time the last took: a slow one shrinks the next, which grows back", () =>
      Effect.gen(function*() {
        const workspace = freshToken("chunk-time")
        const token = freshToken()
        const sync = (users: number) =>
          Effect.provide(Sync.run("users", { workspace }), intercom(token, { workspace: { users, seed: 13 } }))
        yield* sync(150)
        const running = yield* Effect.fork(sync(20).pipe(Effect.provideService(Store.DeletionChunk, 40)))
        const pauseDue = Effect.gen(function*() {
          const due = (yield* Clock.currentTimeMillis) + Duration.toMillis(Store.deletionPause)
          return Chunk.some(yield* TestClock.sleeps(), (at) => at <= due)
        })
        const macrotask = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 0)))
        // The marks as another writer finds them between two chunks. Once the first chunk's 40 are in, that writer ends
        // the pause and holds the file 2 s (of the TestClock) while the second chunk waits for it: that chunk took 4
        // times the 0.5 s aimed at, and the next is a quarter of it, 10; then 20, then 40 again (fixed: 40 a chunk).
        const found: Array<number> = []
        let slowed = false
        const done = yield* Effect.gen(function*() {
          for (;;) {
            const count = yield* sqlTransaction(marked(workspace))
            if (count > 0 && found[found.length - 1] !== count) found.push(count)
            const exit = yield* Fiber.poll(running)
            if (Option.isSome(exit)) return yield* exit.value
            if (count === 40 && !slowed && (yield* pauseDue)) {
              slowed = true
              yield* sqlTransaction(Effect.gen(function*() {
                yield* TestClock.adjust(Store.deletionPause)
                for (let turn = 0; turn < 5; turn++) yield* macrotask
                yield* TestClock.adjust("2 seconds")
              }))
            } else if (yield* pauseDue) yield* TestClock.adjust(Store.deletionPause)
            yield* macrotask
          }
        })
        expect(done).toMatchObject({ unchanged: 20, deleted: 130 })
        expect(found).toEqual([40, 80, 90, 110, 130])
        expect(live(yield* rows(workspace, "users"))).toEqual((yield* ofRun(workspace, done.runId)).seen)
      }))

    it.effect("the next run discards a stopped run's log a chunk a transaction, another writer between two, before its own row", () =>
      Effect.gen(function*() {
        const { sync, workspace } = yield* firstSyncStoppedInFold("discard-chunked", 12)

        // 12 to discard, 4 a transaction: the writer finds the first chunk's 4 gone, not the 12 at once.
        let runsMeanwhile = 0
        const next = yield* Effect.fork(sync(5).pipe(Effect.provideService(Store.DeletionChunk, 4)))
        const discarded = Effect.map(loggedBy(workspace, 1), (left) => 12 - left)
        const look = Effect.map(runs(workspace), (all) => runsMeanwhile = all.length)
        expect(yield* writeUntil(discarded, look)).toBe(4)
        const done = yield* awaitPaused(next)
        expect(runsMeanwhile).toBe(1)
        expect(Exit.isSuccess(done) && done.value).toMatchObject({ unchanged: 5, deleted: 7 })
        const [, after] = yield* runs(workspace)
        expect(live(yield* rows(workspace, "users"))).toEqual((yield* ofRun(workspace, after.id)).seen)
        expect(yield* marked(workspace)).toBe(7)
        expect(yield* logged(workspace)).toBe(0)
      }))

    it.effect("a run that loses its lock in the marking puts the caller's own checkpoint setting back", () =>
      withCallersSetting(
        555,
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const workspace = freshToken("chunked-setting")
          const token = freshToken()
          const sync = (users: number) =>
            Effect.provide(Sync.run("users", { workspace }), intercom(token, { workspace: { users, seed: 9 } }))
          yield* sync(20)
          const running = yield* Effect.fork(sync(5).pipe(Effect.provideService(Store.DeletionChunk, 5)))
          let during: number | undefined
          const takeOver = Effect.zipRight(
            Effect.map(checkpointEvery, (pages) => during = pages),
            sql`UPDATE intercom_sync_locks SET holder = 'another' WHERE workspace = ${workspace}`
          )
          expect(yield* writeBetween(workspace, takeOver)).toBe(5)
          yield* TestClock.adjust(Store.deletionPause)
          const exit = yield* Fiber.await(running)
          expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause)).toMatchObject({ _tag: "Some", value: { _tag: "LockLost" } })
          expect(during).toBe(0)
          expect(yield* checkpointEvery).toBe(555)
          yield* sql`DELETE FROM intercom_sync_locks WHERE workspace = ${workspace}`
        })
      ))

    it.effect("a complete run empties the WAL file once its end has checkpointed it, and keeps the caller's busy timeout", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [{ file }] = yield* sql<{ readonly file: string }>`SELECT file FROM pragma_database_list WHERE name = 'main'`
        const walBytes = Effect.promise(() => fs.stat(`${file}-wal`).then((stat) => stat.size, () => 0))
        const busyTimeout = Effect.map(sql<{ readonly timeout: number }>`PRAGMA busy_timeout`, ([row]) => Number(row.timeout))
        // The connection at a caller's own busy timeout, not the driver's 5 s, for the run and the looks after it.
        const after = yield* Effect.acquireUseRelease(
          Effect.flatMap(busyTimeout, (before) => Effect.as(sql.unsafe("PRAGMA busy_timeout = 4321"), before)),
          () =>
            Effect.gen(function*() {
              const workspace = freshToken("wal")
              const summary = yield* Effect.provide(
                Sync.run("users", { workspace }),
                intercom(freshToken(), { workspace: { users: 300, seed: 13 } })
              )
              expect(summary).toMatchObject({ inserted: 300 })
              return { wal: yield* walBytes, timeout: yield* busyTimeout }
            }),
          (before) => Effect.orDie(sql.unsafe(`PRAGMA busy_timeout = ${before}`))
        )
        expect(after).toEqual({ wal: 0, timeout: 4321 })
      }))

    it.effect("a run that died in its deletion pass is marked abandoned with the deletions its chunks recorded", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const workspace = freshToken("died-in-pass")
        const now = yield* Clock.currentTimeMillis
        // Its row as the process left it: running, 3 deletions recorded by the chunks that committed.
        const store = Store.make(sql, "sqlite", workspace, "users")
        const dead = yield* store.startRun(now, { label: undefined, runner: undefined })
        yield* store.recordDeleted(dead, 3)
        yield* Effect.provide(Sync.run("users", { workspace }), intercom(freshToken(), { workspace: { users: 2 } }))
        const [abandoned] = yield* runs(workspace)
        expect(abandoned).toMatchObject({ id: dead, status: "abandoned", deleted: 3 })
      }))
  })
})
