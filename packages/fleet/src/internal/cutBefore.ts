/**
 * How many runs of a request were cut before the one that answers it (`Summary.cutBefore`): counted by the runner as it
 * answers, once for each resource of each workspace's sync.
 *
 * @internal
 */
import type { SqlClient } from "@effect/sql"
import { Sync } from "@intercom-scroll/sync"

/** The run that answers: its workspace, its resource and its row's id. */
export interface Answering {
  readonly workspace: string
  readonly resource: string
  readonly runId: number
}

/**
 * The count of the runs named `run` (their label) of `answering`'s workspace and resource, before its run and after the
 * latest of them that completed, that did not complete. Counted among the workspace's rows of the resource, a few a
 * sync kept, taken first (`MATERIALIZED`) by the one condition on the table, the workspace's, which only its
 * `(workspace, status)` index serves: with the name or the id among the table's conditions, PostgreSQL read the index
 * of either whole within the range. The id's: its whole range below the run, as the latest complete run is not known
 * when the statement is planned (~1,000 entries an answer at 12,000 runs, growing as runs are kept). The name's: every
 * run of the sync (6,000 entries an answer of a sync of 2,000 workspaces), whose name the statistics, taken before the
 * sync began, have not seen and take for rare (packages/bench/NOTES.md, "The fleet at 2,000 workspaces, after a day of
 * changes to its failure paths", and the section after it).
 */
export const statement = (sql: SqlClient.SqlClient, answering: Answering, run: string) => {
  const same = sql`label = ${run} AND id < ${answering.runId}`
  return sql<{ readonly cut: number }>`WITH resource_runs AS MATERIALIZED (
      SELECT id, label, status FROM ${sql(Sync.runsTable)}
      WHERE workspace = ${answering.workspace} AND resource = ${answering.resource}
    )
    SELECT CAST(count(*) AS INTEGER) AS cut FROM resource_runs WHERE ${same} AND status <> 'complete'
      AND id > COALESCE((SELECT max(id) FROM resource_runs WHERE ${same} AND status = 'complete'), 0)`
}
