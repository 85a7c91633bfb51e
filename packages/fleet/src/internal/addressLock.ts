/**
 * One runner an address. Two processes given one address (`--host` left at its default 127.0.0.1 on several machines,
 * one unit file copied to two) register one row in the cluster: one of them takes every shard while the other idles,
 * silently, or the other's pings find it unhealthy and interrupt its syncs. On PostgreSQL each runner holds a
 * session-level advisory lock keyed by its address, for its life: a process that dies ends its session and frees it at
 * once; a frozen one keeps it, as it keeps its shards. SQLite needs none: its runners share one machine, where the port
 * is the address's lock. A database that restarts under the runner frees it, and it is not taken again.
 *
 * @internal
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Duration, Effect, type Scope } from "effect"

/** Beside the sync's advisory locks (0x1c5c0a11 for the workspaces, the next for its migrations). */
export const namespace = 0x1c5c_0a11 + 2

/** The text PostgreSQL's `hashtext` makes the lock's second key of. */
export const keyText = (address: string) => `runner ${address}`

/**
 * How long a runner waits for the address to come free: an earlier process at this address that is stopping (its
 * syncs have up to 15 s to finish, and it holds its sessions until then) frees it on its way out.
 */
export const waitForAddress = Duration.seconds(20)

/**
 * Takes the address's lock, on a connection kept until the scope closes, which releases the lock first. Succeeds
 * with whether it was taken: false once `waitForAddress` has passed with another process holding it.
 */
export const hold = (address: string): Effect.Effect<boolean, SqlError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    if (!sql.onDialectOrElse({ pg: () => true, orElse: () => false })) return true
    const connection = yield* sql.reserve
    const params = [namespace, keyText(address)]
    const take = Effect.map(
      connection.execute("SELECT pg_try_advisory_lock($1, hashtext($2)) AS taken", params, undefined),
      (rows) => (rows as ReadonlyArray<{ readonly taken: boolean }>)[0]?.taken === true
    )
    let taken = yield* take
    if (!taken) {
      yield* Effect.logWarning(
        `Another process holds this runner's address, ${address}: waiting up to ${Duration.format(waitForAddress)} for it to free it (an earlier runner at this address, stopping)`
      )
      for (let second = 0; second < Duration.toSeconds(waitForAddress) && !taken; second++) {
        yield* Effect.sleep("1 second")
        taken = yield* take
      }
    }
    if (taken) {
      yield* Effect.addFinalizer(() => Effect.ignore(connection.execute("SELECT pg_advisory_unlock($1, hashtext($2))", params, undefined)))
    }
    return taken
  })
