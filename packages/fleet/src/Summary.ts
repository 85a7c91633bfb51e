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
 * `Sync.Summary`, but for `app`, which a summary sent by a runner of a version before it (e57f5d4 and earlier) lacks:
 * absent there, neither an app nor null (which says the run went unchecked), since that runner did not say; absent too
 * in the summary of a run its request completed before it moved, which a runner reads from the run's row (the row does
 * not keep it; its `duration` is the row's, `finished_at − started_at`); and with `cutBefore`, which the runner adds.
 *
 * @since 0.1.0
 * @category models
 */
export type Summary = Omit<Sync.Summary, "app"> & {
  readonly app?: string | null
  /**
   * The runs of this request's resource cut before the one summed up here (interrupted as the workspace moved or its
   * runner stopped, abandoned by a runner that died, failed on a lost lock), each synced again from the first page:
   * their rows in `intercom_sync_runs` have what they wrote, and `duration` is this last run's alone. Absent where the
   * runner did not say (a version before it, or its database did not answer the count).
   */
  readonly cutBefore?: number
}

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
  // Optional on the wire: a reply an older runner sent, or stored before an upgrade (a run's name sent again is answered
  // from storage), has no `app`, and a required one failed the whole reply with a ParseError though the sync was done.
  app: Schema.optionalWith(Schema.NullOr(Schema.String), { exact: true }),
  cutBefore: Schema.optionalWith(Schema.Number, { exact: true })
})

/**
 * `Sync.Summary` as it crosses processes, with the runner's `cutBefore`. Typed as exactly that type but for those two
 * (a Schema's type is invariant), so a field the sync package adds to its summary, or changes, fails to compile here
 * until the schema follows. A field added later is optional here, as `app` and `cutBefore` are: runners of the version
 * before do not send it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Summary: Schema.Schema<Summary, typeof fields.Encoded> = fields
