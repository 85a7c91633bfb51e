import { Effect, type Tracer } from "effect"

/**
 * `Effect.withSpan` for an effect whose value is large, such as a page. The span ends with the outcome, but not the
 * value: Effect's tracer keeps the exit in the ended span, and a span that lived long enough to reach the old
 * generation (a request takes a while) then pins the page through every minor GC until a full one. At full speed
 * that was a scroll's largest cost after JSON.parse.
 */
export const withSpanKeepingNoValue = (name: string, options: Tracer.SpanOptions) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    let value: A | undefined
    return self.pipe(
      Effect.map((a) => {
        value = a
      }),
      Effect.withSpan(name, options),
      Effect.map(() => value as A)
    )
  })
