import { Effect, Metric } from "effect"
import { Progress, ProgressEvent, type WaitReason } from "../Progress.js"
import type { Resource } from "../Resource.js"
import * as ScrollMetrics from "../ScrollMetrics.js"

/**
 * Reports a wait for as long as `effect` runs, and traces it as a span of its own (`Scroll.wait`), so that a trace
 * says why a request or a scroll took longer than its exchanges.
 */
export const waiting = (resource: Resource, reason: WaitReason, untilMillis: number | undefined) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Progress, (progress) =>
    progress.report(ProgressEvent.Waiting({ resource, reason, untilMillis })).pipe(
      Effect.zipRight(effect),
      Effect.ensuring(progress.report(ProgressEvent.Resumed({ resource })))
    )).pipe(Effect.withSpan("Scroll.wait", { attributes: { resource, reason }, captureStackTrace: false }))

/** Counts a rate-limit wait and reports it while it lasts. */
export const rateLimitWait = (resource: Resource, kind: "429" | "paced", untilMillis: number, millis: number) =>
  Metric.increment(Metric.tagged(ScrollMetrics.forResource(ScrollMetrics.rateLimitWaits, resource), "kind", kind)).pipe(
    Effect.zipRight(Effect.sleep(millis)),
    waiting(resource, "rate-limit", untilMillis)
  )
