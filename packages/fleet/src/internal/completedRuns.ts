/**
 * The resources a `Sync` request completed before it ran again (its workspace moved, its runner stopped or died), each
 * as the summary of its run: read as the request runs, so that it answers those with their runs instead of scrolling
 * them again from the first page.
 *
 * @internal
 */
import type { SqlClient } from "@effect/sql"
import type { Resource } from "@intercom-scroll/core"
import { Sync } from "@intercom-scroll/sync"
import { Duration, Effect } from "effect"
import type { Summary } from "../Summary.js"

/** A request as it runs: its workspace, its name (its runs' label) and when it was sent. */
export interface Request {
  readonly workspace: string
  readonly run: string
  /**
   * When it was sent, in milliseconds since the epoch: its id's time (a Snowflake's), on the database's clock as the
   * runs' `started_at` is (the fleet's processes tell time by it; a SQLite fleet is one machine's).
   */
  readonly sentAt: number
}

interface Row {
  readonly id: number | string
  readonly resource: Resource.Resource
  readonly started: Date | string
  readonly finished: Date | string | null
  readonly inserted: number | string | null
  readonly updated: number | string | null
  readonly unchanged: number | string | null
  readonly deleted: number | string | null
  readonly restarts: number | string | null
}

/**
 * The complete runs named `request.run` (their label) of its workspace that began once it was sent, oldest first: those
 * of this request, not of an earlier one of the same name (sent, answered and pruned before this one was sent, its runs
 * kept), whose runs all began before. Taken first (`MATERIALIZED`) by the one condition on the table, the workspace's
 * complete runs, which its `(workspace, status)` index serves: with the name or the time among the table's conditions,
 * PostgreSQL took the index of names (every run of a sync, whose name its statistics have not seen) or of ends for rare
 * (packages/bench/NOTES.md, "cutBefore off the index of names").
 */
export const statement = (sql: SqlClient.SqlClient, request: Request) => {
  const sentAt = sql.onDialectOrElse({
    pg: () => new Date(request.sentAt),
    // ISO-8601 text with milliseconds, as the sync writes it: its text order is time order.
    orElse: () => new Date(request.sentAt).toISOString()
  })
  return sql<Row>`WITH complete_runs AS MATERIALIZED (
      SELECT id, resource, label, started_at, finished_at, inserted, updated, unchanged, deleted, restarts
      FROM ${sql(Sync.runsTable)} WHERE workspace = ${request.workspace} AND status = 'complete'
    )
    SELECT id, resource, started_at AS started, finished_at AS finished, inserted, updated, unchanged, deleted, restarts
    FROM complete_runs WHERE label = ${request.run} AND started_at >= ${sentAt} ORDER BY id`
}

const millis = (time: Date | string): number => new Date(time).getTime()

/**
 * Each resource's latest run of `statement`, as its summary. Every field is its row's but two: `duration` is the span
 * the row records (`finished_at − started_at`), short of the one first answered by the run's last COMMIT, which came
 * after its end was written (milliseconds); and `app`, which the row does not keep, is absent, as from a runner that did
 * not say (the run checked its token, or went unchecked: nothing tells which). The caller adds `cutBefore`.
 */
export const read = (sql: SqlClient.SqlClient, request: Request) =>
  Effect.map(statement(sql, request), (rows): ReadonlyMap<Resource.Resource, Summary> => {
    const completed = new Map<Resource.Resource, Summary>()
    for (const row of rows) {
      const finished = row.finished === null ? millis(row.started) : millis(row.finished)
      completed.set(row.resource, {
        runId: Number(row.id),
        workspace: request.workspace,
        resource: row.resource,
        inserted: Number(row.inserted ?? 0),
        updated: Number(row.updated ?? 0),
        unchanged: Number(row.unchanged ?? 0),
        deleted: Number(row.deleted ?? 0),
        restarts: Number(row.restarts ?? 0),
        duration: Duration.millis(Math.max(0, finished - millis(row.started)))
      })
    }
    return completed
  })
