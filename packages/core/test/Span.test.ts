import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, type Tracer } from "effect"
import { withSpanKeepingNoValue } from "../src/internal/span.js"
import { recordingTracer } from "./support/recordingTracer.js"

const page = { records: Array.from({ length: 100 }, (_, i) => ({ id: String(i) })) }

describe("withSpanKeepingNoValue", () => {
  it.effect("returns the value, and ends its span with the outcome but without the value", () =>
    Effect.gen(function*() {
      const { spans, tracer } = yield* recordingTracer
      const value = yield* Effect.succeed(page).pipe(
        withSpanKeepingNoValue("fetch", { attributes: { page: 1 } }),
        Effect.withTracer(tracer)
      )
      expect(value).toBe(page)
      const [span] = spans
      expect(span.name).toBe("fetch")
      expect(span.attributes.get("page")).toBe(1)
      // Effect's tracer keeps the exit in the ended span: it must not hold the page.
      expect(span.status._tag === "Ended" && span.status.exit).toEqual(Exit.void)
    }))

  it.effect("ends its span with the failure when the effect fails", () =>
    Effect.gen(function*() {
      const { spans, tracer } = yield* recordingTracer
      const exit = yield* Effect.fail("boom").pipe(withSpanKeepingNoValue("fetch", {}), Effect.withTracer(tracer), Effect.exit)
      expect(exit).toEqual(Exit.fail("boom"))
      const status = spans[0].status
      expect(status._tag === "Ended" && Exit.isFailure(status.exit)).toBe(true)
    }))

  it.effect("is the parent of the spans inside it", () =>
    Effect.gen(function*() {
      const { spans, tracer } = yield* recordingTracer
      yield* Effect.void.pipe(Effect.withSpan("inner"), withSpanKeepingNoValue("outer", {}), Effect.withTracer(tracer))
      const inner = spans.find((span) => span.name === "inner")
      const outer = spans.find((span) => span.name === "outer")
      expect(inner?.parent._tag === "Some" && (inner.parent.value as Tracer.Span).spanId).toBe(outer?.spanId)
    }))
})
