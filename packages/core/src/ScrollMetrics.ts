/**
 * Counters every scroll updates, tagged with `resource` (and `rateLimitWaits` with `kind` too). Read them with
 * `Metric.value`, or export them through an OpenTelemetry metrics layer.
 *
 * @example
 * import { Scroll, ScrollMetrics } from "@intercom-scroll/core"
 * import { Effect, Metric, Stream } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   yield* Stream.runDrain(Scroll.users())
 *   const records = yield* Metric.value(ScrollMetrics.forResource(ScrollMetrics.records, "users"))
 *   const restarts = yield* Metric.value(ScrollMetrics.forResource(ScrollMetrics.restarts, "users"))
 *   yield* Effect.log(`${records.count} users, ${restarts.count} restarts`)
 * })
 *
 * @since 0.1.0
 */
import { Metric } from "effect"
import type { Resource } from "./Resource.js"

/**
 * Records emitted to the consumer (after dedupe), counted a page at a time as each page is emitted: a consumer that
 * stops mid-page (`Stream.take`) has taken fewer.
 *
 * @since 0.1.0
 * @category metrics
 */
export const records = Metric.counter("intercom_scroll_records", {
  description: "Records a scroll emitted, after dedupe",
  incremental: true
})

/**
 * Pages of records received from Intercom, pages of records already emitted included (after a restart, with dedupe
 * on); the empty page that ends a scroll is not counted.
 *
 * @since 0.1.0
 * @category metrics
 */
export const pages = Metric.counter("intercom_scroll_pages", {
  description: "Pages of records a scroll received (not the empty page that ends it)",
  incremental: true
})

/**
 * Times a scroll started over from the first page.
 *
 * @since 0.1.0
 * @category metrics
 */
export const restarts = Metric.counter("intercom_scroll_restarts", {
  description: "Times a scroll started over from the first page",
  incremental: true
})

/**
 * Waits for Intercom's rate limit: after a 429, and paced waits when the budget ran low.
 *
 * @since 0.1.0
 * @category metrics
 */
export const rateLimitWaits = Metric.counter("intercom_scroll_rate_limit_waits", {
  description: "Waits for Intercom's rate limit, by kind (429 or paced)",
  incremental: true
})

/**
 * @since 0.1.0
 * @category combinators
 */
export const forResource = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>, resource: Resource) =>
  Metric.tagged(metric, "resource", resource)
