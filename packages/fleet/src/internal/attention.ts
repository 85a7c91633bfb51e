/**
 * The statements behind `FleetStatus.attention`: each workspace's and resource's state, read so that the cost follows
 * the runs of the last `staleBefore` window and the workspaces in trouble, not the whole history of the runs.
 *
 * @internal
 */
import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import type { Fragment } from "@effect/sql/Statement"
import type { Resource } from "@intercom-scroll/core"
import { Sync } from "@intercom-scroll/sync"
import { Array as Arr, DateTime, Effect } from "effect"

/** A workspace and resource, as the statements below give it. */
export interface PairState {
  readonly workspace: string
  readonly resource: Resource.Resource
  /** The end of its last complete run of those read; undefined if none. */
  readonly completeAt: DateTime.Utc | undefined
  /** Failed or abandoned runs after that one (all those read, if none completed). */
  readonly failed: number
  /** How many of them were abandoned. */
  readonly abandoned: number
  /** The end of the first of them. */
  readonly failingSince: DateTime.Utc | undefined
  /** The latest of them, by id (the last started), for its error. */
  readonly lastFailed: number | undefined
}

export const key = (workspace: string, resource: string): string => `${resource}\u0000${workspace}`

/** A time as the dialect stores it (timestamptz, or ISO-8601 text with milliseconds, whose text order is time order). */
const time = (sql: SqlClient.SqlClient, at: DateTime.Utc) =>
  sql.onDialectOrElse({
    pg: () => new Date(DateTime.toEpochMillis(at)),
    orElse: () => DateTime.formatIso(at)
  })

/** SQLite's statements take a bounded number of parameters. */
const chunk = 500

interface Row {
  readonly workspace: string
  readonly resource: Resource.Resource
  readonly complete_at: Date | string | null
  readonly failed: number | string
  readonly abandoned: number | string
  readonly failing_since: Date | string | null
  readonly last_failed: number | string | null
}

/**
 * Per workspace and resource among the ended runs `which` selects: the last complete run's end, and the failed or
 * abandoned runs after it. Interrupted runs say nothing of a workspace's health (its next run syncs it) and only make
 * the pair appear. One statement for both reads, the window's and the history's.
 */
const pairs = (sql: SqlClient.SqlClient, resources: ReadonlyArray<Resource.Resource>, which: Fragment) =>
  Effect.map(
    sql<Row>`WITH w AS (SELECT id, workspace, resource, status, finished_at FROM ${sql(Sync.runsTable)}
        WHERE ${which} AND status <> 'running' AND resource IN ${sql.in(resources)}),
      c AS (SELECT workspace, resource, max(CASE WHEN status = 'complete' THEN finished_at END) AS complete_at
        FROM w GROUP BY workspace, resource)
      SELECT c.workspace, c.resource, c.complete_at, count(w.id) AS failed,
        count(CASE WHEN w.status = 'abandoned' THEN 1 END) AS abandoned, min(w.finished_at) AS failing_since,
        max(w.id) AS last_failed
      FROM c LEFT JOIN w ON w.workspace = c.workspace AND w.resource = c.resource
        AND w.status IN ('failed', 'abandoned') AND (c.complete_at IS NULL OR w.finished_at > c.complete_at)
      GROUP BY c.workspace, c.resource, c.complete_at`,
    (rows) =>
      rows.map((row): PairState => ({
        workspace: row.workspace,
        resource: row.resource,
        completeAt: row.complete_at === null ? undefined : DateTime.unsafeMake(row.complete_at),
        failed: Number(row.failed),
        abandoned: Number(row.abandoned),
        failingSince: row.failing_since === null ? undefined : DateTime.unsafeMake(row.failing_since),
        lastFailed: row.last_failed === null ? undefined : Number(row.last_failed)
      }))
  )

/** The pairs with a run ended since `since`: every pair a fleet syncs on schedule, read from the `finished_at` index. */
export const window = (sql: SqlClient.SqlClient, resources: ReadonlyArray<Resource.Resource>, since: DateTime.Utc) =>
  pairs(sql, resources, sql`finished_at >= ${time(sql, since)}`)

/**
 * The whole history of `workspaces`, read from the `(workspace, status)` index: for the few a window left unresolved
 * (no complete run in it), whose last complete run, or failures, lie before it.
 */
export const history = (sql: SqlClient.SqlClient, resources: ReadonlyArray<Resource.Resource>, workspaces: ReadonlyArray<string>) =>
  Effect.map(
    Effect.forEach(Arr.chunksOf(workspaces, chunk), (names) => pairs(sql, resources, sql`workspace IN ${sql.in(names)}`)),
    Arr.flatten
  )

/** The first line of each run's error, by id. */
export const errors = (sql: SqlClient.SqlClient, ids: ReadonlyArray<number>) =>
  Effect.map(
    Effect.forEach(Arr.chunksOf(ids, chunk), (some) =>
      sql<{ readonly id: number | string; readonly error: string | null }>`SELECT id, error FROM ${sql(Sync.runsTable)}
        WHERE id IN ${sql.in(some)}`),
    (rows) => new Map(rows.flat().map((row) => [Number(row.id), row.error?.split("\n", 1)[0]]))
  )

/**
 * The distinct workspaces of a table whose index starts with `workspace`, one index probe each (a skip scan, which
 * neither PostgreSQL nor SQLite makes of `SELECT DISTINCT` by itself: they read the whole table or index).
 */
export const workspacesOf = (sql: SqlClient.SqlClient, table: string): Effect.Effect<ReadonlyArray<string>, SqlError> =>
  Effect.map(
    // From '', below every name (a workspace's name is never empty), each step a seek past the one before.
    sql<{ readonly workspace: string }>`WITH RECURSIVE w (workspace) AS (
        SELECT CAST('' AS TEXT)
        UNION ALL
        SELECT (SELECT t.workspace FROM ${sql(table)} AS t WHERE t.workspace > w.workspace ORDER BY t.workspace LIMIT 1)
        FROM w WHERE w.workspace IS NOT NULL
      ) SELECT workspace FROM w WHERE workspace IS NOT NULL AND workspace <> ''`,
    (rows) => rows.map((row) => row.workspace)
  )

/** The table of each resource's records (its view joins it with when each was last seen). */
export const recordsTable = (resource: Resource.Resource): string => `${Sync.tables[resource]}_records`
