/**
 * Counters every sync run updates, tagged with `resource` (and with what each counts: `change`, `status`). They add up
 * over the runs of every workspace of the process (a fleet's runner, a cron job): a workspace is a span attribute, not
 * a metric tag, so that their number stays that of the resources. Read them with `Metric.value`, or export them
 * through an OpenTelemetry metrics layer (`intercom-scroll` does, with `OTEL_EXPORTER_OTLP_ENDPOINT`).
 *
 * @example
 * import { Sync, SyncMetrics } from "@intercom-scroll/sync"
 * import { Effect, Metric } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   yield* Sync.run("users", { workspace: "acme" })
 *   const deleted = yield* Metric.value(SyncMetrics.rowsChanged("users", "deleted"))
 *   const failed = yield* Metric.value(SyncMetrics.runsEnded("users", "failed"))
 *   yield* Effect.log(`${deleted.count} users marked deleted, ${failed.count} failed runs`)
 * })
 *
 * @since 0.1.0
 */
import type { Resource } from "@intercom-scroll/core"
import { Metric } from "effect"

/**
 * Records a run wrote or confirmed, by `change`: `inserted`, `updated` and `unchanged` as each page is written (so a
 * run that fails part-way has counted what it wrote), `deleted` when a complete run marks the rest deleted.
 *
 * @since 0.1.0
 * @category metrics
 */
export const rows = Metric.counter("intercom_sync_rows", {
  description: "Rows a sync run inserted, updated, found unchanged or marked deleted, by change",
  incremental: true
})

/**
 * Runs that ended, by `status`: `complete` (the scroll reached its end and the deletions were marked), `interrupted`
 * (stopped from outside and by nothing else: a fleet's workspace moving, a runner stopping, a Ctrl-C) or `failed`
 * (anything else). Neither of the last two marked anything deleted. Alert on `failed`: a deploy interrupts.
 *
 * @since 0.1.0
 * @category metrics
 */
export const runs = Metric.counter("intercom_sync_runs", {
  description: "Sync runs that ended, by status (complete, interrupted or failed)",
  incremental: true
})

/**
 * What a change to the rows of a resource counts as.
 *
 * @since 0.1.0
 * @category models
 */
export type Change = "inserted" | "updated" | "unchanged" | "deleted"

/**
 * How a run ended.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "complete" | "interrupted" | "failed"

/**
 * `rows`, for one resource and one change.
 *
 * @since 0.1.0
 * @category metrics
 */
export const rowsChanged = (resource: Resource.Resource, change: Change): Metric.Metric.Counter<number> =>
  rows.pipe(Metric.tagged("resource", resource), Metric.tagged("change", change))

/**
 * `runs`, for one resource and one status.
 *
 * @since 0.1.0
 * @category metrics
 */
export const runsEnded = (resource: Resource.Resource, status: Status): Metric.Metric.Counter<number> =>
  runs.pipe(Metric.tagged("resource", resource), Metric.tagged("status", status))
