/**
 * The `SyncCron` ticks the cluster has stored and not yet run to their end, read from its SQL storage's messages table
 * (`FleetStatus` shows them; a runner starting with a changed cron compares its own next tick with them).
 *
 * @internal
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { DateTime, Effect, Option } from "effect"
import * as CronName from "./cronName.js"

/** The cluster's messages table (`SqlMessageStorage`'s default prefix, which the fleet keeps). */
export const messagesTable = "cluster_messages"

/** A stored tick: its schedule's `SyncCron` name and when it comes due. */
export interface StoredTick {
  readonly schedule: string
  readonly at: DateTime.Utc
}

/** Which of `names` the database has as tables. */
export const existingTables = (sql: SqlClient.SqlClient, names: ReadonlyArray<string>) =>
  Effect.map(
    sql.onDialectOrElse({
      pg: () =>
        sql<{ readonly name: string }>`SELECT table_name AS name FROM information_schema.tables
          WHERE table_schema = current_schema() AND table_name IN ${sql.in(names)}`,
      orElse: () => sql<{ readonly name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ${sql.in(names)}`
    }),
    (rows) => new Set(rows.map((row) => row.name))
  )

/**
 * `read` over the cluster's SQL storage, through the `SqlClient` beside `Sharding` (as a fleet's runner has them, in one
 * database), or `none` where there is none: no `SqlClient`, or one without the cluster's messages table (the cluster's
 * storage elsewhere, in memory say).
 */
export const inClusterStorage = <A, E, R>(
  none: A,
  read: (sql: SqlClient.SqlClient) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R> =>
  Effect.flatMap(Effect.serviceOption(SqlClient.SqlClient), (client) => {
    if (Option.isNone(client)) return Effect.succeed(none)
    const sql = client.value.withoutTransforms()
    return Effect.flatMap(existingTables(sql, [messagesTable]), (tables) =>
      tables.has(messagesTable) ? read(sql) : Effect.succeed(none))
  })

/**
 * The ticks sent and not yet run to their end (a tick is a request to its schedule's `ClusterCron` entity, delivered at
 * its time, answered once its round ends), earliest first, of every `SyncCron` or of the one named `schedule`. The
 * caller knows the messages table is there.
 */
export const pending = (
  sql: SqlClient.SqlClient,
  schedule?: string
): Effect.Effect<ReadonlyArray<StoredTick>, SqlError> =>
  Effect.map(
    sql<{ readonly entity_type: string; readonly deliver_at: number | string }>`SELECT entity_type, deliver_at
      FROM ${sql(messagesTable)} WHERE ${
      schedule === undefined
        ? sql`entity_type LIKE ${CronName.tickEntityTypes}`
        // Equal, not LIKE: a name's own `_` or `%` would match other schedules'.
        : sql`entity_type = ${`ClusterCron/${CronName.clusterCronName(schedule)}`}`
    } AND id = request_id AND NOT processed AND deliver_at IS NOT NULL ORDER BY deliver_at, entity_type`,
    (rows) =>
      rows.map((row): StoredTick => ({
        schedule: CronName.scheduleName(row.entity_type),
        at: DateTime.unsafeMake(Number(row.deliver_at))
      }))
  )
