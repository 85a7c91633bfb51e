/**
 * What a scroll is doing, for a progress bar: a `Progress` reporter in the context receives events, and a
 * `Tracker` folds them into a snapshot a renderer can poll or subscribe to. Without one, events go nowhere.
 *
 * @example
 * import { Progress, Scroll } from "@intercom-scroll/core"
 * import { Effect, Stream } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const tracker = yield* Progress.makeTracker
 *   // Log the snapshot each time it changes, for as long as the scroll runs.
 *   yield* tracker.snapshot.changes.pipe(
 *     Stream.runForEach((snapshot) => Effect.log(`${snapshot.records} records, ${snapshot.restarts} restarts`)),
 *     Effect.fork
 *   )
 *   yield* Stream.runDrain(Scroll.users()).pipe(Effect.provideService(Progress.Progress, tracker.reporter))
 * })
 *
 * @since 0.1.0
 */
import { Context, Data, Effect, SubscriptionRef } from "effect"
import type { Resource } from "./Resource.js"

/**
 * Why a scroll is idle:
 *
 * - `rate-limit`: Intercom's rate limit, paced ahead of it or after a 429;
 * - `concurrent-scroll`: another scroll of the workspace is open on Intercom's side (another app's, or a scroll this
 *   tool cut short in another process, which Intercom keeps about a minute after its last use);
 * - `own-scroll`: the open scroll is one this process cut short (interrupted, stopped early or failed after it opened),
 *   which Intercom keeps about a minute after its last use;
 * - `restart`: the backoff before starting over from the first page, after a scroll broke off;
 * - `retry`: the backoff before asking again for a first page that failed, so that the scroll did not open;
 * - `connect`: the short pause before trying again to connect to an API that could not be reached;
 * - `workspace-lock`: another scroll of the workspace in this process, which goes first.
 *
 * @since 0.1.0
 * @category models
 */
export type WaitReason =
  | "rate-limit"
  | "concurrent-scroll"
  | "own-scroll"
  | "restart"
  | "retry"
  | "connect"
  | "workspace-lock"

/**
 * @since 0.1.0
 * @category models
 */
export type ProgressEvent = Data.TaggedEnum<{
  /** A page went out to the consumer: `records` after dedupe, `received` as Intercom sent them. */
  Page: { readonly resource: Resource; readonly attempt: number; readonly page: number; readonly records: number; readonly received: number }
  /** The scroll starts over from the first page, after it broke off. `cause` says what happened (an error's `problem`). */
  Restart: { readonly resource: Resource; readonly attempt: number; readonly cause: string }
  /**
   * The first page is asked for again: it failed, so the scroll did not open, and nothing starts over. Not a restart,
   * though the `restart` schedule decides it. `cause` says what happened (an error's `problem`).
   */
  Retry: { readonly resource: Resource; readonly attempt: number; readonly cause: string }
  /**
   * The scroll waits, until the given UNIX milliseconds when known. For `concurrent-scroll` and `own-scroll` that is
   * when the `concurrentScroll` schedule would give up (the default's and `Scroll.waitForOtherScroll`'s; a schedule of
   * your own is not stepped ahead, so its end is not known): the wait ends sooner once the other scroll is gone.
   */
  Waiting: { readonly resource: Resource; readonly reason: WaitReason; readonly untilMillis: number | undefined }
  /** The wait is over. */
  Resumed: { readonly resource: Resource }
  /**
   * The scroll reached its end: Intercom's empty page, after every page went out to the consumer. The workspace's
   * scroll is closed on Intercom's side then, so the next scroll of the workspace need not wait for it. Reported once,
   * and only then: not when the consumer stops early (`Stream.take`), on a failure or an interruption; after a restart,
   * when the restarted scroll ends.
   */
  End: { readonly resource: Resource }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const ProgressEvent = Data.taggedEnum<ProgressEvent>()

/**
 * @since 0.1.0
 * @category models
 */
export interface Reporter {
  readonly report: (event: ProgressEvent) => Effect.Effect<void>
}

/**
 * Where a scroll reports its progress. Defaults to nowhere.
 *
 * @since 0.1.0
 * @category tags
 */
export class Progress extends Context.Reference<Progress>()("@intercom-scroll/core/Progress", {
  defaultValue: (): Reporter => ({ report: () => Effect.void })
}) {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly records: number
  readonly pages: number
  readonly restarts: number
  /** Times the scroll held back for the rate limit: paced ahead of it, or after a 429. */
  readonly rateLimitWaits: number
  /**
   * The last wait reported and not over yet. Of several scrolls, the last one's to report: another's `Page` or
   * `Resumed` clears it while this one still waits, since an event does not say which scroll it comes from.
   */
  readonly waiting: { readonly reason: WaitReason; readonly untilMillis: number | undefined } | undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const empty: Snapshot = { records: 0, pages: 0, restarts: 0, rateLimitWaits: 0, waiting: undefined }

/**
 * Folds one event into a snapshot.
 *
 * @since 0.1.0
 * @category combinators
 */
export const update = (snapshot: Snapshot, event: ProgressEvent): Snapshot =>
  ProgressEvent.$match(event, {
    Page: ({ records }) => ({ ...snapshot, records: snapshot.records + records, pages: snapshot.pages + 1, waiting: undefined }),
    Restart: () => ({ ...snapshot, restarts: snapshot.restarts + 1 }),
    Retry: () => snapshot,
    Waiting: ({ reason, untilMillis }) => ({
      ...snapshot,
      rateLimitWaits: snapshot.rateLimitWaits + (reason === "rate-limit" ? 1 : 0),
      waiting: { reason, untilMillis }
    }),
    Resumed: () => ({ ...snapshot, waiting: undefined }),
    // Nothing to count: the counts are whole already, and a tracker shared by several scrolls has no one end.
    End: () => snapshot
  })

/**
 * A reporter and the snapshot it keeps up to date. Several scrolls may share one tracker: their counts add up, and
 * `waiting` is the last writer's (a tracker per scroll shows each one's waits).
 *
 * @since 0.1.0
 * @category models
 */
export interface Tracker {
  readonly reporter: Reporter
  readonly snapshot: SubscriptionRef.SubscriptionRef<Snapshot>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const makeTracker: Effect.Effect<Tracker> = Effect.map(
  SubscriptionRef.make(empty),
  (snapshot) => ({
    snapshot,
    reporter: { report: (event) => SubscriptionRef.update(snapshot, (current) => update(current, event)) }
  })
)
