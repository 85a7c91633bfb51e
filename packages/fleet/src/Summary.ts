/**
 * What a finished sync of one resource reports back to whoever sent the `Sync`: the sync package's `Sync.Summary`
 * (the run's id, what it inserted, updated, left unchanged and marked deleted, its restarts and duration), as a
 * Schema, since the answer crosses processes.
 *
 * @example
 * ```ts
 * import type { Summary } from "@intercom-scroll/fleet"
 *
 * const line = (summary: Summary.Summary) =>
 *   `${summary.resource}: ${summary.inserted} new, ${summary.updated} changed, ${summary.deleted} deleted (run ${summary.runId})`
 * ```
 *
 * @since 0.1.0
 */
import { Resource } from "@intercom-scroll/core"
import type { Sync } from "@intercom-scroll/sync"
import { Schema } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export type Summary = Sync.Summary

const fields = Schema.Struct({
  runId: Schema.Number,
  workspace: Schema.String,
  resource: Resource.Resource,
  inserted: Schema.Number,
  updated: Schema.Number,
  unchanged: Schema.Number,
  deleted: Schema.Number,
  restarts: Schema.Number,
  duration: Schema.Duration,
  app: Schema.NullOr(Schema.String)
})

/**
 * `Sync.Summary` as it crosses processes. Typed as exactly that type (a Schema's type is invariant), so a field the
 * sync package adds to its summary, or changes, fails to compile here until the schema follows.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Summary: Schema.Schema<Sync.Summary, typeof fields.Encoded> = fields
