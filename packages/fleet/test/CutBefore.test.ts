/**
 * The statements that read a request's runs as it answers, on a real PostgreSQL whose runs table holds a fleet's
 * history: each reads the workspace's rows by their index. The count of a request's runs cut before the one that
 * answers it read the primary key's whole range below the run (26,000 entries here, for a table of 18,001 runs), on
 * every answer, growing with the runs kept. The runs a request run again completed before: by what it keeps, on both
 * dialects.
 */
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import { Sync } from "@intercom-scroll/sync"
import { PostgresDatabase, QueryPlan } from "@intercom-scroll/testing"
import { Duration, Effect, Layer } from "effect"
import * as CompletedRuns from "../src/internal/completedRuns.js"
import * as CutBefore from "../src/internal/cutBefore.js"

/** A sync of 2,000 workspaces, three resources each, as runners write them: each run's row begun `running`. */
const sync = (sql: SqlClient.SqlClient, n: number) =>
  sql`INSERT INTO ${sql(Sync.runsTable)} (workspace, resource, status, started_at, label, runner, alive_at)
    SELECT 'w' || (i / 3), (ARRAY['users', 'leads', 'companies'])[1 + i % 3], 'running', now(), ${`sync-${n}`},
      '127.0.0.1:34431', now()
    FROM generate_series(0, 5999) AS i`

/** w7's users cut once in the third sync (its runner stopped), before the run that answers. */
const cutOnce = (sql: SqlClient.SqlClient) =>
  sql`INSERT INTO ${sql(Sync.runsTable)} (workspace, resource, status, started_at, label)
    VALUES ('w7', 'users', 'interrupted', now(), 'sync-2')`

/**
 * Three syncs, the third's runs ended complete, w7's users cut once in it, and the table's statistics as autovacuum
 * leaves them during a sync: taken before the third began (never now, here), so that its run's name, on every run it
 * writes, is one they have not seen and take for rare. `beforeThird` runs once they are taken; its result is returned.
 */
const thirdSyncUnseen = <A, E>(sql: SqlClient.SqlClient, beforeThird: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const runs = sql(Sync.runsTable)
    yield* sql`ALTER TABLE ${runs} SET (autovacuum_enabled = false)`
    const complete = sql`UPDATE ${runs} SET status = 'complete', finished_at = now(), inserted = 100, updated = 0,
      unchanged = 0, deleted = 0, restarts = 0 WHERE status = 'running'`
    yield* sync(sql, 0)
    yield* sync(sql, 1)
    yield* complete
    yield* sql`ANALYZE ${runs}`
    const before = yield* beforeThird
    yield* cutOnce(sql)
    yield* sync(sql, 2)
    yield* complete
    return before
  })

/** The index entries each index scan of `statement`'s plan read. */
const scansOf = (sql: SqlClient.SqlClient, statement: Effect.Effect<ReadonlyArray<object>, unknown>) =>
  Effect.map(
    sql<{ readonly "QUERY PLAN": ReadonlyArray<{ readonly Plan: QueryPlan.PlanNode }> }>`EXPLAIN (ANALYZE, FORMAT JSON) ${statement}`,
    ([explained]) => explained["QUERY PLAN"].flatMap(({ Plan }) => QueryPlan.indexEntries(Plan))
  )

/** The count the third sync's answer for w7's users makes, and the index entries each index scan of its plan read. */
const countedAndScans = (sql: SqlClient.SqlClient) =>
  Effect.gen(function*() {
    const [answering] = yield* sql<{ readonly id: number }>`SELECT max(id) AS id FROM ${sql(Sync.runsTable)}
      WHERE workspace = 'w7' AND resource = 'users'`
    const statement = CutBefore.statement(sql, { workspace: "w7", resource: "users", runId: answering.id }, "sync-2")
    return { counted: yield* statement, scans: yield* scansOf(sql, statement) }
  })

describe("CutBefore.statement", () => {
  it.live("reads the answering workspace's runs by its index, not the table's key below the run", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Sync.migrate
      const runs = sql(Sync.runsTable)
      // Three syncs, each run's progress written while it scrolls, then ended complete.
      yield* sync(sql, 0)
      yield* sync(sql, 1)
      yield* cutOnce(sql)
      yield* sync(sql, 2)
      yield* sql`UPDATE ${runs} SET alive_at = now(), inserted = 100 WHERE status = 'running'`
      yield* sql`UPDATE ${runs} SET status = 'complete', finished_at = now(), updated = 0, unchanged = 0, deleted = 0,
        restarts = 0 WHERE status = 'running'`
      yield* sql`ANALYZE ${runs}`
      const { counted, scans } = yield* countedAndScans(sql)
      expect(counted).toEqual([{ cut: 1 }])
      // w7 has 10 runs (a few row versions each, as updated), the table 18,001: an index scan that reads more than a
      // hundred entries reads the table, not the workspace (the primary key's range below the run read 26,000 here).
      expect(scans.filter(([, entries]) => entries > 100)).toEqual([])
      expect(scans.length).toBeGreaterThan(0)
    }).pipe(Effect.provide(Layer.orDie(PostgresDatabase.layer()))), 60_000)

  it.live("reads the answering workspace's runs by its index while the statistics have not seen its run's name", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Sync.migrate
      yield* thirdSyncUnseen(sql, Effect.void)
      const { counted, scans } = yield* countedAndScans(sql)
      expect(counted).toEqual([{ cut: 1 }])
      // w7 has 10 runs, the sync's name 6,001 (the index of names read them all, for each answer of the sync).
      expect(scans.filter(([, entries]) => entries > 100)).toEqual([])
      expect(scans.length).toBeGreaterThan(0)
    }).pipe(Effect.provide(Layer.orDie(PostgresDatabase.layer()))), 60_000)
})

describe("CompletedRuns", () => {
  const layers = {
    sqlite: SqliteClient.layer({ filename: ":memory:" }),
    postgres: Layer.orDie(PostgresDatabase.layer())
  }
  for (const [dialect, layer] of Object.entries(layers)) {
    it.live(`reads the complete runs of the request's name and workspace that began once it was sent, the latest of each resource (${dialect})`, () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Sync.migrate
        const sentAt = Date.parse("2026-12-07T12:00:00.000Z")
        const at = (offset: number) => sql.onDialectOrElse({ pg: () => new Date(sentAt + offset), orElse: () => new Date(sentAt + offset).toISOString() })
        const row = (resource: string, status: string, began: number, options: { workspace?: string; label?: string } = {}) => ({
          workspace: options.workspace ?? "acme",
          resource,
          status,
          label: options.label ?? "r1",
          started_at: at(began),
          finished_at: at(began + 1_500),
          inserted: 3,
          updated: 2,
          unchanged: 1,
          deleted: 4,
          restarts: 1
        })
        yield* sql`INSERT INTO ${sql(Sync.runsTable)} ${
          sql.insert([
            // The name's earlier request, answered and pruned before this one was sent: its run is not this one's.
            row("users", "complete", -60_000),
            // This one's, twice: the latest is the answer.
            row("users", "complete", 10),
            row("users", "complete", 30),
            // Begun as it was sent (the same millisecond): this one's, its only run.
            row("companies", "complete", 0),
            // The leads' only complete run of the name and workspace began the millisecond before: the earlier
            // request's, which no later run of this one hides.
            row("leads", "complete", -1),
            row("leads", "interrupted", 5),
            row("leads", "complete", 10, { workspace: "globex" }),
            row("leads", "complete", 10, { label: "r2" })
          ])
        }`
        const ids = (yield* sql<{ id: number }>`SELECT id FROM ${sql(Sync.runsTable)} ORDER BY id`).map(({ id }) => Number(id))
        const completed = yield* CompletedRuns.read(sql, { workspace: "acme", run: "r1", sentAt })
        const counts = { workspace: "acme", inserted: 3, updated: 2, unchanged: 1, deleted: 4, restarts: 1, duration: Duration.millis(1_500) }
        expect([...completed.entries()]).toEqual([
          ["users", { runId: ids[2], resource: "users", ...counts }],
          ["companies", { runId: ids[3], resource: "companies", ...counts }]
        ])
      }).pipe(Effect.provide(layer)), 60_000)
  }

  it.live("reads the workspace's runs by its index while the statistics have not seen its run's name nor its time", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Sync.migrate
      // The third sync's requests sent before it began (a transaction's now() later), its runs' times unseen too.
      const sent = Effect.map(sql<{ now: Date }>`SELECT now() AS now`, ([row]) => row.now)
      const now = yield* thirdSyncUnseen(sql, Effect.zipLeft(sent, Effect.sleep("10 millis")))
      const request = { workspace: "w7", run: "sync-2", sentAt: now.getTime() + 1 }
      expect([...(yield* CompletedRuns.read(sql, request)).keys()].sort()).toEqual(["companies", "leads", "users"])
      // w7 has 10 runs, 9 complete; the sync's name 6,001 runs, and as many ended since it was sent.
      const scans = yield* scansOf(sql, CompletedRuns.statement(sql, request))
      expect(scans.filter(([, entries]) => entries > 100)).toEqual([])
      expect(scans.length).toBeGreaterThan(0)
    }).pipe(Effect.provide(Layer.orDie(PostgresDatabase.layer()))), 60_000)
})
