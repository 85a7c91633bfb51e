/**
 * The count of a request's runs cut before the one that answers it, on a real PostgreSQL whose runs table holds a
 * fleet's history: it reads the answering workspace's rows by their index. It read the primary key's whole range below
 * the run (26,000 entries here, for a table of 18,001 runs), on every answer, growing with the runs kept.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Sync } from "@intercom-scroll/sync"
import { PostgresDatabase, QueryPlan } from "@intercom-scroll/testing"
import { Effect, Layer } from "effect"
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

/** The count the third sync's answer for w7's users makes, and the index entries each index scan of its plan read. */
const countedAndScans = (sql: SqlClient.SqlClient) =>
  Effect.gen(function*() {
    const [answering] = yield* sql<{ readonly id: number }>`SELECT max(id) AS id FROM ${sql(Sync.runsTable)}
      WHERE workspace = 'w7' AND resource = 'users'`
    const statement = CutBefore.statement(sql, { workspace: "w7", resource: "users", runId: answering.id }, "sync-2")
    const counted = yield* statement
    const [explained] = yield* sql<{ readonly "QUERY PLAN": ReadonlyArray<{ readonly Plan: QueryPlan.PlanNode }> }>`
      EXPLAIN (ANALYZE, FORMAT JSON) ${statement}`
    return { counted, scans: explained["QUERY PLAN"].flatMap(({ Plan }) => QueryPlan.indexEntries(Plan)) }
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
      const runs = sql(Sync.runsTable)
      // The table's statistics as autovacuum leaves them during a sync: taken before it began (never now, here), so
      // that its run's name, on every run it writes, is one they have not seen and take for rare.
      yield* sql`ALTER TABLE ${runs} SET (autovacuum_enabled = false)`
      const complete = sql`UPDATE ${runs} SET status = 'complete', finished_at = now(), inserted = 100, updated = 0,
        unchanged = 0, deleted = 0, restarts = 0 WHERE status = 'running'`
      yield* sync(sql, 0)
      yield* sync(sql, 1)
      yield* complete
      yield* sql`ANALYZE ${runs}`
      yield* cutOnce(sql)
      yield* sync(sql, 2)
      yield* complete
      const { counted, scans } = yield* countedAndScans(sql)
      expect(counted).toEqual([{ cut: 1 }])
      // w7 has 10 runs, the sync's name 6,001 (the index of names read them all, for each answer of the sync).
      expect(scans.filter(([, entries]) => entries > 100)).toEqual([])
      expect(scans.length).toBeGreaterThan(0)
    }).pipe(Effect.provide(Layer.orDie(PostgresDatabase.layer()))), 60_000)
})
