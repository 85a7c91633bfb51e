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
 * latest of them that completed, that did not complete. The ids are compared as `+id`, never through the primary key:
 * the latest complete run is not known when the statement is planned (nearly always none, so 0), and PostgreSQL read
 * the key's whole range below the run to intersect it with the workspace's rows, every run of the table (a fleet of
 * 2,000 workspaces, 6,000 runs a sync, read ~1,000 index entries an answer at 12,000 runs, growing as runs are kept:
 * packages/bench/NOTES.md, "The fleet at 2,000 workspaces, after a day of changes to its failure paths"). The
 * workspace's own rows, by its index, are few.
 */
export const statement = (sql: SqlClient.SqlClient, answering: Answering, run: string) => {
  const runs = sql(Sync.runsTable)
  const same = sql`workspace = ${answering.workspace} AND resource = ${answering.resource} AND label = ${run}
    AND +id < ${answering.runId}`
  return sql<{ readonly cut: number }>`SELECT CAST(count(*) AS INTEGER) AS cut FROM ${runs} WHERE ${same}
    AND status <> 'complete' AND +id > COALESCE((SELECT max(id) FROM ${runs} WHERE ${same} AND status = 'complete'), 0)`
}
