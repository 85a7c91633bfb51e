/**
 * A test that hangs where no run alone does says where it hung: after a real time (not the TestClock's), the test dies
 * with what the test itself reports and, for each fiber forked under it (a layer's included), its status and the
 * spans it is in. Vitest's own timeout says only that the time ran out.
 */
import { type Duration, Effect, type Fiber, FiberId, Option, Supervisor, TestServices, type Tracer } from "effect"

/** Waits a real `duration`, whatever clock the test runs on (the live one, as `ClockSteps` waits). */
const realSleep = (duration: Duration.DurationInput): Effect.Effect<void> => TestServices.provideLive(Effect.sleep(duration))

/** The names of the spans a fiber is in, innermost first. */
const spans = (fiber: Fiber.RuntimeFiber<unknown, unknown>): Array<string> => {
  const names: Array<string> = []
  let span: Tracer.AnySpan | undefined = fiber.currentSpan
  while (span !== undefined && names.length < 12) {
    if (span._tag === "ExternalSpan") {
      names.push(`external ${span.spanId}`)
      break
    }
    names.push(span.name)
    span = Option.getOrUndefined(span.parent)
  }
  return names
}

/** Each fiber still alive: its id, status, what it waits on, and its spans. */
const dump = (fibers: ReadonlyArray<Fiber.RuntimeFiber<unknown, unknown>>): Effect.Effect<string> =>
  Effect.map(
    Effect.forEach(fibers, (fiber) =>
      Effect.map(fiber.status, (status) => {
        const on = status._tag === "Suspended" ? ` on ${FiberId.threadName(status.blockingOn)}` : ""
        return `#${fiber.id().id} ${status._tag}${on} in ${spans(fiber).join(" < ") || "no span"}`
      })),
    (lines) => lines.join("\n")
  )

/**
 * Runs `effect`; when it has not ended after a real `after`, dies with `report`'s words (bounded by a real second, in
 * case what it reads is what hangs) and a dump of the fibers forked under `effect`.
 */
export const within = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options: { readonly after: Duration.DurationInput; readonly report: Effect.Effect<string> }
): Effect.Effect<A, E, R> =>
  Effect.flatMap(Supervisor.track, (supervisor) =>
    Effect.raceFirst(
      // Disconnected: a hung effect may not end when interrupted either, and the report must not wait for it.
      Effect.disconnect(Effect.supervised(effect, supervisor)),
      Effect.gen(function*() {
        yield* realSleep(options.after)
        const report = yield* Effect.raceFirst(
          options.report,
          Effect.as(realSleep("1 second"), "(the report itself did not answer within a second)")
        )
        const fibers = yield* supervisor.value
        const message = `${report}\nfibers:\n${yield* dump(fibers)}`
        // Also on the console: a test that passes when vitest runs it again prints no error of its first attempt.
        console.error(`Watchdog: ${message}`)
        return yield* Effect.dieMessage(message)
      })
    ))
