import { Clock, Effect, Option, type Schedule, ScheduleDecision, ScheduleIntervals } from "effect"

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
   * for ever). A jittered schedule is stepped with other draws than its real waits, so the time is near, not exact.
   */
  readonly giveUpAt: (input: In, fromMillis: number) => Effect.Effect<number | undefined>
}

/** Steps a schedule is followed for, and how far ahead, before it counts as endless. */
const MAX_STEPS = 10_000
const HORIZON_MILLIS = 24 * 60 * 60 * 1000

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
    Effect.gen(function*() {
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
