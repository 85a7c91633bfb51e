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

/**
 * Moves the test clock on, step by step, until `check` holds; dies, naming `what`, if it does not after `maxSteps`. For
 * a state that a program under the clock reaches through real work (a database's answer, a socket's): one move of
 * the clock wakes every sleep due within it before that work is done, so a loaded machine's program sleeps again
 * after the move and is left behind; steps with real time between them let it catch up.
 */
export const until = (what: string, steps: Steps) => <E, R>(check: Effect.Effect<boolean, E, R>) =>
  Effect.gen(function*() {
    for (let step = 0; step < steps.maxSteps; step++) {
      if (yield* check) return
      yield* TestClock.adjust(steps.step)
      if (steps.realPause !== undefined) yield* TestServices.provideLive(Effect.sleep(steps.realPause))
    }
    if (yield* check) return
    return yield* Effect.dieMessage(`not reached after ${steps.maxSteps} steps: ${what}`)
  })
