/**
 * A connection of @effect/sql-pg's pool as the lock needs it: reserved so that an interrupted wait loses none, and what
 * node-postgres's client under it says (its socket, its server process) read structurally.
 */
import type { SqlClient, SqlConnection } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Exit, Fiber, Scope } from "effect"

/**
 * A connection of the pool, given back when `scope` closes. @effect/sql-pg's `reserve` cannot be interrupted while it
 * waits for the pool: a connection handed over after the interruption would never go back to it. So the wait runs on a
 * fiber of its own, and a waiter interrupted leaves it to give back the connection once it comes.
 */
export const reserveIn = (
  sql: SqlClient.SqlClient,
  scope: Scope.CloseableScope
): Effect.Effect<SqlConnection.Connection, SqlError> =>
  // Only the join may be interrupted, whatever the caller's region: a caller that restored its interruptibility around
  // this would be interrupted as this returned, the connection in hand and lost.
  Effect.uninterruptible(
    Effect.flatMap(Effect.forkDaemon(Scope.extend(sql.reserve, scope)), (reserving) =>
      Effect.interruptible(Fiber.join(reserving)).pipe(
        Effect.onInterrupt(() => Effect.forkDaemon(Effect.zipRight(Fiber.await(reserving), Scope.close(scope, Exit.void))))
      ))
  )

/** node-postgres's client under a connection of @effect/sql-pg, which keeps it as `pg`; read structurally. */
export const clientOf = (connection: SqlConnection.Connection) =>
  (connection as {
    readonly pg?: { readonly processID?: unknown; readonly connection?: { readonly stream?: unknown } }
  }).pg

/**
 * The socket under a connection of @effect/sql-pg, to close without a word to a server that does not answer:
 * node-postgres's `end` waits for the server's goodbye. Undefined for another driver's connection.
 */
export interface Socket {
  readonly destroy: () => void
}

export const socketOf = (connection: SqlConnection.Connection): Socket | undefined => {
  const stream = clientOf(connection)?.connection?.stream
  return typeof stream === "object" && stream !== null && typeof (stream as { readonly destroy?: unknown }).destroy === "function"
    ? stream as Socket
    : undefined
}

/**
 * The server process of a connection's session as the server named it on connecting (its cancel key, which
 * node-postgres's own cancel sends), known before any statement: asking `pg_backend_pid()` would be a statement that
 * may be lost on the way too. Undefined for another driver's connection.
 */
export const serverProcessOf = (connection: SqlConnection.Connection): number | undefined => {
  const pid = clientOf(connection)?.processID
  return typeof pid === "number" ? pid : undefined
}
