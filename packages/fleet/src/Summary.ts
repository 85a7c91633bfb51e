/**
 * What a finished sync of one resource reports back to whoever sent the `Sync`.
 *
 * PROVISIONAL (stage 1 of #19): the sync package's own `Summary` takes this place once it lands.
 *
 * @example
 * ```ts
 * import { Summary } from "@intercom-scroll/fleet"
 *
 * const line = (summary: Summary.Summary) => `${summary.resource}: ${summary.records} records, ${summary.restarts} restarts`
 * ```
 *
 * @since 0.1.0
 */
import { Resource } from "@intercom-scroll/core"
import { Schema } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export class Summary extends Schema.Class<Summary>("@intercom-scroll/fleet/Summary")({
  resource: Resource.Resource,
  /** Records read, each once. */
  records: Schema.Number,
  pages: Schema.Number,
  /** Times the scroll started over from the first page. */
  restarts: Schema.Number
}) {}
