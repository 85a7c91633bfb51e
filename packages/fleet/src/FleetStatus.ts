/**
 * A fleet's state, read from its database: the runners the cluster knows and which of them are alive, the `Sync`
 * requests sent and not yet answered, and the sync runs' activity (`SyncActivity`). Nothing is written. What
 * `intercom-scroll fleet status` prints.
 *
 * @example
 * import { FleetStatus } from "@intercom-scroll/fleet"
 * import { SyncDatabase } from "@intercom-scroll/sync"
 * import { DateTime, Effect } from "effect"
 *
 * // A check for a monitor: a runner alive, and no sync left unanswered for an hour.
 * const healthy = Effect.gen(function*() {
 *   const now = yield* DateTime.now
 *   const status = yield* FleetStatus.read({ since: DateTime.subtract(now, { hours: 24 }) })
 *   const oldest = status.pending.oldestSentAt
 *   return status.runners.some((runner) => runner.live) &&
 *     (oldest === undefined || DateTime.distance(oldest, now) < 3_600_000)
 * }).pipe(Effect.provide(SyncDatabase.layerFromUrl("postgres://fleet@db.internal/fleet")))
 *
 * @since 0.1.0
 */
import { Snowflake } from "@effect/cluster"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Resource } from "@intercom-scroll/core"
import { Sync, SyncActivity, SyncDatabase, type SyncError } from "@intercom-scroll/sync"
import { Array as Arr, DateTime, Deferred, Duration, Effect, Order, Schema, type Scope } from "effect"
import * as Attention_ from "./internal/attention.js"
import * as SilentSession from "./internal/silentSession.js"
import * as StoredTicks from "./internal/storedTicks.js"
import * as SyncCron from "./SyncCron.js"
import { WorkspaceSync } from "./WorkspaceSync.js"

/**
 * A runner the cluster has registered.
 *
 * @since 0.1.0
 * @category models
 */
export interface Runner {
  readonly address: string
  /**
   * Its heartbeat came in the last 30 s: it is running. A runner that stops removes its own row, and those of runners
   * silent past the cluster's expiry; one that died keeps its row until then.
   */
  readonly live: boolean
  /** Seconds since its last heartbeat. */
  readonly silentFor: number
  /**
   * Whether it hosts the fleet's schedules (`Fleet.RunnerOptions.schedules`, `fleet runner --cron`): its shard groups,
   * as it registered them, include `SyncCron.shardGroup`. Absent where its row does not say.
   */
  readonly schedules?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Status {
  readonly runners: ReadonlyArray<Runner>
  /** `Sync` requests sent and not answered yet (being synced, or waiting for a runner or a slot), and the oldest's time. */
  readonly pending: { readonly requests: number; readonly oldestSentAt: DateTime.Utc | undefined }
  readonly activity: SyncActivity.Activity
  /**
   * Each `SyncCron` schedule's tick sent and not yet run to its end, earliest first: its next round, or the one under
   * way. A schedule's next tick is set by the tick before (the expression a runner had then); after its `cron` changes
   * to tick sooner, a runner started with it sends the new expression's next tick, listed before the one stored, which
   * stays until its time (then the same tick as the new expression's, or one more round: `SyncCron`).
   */
  readonly schedules: ReadonlyArray<ScheduledTick>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ScheduledTick {
  /** The `SyncCron`'s name (`cron` for `fleet runner --cron`). */
  readonly schedule: string
  /** When the tick comes due. */
  readonly at: DateTime.Utc
}

/** Seconds since a heartbeat, as each dialect tells time (the cluster writes it in the database's own clock). */
const silentForSql = (sql: SqlClient.SqlClient) =>
  sql.onDialectOrElse({
    pg: () => sql`EXTRACT(EPOCH FROM (NOW() - last_heartbeat))`,
    // The cluster writes CURRENT_TIMESTAMP's text there, UTC, which julianday() reads.
    orElse: () => sql`(julianday('now') - julianday(last_heartbeat)) * 86400`
  })

const runnersTable = "cluster_runners"

/** The shard groups a runner registered (the cluster's `Runner`, as JSON in its row), or undefined where it says none. */
const RegisteredGroups = Schema.parseJson(Schema.Struct({ groups: Schema.Array(Schema.String) }))
const decodeGroups = Schema.decodeUnknownOption(RegisteredGroups)

/** The runners of `cluster_runners`, which the caller knows is there. */
const readRunners = (sql: SqlClient.SqlClient) =>
  Effect.map(
    sql<{ readonly address: string; readonly silent_for: number | string; readonly runner: string }>`SELECT address,
      ${silentForSql(sql)} AS silent_for, runner FROM ${sql(runnersTable)} ORDER BY address`,
    (rows) =>
      rows.map((row): Runner => {
        const silentFor = Math.max(0, Math.round(Number(row.silent_for)))
        const registered = decodeGroups(row.runner)
        return {
          address: row.address,
          live: silentFor < 30,
          silentFor,
          ...(registered._tag === "Some" ? { schedules: registered.value.groups.includes(SyncCron.shardGroup) } : {})
        }
      })
  )

/**
 * The runners the cluster has registered on the database, alive or not (none before a runner has used it).
 *
 * @since 0.1.0
 * @category reading
 */
export const runners: Effect.Effect<ReadonlyArray<Runner>, SqlError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  return (yield* StoredTicks.existingTables(sql, [runnersTable])).has(runnersTable) ? yield* readRunners(sql) : []
}).pipe(Effect.withSpan("FleetStatus.runners"))

/**
 * Each `SyncCron` schedule's tick sent and not yet run to its end, earliest first (`Status.schedules`; none before a
 * runner has used the database).
 *
 * @since 0.1.0
 * @category reading
 */
export const schedules: Effect.Effect<ReadonlyArray<ScheduledTick>, SqlError, SqlClient.SqlClient> = StoredTicks
  .inClusterStorage<ReadonlyArray<ScheduledTick>, SqlError, never>([], (sql) => StoredTicks.pending(sql))
  .pipe(Effect.withSpan("FleetStatus.schedules"))

/**
 * Reads the fleet's state, with the sync runs' activity since `since` (and at most `failures` of the latest failures,
 * default 10). A database no runner has used yet has none of the cluster's tables (no runners, nothing pending), and
 * one no sync has used none of the runs (no activity).
 *
 * @since 0.1.0
 * @category reading
 */
export const read: (
  options: { readonly since: DateTime.Utc; readonly failures?: number | undefined }
) => Effect.Effect<Status, SqlError | SyncError.UnsupportedDialect, SqlClient.SqlClient> = Effect.fn("FleetStatus.read")(
  function*(options: { readonly since: DateTime.Utc; readonly failures?: number | undefined }) {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const tables = yield* StoredTicks.existingTables(sql, [runnersTable, StoredTicks.messagesTable, Sync.runsTable])
    const runners = tables.has(runnersTable) ? yield* readRunners(sql) : []
    // A request is its own row (id = request_id) until its reply marks it processed; its id is a Snowflake, which
    // carries the time it was made.
    const [pending] = tables.has(StoredTicks.messagesTable)
      ? yield* sql<{ readonly requests: number | string; readonly oldest: string | null }>`SELECT
          count(*) AS requests, CAST(min(id) AS TEXT) AS oldest FROM ${sql("cluster_messages")}
          WHERE entity_type = ${WorkspaceSync.type} AND id = request_id AND NOT processed`
      : [{ requests: 0, oldest: null }]
    // A run's `alive_at` is its runner's time, which is the database's (`Fleet.layerRunner`): judged by this process's
    // own clock, a run of a runner 5 minutes behind it looked silent for 5 minutes, and a dead one of a runner ahead of
    // it looked alive for as long.
    const activity = tables.has(Sync.runsTable)
      ? yield* SyncDatabase.withDatabaseClock(SyncActivity.read(options))
      : SyncActivity.none(options.since)
    return {
      runners,
      pending: {
        requests: Number(pending?.requests ?? 0),
        oldestSentAt: pending?.oldest == null ? undefined : Snowflake.dateTime(Snowflake.Snowflake(pending.oldest))
      },
      activity,
      schedules: tables.has(StoredTicks.messagesTable) ? yield* StoredTicks.pending(sql) : []
    } satisfies Status
  }
)

/**
 * A workspace's resource.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkspaceResource {
  readonly workspace: string
  readonly resource: Resource.Resource
}

/**
 * A workspace's resource whose last run (of those that ended, not interrupted) failed or was abandoned.
 *
 * @since 0.1.0
 * @category models
 */
export interface Failing extends WorkspaceResource {
  /** Its failed or abandoned runs since its last complete one (all of them, if none completed). */
  readonly failedInARow: number
  /**
   * How many of those were abandoned: their runner died, or lost its database, before it recorded their end (the
   * workspace's next run found them running).
   */
  readonly abandoned: number
  /** When the first of those ended. */
  readonly since: DateTime.Utc
  /** The first line of the latest one's error. */
  readonly lastError: string | undefined
  /** When its last complete run ended; undefined if none did (or its runs were pruned). */
  readonly lastCompleteAt: DateTime.Utc | undefined
}

/**
 * A workspace's resource whose last complete run ended before the bound (and whose last run did not fail).
 *
 * @since 0.1.0
 * @category models
 */
export interface Stale extends WorkspaceResource {
  /** Undefined where its records are kept and no complete run is (`fleet prune` removed them). */
  readonly lastCompleteAt: DateTime.Utc | undefined
}

/**
 * The workspaces that need an operator, by kind, each list in the order to look at it (the longest in trouble first),
 * and how many of the workspaces' resources looked at need nothing.
 *
 * @since 0.1.0
 * @category models
 */
export interface Attention {
  /** A resource whose last complete run ended before this is stale. */
  readonly staleBefore: DateTime.Utc
  /** Failing, longest first. */
  readonly failing: ReadonlyArray<Failing>
  /** Stale, longest first. */
  readonly stale: ReadonlyArray<Stale>
  /**
   * Of the workspaces given, a resource with no run ended (but interrupted ones) and no records: never synced (a
   * workspace just added to the file, or one whose refusals a runner could not record). Without them, only a resource
   * with interrupted runs alone: the database does not know a workspace it never saw.
   */
  readonly neverSynced: ReadonlyArray<WorkspaceResource>
  /**
   * Workspaces the database has runs or records of and that are not among those given: removed from the file, their
   * copy kept. Empty without them.
   */
  readonly removed: ReadonlyArray<string>
  /** The workspaces' resources looked at that are none of the above. */
  readonly fine: number
}

const byTime = Order.mapInput(Order.number, (at: DateTime.Utc | undefined) => at === undefined ? -Infinity : DateTime.toEpochMillis(at))
const byName = Order.combine(
  Order.mapInput(Order.string, (pair: WorkspaceResource) => pair.workspace),
  Order.mapInput(Order.number, (pair: WorkspaceResource) => Resource.Resource.literals.indexOf(pair.resource))
)

/**
 * Which workspaces need attention, per workspace and resource of `resources`: those whose last run failed, those not
 * complete since `staleBefore`, and, given the `workspaces` a fleet syncs (its workspaces file), those never synced and
 * those the database holds that are not among them. Without `workspaces`, the workspaces the database holds are looked
 * at, for failing and stale ones. Nothing is written.
 *
 * The runs read are those that ended since `staleBefore` (the runs' `finished_at` index) and, for the workspaces with no
 * complete run among them, their whole history (the `(workspace, status)` index): its cost follows the fleet's recent
 * runs and its workspaces in trouble, not the runs kept. The workspaces the database holds are read one index probe
 * each.
 *
 * @since 0.1.0
 * @category reading
 */
export const attention: (
  options: {
    readonly staleBefore: DateTime.Utc
    readonly resources: ReadonlyArray<Resource.Resource>
    readonly workspaces?: ReadonlyArray<string> | undefined
  }
) => Effect.Effect<Attention, SqlError, SqlClient.SqlClient> = Effect.fn("FleetStatus.attention")(function*(options: {
  readonly staleBefore: DateTime.Utc
  readonly resources: ReadonlyArray<Resource.Resource>
  readonly workspaces?: ReadonlyArray<string> | undefined
}) {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  // Each once, as a `Sync` request takes them: a resource named twice would be counted, and listed, twice.
  const resources = Arr.dedupe(options.resources)
  const given = options.workspaces === undefined ? undefined : new Set(options.workspaces)
  // No sync tables: nothing ran, nothing kept.
  if (!(yield* StoredTicks.existingTables(sql, [Sync.runsTable])).has(Sync.runsTable) || resources.length === 0) {
    const neverSynced = Arr.flatMap([...given ?? []], (workspace) => resources.map((resource) => ({ workspace, resource })))
    return { staleBefore: options.staleBefore, failing: [], stale: [], neverSynced, removed: [], fine: 0 } satisfies Attention
  }
  // The workspaces the database holds: with runs, or with records of a resource (its runs pruned, or not yet synced
  // again since the workspace was removed).
  const withRuns = yield* Attention_.workspacesOf(sql, Sync.runsTable)
  const withRecords = new Map<Resource.Resource, ReadonlySet<string>>()
  for (const resource of Resource.Resource.literals) {
    withRecords.set(resource, new Set(yield* Attention_.workspacesOf(sql, Attention_.recordsTable(resource))))
  }
  const held = new Set([...withRuns, ...Arr.flatMap([...withRecords.values()], (names) => [...names])])
  const looked = given ?? held
  const states = new Map<string, Attention_.PairState>()
  for (const state of yield* Attention_.window(sql, resources, options.staleBefore)) {
    if (looked.has(state.workspace)) states.set(Attention_.key(state.workspace, state.resource), state)
  }
  // A workspace with a resource not complete within the window: its history says since when, and how it fails.
  const unresolved = [...looked].filter((workspace) =>
    held.has(workspace) &&
    resources.some((resource) => states.get(Attention_.key(workspace, resource))?.completeAt === undefined)
  )
  for (const state of yield* Attention_.history(sql, resources, unresolved)) {
    states.set(Attention_.key(state.workspace, state.resource), state)
  }
  const errors = yield* Attention_.errors(
    sql,
    [...states.values()].flatMap((state) => state.failed > 0 && state.lastFailed !== undefined ? [state.lastFailed] : [])
  )
  const failing: Array<Failing> = []
  const stale: Array<Stale> = []
  const neverSynced: Array<WorkspaceResource> = []
  let fine = 0
  for (const workspace of looked) {
    for (const resource of resources) {
      const state = states.get(Attention_.key(workspace, resource))
      const hasRecords = withRecords.get(resource)?.has(workspace) ?? false
      if (state?.failingSince !== undefined) {
        failing.push({
          workspace,
          resource,
          failedInARow: state.failed,
          abandoned: state.abandoned,
          since: state.failingSince,
          lastError: state.lastFailed === undefined ? undefined : errors.get(state.lastFailed),
          lastCompleteAt: state.completeAt
        })
      } else if (state?.completeAt !== undefined) {
        if (DateTime.lessThan(state.completeAt, options.staleBefore)) stale.push({ workspace, resource, lastCompleteAt: state.completeAt })
        else fine++
      } else if (hasRecords) {
        stale.push({ workspace, resource, lastCompleteAt: undefined })
      } else if (given !== undefined || state !== undefined) {
        // Only interrupted runs, or none: not synced yet. Without the file, a resource the database has nothing of is
        // not one the fleet syncs, as far as it knows.
        neverSynced.push({ workspace, resource })
      }
    }
  }
  return {
    staleBefore: options.staleBefore,
    failing: Arr.sort(failing, Order.combine(Order.mapInput(byTime, (pair: Failing) => pair.since), byName)),
    stale: Arr.sort(stale, Order.combine(Order.mapInput(byTime, (pair: Stale) => pair.lastCompleteAt), byName)),
    neverSynced: Arr.sort(neverSynced, byName),
    removed: given === undefined ? [] : Arr.sort([...held].filter((workspace) => !given.has(workspace)), Order.string),
    fine
  } satisfies Attention
})

/**
 * The fleet's PostgreSQL did not answer reads within their deadline (`answeredWithin`), or a statement within its own
 * (`eachAnsweredWithin`): its path went silent (a failover that moved its address, a firewall or a NAT that dropped
 * the connection while something on the way still acknowledges), or the server is too loaded to answer. Reads wrote
 * nothing; the statement cut rolled back with its transaction.
 *
 * @since 0.1.0
 * @category errors
 */
export class DatabaseSilent extends Schema.TaggedError<DatabaseSilent>()("DatabaseSilent", {
  /** The database, as `SyncDatabase.display` shows it (no password). */
  database: Schema.String,
  waitedMillis: Schema.Number
}) {
  override get message(): string {
    return `The database ${this.database} did not answer within ${
      Duration.format(Duration.millis(this.waitedMillis))
    }: its path may have gone silent (a failover that moved its address, a firewall or a NAT that dropped the connection), or the server is too loaded to answer. Its session was ended, and what it was writing, if anything, rolled back. Try again once it answers.`
  }
}

/**
 * `reads` on a PostgreSQL connection of their own, given `deadline` in all: unanswered by then, the connection's
 * session is ended and they fail with `DatabaseSilent`, where they waited without end on a path gone silent (open
 * connections silent, new ones passing; packages/bench/NOTES.md, "A fleet when its PostgreSQL vanishes"). Their
 * statements are never interrupted, at the deadline nor when the caller is: @effect/sql-pg cancels an interrupted
 * statement by its pid alone, on another connection, which after a failover reaches another server. For short
 * reads, as `read` and `attention` are: a long one, however healthy, is cut at the deadline. Elsewhere (SQLite) `reads`
 * as they are.
 *
 * @since 0.1.0
 * @category reading
 */
export const answeredWithin = (database: SyncDatabase.Database, deadline: Duration.DurationInput) =>
<A, E, R>(
  reads: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError | DatabaseSilent, R | SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    if (!sql.onDialectOrElse({ pg: () => true, orElse: () => false })) return yield* reads
    const waited = Duration.decode(deadline)
    const unanswered = yield* Deferred.make<void>()
    const watched = SilentSession.withDeadline(sql, waited, {
      scope: yield* Effect.scope,
      onSilent: () => Deferred.succeed(unanswered, undefined)
    })
    return yield* Effect.raceFirst(
      // Its loss interrupts a wait only: `reads` go on, detached, until their session is ended, never interrupted, as
      // @effect/sql-pg cancels an interrupted statement by pid alone, which after a failover reaches another server.
      watched(reads),
      // At the deadline, not once the session is ended (which waits for another connection, on a path that may be
      // silent too: 61 s in all, measured, for a deadline of 30 s).
      Effect.zipRight(
        Deferred.await(unanswered),
        new DatabaseSilent({ database: SyncDatabase.display(database), waitedMillis: Duration.toMillis(waited) })
      )
    )
  })

/**
 * `use` on a PostgreSQL connection of its own, each of its statements given `deadline`: one unanswered by then has the
 * connection's session ended, and `use` fails with `DatabaseSilent` at that deadline. For a long run of short statements,
 * as `WorkspaceSync.prune`'s batches are, which `answeredWithin`'s deadline on the whole would cut however healthy. Its
 * statements are never interrupted (a cancel by pid may reach another server's session after a failover). Elsewhere
 * (SQLite) `use` as it is.
 *
 * @since 0.1.0
 * @category reading
 */
export const eachAnsweredWithin = (database: SyncDatabase.Database, deadline: Duration.DurationInput) =>
<A, E, R>(
  use: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError | DatabaseSilent, R | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    if (!sql.onDialectOrElse({ pg: () => true, orElse: () => false })) return yield* use
    const waited = Duration.decode(deadline)
    let silent = false
    return yield* SilentSession.eachWithin(sql, waited, () => Effect.sync(() => silent = true))(use).pipe(
      // Whatever failed once a statement went unanswered failed of that.
      Effect.mapError((error) =>
        silent ? new DatabaseSilent({ database: SyncDatabase.display(database), waitedMillis: Duration.toMillis(waited) }) : error
      )
    )
  })
