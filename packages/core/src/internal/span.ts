import { Effect, type Tracer } from "effect"

/**
 * `Effect.withSpan` for an effect that runs once a page and whose value is large (the page). The span ends with the
 * outcome, but not the value: Effect's tracer keeps the exit in the ended span, and a span that lived long enough to
 * reach the old generation (a request takes a while) then pins the page through every minor GC until a full one.
 *
 * No stack trace is captured: it would always point at the same line, and capturing one costs on every page.
 */
export const withSpanKeepingNoValue = (name: string, options: Omit<Tracer.SpanOptions, "captureStackTrace">) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    let value: A | undefined
    return self.pipe(
      Effect.map((a) => {
        value = a
      }),
      Effect.withSpan(name, { ...options, captureStackTrace: false }),
      Effect.map(() => value as A)
    )
  })
