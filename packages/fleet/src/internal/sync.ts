/**
 * The fleet's one seam into the sync package: what a `Sync` message does for one resource of one workspace, and the
 * tables a runner needs before its first sync.
 *
 * TEMPORARY (stage 1 of #19). `@intercom-scroll/sync` is being written in parallel; until it lands, `run` scrolls
 * the resource through core and counts what it read, writing nothing, and `migrate` does nothing. Stage 2 replaces
 * the two bodies with `Sync.run(resource, options)` and `Sync.migrate` (mapping their errors into
 * `WorkspaceSyncError`), and `Summary` with the sync package's. The signatures below are the contract: the entity
 * calls nothing else, and provides exactly `IntercomClient | SqlClient`.
 *
 * @internal
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { IntercomClient, Resource, ScrollError } from "@intercom-scroll/core"
import { Scroll } from "@intercom-scroll/core"
import { Effect, Stream } from "effect"
import { Summary } from "../Summary.js"

export interface RunOptions {
  /** The workspace's name: the `workspace` column of its rows, and the key of the sync's own lock. */
  readonly workspace: string
}

/** Creates or upgrades the sync tables. TEMPORARY: nothing to create until the sync package lands. */
export const migrate: Effect.Effect<void, never, SqlClient> = Effect.void

/**
 * Syncs one resource of one workspace, from the first page to the last. TEMPORARY: a full scroll through core that
 * counts records, pages and restarts, and stores nothing.
 */
export const run = (
  resource: Resource.Resource,
  _options: RunOptions
): Effect.Effect<Summary, ScrollError.ScrollError, IntercomClient.IntercomClient | SqlClient> =>
  Scroll.pages(resource).pipe(
    Stream.runFold(
      { records: 0, pages: 0, attempts: 1 },
      (counts, page) => ({
        records: counts.records + page.records.length,
        pages: counts.pages + 1,
        attempts: Math.max(counts.attempts, page.attempt)
      })
    ),
    Effect.map(({ attempts, pages, records }) => new Summary({ resource, records, pages, restarts: attempts - 1 }))
  )
