/**
 * PostgreSQL: the migrations' advisory lock, one process migrating at a time.
 */
import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Schema } from "effect"
import type { TableLocked } from "../../SyncError.js"
import { migrationsKey } from "./keys.js"
import { lockNotAvailable, tableLocked } from "./tableLocked.js"

/**
 * Runs `effect` while holding the migrations' advisory lock (PostgreSQL). Migrations take a moment, so the server
 * itself makes a second process wait (`pg_advisory_xact_lock`), with no polling; an interrupt cancels the wait.
 *
 * One transaction on one connection: the lock is the transaction's, released at its end whatever happens, and the
 * Migrator's own transaction becomes a savepoint in it. A lock held on a connection of its own, with the Migrator's
 * transaction on a second, needed two connections a sync: a pool's worth of syncs migrating at once each held one and
 * waited for another.
 *
 * Once the lock is held, its statements wait at most `lockTimeoutMillis` (0: no limit) for another session's lock on
 * the tables (an operator's `LOCK TABLE` left open, a transaction of an older version's sync): the transaction is then
 * rolled back whole, nothing migrated, and it fails with `TableLocked` naming those sessions.
 */
/** The role's own `statement_timeout`, put back once the wait for the lock is over. */
const SavedTimeout = Schema.Tuple(Schema.Struct({ statement: Schema.String }))

export const withMigrationsLock = <A, E, R>(
  sql: SqlClient.SqlClient,
  effect: Effect.Effect<A, E, R>,
  bound: { readonly lockTimeoutMillis: number; readonly workspace: string | undefined }
): Effect.Effect<A, E | TableLocked | SqlError, R> => {
  const [namespace, key] = migrationsKey
  return sql.withTransaction(Effect.gen(function*() {
    // An operator's lock_timeout or statement_timeout (ALTER ROLE … SET) would cancel the wait for another process's
    // migrations, and fail a sync that starts beside it: lifted for the wait alone, in this transaction only. The
    // lock_timeout after it is the run's own, as in its other transactions.
    const [saved] = yield* sql`SELECT current_setting('statement_timeout') AS statement`.pipe(
      Effect.flatMap(Schema.decodeUnknown(SavedTimeout)),
      Effect.catchTag("ParseError", (error) => Effect.die(error))
    )
    yield* sql`SELECT set_config('lock_timeout', '0', true), set_config('statement_timeout', '0', true)`
    yield* sql`SELECT pg_advisory_xact_lock(${namespace}, ${key})`
    yield* sql`SELECT set_config('lock_timeout', ${`${Math.round(bound.lockTimeoutMillis)}ms`}, true),
      set_config('statement_timeout', ${saved.statement}, true)`
    return yield* effect
  })).pipe(
    // Looked for once the transaction is rolled back, on any session of the pool: the wait is over by then.
    Effect.catchAllCause((cause): Effect.Effect<never, E | TableLocked | SqlError> =>
      bound.lockTimeoutMillis > 0 && lockNotAvailable(cause)
        ? tableLocked((statement, params) => sql.unsafe(statement, params), {
          workspace: bound.workspace,
          waitedMillis: bound.lockTimeoutMillis,
          migrating: true
        })
        : Effect.failCause(cause)
    )
  )
}
