/**
 * How long a stopped process may take to stop. A signal interrupts the program, whose finalizers then run: an export
 * removes its temporary file in milliseconds, a fleet runner lets its syncs finish for up to its termination timeout
 * (15 s, or its `--termination-timeout`). One that waits on what never comes (a runner stopped while PostgreSQL is down: @effect/cluster
 * releases its shards only once the lock storage answers again) would otherwise outlive the signal until a SIGKILL.
 *
 * @since 0.1.0
 */
import { Duration, Effect, type Scope } from "effect"
import type * as ExitCode from "./exitCode.js"
import { maxTimerMillis } from "./timer.js"

/**
 * Well past the runner's termination timeout (15 s), with room for the syncs it stops to record themselves on a loaded
 * machine (a process that needs it is stuck, not slow).
 *
 * @since 0.1.0
 * @category constants
 */
export const graceMillis = 60_000

/** What `graceMillis` leaves past the cluster's default termination timeout, for what stops after the syncs. */
const pastTermination = graceMillis - 15_000

/** The grace of a stop now: `graceMillis`, or longer while a runner given a longer termination timeout serves. */
let current = graceMillis

/**
 * While the scope lives, a stop may take `terminationTimeout` (a `fleet runner --termination-timeout`: its syncs may
 * run on that long after the signal) and the room `graceMillis` leaves past the default 15 s; never less than
 * `graceMillis`, nor more than a timer waits. Without it, a runner given an hour was exited 60 s after SIGTERM, its syncs cut.
 *
 * @since 0.1.0
 * @category stopping
 */
export const allowing = (terminationTimeout: Duration.Duration): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const before = current
      current = Math.max(before, Math.min(maxTimerMillis, Duration.toMillis(terminationTimeout) + pastTermination))
      return before
    }),
    (before) => Effect.sync(() => void (current = before))
  )

/**
 * How long after the first stop signal another one is the user's own, pressed again to stop at once; sooner, it is a
 * copy of the first (a terminal's Ctrl-C reaches the process and a parent such as pnpm, which passes its own on).
 *
 * @since 0.1.0
 * @category constants
 */
export const againAfterMillis = 2_000

/**
 * What arming the deadline needs of the process, so that a test can stand in for it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Process {
  readonly setTimeout: (run: () => void, millis: number) => { unref(): unknown }
  readonly writeStderr: (text: string) => void
  readonly exit: (code: number) => void
  /** A monotonic clock, in milliseconds. */
  readonly now: () => number
}

/**
 * After the stop `signal`, exits with `code` if the process is still there `millis` later (the grace of a stop now:
 * `graceMillis`, or what `allowing` gave), saying so. The timer does not keep the process alive: one that stops in
 * time exits as it would have. Returns what to do with a stop signal that comes after it: one `againAfterMillis` or
 * more later exits at once, with `code` (a runner given `--termination-timeout 10m` could otherwise be stopped from a
 * terminal only by SIGKILL); a copy of the first changes nothing.
 *
 * @since 0.1.0
 * @category stopping
 */
export const arm = (
  signal: ExitCode.StopSignal,
  code: number,
  process: Process,
  millis: number = current
): (again: ExitCode.StopSignal) => void => {
  const armedAt = process.now()
  process.setTimeout(() => {
    process.writeStderr(
      `Stopped: still stopping ${millis / 1000} s after ${signal}; exiting without the rest of its cleanup.\n`
    )
    process.exit(code)
  }, millis).unref()
  return (again) => {
    const after = process.now() - armedAt
    if (after < againAfterMillis) return
    process.writeStderr(
      `Stopped at once: ${again} ${(after / 1000).toFixed(1)} s after ${signal}; exiting without the rest of its cleanup.\n`
    )
    process.exit(code)
  }
}
