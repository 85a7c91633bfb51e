/**
 * Drives a forked program under the TestClock to its end, step by step: for a program whose other side is real (sockets,
 * a database file), which the clock cannot move.
 */
import { type Duration, Effect, Fiber, TestClock, TestServices } from "effect"

export interface Steps {
  /** How far the clock moves each step. */
  readonly step: Duration.DurationInput
  readonly maxSteps: number
  /** Real time let pass each step, for a program whose other side is real sockets. */
  readonly realPause?: Duration.DurationInput
}

/** Moves the test clock on, step by step, until `fiber` is done; dies if it is not done after `maxSteps`. */
export const runToEnd = (steps: Steps) => <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  Effect.gen(function*() {
    for (let step = 0; step < steps.maxSteps; step++) {
      const done = yield* Fiber.poll(fiber)
      if (done._tag === "Some") return done.value
      yield* TestClock.adjust(steps.step)
      if (steps.realPause !== undefined) yield* TestServices.provideLive(Effect.sleep(steps.realPause))
    }
    return yield* Effect.dieMessage(`not done after ${steps.maxSteps} steps`)
  }).pipe(Effect.flatten)
