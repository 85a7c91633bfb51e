/**
 * What `acquire` needs of a kind of lock (PostgreSQL's advisory lock, SQLite's lease), and the failures they share.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Data, type Duration, type Effect, Predicate } from "effect"
import type { LockLost, SessionPooled, TableLocked } from "../../SyncError.js"

/** A statement on another connection of the pool that brought no answer in time (`Held.aside`). */
export class Unanswered extends Data.TaggedError("Unanswered")<{ readonly message: string }> {}

/** The lock is held by someone else right now. */
export class Busy extends Data.TaggedError("Busy") {}

/**
 * A statement's failure, by its tag and not its class, as `catchTag` tells errors: the driver's `SqlError` is of the
 * copy of `@effect/sql` the driver resolves, and where that is not this module's (an app whose packages were installed
 * with two; the CLI's bin until it bundled its SQLite driver with the rest) `instanceof` is false for every error.
 */
export const isSqlError = (error: unknown): error is SqlError => Predicate.isTagged(error, "SqlError")

/** Why a lock is lost, in words, and whether because the server answered nothing at all (`LockLost.unanswered`). */
export interface LostReason {
  readonly reason: string
  readonly unanswered: boolean
}

export interface Lock {
  readonly tryTake: Effect.Effect<void, Busy | LockLost | SessionPooled | SqlError>
  /** Whether the lock is still ours; in SQLite, renews the lease. */
  readonly stillHeld: Effect.Effect<boolean, SessionPooled | SqlError>
  readonly checkEvery: Duration.Duration
  /** Why the lock is lost, once it is. */
  readonly lostReason: Effect.Effect<LostReason>
  readonly release: Effect.Effect<void, SqlError>
  /**
   * A transaction that commits only while the lock is held (see the module's comment); `committed`, with what it
   * returned, once it has committed, before an interruption is heard (`Held.transaction`).
   */
  readonly transaction: <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    committed?: (value: A) => Effect.Effect<void>
  ) => Effect.Effect<A, E | LockLost | SessionPooled | TableLocked | SqlError, R>
  /**
   * Runs `effect` on another connection than the lock's, bounded where that connection may go silent too (see
   * `Held.aside`).
   */
  readonly aside: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | Unanswered | SqlError, R>
  /** The run is stopping: a statement of the lock's left unanswered by a silent server is cut now (`Held.stop`). */
  readonly stop: Effect.Effect<void>
}
