/**
 * One sync per workspace, across processes, held in the database itself.
 *
 * - PostgreSQL: a session-level advisory lock on a connection of the pool, kept from the try that took it to the run's
 *   end (a try that finds it busy gives its connection back). A process that dies closes its connection, and the
 *   server releases the lock with it. A watchdog asks the connection for a sign of life, since a lock whose session
 *   ended is gone.
 * - SQLite: a lease row (holder, host, pid, expiry) that a heartbeat renews. A lease past its expiry may be taken over;
 *   one held on this host (its hostname and PID namespace) by a process that no longer exists may be taken over at once.
 *
 * The fence: every write of a run goes through `Held.transaction`, which commits only while the lock is held, so a
 * holder that lost its lock (frozen while its session was cut, or stalled past its lease) cannot write once another
 * has taken over, even between two of the watchdog's checks. In PostgreSQL the transaction runs on the lock's own
 * session: a session that ended holds no lock and runs no statement, and a session that commits still holds it. In
 * SQLite the lease is renewed first thing in the transaction, which takes the database's write lock until it ends.
 *
 * Waiting polls on the Effect `Clock`, so a wait is interruptible, reported, and testable under the TestClock.
 */
import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Progress, type Resource } from "@intercom-scroll/core"
import { Clock, Duration, Effect, Schedule, type Scope } from "effect"
import { explain, LockLost, LockTimeout, type SessionPooled, type TableLocked } from "../SyncError.js"
import type { Dialect } from "./dialect.js"
import { advisory } from "./lock/advisory.js"
import { isSqlError, type LostReason, type Unanswered } from "./lock/kind.js"
import { workspaceKey } from "./lock/keys.js"
import { lease } from "./lock/lease.js"
import { isBusy } from "./lock/sqliteBusy.js"

// The lock's parts, one concept a module under `./lock/`; what the rest of the package uses of them.
export { advisory } from "./lock/advisory.js"
export { silenceCheckEvery } from "./lock/aside.js"
export { checkSessions } from "./lock/checkSessions.js"
export { Unanswered } from "./lock/kind.js"
export { advisoryNamespace, migrationsKey, workspaceKey } from "./lock/keys.js"
export { heartbeatInterval, hostIdentity, leaseDuration } from "./lock/lease.js"
export { withMigrationsLock } from "./lock/migrationsLock.js"
export { unansweredLimit } from "./lock/silenceWatch.js"
export { whileBusy } from "./lock/sqliteBusy.js"

export interface Held {
  /**
   * Fails once the lock is found lost; never succeeds. Race the run against it: it stops a holder that lost its lock
   * while it does not write (waiting out another scroll, say), and so frees Intercom's one scroll sooner.
   */
  readonly lost: Effect.Effect<never, LockLost | SessionPooled>
  /**
   * Runs `effect` (its statements through the `SqlClient`) in one transaction that commits only while the lock is
   * held, and fails with `LockLost` when it is not: the fence every write of a run goes through. `committed` takes
   * what `effect` returned once its transaction has committed, in the same uninterruptible step as the COMMIT: an
   * interruption that comes while it commits is heard after, and so never loses what a committed transaction wrote
   * from what the run counts of it.
   */
  readonly transaction: <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    committed?: (value: A) => Effect.Effect<void>
  ) => Effect.Effect<A, E | LockLost | SessionPooled | TableLocked | SqlError, R>
  /**
   * Runs `effect` (its statements through the `SqlClient`) on another connection than the lock's, as the run's record
   * once the lock is lost: in PostgreSQL on a connection of the pool that is closed, not given back, when it does not
   * answer within `silenceCheckEvery` (`Unanswered`), since the path that silenced the lock's may silence it too.
   */
  readonly aside: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | Unanswered | SqlError, R>
  /**
   * The run is stopping (interrupted): in PostgreSQL a statement of the lock's that waits while the server answers
   * nothing is cut now rather than after `unansweredLimit`, since its answer is of no use and the run's end waits
   * behind it.
   */
  readonly stop: Effect.Effect<void>
}

export interface Options {
  readonly workspace: string
  /** Reported while waiting. */
  readonly resource: Resource.Resource
  /** Give up after this long; undefined waits as long as it takes. */
  readonly timeout: Duration.Duration | undefined
  /**
   * PostgreSQL: the `lock_timeout` of the run's transactions, in milliseconds (0: none), so that a statement blocked by
   * another session's lock on the tables fails with `TableLocked` instead of waiting without end. Default 0.
   */
  readonly tableLockTimeoutMillis?: number | undefined
  /**
   * PostgreSQL: how long the server may answer nothing at all, on any connection, while a statement of the lock's waits
   * for its answer, before the run gives up with `LockLost`. Default `unansweredLimit` (2 minutes).
   */
  readonly unansweredLimit?: Duration.Duration | undefined
}

/** How often a waiting sync tries again. */
export const pollInterval = Duration.seconds(1)

/**
 * Takes the workspace's lock for the life of the scope, waiting while another sync holds it (reported to `Progress`
 * as a `workspace-lock` wait), and failing with `LockTimeout` once `timeout` has passed.
 */
export const acquire = (
  sql: SqlClient.SqlClient,
  dialect: Dialect,
  options: Options
): Effect.Effect<Held, LockTimeout | LockLost | SessionPooled | SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const lock = dialect === "pg"
      ? yield* advisory(
        sql,
        workspaceKey(options.workspace),
        options.workspace,
        options.tableLockTimeoutMillis ?? 0,
        options.unansweredLimit
      )
      : lease(sql, options.workspace)
    const lost = (because: LostReason) => new LockLost({ workspace: options.workspace, ...because })
    const lostFor = (detail: string) =>
      Effect.flatMap(lock.lostReason, (because) => Effect.fail(lost({ ...because, reason: `${because.reason}: ${detail}` })))
    // Before the first try, not after the last: a try interrupted while its statement was on its way may have taken
    // the lock (PostgreSQL grants it whether or not anyone reads the answer), and the connection would go back to the
    // pool holding it. Releasing a lock not held does nothing.
    yield* Effect.addFinalizer(() => Effect.ignore(lock.release))
    const first = yield* Effect.either(lock.tryTake)
    if (first._tag === "Left") {
      if (first.left._tag !== "Busy") return yield* first.left
      const progress = yield* Progress.Progress
      const startedAt = yield* Clock.currentTimeMillis
      const untilMillis = options.timeout === undefined ? undefined : startedAt + Duration.toMillis(options.timeout)
      const schedule = options.timeout === undefined
        ? Schedule.spaced(pollInterval)
        : Schedule.spaced(pollInterval).pipe(Schedule.upTo(options.timeout))
      yield* progress.report(Progress.ProgressEvent.Waiting({ resource: options.resource, reason: "workspace-lock", untilMillis }))
      yield* lock.tryTake.pipe(
        Effect.retry({ schedule, while: (error) => error._tag === "Busy" }),
        Effect.catchTag("Busy", () =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            new LockTimeout({ workspace: options.workspace, waitedMillis: now - startedAt }))),
        Effect.ensuring(progress.report(Progress.ProgressEvent.Resumed({ resource: options.resource })))
      )
    }
    // A statement that failed because its session ended (PostgreSQL) failed because the lock is gone.
    const failedBecause = (error: SqlError): Effect.Effect<never, SqlError | LockLost | SessionPooled> =>
      Effect.flatMap(
        Effect.either(lock.stillHeld),
        (held): Effect.Effect<never, SqlError | LockLost | SessionPooled> =>
          held._tag === "Left" && held.left._tag === "SessionPooled"
            ? Effect.fail(held.left)
            : (held._tag === "Right" && held.right) || (held._tag === "Left" && isBusy(held.left))
            ? Effect.fail(error)
            : lostFor(explain(error))
      )
    return {
      // Checked first after `checkEvery`: the lock was just taken, and writes are fenced meanwhile. Uninterruptible,
      // so that a run that ends mid-check never has the check cancelled on a session that its next statement uses.
      lost: Effect.flatMap(
        Effect.repeat(Effect.delay(Effect.uninterruptible(lock.stillHeld), lock.checkEvery), { while: (held) => held }),
        () => Effect.flatMap(lock.lostReason, (because) => Effect.fail(lost(because)))
      ).pipe(Effect.catchTag("SqlError", (error) =>
        // Still busy after a minute of asking, longer than a lease lasts: another sync may have taken it over by now.
        isBusy(error)
          ? Effect.fail(lost({ reason: `SQLite stayed busy for a minute, longer than a lease lasts: ${explain(error)}`, unanswered: false }))
          : lostFor(explain(error)))),
      transaction: <A, E, R>(
        effect: Effect.Effect<A, E, R>,
        committed?: (value: A) => Effect.Effect<void>
      ): Effect.Effect<A, E | LockLost | SessionPooled | TableLocked | SqlError, R> =>
        Effect.catchIf(lock.transaction(effect, committed), isSqlError, failedBecause),
      aside: lock.aside,
      stop: lock.stop
    } satisfies Held
  })

