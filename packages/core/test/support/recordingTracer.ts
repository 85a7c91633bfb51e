/**
 * A tracer that keeps every span it starts, over the current one, so that tests can read names, attributes, events
 * and how each span ended.
 */
import { Effect, Tracer } from "effect"

export interface Recording {
  readonly tracer: Tracer.Tracer
  readonly spans: ReadonlyArray<Tracer.Span>
}

export const recordingTracer: Effect.Effect<Recording> = Effect.map(Effect.tracer, (base) => {
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (...args) => {
      const span = base.span(...args)
      spans.push(span)
      return span
    },
    context: base.context
  })
  return { tracer, spans }
})
