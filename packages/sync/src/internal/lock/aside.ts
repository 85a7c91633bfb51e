/**
 * PostgreSQL: a statement on another connection of the pool than the lock's, bounded: the path that silenced the lock's
 * connection may silence this one too.
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Duration, Effect, Exit, Option, Scope } from "effect"
import { reserveIn, type Socket, socketOf } from "./connection.js"
import { Unanswered } from "./kind.js"

/**
 * PostgreSQL: how long a statement on the lock's connection goes unanswered before the server is asked, on another
 * connection, what that session is doing; how long apart two answers saying it sits idle must be to cut it; and how
 * long a statement `aside` is given to answer.
 */
export const silenceCheckEvery = Duration.seconds(10)

/**
 * Runs `effect` on another connection of the pool, given at most `silenceCheckEvery` to answer once in hand; a
 * connection that does not is closed rather than given back to the pool (its statement would hold up the next one).
 * Reserved as a try is (`reserveIn`): the run may end, and this be interrupted, while it waits for one.
 */
export const aside = (sql: SqlClient.SqlClient) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | Unanswered | SqlError, R> =>
  Effect.flatMap(Scope.make(), (scope) => {
    // This fiber's own note, set as the connection comes, of whether it is in hand (false: not yet) and its socket.
    let inHand: Socket | undefined | false = false
    return Effect.gen(function*() {
      const connection = yield* reserveIn(sql, scope)
      inHand = socketOf(connection)
      const answer = yield* Effect.timeoutOption(
        Effect.provideService(effect, SqlClient.TransactionConnection, [connection, 0]),
        silenceCheckEvery
      )
      if (Option.isSome(answer)) return answer.value
      socketOf(connection)?.destroy()
      return yield* new Unanswered({
        message: `the server did not answer within ${Duration.format(silenceCheckEvery)} on another connection either`
      })
    }).pipe(
      // A wait for the pool interrupted leaves the connection's return to `reserveIn`, once it comes; one
      // interrupted in hand, its statement perhaps unanswered, is closed.
      Effect.onExit((exit) => {
        if (!Exit.isInterrupted(exit)) return Scope.close(scope, Exit.void)
        if (inHand === false) return Effect.void
        inHand?.destroy()
        return Scope.close(scope, Exit.void)
      })
    )
  })
