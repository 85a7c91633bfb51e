/**
 * `Sync.pruneRuns`: the runs that ended before the cutoff go, a few hundred to a transaction, with what a failed run
 * left in SQLite's seen logs; runs still `running`, and those that ended after it, stay.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Clock, DateTime, Effect, Layer, Logger } from "effect"
import { Sync } from "../src/index.js"
import * as Store from "../src/internal/store.js"
import { awaitPaused, writeUntil } from "./support/chunks.js"
import * as Databases from "./support/databases.js"
import { freshToken, intercom, live, rows, runs } from "./support/world.js"

for (const [name, database] of Databases.both) {
  describe(`Sync.pruneRuns on ${name}`, () => {
    layer(database, { timeout: "60 seconds" })((it) => {
      it.effect("deletes the runs that ended before the cutoff, and what a failed one logged, and keeps the rest", () =>
        Effect.gen(function*() {
          yield* Sync.migrate
          const sql = yield* SqlClient.SqlClient
          const { dialect } = yield* Databases.TestDatabase
          const at = (iso: string) => dialect === "pg" ? new Date(iso) : new Date(iso).toISOString()
          const insert = (status: string, finishedAt: string | null, count = 1) =>
            sql`INSERT INTO ${sql(Sync.runsTable)} ${
              sql.insert(Array.from({ length: count }, () => ({
                workspace: "acme",
                resource: "users",
                status,
                started_at: at("2026-01-01T00:00:00Z"),
                finished_at: finishedAt === null ? null : at(finishedAt)
              })))
            }`
          // More than a transaction's few hundred, so that the prune goes on from where each batch ended.
          yield* insert("complete", "2026-01-01T00:10:00Z", 1_200)
          yield* insert("failed", "2026-01-01T00:20:00Z")
          yield* insert("abandoned", "2026-01-01T00:30:00Z")
          yield* insert("running", null)
          yield* insert("complete", "2026-03-01T00:00:00Z")
          const [failed] = yield* sql<{ id: number }>`SELECT id FROM ${sql(Sync.runsTable)} WHERE status = 'failed'`
          const seenLog = `${Sync.tables.users}_seen_log`
          if (dialect === "sqlite") {
            yield* sql`INSERT INTO ${sql(seenLog)} ${sql.insert([{ run: failed.id, id: "u1" }, { run: failed.id, id: "u2" }])}`
          }

          expect(yield* Sync.pruneRuns(DateTime.unsafeMake("2026-02-01T00:00:00Z"))).toBe(1_202)
          const left = yield* sql<{ status: string }>`SELECT status FROM ${sql(Sync.runsTable)} ORDER BY id`
          expect(left.map(({ status }) => status)).toEqual(["running", "complete"])
          if (dialect === "sqlite") {
            const [logged] = yield* sql<{ n: number }>`SELECT count(*) AS n FROM ${sql(seenLog)}`
            expect(logged.n).toBe(0)
          }
          expect(yield* Sync.pruneRuns(DateTime.unsafeMake("2026-02-01T00:00:00Z"))).toBe(0)
        }))
    })
  })
}

describe("Sync.pruneRuns on SQLite", () => {
  layer(Databases.sqlite, { timeout: "60 seconds" })((it) => {
    const sync = (token: string, users: number) => intercom(token, { pageSize: 10, workspace: { users, seed: 3 } })

    /** A first sync of 50 users that failed where it could not fold: recorded failed, its 50 logged ids left. */
    const failedRun = (token: string) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { client } = yield* Databases.TestDatabase
        yield* Sync.migrate
        // The seen table's writes refused (as a full disk or a broken file would have it): the run stores and logs
        // every page, then neither its end nor its fold can write the seen rows; it is recorded failed, its log left.
        // (Not the table renamed away: a run finds that before its scroll, `TablesAltered`, and stores nothing.)
        yield* sql`CREATE TRIGGER refuse_seen BEFORE INSERT ON intercom_users_seen BEGIN SELECT RAISE(ABORT, 'no room left'); END`
        yield* sql`CREATE TRIGGER refuse_seen_update BEFORE UPDATE ON intercom_users_seen BEGIN SELECT RAISE(ABORT, 'no room left'); END`
        // On a client of its own: the SQLite client keeps a statement that failed to prepare.
        yield* Effect.exit(Sync.run("users", { workspace: token }).pipe(
          Effect.provide(Layer.merge(sync(token, 50), Layer.orDie(client))),
          Effect.provide(Logger.remove(Logger.defaultLogger))
        ))
        yield* sql`DROP TRIGGER refuse_seen`
        yield* sql`DROP TRIGGER refuse_seen_update`
        expect((yield* runs(token)).map((run) => run.status)).toEqual(["failed"])
      })

    it.effect("a failed run that could not fold, pruned: the records it stored first are still marked deleted once gone", () =>
      Effect.gen(function*() {
        const token = freshToken()
        yield* failedRun(token)
        const now = yield* Clock.currentTimeMillis
        expect(yield* Sync.pruneRuns(DateTime.unsafeMake(now + 1))).toBe(1)

        // 20 of the 50 gone from Intercom: the next complete run marks them deleted.
        expect(yield* Effect.provide(Sync.run("users", { workspace: token }), sync(token, 30))).toMatchObject({ unchanged: 30, deleted: 20 })
        expect(live(yield* rows(token, "users")).size).toBe(30)
      }))

    it.effect("the discard's join goes from the log's range of rowids, whether the ended runs are a list of ids or a subquery", () =>
      Effect.gen(function*() {
        yield* Sync.migrate
        const sql = yield* SqlClient.SqlClient
        for (const ended of [sql.in([1, 2]), sql`(SELECT id FROM intercom_sync_runs WHERE workspace = ${"acme"})`]) {
          const [text, params] = Store.firstSightings(sql, "users", ended, { after: 10, upTo: 20 }).compile()
          const plan = yield* sql.unsafe<{ readonly detail: string }>(`EXPLAIN QUERY PLAN ${text}`, params)
          const loops = plan.map((row) => row.detail).filter((detail) => /^(SCAN|SEARCH)/.test(detail))
          // The outer loop: the log's range (with a list, SQLite took the workspace's records, the log read for each).
          expect(loops[0]).toMatch(/^SEARCH intercom_users_seen_log USING INTEGER PRIMARY KEY/)
        }
      }))

    it.effect("discards a pruned failed run's log a chunk a transaction, another writer between two, before its row goes", () =>
      Effect.gen(function*() {
        const token = freshToken()
        const sql = yield* SqlClient.SqlClient
        yield* failedRun(token)
        const logged = Effect.map(
          sql<{ readonly logged: number }>`SELECT count(*) AS logged FROM intercom_users_seen_log
            WHERE run IN (SELECT id FROM intercom_sync_runs WHERE workspace = ${token})`,
          ([row]) => Number(row.logged)
        )
        expect(yield* logged).toBe(50)

        // The layer's file holds the other cases' runs too, all ended by now: each of them goes as well.
        const [{ ended }] = yield* sql<{ readonly ended: number }>`SELECT count(*) AS ended FROM intercom_sync_runs WHERE status <> 'running'`
        const now = yield* Clock.currentTimeMillis
        const pruning = yield* Effect.fork(Sync.pruneRuns(DateTime.unsafeMake(now + 1)).pipe(Effect.provideService(Store.DeletionChunk, 4)))
        // Another writer of the file, a transaction at a time on the same client, until it finds part of the log
        // discarded: 50 ids, 4 a transaction, so 4 (in the batch's one transaction: all 50, and the row gone with them).
        let runsMeanwhile = 0
        const discarded = Effect.map(logged, (left) => 50 - left)
        const look = Effect.map(runs(token), (all) => runsMeanwhile = all.length)
        expect(yield* writeUntil(discarded, look)).toBe(4)
        expect(runsMeanwhile).toBe(1)
        const pruned = yield* Effect.flatten(awaitPaused(pruning))
        expect(pruned).toBe(Number(ended))
        expect(yield* logged).toBe(0)
        expect(yield* runs(token)).toEqual([])
        // The records it stored first kept a seen row of their first sighting: the next run marks the 20 gone.
        expect(yield* Effect.provide(Sync.run("users", { workspace: token }), sync(token, 30))).toMatchObject({ unchanged: 30, deleted: 20 })
        expect(live(yield* rows(token, "users")).size).toBe(30)
      }))
  })
})
