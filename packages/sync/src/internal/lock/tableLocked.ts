/**
 * PostgreSQL: a statement that waited out `lock_timeout` behind another session's lock on the sync's tables, and the
 * sessions it waited behind (`TableLocked`'s blockers).
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Cause, Effect, Schema } from "effect"
import { Blocker, TableLocked } from "../../SyncError.js"
import { isSqlError } from "./kind.js"

/**
 * PostgreSQL's `lock_not_available`: a statement that waited out `lock_timeout` (or a `NOWAIT`), in a failure or down
 * its causes (the Migrator's `MigrationError` holds the statement's `SqlError`).
 */
export const lockNotAvailable = (cause: Cause.Cause<unknown>): boolean => {
  const failure = Cause.failureOption(cause)
  let error: unknown = failure._tag === "Some" ? failure.value : undefined
  for (let depth = 0; depth < 3 && error instanceof Error; depth++) {
    if (isSqlError(error)) {
      return error.cause instanceof Error && (error.cause as Error & { readonly code?: unknown }).code === "55P03"
    }
    error = error.cause
  }
  return false
}

/**
 * The sessions that hold or await a lock on the sync's tables, but a plain read's, in a transaction open at least
 * `millis`: once a statement gave up, its own wait (and so `pg_blocking_pids`) is gone, and these are what it waited
 * behind. Another workspace's sync writes the same tables, but in transactions of a page, far shorter.
 */
export const blockersQuery = `SELECT DISTINCT ON (a.pid) a.pid, a.application_name, a.usename, a.state,
    l.mode || CASE WHEN l.granted THEN '' ELSE ' (awaited)' END || ' on ' || c.relname AS lock,
    extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS seconds, left(coalesce(a.query, ''), 200) AS query
  FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_stat_activity a ON a.pid = l.pid
  WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND c.relkind = 'r' AND c.relname LIKE 'intercom\\_%' AND l.mode <> 'AccessShareLock' AND l.pid <> pg_backend_pid()
    AND a.xact_start <= clock_timestamp() - make_interval(secs => $1::float8 / 1000)
  ORDER BY a.pid, CASE l.mode WHEN 'AccessExclusiveLock' THEN 0 WHEN 'ExclusiveLock' THEN 1
    WHEN 'ShareRowExclusiveLock' THEN 2 WHEN 'ShareLock' THEN 3 ELSE 4 END`

const BlockerRows = Schema.Array(Schema.Struct({
  pid: Schema.Number,
  application_name: Schema.NullOr(Schema.String),
  usename: Schema.NullOr(Schema.String),
  state: Schema.NullOr(Schema.String),
  lock: Schema.String,
  seconds: Schema.NullOr(Schema.Number),
  query: Schema.String
}))

/** `TableLocked`, naming the sessions `blockersQuery` finds through `query` (none when that look fails too). */
export const tableLocked = (
  query: (statement: string, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<unknown>, SqlError>,
  details: { readonly workspace: string | undefined; readonly waitedMillis: number; readonly migrating: boolean }
): Effect.Effect<never, TableLocked> =>
  Effect.flatMap(
    Effect.orElseSucceed(
      Effect.flatMap(query(blockersQuery, [details.waitedMillis]), Schema.decodeUnknown(BlockerRows)),
      () => []
    ),
    (found) =>
      new TableLocked({
        ...details,
        blockers: found.map((row) =>
          new Blocker({
            pid: row.pid,
            applicationName: row.application_name ?? "",
            user: row.usename,
            state: row.state,
            lock: row.lock,
            transactionSeconds: row.seconds ?? 0,
            query: row.query
          })
        )
      })
  )
