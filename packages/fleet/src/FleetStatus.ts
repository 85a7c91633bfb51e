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
import { Sync, SyncActivity, SyncDatabase, type SyncError } from "@intercom-scroll/sync"
import { DateTime, Effect } from "effect"
import * as CronName from "./internal/cronName.js"
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
   * way. A schedule's next tick is set by the tick before (the expression a runner had then), so after its `cron`
   * changes, this is when the new expression starts to apply.
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

/** Which of `names` the database has as tables. */
const existing = (sql: SqlClient.SqlClient, names: ReadonlyArray<string>) =>
  Effect.map(
    sql.onDialectOrElse({
      pg: () =>
        sql<{ readonly name: string }>`SELECT table_name AS name FROM information_schema.tables
          WHERE table_schema = current_schema() AND table_name IN ${sql.in(names)}`,
      orElse: () => sql<{ readonly name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ${sql.in(names)}`
    }),
    (rows) => new Set(rows.map((row) => row.name))
  )

/** Seconds since a heartbeat, as each dialect tells time (the cluster writes it in the database's own clock). */
const silentForSql = (sql: SqlClient.SqlClient) =>
  sql.onDialectOrElse({
    pg: () => sql`EXTRACT(EPOCH FROM (NOW() - last_heartbeat))`,
    // The cluster writes CURRENT_TIMESTAMP's text there, UTC, which julianday() reads.
    orElse: () => sql`(julianday('now') - julianday(last_heartbeat)) * 86400`
  })

const runnersTable = "cluster_runners"

/** The runners of `cluster_runners`, which the caller knows is there. */
const readRunners = (sql: SqlClient.SqlClient) =>
  Effect.map(
    sql<{ readonly address: string; readonly silent_for: number | string }>`SELECT address,
      ${silentForSql(sql)} AS silent_for FROM ${sql(runnersTable)} ORDER BY address`,
    (rows) =>
      rows.map((row): Runner => {
        const silentFor = Math.max(0, Math.round(Number(row.silent_for)))
        return { address: row.address, live: silentFor < 30, silentFor }
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
  return (yield* existing(sql, [runnersTable])).has(runnersTable) ? yield* readRunners(sql) : []
}).pipe(Effect.withSpan("FleetStatus.runners"))

/** A tick is a request to its schedule's `ClusterCron` entity, delivered at its time, answered once its round ends. */
const readTicks = (sql: SqlClient.SqlClient) =>
  Effect.map(
    sql<{ readonly entity_type: string; readonly deliver_at: number | string }>`SELECT entity_type, deliver_at
      FROM ${sql("cluster_messages")} WHERE entity_type LIKE ${CronName.tickEntityTypes} AND id = request_id
      AND NOT processed AND deliver_at IS NOT NULL ORDER BY deliver_at, entity_type`,
    (rows) =>
      rows.map((row): ScheduledTick => ({
        schedule: CronName.scheduleName(row.entity_type),
        at: DateTime.unsafeMake(Number(row.deliver_at))
      }))
  )

/**
 * Each `SyncCron` schedule's tick sent and not yet run to its end, earliest first (`Status.schedules`; none before a
 * runner has used the database).
 *
 * @since 0.1.0
 * @category reading
 */
export const schedules: Effect.Effect<ReadonlyArray<ScheduledTick>, SqlError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  return (yield* existing(sql, ["cluster_messages"])).has("cluster_messages") ? yield* readTicks(sql) : []
}).pipe(Effect.withSpan("FleetStatus.schedules"))

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
    const tables = yield* existing(sql, [runnersTable, "cluster_messages", Sync.runsTable])
    const runners = tables.has(runnersTable) ? yield* readRunners(sql) : []
    // A request is its own row (id = request_id) until its reply marks it processed; its id is a Snowflake, which
    // carries the time it was made.
    const [pending] = tables.has("cluster_messages")
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
      schedules: tables.has("cluster_messages") ? yield* readTicks(sql) : []
    } satisfies Status
  }
)
