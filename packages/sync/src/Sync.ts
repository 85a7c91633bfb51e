/**
 * Keeps a SQL table of a workspace's users, leads or companies in step with Intercom: every record upserted whole,
 * each page in one transaction, and a record marked deleted once a scroll that reached its end did not see it.
 *
 * Intercom's scroll has no "changed since": each run walks every record, and that full scroll is what lets a run
 * notice deletions. Two runs of one workspace never scroll at the same time, in one process or across processes: a
 * lock in the database (an advisory lock in PostgreSQL, a lease in SQLite) makes the second wait.
 *
 * @example
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { IntercomClient } from "@intercom-scroll/core"
 * import { Sync } from "@intercom-scroll/sync"
 * import { Console, Effect, Layer } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const summary = yield* Sync.run("users", { workspace: "acme", lockTimeout: "10 minutes" })
 *   yield* Console.log(
 *     `${summary.inserted} new, ${summary.updated} changed, ${summary.unchanged} unchanged, ${summary.deleted} deleted`
 *   )
 * })
 *
 * program.pipe(
 *   Effect.provide(Layer.mergeAll(
 *     IntercomClient.layerConfig().pipe(Layer.provide(NodeHttpClient.layerUndici)),
 *     SqliteClient.layer({ filename: "intercom.sqlite" })
 *   ))
 * )
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import type { MigrationError } from "@effect/sql/Migrator"
import type { SqlError } from "@effect/sql/SqlError"
import { type IntercomClient, Progress, type Resource, Scroll, ScrollError } from "@intercom-scroll/core"
import { Cause, Chunk, Clock, DateTime, Duration, Effect, Either, Exit, Metric, Option, Schema, Sink, Stream, Struct } from "effect"
import * as ChunkSize from "./internal/chunkSize.js"
import * as Dialect from "./internal/dialect.js"
import * as Lock from "./internal/lock.js"
import * as Migrations from "./internal/migrations.js"
import * as Store from "./internal/store.js"
import { maxTimerMillis } from "./internal/timer.js"
import * as WorkspaceApp from "./internal/workspaceApp.js"
import {
  explain,
  InvalidOptions,
  LockLost,
  type SchemaTooNew,
  type SessionPooled,
  type SyncError,
  type TableLocked,
  TablesAltered,
  type UnsupportedDialect
} from "./SyncError.js"
import * as SyncMetrics from "./SyncMetrics.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends Omit<Scroll.Options, "customAttributes"> {
  /**
   * A name for the Intercom workspace, yours to choose: rows and runs are kept per workspace, so one database can hold
   * several. Default `"default"`. 1 to 200 characters, without control characters, unpaired surrogates or spaces at either end
   * (`WorkspaceName`).
   */
  readonly workspace?: string | undefined
  /**
   * How long to wait while another sync of the workspace runs before failing with `LockTimeout`. Default: as long as
   * it takes, as `Duration.infinity` says too. Zero waits not at all: one try, and `LockTimeout` at once if another sync
   * holds the lock. At most 2³¹−1 ms (about 24.8 days), as the run's other timeouts.
   */
  readonly lockTimeout?: Duration.DurationInput | undefined
  /**
   * PostgreSQL: how long one statement of the run waits for a lock another session holds on the sync's tables (an
   * operator's `LOCK TABLE` or transaction left open, a long `ALTER TABLE`, a `SELECT … FOR UPDATE` of its rows) before
   * it fails the run with `TableLocked`, which names that session. The `lock_timeout` of the run's transactions, and
   * of its migrations when the tables are older than this version (it replaces one set on the role there); a long pass
   * that waits for no one is not bounded by it. Default 1 minute;
   * `Duration.infinity` waits as long as it takes. Not the wait for another sync of the workspace (`lockTimeout`).
   */
  readonly tableLockTimeout?: Duration.DurationInput | undefined
  /**
   * PostgreSQL: how long the server may answer nothing at all (its host gone from the network, an address that drops
   * everything: new connections time out connecting, statements on the pool's go unanswered) while a statement of the
   * run waits for its answer, before the run fails with `LockLost`. Any answer (a refusal, an error, a session busy on
   * a long statement) starts the count again. Default 2 minutes: longer than a network blip TCP rides out and a managed
   * database's failover. Above zero and at most 2³¹−1 ms (about 24.8 days).
   */
  readonly unansweredTimeout?: Duration.DurationInput | undefined
  /**
   * A name of yours for the run, kept in `intercom_sync_runs.label`: the fleet keeps its run's name there
   * (`<name>@<tick>` for a `SyncCron` round), so that the rows of one round can be told apart with SQL. Default none.
   */
  readonly label?: string | undefined
  /**
   * The process that runs it, as you name it, kept in `intercom_sync_runs.runner`: a fleet's runner keeps its
   * `HOST:PORT` there, so that the run can be traced to the runner's log. Default none.
   */
  readonly runner?: string | undefined
  /**
   * At most how many pages one transaction writes. 1, the default, writes each page in a transaction of its own, as it
   * comes. Above 1, the pages that came in while a transaction ran are written together in the next one, up to this
   * many: it pays where the database is the slower side, as a first sync to a PostgreSQL 30 ms away or more, by sharing
   * a transaction's fixed round trips (its `BEGIN` and `COMMIT`); where Intercom is the slower side each transaction
   * still holds one page. The pages waiting their turn, up to this many, are held in memory beside `prefetch`'s, and a
   * transaction that fails writes none of its pages (the run fails, as for any failed write, and marks nothing deleted).
   */
  readonly pagesPerTransaction?: number | undefined
  /**
   * Not taken: the copy keeps each record as Intercom sent it. Decode custom attributes as you read the table. (An
   * options object made for a `Scroll` may carry a schema; this refuses it, and `run` ignores one that slips through.)
   */
  readonly customAttributes?: undefined
}

/**
 * What a run did.
 *
 * @since 0.1.0
 * @category models
 */
export interface Summary {
  /** The run's row in `intercom_sync_runs`. */
  readonly runId: number
  readonly workspace: string
  readonly resource: Resource.Resource
  /** Records stored for the first time. */
  readonly inserted: number
  /** Records whose stored version differed, or that had been marked deleted and are back. */
  readonly updated: number
  /** Records stored as they were (their `last_seen_at` still moves; in SQLite at the run's end). */
  readonly unchanged: number
  /** Rows marked deleted: the scroll reached its end without them. */
  readonly deleted: number
  /** Times the scroll started over from the first page. */
  readonly restarts: number
  /** From the run's start (once the lock was held) to its end, on the Effect `Clock`. */
  readonly duration: Duration.Duration
  /**
   * The Intercom app (workspace) the token belongs to, its `id_code`, which the run checked the workspace's rows
   * against; null when Intercom did not say (a token that may not read admins, no answer to `GET /me`, a client
   * without `identify`), and the run went unchecked.
   */
  readonly app: string | null
}

/**
 * What to query for each resource's records: a view with one row per record (the sync keeps the records and when it
 * last saw each in two tables of its own, so that a run writes only a narrow row for a record that did not change).
 *
 * @since 0.1.0
 * @category constants
 */
export const tables: { readonly [R in Resource.Resource]: string } = Store.recordTables

/**
 * The table with one row per run.
 *
 * @since 0.1.0
 * @category constants
 */
export const runsTable: string = Store.runsTable

/**
 * The table with one row per workspace name: the Intercom app (workspace) whose records its rows hold.
 *
 * @since 0.1.0
 * @category constants
 */
export const workspacesTable: string = Store.workspacesTable

/**
 * Where the sync's migrations are recorded (not the Migrator's default `effect_sql_migrations`, which belongs to the
 * application).
 *
 * @since 0.1.0
 * @category constants
 */
export const migrationsTable: string = Migrations.migrationsTable

/** A statement blocked longer by another session's lock is stuck, not slow: a page's transaction takes milliseconds. */
const defaultTableLockTimeout = Duration.minutes(1)

/**
 * Creates or upgrades the sync's tables. `run` calls it first, so calling it yourself is needed only to create the
 * tables ahead of a first run. A database migrated by a newer version of this package fails with `SchemaTooNew` and
 * is left untouched. Safe to run from several processes at once. PostgreSQL: a migration blocked by another session's
 * lock on the tables for a minute (`tableLockTimeout`'s default) fails with `TableLocked`, naming that session, and
 * migrates nothing.
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrate: Effect.Effect<
  void,
  SchemaTooNew | TableLocked | UnsupportedDialect | MigrationError | SqlError,
  SqlClient.SqlClient
> = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  yield* Migrations.migrate(sql, yield* Dialect.of(sql), {
    lockTimeoutMillis: Duration.toMillis(defaultTableLockTimeout),
    workspace: undefined
  })
}).pipe(Effect.withSpan("Sync.migrate"))

/**
 * The migrations of this version that the tables lack (their ids, in order): empty when the tables are at this version,
 * or at a newer one (which `migrate` refuses with `SchemaTooNew`); every one when there are none yet. Writes nothing
 * and takes no lock. A process that shares the database with processes of an older version (a fleet's runners) asks it
 * before `migrate`: those processes refuse tables a newer version migrated (`SchemaTooNew`), so migrating them beneath
 * processes still running stops every sync they run.
 *
 * @since 0.1.0
 * @category migrations
 */
export const pendingMigrations: Effect.Effect<
  ReadonlyArray<number>,
  UnsupportedDialect | SqlError,
  SqlClient.SqlClient
> = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  return yield* Migrations.pending(sql, yield* Dialect.of(sql))
}).pipe(Effect.withSpan("Sync.pendingMigrations"))

/**
 * Fails with `SessionPooled` when the `SqlClient`'s PostgreSQL connections do not have sessions of their own: a pooler
 * in transaction or statement mode (PgBouncer's `pool_mode = transaction`) between them and the server, through which
 * the workspace lock cannot hold. Call it once at a process's start, before the first `run`, to refuse such a pooler
 * before anything is locked or written (`run` itself refuses one once it meets its symptoms, which a quiet pooler may
 * hide for a while). It holds two connections of the pool for a moment. Nothing to check in SQLite.
 *
 * @since 0.1.0
 * @category checks
 */
export const checkSessions: Effect.Effect<
  void,
  SessionPooled | UnsupportedDialect | SqlError,
  SqlClient.SqlClient
> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  if ((yield* Dialect.of(sql)) === "pg") yield* Lock.checkSessions(sql)
}).pipe(Effect.withSpan("Sync.checkSessions"))

/**
 * Deletes the rows of `intercom_sync_runs` of runs that ended before `before` (complete, failed, interrupted or abandoned; a run
 * still `running` stays, however old), a few hundred to a transaction, so that a first prune of years does not hold
 * the database's write lock for long. No sync reads an ended run again: the rows are history, one a resource a run,
 * which a fleet of many workspaces adds to quickly (the fleet's `WorkspaceSync.prune` calls this). Returns how many
 * rows it deleted.
 *
 * @since 0.1.0
 * @category maintenance
 */
export const pruneRuns: (
  before: DateTime.Utc
) => Effect.Effect<number, SqlError | UnsupportedDialect, SqlClient.SqlClient> = Effect.fn("Sync.pruneRuns")(
  function*(before: DateTime.Utc) {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const dialect = yield* Dialect.of(sql)
    const endedBefore = Dialect.time(dialect, Math.floor(DateTime.toEpochMillis(before)))
    let pruned = 0
    let after = 0
    while (true) {
      // Read outside the transaction: in SQLite a transaction that reads and then writes fails at once when another
      // process wrote in between, where one that writes first waits its turn.
      const rows = yield* sql<{ readonly id: number; readonly status: string }>`SELECT id, status FROM ${sql(Store.runsTable)}
        WHERE status <> 'running' AND finished_at < ${endedBefore} AND id > ${after} ORDER BY id LIMIT 500`
      const batch = rows.map((row) => Number(row.id))
      if (batch.length === 0) return pruned
      // A run recorded complete folded its log before it: only the others may have left one.
      const unfinished = rows.filter((row) => row.status !== "complete").map((row) => Number(row.id))
      // SQLite: what a failed run logged of the ids it saw, which the next run of its workspace would have found and
      // discarded through this row, as it is here (the records it stored first keep a seen row), before the row goes:
      // a chunk a transaction, as that run's discard goes. In the batch's transaction, one failed run's log of hundreds
      // of thousands of ids held the file for seconds. Stopped between two chunks, the rows stay, and the next prune or
      // run discards the rest. No lock here: a plain transaction, each chunk's bound read before it (above).
      if (dialect === "sqlite" && unfinished.length > 0) {
        yield* Store.discardLeftLogs(sql, () => sql.in(unfinished), { run: sql.withTransaction, writesFirst: false })
      }
      yield* sql`DELETE FROM ${sql(Store.runsTable)} WHERE id IN ${sql.in(batch)}`
      pruned += batch.length
      after = batch[batch.length - 1]
    }
  }
)

/** How often a run writes its progress on its row: a statement every few seconds, not one a page. */
const progressInterval = 5_000

/**
 * How often a run renews `alive_at` on its row, whatever it is doing (a page, a wait for another scroll or the rate
 * limit): a `running` row whose `alive_at` is older than a few of these was left by a process that died.
 */
const aliveInterval = Duration.seconds(10)

/**
 * A page with a record whose id cannot key a row fails the run as the response it is, before its transaction: an id
 * longer than a copy keeps, or with a character PostgreSQL's text cannot hold (replaced, two ids could become one). In
 * PostgreSQL either would fail as a bare `SqlError` naming no record, every sync of the workspace; in SQLite it would be
 * stored where PostgreSQL could not take it.
 */
const unkeepableIdIn = (page: Scroll.Page<Resource.Resource>): ScrollError.InvalidResponse | undefined => {
  const unkeepable = Store.unkeepableId(page.records)
  return unkeepable === undefined ? undefined : new ScrollError.InvalidResponse({
    resource: page.resource,
    page: page.page,
    issue: `a record's id ${unkeepable.issue}: ${JSON.stringify(unkeepable.id.slice(0, 40))}${unkeepable.id.length > 40 ? "…" : ""}`
  })
}

/**
 * An `SqlError` that says a table, view, column or key of the sync's is missing, as `TablesAltered` (what to do, beside the
 * database's words); any other error as it is.
 */
const alteredTables = (workspace: string) => <E extends SyncError>(error: E): E | TablesAltered =>
  error._tag === "SqlError" ? TablesAltered.fromError(error, workspace) ?? error : error

/**
 * What the run's row says about an error: its own words, which never hold the token. What happened, without what to do
 * about it where the error says the two apart: its advice is in the terms of whoever shows it (this library's options,
 * a command line's flags), and the row is read by any of them (`fleet status`, a dashboard).
 */
const describeError = (error: { readonly _tag: string; readonly message: string; readonly cause?: unknown }): string =>
  `${error._tag}: ${"problem" in error && typeof error.problem === "string" ? error.problem : explain(error)}`

/**
 * What the run's row says about a failure; `scrolled` once the scroll reached its end, when an interruption lands in
 * the run's last transaction (at 2,000,000 users, minutes of deletions to mark), which it rolls back.
 */
const describe = (cause: Cause.Cause<SyncError>, scrolled: boolean): string => {
  if (Cause.isInterruptedOnly(cause)) {
    return scrolled
      ? "Interrupted after the scroll reached its end, as it marked the deletions"
      : "Interrupted before the scroll reached its end"
  }
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some") return describeError(failure.value)
  const defect = Cause.squash(cause)
  return `Defect: ${defect instanceof Error ? defect.message : String(defect)}`
}

/**
 * A sync refused before it began, as `recordRefused` records it: the workspace, the run's label and runner as
 * `Options` names them, and the error that refused it (its `_tag` and its words).
 *
 * @since 0.1.0
 * @category models
 */
export interface Refused {
  readonly workspace: string
  readonly label?: string | undefined
  readonly runner?: string | undefined
  readonly error: { readonly _tag: string; readonly message: string }
}

/**
 * Records a sync its caller refused before it began (a fleet's runner without the workspace's token, or that sends no
 * token to the base URL the request names): a `failed` run of `resource` that started and ended now and wrote nothing,
 * its error's words in `error`, counted `failed` in `intercom_sync_runs`. A reader of the runs (`fleet status`, an alert
 * on the counter, a dashboard) then sees the workspace fail as it sees a run that began fail; otherwise a refusal left
 * nothing. It takes no lock (it writes its own row, no other) and migrates nothing: on tables not made yet it fails with
 * the driver's `SqlError`. A workspace name `run` refuses is refused here too (`InvalidOptions`), nothing written.
 *
 * @since 0.1.0
 * @category running
 */
export const recordRefused: (
  resource: Resource.Resource,
  refused: Refused
) => Effect.Effect<void, InvalidOptions | SqlError | UnsupportedDialect, SqlClient.SqlClient> = Effect.fn("Sync.recordRefused")(function*(
  resource: Resource.Resource,
  refused: Refused
) {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const store = Store.make(sql, yield* Dialect.of(sql), yield* checkWorkspace(refused.workspace), resource)
  yield* Lock.whileBusy(store.recordRefused(yield* Clock.currentTimeMillis, { label: refused.label, runner: refused.runner }, describeError(refused.error)))
  yield* Metric.increment(SyncMetrics.runsEnded(resource, "failed"))
})

/**
 * A workspace's name, as `Options.workspace` takes it and the `workspace` column keeps it: 1 to 200 characters, without
 * control characters or spaces at either end (a name that reads the same in a log line, a query and a config file). An unpaired surrogate
 * (`"a\uD800"`) would be stored as U+FFFD, and two names would then be one.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WorkspaceName: Schema.Schema<string> = Schema.String.pipe(
  Schema.pattern(/^[^\s\p{Cc}\uD800-\uDFFF](?:[^\p{Cc}\uD800-\uDFFF]{0,198}[^\s\p{Cc}\uD800-\uDFFF])?$/u, {
    message: () => "must be 1 to 200 characters, without control characters, unpaired surrogates or spaces at either end"
  })
)

const isWorkspaceName: (name: string) => boolean = Schema.is(WorkspaceName)

/** `workspace`, refused unless it is a `WorkspaceName`: the `workspace` column holds no other. */
const checkWorkspace = (workspace: string): Effect.Effect<string, InvalidOptions> => {
  if (workspace.length === 0) return Effect.fail(new InvalidOptions({ detail: "the workspace name is empty" }))
  if (!isWorkspaceName(workspace)) {
    return Effect.fail(
      new InvalidOptions({
        detail: `the workspace name ${JSON.stringify(workspace.length > 60 ? `${workspace.slice(0, 60)}…` : workspace)} must be 1 to 200 characters, without control characters, unpaired surrogates or spaces at either end`
      })
    )
  }
  return Effect.succeed(workspace)
}

const validate = (options: Options) =>
  Effect.gen(function*() {
    const workspace = yield* checkWorkspace(options.workspace ?? "default")
    // Checked by the scroll too, as a defect, but only once the run holds the lock, has its row and has bound the name.
    if (options.prefetch !== undefined && !(Number.isInteger(options.prefetch) && options.prefetch >= 0)) {
      return yield* new InvalidOptions({ detail: `prefetch ${options.prefetch} must be a whole number of 0 or more` })
    }
    const pagesPerTransaction = options.pagesPerTransaction ?? 1
    if (!(Number.isInteger(pagesPerTransaction) && pagesPerTransaction >= 1)) {
      return yield* new InvalidOptions({ detail: `pagesPerTransaction ${pagesPerTransaction} must be a whole number of 1 or more` })
    }
    const tableLockTimeout = yield* duration("tableLockTimeout", options.tableLockTimeout ?? defaultTableLockTimeout)
    // Zero is PostgreSQL's "no limit", which Duration.infinity already says: one that gives up at once is no use either.
    if (Duration.toMillis(tableLockTimeout) === 0) {
      return yield* new InvalidOptions({ detail: "tableLockTimeout must be longer than zero (Duration.infinity for no limit)" })
    }
    // PostgreSQL takes whole milliseconds, 0 for none, and at most 2^31 − 1 of them: a longer one would be taken for
    // none, silently, where the caller asked for a limit.
    const tableLockTimeoutMillis = Duration.isFinite(tableLockTimeout) ? Math.max(1, Math.ceil(Duration.toMillis(tableLockTimeout))) : 0
    if (tableLockTimeoutMillis > maxTimerMillis) {
      return yield* new InvalidOptions({
        detail: `tableLockTimeout must be at most ${maxTimerMillis} ms (about 24.8 days), PostgreSQL's longest lock_timeout, or Duration.infinity for no limit`
      })
    }
    const unansweredTimeout = yield* checkUnansweredTimeout(options.unansweredTimeout ?? Lock.unansweredLimit)
    const lockTimeout = options.lockTimeout === undefined ? Duration.infinity : yield* duration("lockTimeout", options.lockTimeout)
    // Zero stays one try and no wait. Infinity is the default's "as long as it takes", and waits reported without an end.
    if (Duration.isFinite(lockTimeout) && Duration.toMillis(lockTimeout) > maxTimerMillis) {
      return yield* new InvalidOptions({
        detail: `lockTimeout must be at most ${maxTimerMillis} ms (about 24.8 days), or Duration.infinity to wait as long as it takes`
      })
    }
    return {
      workspace,
      pagesPerTransaction,
      tableLockTimeoutMillis,
      unansweredTimeout,
      lockTimeout: Duration.isFinite(lockTimeout) ? lockTimeout : undefined
    }
  })

/**
 * `input` as `run` takes it for `Options.unansweredTimeout`, or the `InvalidOptions` that `run` would fail with: above
 * zero, and at most 2³¹−1 ms (about 24.8 days), the longest a timer waits. For a process that takes the option once
 * (from its configuration) and runs many syncs with it: refused at its start, rather than by each run.
 *
 * @example
 * import { Sync } from "@intercom-scroll/sync"
 * import { Effect } from "effect"
 *
 * // Fails with InvalidOptions: "unansweredTimeout 0 seconds must be longer than zero and at most 2147483647 ms …"
 * const refused = Sync.checkUnansweredTimeout("0 seconds")
 * const timeout = Effect.runSync(Sync.checkUnansweredTimeout("30 seconds"))
 *
 * @since 0.1.0
 * @category checks
 */
export const checkUnansweredTimeout = (input: Duration.DurationInput): Effect.Effect<Duration.Duration, InvalidOptions> =>
  Effect.flatMap(duration("unansweredTimeout", input), (timeout) =>
    Duration.toMillis(timeout) === 0 || Duration.toMillis(timeout) > maxTimerMillis
      ? new InvalidOptions({
        detail: `unansweredTimeout ${String(input)} must be longer than zero and at most ${maxTimerMillis} ms (about 24.8 days)`
      })
      : Effect.succeed(timeout))

/** A duration option; a negative or NaN one, which decodes to zero, refused rather than taken for "give up at once". */
const duration = (name: string, input: Duration.DurationInput) => {
  const negative = (typeof input === "number" && !(input >= 0)) || (typeof input === "string" && input.trim().startsWith("-"))
  const decoded = negative ? Option.none() : Duration.decodeUnknown(input)
  return decoded._tag === "None"
    ? Effect.fail(new InvalidOptions({ detail: `${name} ${String(input)} is not a duration` }))
    : Effect.succeed(decoded.value)
}

/**
 * Syncs one resource of a workspace into its table, and returns what it did.
 *
 * In order: migrates the tables if needed; takes the workspace's lock (waiting while another sync holds it, reported
 * to `Progress` as a `workspace-lock` wait); marks `abandoned` the runs of the workspace that a dead process left
 * `running`; records the run; asks Intercom which app (workspace) the token belongs to (`IntercomClient.identify`) and
 * checks it against the app the workspace's rows hold (`WorkspaceMismatch` for another's token; `WorkspaceUnchecked`
 * where a bound workspace's token may not read admins; the README's "One workspace name, one Intercom workspace" has
 * the rest); scrolls (with `Scroll.pages` and the scroll options given, restarts included), writing each page in one
 * transaction (or with `pagesPerTransaction`, the pages that waited; and in it, every 5 seconds, the run's counts so far
 * on its row); and, only once the scroll has reached
 * its end, marks deleted the rows it did not see and records the run `complete`. A run that fails is recorded `failed`
 * with the error's message, one interrupted (and nothing else) `interrupted`; either marks nothing deleted, but in
 * SQLite one stopped in its deletion pass, which goes a chunk a transaction: the chunks it committed stay, each mark
 * true (a row its complete scroll did not see), and the next complete run marks the rest. Each transaction commits only while the run holds the lock: a run that lost it (its
 * PostgreSQL session ended, its SQLite lease was taken over) fails with `LockLost` at its next write, writing nothing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run: (
  resource: Resource.Resource,
  options?: Options
) => Effect.Effect<Summary, SyncError, IntercomClient.IntercomClient | SqlClient.SqlClient> = Effect.fn("Sync.run")(
  function*(resource: Resource.Resource, options: Options = {}) {
    const { lockTimeout, pagesPerTransaction, tableLockTimeoutMillis, unansweredTimeout, workspace } = yield* validate(options)
    yield* Effect.annotateCurrentSpan({ workspace, resource })
    const client = yield* SqlClient.SqlClient
    const sql = client.withoutTransforms()
    const dialect = yield* Dialect.of(sql)
    yield* Migrations.migrate(sql, dialect, { lockTimeoutMillis: tableLockTimeoutMillis, workspace })
    return yield* Effect.scoped(Effect.gen(function*() {
      const lock = yield* Lock.acquire(sql, dialect, {
        workspace,
        resource,
        timeout: lockTimeout,
        tableLockTimeoutMillis,
        unansweredLimit: unansweredTimeout
      })
      const store = Store.make(sql, dialect, workspace, resource)
      const startedAt = yield* Clock.currentTimeMillis
      // SQLite: what the workspace's ended runs left in the seen logs (a dead process's run, one stopped before its
      // fold was done), discarded a chunk a transaction through the lock's fence, which renews the lease first, before
      // this run's row: cut in it, this run has not begun; the next one discards the rest.
      if (dialect === "sqlite") yield* store.discardLeftLogs({ run: lock.transaction, writesFirst: true })
      const counts = { inserted: 0, updated: 0, unchanged: 0, deleted: 0, restarts: 0 }
      let scrolled = false
      // The run's end could not be recorded: its row stays `running`, as a dead process's does.
      let unrecorded = false
      // Its `complete` committed: an interruption heard only after that changes neither its row nor its count.
      let completed = false

      // SQLite: the run's log folded into the seen table a key range a transaction, the log copied into key order first
      // (outside the write lock), and then discarded a chunk a transaction, each through `transaction`. Every chunk is
      // true on its own (the run saw those ids): a run stopped in the fold has marked nothing, and the next run discards
      // what is left of its log, as a dead run's. Between two transactions a pause, where another writer gets in and a
      // signal is heard.
      const foldInChunks = (runId: number, now: number, transaction: Lock.Held["transaction"]) =>
        Effect.gen(function*() {
          const limit = yield* Store.FoldChunk
          let copied: number | undefined
          do {
            // In a transaction, so that the copy never runs inside another fiber's on this connection.
            copied = yield* Lock.whileBusy(sql.withTransaction(store.sortSeenLog(runId, copied, limit)))
            // No write lock held: a pause only to hear a signal between two steps.
            yield* Effect.sleep(Duration.zero)
          } while (copied !== undefined)
          // The chunks that take the file's write lock, each sized by the time the last took (`ChunkSize`).
          const foldSizes = yield* ChunkSize.sizer(limit)
          let folded: string | undefined
          do {
            folded = yield* ChunkSize.timed(foldSizes, (size) => transaction(store.foldSeenChunk(runId, now, folded, size)))
            if (folded !== undefined) yield* Effect.sleep(Store.deletionPause)
          } while (folded !== undefined)
          const discardSizes = yield* ChunkSize.sizer(limit)
          for (;;) {
            const size = discardSizes.size()
            if ((yield* ChunkSize.timed(discardSizes, () => transaction(store.discardSeenLogChunk(runId, size)))) < size) break
            yield* Effect.sleep(Store.deletionPause)
          }
        }).pipe(Effect.ensuring(Effect.ignore(sql.withTransaction(store.dropSortedSeenLog(runId)))))

      // A run that ends otherwise than complete, however and wherever it ends, is recorded with what it did: failed,
      // or interrupted when stopped from outside and nothing else (a fleet's workspace moving, a runner stopping, a
      // Ctrl-C), which says nothing of the workspace or the database and must not read as a failure.
      const recordUnfinished = (runId: number, cause: Cause.Cause<SyncError>) => {
        const status = Cause.isInterruptedOnly(cause) ? "interrupted" : "failed"
        return Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.gen(function*() {
            // Stopped from outside: a statement of the lock's that a silent server holds is not waited out first.
            if (status === "interrupted") yield* lock.stop
            yield* Metric.increment(SyncMetrics.runsEnded(resource, status))
            // SQLite: what the run saw still counts as seen, folded a chunk a transaction as a complete run's log is,
            // then the run's end recorded; nothing is marked deleted. A database that cannot fold (the very failure,
            // often) still gets the run's end recorded. PostgreSQL marked each page's records seen as it wrote them:
            // it has nothing to fold. Asked again while SQLite is busy, as the run's other writes are: a run that
            // failed on a busy database would otherwise stay `running`.
            // The counts as they are when it runs, not now: the scroll's fiber (the race's) is signalled, not waited
            // for, and a page it was committing as the interruption came counts once committed, which this waits for
            // (the connection runs one transaction at a time).
            const record = Effect.suspend(() => store.finishRun(runId, { status, now, counts, error: describe(cause, scrolled) }))
            const recorded = Lock.whileBusy(record)
            // PostgreSQL: on the lock's own connection, which the run holds to its end; the pool's may all be taken by
            // other runs, holding or waiting. Only a run whose lock's session ended, or was found shared by a pooler
            // (which refuses every fenced transaction), records it on the pool, bounded: a path gone silent may hold
            // the pool's connections too.
            const onLock = Effect.catchTags(lock.transaction(record), {
              LockLost: () => lock.aside(record),
              SessionPooled: () => lock.aside(record)
            })
            // A SQLite run stopped in its deletion pass folds no more: what it folded counts, the next run discards
            // the rest of its log. One stopped in its scroll folds its whole log, outside the lock's fence as before
            // (`<` keeps a newer run's rows), a chunk a transaction: in one, 500,000 logged ids held the file 11 s, deaf
            // to a second signal. Cut in it (a second signal, a kill, an error), its folded chunks stay, each true.
            const fold = scrolled ? Effect.void : foldInChunks(runId, now, (effect) => Lock.whileBusy(sql.withTransaction(effect))).pipe(
              Effect.catchAll((error) =>
                // The error as an annotation: a second message would be a second `message=` in a logfmt line.
                Effect.logWarning(`Could not fold what the ${status} sync run saw`).pipe(
                  Effect.annotateLogs("error", error.message)
                )
              )
            )
            yield* dialect === "pg" ? onLock : Effect.zipRight(fold, recorded)
          }).pipe(Effect.catchAll((error) =>
            Effect.logWarning(`Could not record the ${status} sync run`).pipe(
              Effect.annotateLogs("error", error.message),
              Effect.zipRight(Effect.sync(() => {
                unrecorded = true
              }))
            )
          )))
      }

      // A lock lost as the run's last transaction ended may have lost only the answer to its COMMIT (a path gone silent
      // after the server committed): the run's row, read on another connection, says whether it committed, deletions
      // and all. If so, the run is complete, and said to be; if not (or the row cannot be read), the lock is lost.
      const committedAnyway = (runId: number, lost: LockLost) =>
        lock.aside(sql<{ readonly status: string; readonly deleted: number | string | null }>`SELECT status, deleted
          FROM ${sql(Store.runsTable)} WHERE id = ${runId}`).pipe(
          Effect.orElseSucceed(() => []),
          Effect.flatMap(([row]) =>
            row?.status === "complete"
              ? Effect.as(
                Effect.logWarning("The sync run committed, but the answer to its last transaction was lost on the way").pipe(
                  Effect.annotateLogs("reason", lost.reason)
                ),
                Number(row.deleted ?? 0)
              )
              : Effect.fail(lost)
          )
        )

      // Under the lock no other run of the workspace is alive: a run still `running` was left by a dead process.
      // Every write of the run goes through the lock's transaction, which commits only while the lock is held. The row
      // and the release that ends it come in one uninterruptible step (an interruption waits for the insert's
      // transaction, as it would for the failed run's record): an interruption or a failure anywhere after the insert,
      // before the scroll as in it, finds the release registered, and never leaves the row `running`.
      return yield* Effect.acquireUseRelease(
        lock.transaction(Effect.zipRight(store.markAbandoned(startedAt), store.startRun(startedAt, { label: options.label, runner: options.runner }))),
        (runId) => Effect.gen(function*() {
          yield* Effect.annotateCurrentSpan("runId", runId)
          // Its sign of life, through the lock's transaction like every write (a run that lost its lock writes none). A
          // renewal that fails is skipped: losing the lock, or the database, ends the run by its own path.
          yield* Clock.currentTimeMillis.pipe(
            Effect.flatMap((now) => lock.transaction(store.recordAlive(runId, now))),
            Effect.ignore,
            Effect.delay(aliveInterval),
            Effect.forever,
            Effect.forkScoped
          )

          const outer = yield* Progress.Progress
          const progress: Progress.Reporter = {
            report: (event) => {
              if (event._tag === "Restart") counts.restarts++
              return outer.report(event)
            }
          }

          // SQLite logs what a page saw instead of upserting its seen rows, and so cannot tell from the table that a
          // restart sends a record again: the scroll's own dedupe (a compact set of the run's ids) keeps each record to
          // one page a run, and the counts exact. PostgreSQL's upsert tells itself, whatever `dedupe` says.
          // Without custom attributes, whatever the options object holds: the rows are the records as Intercom sent them.
          const scrollOptions: Scroll.Options = { ...Struct.omit(options, "customAttributes"), ...(dialect === "sqlite" ? { dedupe: true } : {}) }
          const rows = {
            inserted: SyncMetrics.rowsChanged(resource, "inserted"),
            updated: SyncMetrics.rowsChanged(resource, "updated"),
            unchanged: SyncMetrics.rowsChanged(resource, "unchanged")
          }
          // Every few seconds the run's row takes what the run has written so far, in the page's transaction: what
          // `fleet status` and `fleet sync` show of a sync under way, and what a run left `running` had done.
          let progressAt = startedAt
          const writePages = (pages: ReadonlyArray<Scroll.Page<Resource.Resource>>, now: number) =>
            Effect.gen(function*() {
              const written = { inserted: 0, updated: 0, unchanged: 0 }
              for (const page of pages) {
                const counts = yield* store.writePage(runId, page.records, now)
                written.inserted += counts.inserted
                written.updated += counts.updated
                written.unchanged += counts.unchanged
              }
              if (now - progressAt >= progressInterval) {
                yield* store.recordProgress(runId, {
                  inserted: counts.inserted + written.inserted,
                  updated: counts.updated + written.updated,
                  unchanged: counts.unchanged + written.unchanged,
                  restarts: counts.restarts
                })
                progressAt = now
              }
              return written
            })
          // The pages that came in before a failure are written before it fails the run, as one by one they would be.
          const writeArrived = (arrived: Chunk.Chunk<Either.Either<Scroll.Page<Resource.Resource>, ScrollError.ScrollError>>) =>
            Effect.gen(function*() {
              const pages: Array<Scroll.Page<Resource.Resource>> = []
              let failure: ScrollError.ScrollError | undefined
              for (const each of arrived) {
                if (Either.isLeft(each)) {
                  failure = each.left
                  break
                }
                failure = unkeepableIdIn(each.right)
                if (failure !== undefined) break
                pages.push(each.right)
              }
              if (pages.length > 0) {
                const now = yield* Clock.currentTimeMillis
                // Counted with the COMMIT: an interruption as it commits would otherwise leave the pages written and
                // the run's row short of them.
                yield* lock.transaction(writePages(pages, now), (written) =>
                  Effect.zipRight(
                    Effect.sync(() => {
                      counts.inserted += written.inserted
                      counts.updated += written.updated
                      counts.unchanged += written.unchanged
                    }),
                    Effect.all([
                      Metric.incrementBy(rows.inserted, written.inserted),
                      Metric.incrementBy(rows.updated, written.updated),
                      Metric.incrementBy(rows.unchanged, written.unchanged)
                    ], { discard: true })
                  ))
              }
              if (failure !== undefined) return yield* failure
            })
          const pages = Stream.either(Scroll.pages(resource, scrollOptions))
          const scroll = (pagesPerTransaction === 1
            ? Stream.map(pages, Chunk.of)
            // Collected while the transaction before runs, handed on whenever it is done: a failure too, behind them.
            : Stream.aggregate(pages, Sink.collectAllN<Either.Either<Scroll.Page<Resource.Resource>, ScrollError.ScrollError>>(pagesPerTransaction))).pipe(
            Stream.runForEach(writeArrived),
            Effect.provideService(Progress.Progress, progress)
          )

          // Finished once the passes are done too, which a large workspace takes a while for: in the run's last
          // transaction, with what it marked in it.
          const finish = (deleted: number) =>
            Effect.flatMap(Clock.currentTimeMillis, (end) =>
              store.finishRun(runId, { status: "complete", now: end, counts: { ...counts, deleted: counts.deleted + deleted }, error: null }))
          const deletedRows = SyncMetrics.rowsChanged(resource, "deleted")
          const marked = (deleted: number) =>
            Effect.zipRight(Effect.sync(() => counts.deleted += deleted), Metric.incrementBy(deletedRows, deleted))
          // With the COMMIT that recorded the run `complete` (or found it so), as its counts are.
          const ended = Effect.zipRight(Effect.sync(() => completed = true), Metric.increment(SyncMetrics.runsEnded(resource, "complete")))

          // The scroll reached its end: what it did not see is gone from Intercom. PostgreSQL marks it in the
          // transaction that records the run complete (a statement it can cancel). SQLite folds the run's log (above),
          // then marks a chunk a transaction, the last recording the run complete: each chunk only ever
          // marks rows absent from this complete scroll, so that a run that stops between two (interrupted, its lock
          // lost, failed) leaves its marks true, and counted on its row; the next complete run marks the rest.
          // Each next chunk sized by the time the last took (`ChunkSize`): 10,000 marks held the file ~0.4 s at 600,000
          // users, up to 15.8 s at 2,000,000 on a loaded machine.
          const markInChunks = (now: number) =>
            Effect.gen(function*() {
              const sizes = yield* ChunkSize.sizer(yield* Store.DeletionChunk)
              let after: string | undefined
              do {
                // Counted with the COMMIT, as the row records it: the end of an interrupted run writes its count.
                const chunk = yield* ChunkSize.timed(sizes, (limit) =>
                  lock.transaction(
                    Effect.gen(function*() {
                      const chunk = yield* store.markDeletedChunk(runId, now, after, limit)
                      if (chunk.last === undefined) yield* finish(chunk.deleted)
                      else if (chunk.deleted > 0) yield* store.recordDeleted(runId, counts.deleted + chunk.deleted)
                      return chunk
                    }),
                    (chunk) => chunk.last === undefined ? Effect.zipRight(marked(chunk.deleted), ended) : marked(chunk.deleted)
                  ))
                after = chunk.last
                // SQLite queues no writers: one waiting for the file tries again after sleeps of up to 100 ms (its busy
                // handler's), and would miss a shorter gap. The pause is also where a signal is heard.
                if (after !== undefined) yield* Effect.sleep(Store.deletionPause)
              } while (after !== undefined)
            })
          const complete = Effect.gen(function*() {
            scrolled = true
            const now = yield* Clock.currentTimeMillis
            if (dialect === "pg") {
              // Its COMMIT's answer lost on the way, the run may have committed all the same: its row says.
              yield* lock.transaction(Effect.tap(store.markDeleted(runId, now), finish), (deleted) => Effect.zipRight(marked(deleted), ended)).pipe(
                Effect.catchTag("LockLost", (lost) => Effect.flatMap(committedAnyway(runId, lost), (deleted) => Effect.zipRight(marked(deleted), ended)))
              )
            } else {
              yield* foldInChunks(runId, now, lock.transaction)
              yield* Store.withCheckpointsPutOff(client, sql, markInChunks(now))
            }
            return yield* Clock.currentTimeMillis
          })

          // The resource's tables checked before the scroll opens: one dropped by hand would fail the run at its first
          // page's write, and leave Intercom's one scroll of the workspace open for the next run to wait out. Then the
          // token's app checked against the one the rows hold before anything is written, then the scroll.
          const checkedScroll = lock.transaction(store.checkTables).pipe(
            Effect.zipRight(WorkspaceApp.check(workspace, store, lock)),
            Effect.zipLeft(scroll)
          )
          const [app, finishedAt] = yield* Effect.raceFirst(checkedScroll, lock.lost).pipe(Effect.zip(complete))
          return {
            runId,
            workspace,
            resource,
            inserted: counts.inserted,
            updated: counts.updated,
            unchanged: counts.unchanged,
            deleted: counts.deleted,
            restarts: counts.restarts,
            duration: Duration.millis(finishedAt - startedAt),
            app
          } satisfies Summary
        }).pipe(Effect.mapError(alteredTables(workspace))),
        // A run recorded complete stays so: an interruption heard as its last transaction committed fails the program
        // after the fact, and records nothing more, nor counts the run `interrupted` (`finishRun` keeps `complete` too).
        (runId, exit) => Exit.isSuccess(exit) || completed ? Effect.void : recordUnfinished(runId, exit.cause)
      ).pipe(Effect.mapError((error) =>
        // A lost lock says so, since the row would otherwise be read as a run still under way.
        error._tag === "LockLost" && unrecorded
          ? new LockLost({
            workspace: error.workspace,
            unanswered: error.unanswered,
            reason: `${error.reason}; the run could not be recorded: it stays \`running\` until a later sync of the workspace marks it \`abandoned\``
          })
          : error
      ))
      // SQLite: once the lease's release has committed (and with it the pass's put-off checkpoint), the WAL file emptied
      // where that waits for no one, rather than left at the pass's size while a connection has the file open.
    })).pipe(
      Effect.tap(() => dialect === "sqlite" ? Store.truncateWal(client, sql) : Effect.void),
      // Mapped in the run's `use` too, for its row to record `TablesAltered`; here, what fails before the row has it.
      Effect.mapError(alteredTables(workspace))
    )
  }
)
