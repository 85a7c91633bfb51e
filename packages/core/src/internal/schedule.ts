import { Clock, Effect, Option, type Schedule, ScheduleDecision, ScheduleIntervals } from "effect"
import { globalValue } from "effect/GlobalValue"

/**
 * Steps a schedule as `Schedule.driver` does, but tells when each wait ends before it begins, so that it can be
 * reported, and how long the schedule would go on waiting (`giveUpAt`).
 */
export interface Driver<In> {
  /** The end of the next wait, in UNIX milliseconds on the clock; none once the schedule is done. */
  readonly next: (input: In) => Effect.Effect<Option.Option<number>>
  /**
   * When the schedule would give up if every attempt from `fromMillis` on failed with `input` at once: stepped from its
   * current state on a clock of its own, without waiting. Undefined for a schedule that goes on for more than a day (or
   * for ever), and for one not made `withoutEffects`: a step is an effect (a user's `Schedule.tapInput` logs, counts,
   * draws), and stepping ahead would run it once for every step, thousands of times a wait.
   */
  readonly giveUpAt: (input: In, fromMillis: number) => Effect.Effect<number | undefined>
}

/** Steps a schedule is followed for, and how far ahead, before it counts as endless. */
const MAX_STEPS = 10_000
const HORIZON_MILLIS = 24 * 60 * 60 * 1000

/** The schedules made here whose steps have no effects, which `giveUpAt` may step ahead of time. */
const effectFree = globalValue(
  Symbol.for("@intercom-scroll/core/internal/schedule/effectFree"),
  () => new WeakSet<Schedule.Schedule<unknown, never>>()
)

/** Notes that `schedule`'s steps have no effects (it is built of `spaced`, `recurs`, `upTo` and the like, no taps). */
export const withoutEffects = <Out, In>(schedule: Schedule.Schedule<Out, In>): Schedule.Schedule<Out, In> => {
  effectFree.add(schedule)
  return schedule
}

export const driver = <In>(schedule: Schedule.Schedule<unknown, In>): Driver<In> => {
  let state: unknown = schedule.initial

  const next = (input: In) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.map(schedule.step(now, input, state), ([nextState, , decision]) => {
        state = nextState
        return ScheduleDecision.isDone(decision)
          ? Option.none()
          : Option.some(Math.max(now, ScheduleIntervals.start(decision.intervals)))
      }))

  const giveUpAt = (input: In, fromMillis: number) =>
    !effectFree.has(schedule) ? Effect.succeed(undefined) : Effect.gen(function*() {
      let at = fromMillis
      let stepped: unknown = state
      for (let step = 0; step < MAX_STEPS && at - fromMillis <= HORIZON_MILLIS; step++) {
        const [nextState, , decision] = yield* schedule.step(at, input, stepped)
        if (ScheduleDecision.isDone(decision)) return at
        stepped = nextState
        at = Math.max(at, ScheduleIntervals.start(decision.intervals))
      }
      return undefined
    })

  return { next, giveUpAt }
}
