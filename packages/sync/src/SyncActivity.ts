/**
 * What the sync runs of a database have been doing, read from `intercom_sync_runs`: the runs under way, the runs that
 * ended since a time (by status, with the rows they changed) and the latest of those that failed or were abandoned (not
 * those interrupted, which a deploy or a scale-up leaves and which are counted apart). What
 * `intercom-scroll fleet status` prints of a fleet's syncs.
 *
 * @example
 * import { SyncActivity } from "@intercom-scroll/sync"
 * import { DateTime, Effect } from "effect"
 *
 * const lastDay = Effect.gen(function*() {
 *   const since = DateTime.subtract(yield* DateTime.now, { hours: 24 })
 *   const activity = yield* SyncActivity.read({ since })
 *   yield* Effect.log(`${activity.ended.complete} complete, ${activity.ended.failed} failed, ${activity.running.length} running`)
 * })
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import type { Resource } from "@intercom-scroll/core"
import { Array as Arr, Clock, DateTime, Effect, Option } from "effect"
import * as Dialect from "./internal/dialect.js"
import { advisoryNamespace, workspaceKey } from "./internal/lock/keys.js"
import * as Store from "./internal/store.js"
import type { UnsupportedDialect } from "./SyncError.js"

/**
 * A run as its row has it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Run {
  readonly id: number
  readonly workspace: string
  readonly resource: Resource.Resource
  readonly startedAt: DateTime.Utc
  /** The name its caller gave it (a fleet's `--run`), if any. */
  readonly label: string | undefined
  /** The process that ran it, as its caller named it (a fleet's runner `HOST:PORT`), if any. */
  readonly runner: string | undefined
  /**
   * Records it has written (inserted, updated and unchanged): so far for a run under way, which writes them on its row
   * every 5 seconds; all of them for a run that ended.
   */
  readonly seen: number
}

/**
 * A run under way, with how long it has been silent: a run renews its `alive_at` every 10 seconds whatever it does,
 * so one silent for much longer was left `running` by a process that died, until the next run of its workspace marks
 * it `abandoned`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Running extends Run {
  /** Its last sign of life (`alive_at`; its start, for a run of a version before it). */
  readonly aliveAt: DateTime.Utc
  /** Seconds since `aliveAt`, when it was read. */
  readonly silentFor: number
}

/**
 * A run that ended without completing: `failed` (its error recorded) or `abandoned` (left `running` by a process that
 * died, and so marked by the next run of its workspace and resource). An `interrupted` run is not one of them: it is
 * counted in `ended`, not listed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Failure extends Run {
  readonly status: "failed" | "abandoned"
  readonly finishedAt: DateTime.Utc
  readonly error: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Activity {
  readonly since: DateTime.Utc
  /**
   * Runs under way, the oldest first. A row whose process died stays here until the next run of its workspace: it is
   * the one whose `silentFor` grows past a few of the 10 seconds a run renews its sign of life at. The runs under way,
   * `ended`, `rows` and `failures` are read in one snapshot of the runs, so a run is in one of them: one that ends as
   * they are read is here, and not yet in `ended`.
   */
  readonly running: ReadonlyArray<Running>
  /**
   * PostgreSQL: runs recorded `running` whose workspace's lock no session holds, the oldest first. A run holds its
   * workspace's lock from before its row is written to after its end is, and writes records only while it holds it:
   * these are cut off, their process dead or its sessions gone with its database (an outage, a partition), and write
   * no record more. Not under way, whatever their last sign of life: a process still alive that finds its lock lost
   * records its own end (`failed`) on another connection, if it can; else the next run of the workspace marks them
   * `abandoned`. Always empty on SQLite, whose lease outlives its holder by up to 30 s: there such a run stays in
   * `running`, silent.
   */
  readonly lockFree: ReadonlyArray<Running>
  /**
   * Runs that ended since `since`, by status. `interrupted` ones were stopped from outside and by nothing else (a
   * fleet's workspace moving to another runner, a runner stopping, a Ctrl-C): not failures; their workspace's next run
   * syncs it.
   */
  readonly ended: { readonly complete: number; readonly failed: number; readonly interrupted: number; readonly abandoned: number }
  /** What the runs that ended since `since` did to the rows (a failed or interrupted run's pages count, as written). */
  readonly rows: { readonly inserted: number; readonly updated: number; readonly unchanged: number; readonly deleted: number }
  /** The latest failed or abandoned runs since `since`, the latest first, at most `failures` of them. */
  readonly failures: ReadonlyArray<Failure>
}

interface RunRow {
  readonly id: number | string
  readonly workspace: string
  readonly resource: Resource.Resource
  readonly started_at: Date | string
  readonly label: string | null
  readonly runner: string | null
  readonly inserted: number | string | null
  readonly updated: number | string | null
  readonly unchanged: number | string | null
}

/** A count or a sum as the driver gives it (PostgreSQL's bigint as text, none as null). */
const count = (value: number | string | null | undefined) => Number(value ?? 0)

const seen = (row: Pick<RunRow, "inserted" | "updated" | "unchanged">) =>
  count(row.inserted) + count(row.updated) + count(row.unchanged)

const run = (row: RunRow): Run => ({
  id: Number(row.id),
  workspace: row.workspace,
  resource: row.resource,
  startedAt: DateTime.unsafeMake(row.started_at),
  label: row.label ?? undefined,
  runner: row.runner ?? undefined,
  seen: seen(row)
})

/** The columns of the runs table as the database has it, which the tables of a version before this one lack some of. */
const runColumns = (sql: SqlClient.SqlClient, dialect: Dialect.Dialect) =>
  Effect.map(
    dialect === "pg"
      ? sql<{ readonly name: string }>`SELECT column_name AS name FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = ${Store.runsTable}`
      : sql<{ readonly name: string }>`SELECT name FROM pragma_table_info(${Store.runsTable})`,
    (rows) => new Set(rows.map((row) => row.name))
  )

/**
 * PostgreSQL: the keys of the workspaces' locks that some session holds now (`pg_locks`, which every role may read: the
 * advisory locks of the current database in their two-key form, the key's second half as an unsigned `objid`).
 */
const heldLocks = (sql: SqlClient.SqlClient, dialect: Dialect.Dialect): Effect.Effect<ReadonlySet<number>, SqlError> =>
  dialect !== "pg"
    ? Effect.succeed(new Set())
    : Effect.map(
      sql<{ readonly key: string }>`SELECT objid::text AS key FROM pg_locks WHERE locktype = 'advisory' AND granted
        AND objsubid = 2 AND classid = ${advisoryNamespace}
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      (rows) => new Set(rows.map((row) => Number(row.key)))
    )

/**
 * `effect`'s statements in one snapshot of the database: a transaction, on PostgreSQL `REPEATABLE READ` (its default,
 * `READ COMMITTED`, takes a snapshot a statement), on SQLite as it is (a read transaction keeps the snapshot of its
 * first read). Inside a caller's transaction, that transaction's rules.
 */
const inOneSnapshot = <A, E, R>(sql: SqlClient.SqlClient, dialect: Dialect.Dialect, effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (outer) =>
    Option.isSome(outer) ? effect : sql.withTransaction(
      dialect === "pg" ? Effect.zipRight(sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`, effect) : effect
    ))

/** Whether no session held the workspace's lock at the look. A hash shared with a workspace whose lock is held reads as held. */
const freeIn = (held: ReadonlySet<number>) => (workspace: string): boolean => !held.has(workspaceKey(workspace)[1] >>> 0)

/**
 * No activity at all since `since`: what a database no sync has run on has.
 *
 * @since 0.1.0
 * @category constructors
 */
export const none = (since: DateTime.Utc): Activity => ({
  since,
  running: [],
  lockFree: [],
  ended: { complete: 0, failed: 0, interrupted: 0, abandoned: 0 },
  rows: { inserted: 0, updated: 0, unchanged: 0, deleted: 0 },
  failures: []
})

/**
 * Reads the activity of the sync runs since `since`, with at most `failures` (default 10; `Infinity` for all) of the
 * latest failures.
 * Nothing is written: a database no sync has migrated yet fails with the driver's `SqlError` (no such table).
 *
 * @since 0.1.0
 * @category reading
 */
export const read: (
  options: { readonly since: DateTime.Utc; readonly failures?: number | undefined }
) => Effect.Effect<Activity, SqlError | UnsupportedDialect, SqlClient.SqlClient> = Effect.fn("SyncActivity.read")(
  function*(options: { readonly since: DateTime.Utc; readonly failures?: number | undefined }) {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const dialect = yield* Dialect.of(sql)
    const runs = sql(Store.runsTable)
    const since = Dialect.time(dialect, DateTime.toEpochMillis(options.since))
    const requested = options.failures ?? 10
    // A number of a program, not data: NaN is a defect that names it, as an option out of range is elsewhere, rather
    // than the statement's `SqlError`. Infinity is every failure.
    if (Number.isNaN(requested)) return yield* Effect.dieMessage("SyncActivity.read: failures must be a number, got NaN")
    const limit = Math.max(0, Math.floor(Math.min(requested, Number.MAX_SAFE_INTEGER)))
    // A column a later migration added is read as null where the tables are older: a reader of this version (an
    // operator's `fleet status`) may look at a database the processes of the version before still write, which it must
    // not migrate.
    const present = yield* runColumns(sql, dialect)
    const [label, runner, aliveAt] = ["label", "runner", "alive_at"].map((column) =>
      present.has(column) ? column : `NULL AS ${column}`
    )
    const columns = sql.literal(`id, workspace, resource, started_at, ${label}, ${runner}, inserted, updated, unchanged`)
    // The runs under way, those ended and the failures, read in one snapshot of the table: read one after another, a
    // run that ended in between was listed under way and counted ended in one report.
    const { ended, failures, rows } = yield* inOneSnapshot(sql, dialect, Effect.all({
      rows: sql<RunRow & { readonly alive_at: Date | string | null }>`SELECT ${columns}, ${sql.literal(aliveAt)}
        FROM ${runs} WHERE status = 'running' ORDER BY started_at, id`,
      ended: sql<{
        readonly status: "complete" | "failed" | "interrupted" | "abandoned"
        readonly runs: number | string
        readonly inserted: number | string | null
        readonly updated: number | string | null
        readonly unchanged: number | string | null
        readonly deleted: number | string | null
      }>`SELECT status, count(*) AS runs, sum(inserted) AS inserted, sum(updated) AS updated,
          sum(unchanged) AS unchanged, sum(deleted) AS deleted
        FROM ${runs} WHERE status <> 'running' AND finished_at >= ${since} GROUP BY status`,
      failures: limit === 0 ? Effect.succeed([]) : sql<RunRow & {
        readonly status: "failed" | "abandoned"
        readonly finished_at: Date | string
        readonly error: string | null
      }>`SELECT ${columns}, status, finished_at, error FROM ${runs}
        WHERE status IN ('failed', 'abandoned') AND finished_at >= ${since} ORDER BY finished_at DESC, id DESC LIMIT ${limit}`
    }))
    const now = yield* Clock.currentTimeMillis
    // PostgreSQL: the locks held, looked at after the snapshot; then the rows whose lock was free, read again, outside
    // it. A run takes its lock before its row is inserted and lets it go after its end has committed: the lock of a row
    // read `running` was taken before the snapshot, and if free at the look since, was let go (the run ended after the
    // snapshot: it stays under way, as the snapshot has it, and uncounted among the ended) or lost with its session (cut
    // off: its row still `running` when read again). pg_locks is not MVCC: it is read as it is, whenever it is read.
    const unlocked = dialect === "pg" && rows.length > 0 ? freeIn(yield* heldLocks(sql, dialect)) : () => false
    // All the runs `running`, by their index as before, not those ids: an outage cuts every run under way at once, and
    // a statement takes at most 65,535 parameters.
    const stillRunning = !rows.some((row) => unlocked(row.workspace)) ? new Set<number>() : new Set(
      (yield* sql<Pick<RunRow, "id">>`SELECT id FROM ${runs} WHERE status = 'running'`).map((row) => Number(row.id))
    )
    const cutOff = (row: RunRow) => unlocked(row.workspace) && stillRunning.has(Number(row.id))
    const withSilence = (row: RunRow & { readonly alive_at: Date | string | null }): Running => {
      const aliveAt = DateTime.unsafeMake(row.alive_at ?? row.started_at)
      return { ...run(row), aliveAt, silentFor: Math.max(0, Math.floor((now - DateTime.toEpochMillis(aliveAt)) / 1000)) }
    }
    const byStatus = (status: string) => ended.find((row) => row.status === status)
    const total = (column: "inserted" | "updated" | "unchanged" | "deleted") =>
      ended.reduce((sum, row) => sum + count(row[column]), 0)
    return {
      since: options.since,
      running: rows.filter((row) => !cutOff(row)).map(withSilence),
      lockFree: rows.filter(cutOff).map(withSilence),
      ended: {
        complete: count(byStatus("complete")?.runs),
        failed: count(byStatus("failed")?.runs),
        interrupted: count(byStatus("interrupted")?.runs),
        abandoned: count(byStatus("abandoned")?.runs)
      },
      rows: { inserted: total("inserted"), updated: total("updated"), unchanged: total("unchanged"), deleted: total("deleted") },
      failures: failures.map((row) => ({
        ...run(row),
        status: row.status,
        finishedAt: DateTime.unsafeMake(row.finished_at),
        error: row.error ?? undefined
      }))
    } satisfies Activity
  }
)

/**
 * The workspaces with a run named `label` under way, each with the records its runs of that name have written so far
 * (the latest run of each resource, as of its last progress: a run writes it every 5 seconds). What a fleet's sender
 * shows of its syncs while they run; a workspace between two resources is briefly not under way.
 *
 * @since 0.1.0
 * @category reading
 */
export const underWay: (
  label: string
) => Effect.Effect<ReadonlyMap<string, number>, SqlError, SqlClient.SqlClient> = Effect.fn("SyncActivity.underWay")(
  function*(label: string) {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const runs = sql(Store.runsTable)
    // Two statements, neither a join, so that no plan reads an index again for each row of another, whatever the
    // statistics (one joined the index of names to the runs under way: ~1,000 entries a row while a sync ran). First the
    // workspaces with a run of the name under way, by the partial index of those running alone (`MATERIALIZED`, the name
    // compared outside: the statistics, taken before the sync began, take its name for rare, and would read every run of
    // it for the few under way). Then the name's runs of those workspaces, named in the statement: by the index of names or the
    // `(workspace, status)` one, or both, each read once, as the statistics find cheaper; not every run kept of those
    // workspaces, ~10 ms a look at 90 days of four syncs a day (packages/bench/NOTES.md, "A runner's CPU between 7dd72d1
    // and HEAD, counted", and "fleet sync's look by name, read once").
    const workspaces = yield* sql<{ readonly workspace: string }>`WITH running AS MATERIALIZED (
        SELECT workspace, label FROM ${runs} WHERE status = 'running'
      )
      SELECT DISTINCT workspace FROM running WHERE label = ${label}`
    // At most 500 names a statement: SQLite's statements take a bounded number of parameters, and an outage leaves every
    // run it cut off `running`.
    const rows = Arr.flatten(
      yield* Effect.forEach(Arr.chunksOf(workspaces.map((row) => row.workspace), 500), (some) =>
        sql<Pick<RunRow, "id" | "workspace" | "resource" | "inserted" | "updated" | "unchanged">>`SELECT id, workspace,
          resource, inserted, updated, unchanged FROM ${runs} WHERE label = ${label} AND workspace IN ${sql.in(some)}
          ORDER BY id`)
    )
    // A resource's latest run, of those a retried sync left (the runner that ran it died): later rows replace it.
    const latest = new Map<string, Map<string, number>>()
    for (const row of rows) {
      const resources = latest.get(row.workspace) ?? new Map<string, number>()
      latest.set(row.workspace, resources.set(row.resource, seen(row)))
    }
    return new Map([...latest].map(([workspace, resources]) => [workspace, [...resources.values()].reduce((a, b) => a + b, 0)]))
  }
)
