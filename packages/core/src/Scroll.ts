/**
 * Every user, lead and company of a workspace as a `Stream`.
 *
 * A scroll cannot be resumed: after a 5xx, a transport failure or an expired scroll_param it starts over from the
 * first page, as often as the `restart` schedule allows, and records already emitted are not emitted again. Pages
 * are fetched ahead of the consumer so a slow consumer does not let the scroll expire, and this process runs one
 * scroll per workspace at a time, as Intercom requires.
 *
 * @since 0.1.0
 */
import { Chunk, Effect, Metric, Option, Schedule, Stream } from "effect"
import { IntercomClient, type Service } from "./IntercomClient.js"
import * as IdSet from "./internal/idSet.js"
import { prefetch as fetchAhead } from "./internal/prefetch.js"
import { waiting } from "./internal/report.js"
import { withSpanKeepingNoValue } from "./internal/span.js"
import type { Company, Lead, RecordOf, User } from "./Models.js"
import { Progress, ProgressEvent } from "./Progress.js"
import type { Resource } from "./Resource.js"
import {
  type ConcurrentScroll,
  type Expired,
  InvalidResponse,
  isRestartable,
  type RestartRequired,
  type ScrollError
} from "./ScrollError.js"
import * as ScrollMetrics from "./ScrollMetrics.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * When to start over from the first page after `RestartRequired` or `Expired`. The budget holds across
   * attempts. Default: up to 5 restarts, exponential from 1 second with jitter. `Schedule.stop` never restarts.
   */
  readonly restart?: Schedule.Schedule<unknown, RestartRequired | Expired> | undefined
  /**
   * How to wait while another scroll of the workspace is open (`ConcurrentScroll`). Default: every 10 seconds,
   * up to 12 times (2 minutes): long enough for an abandoned scroll to expire.
   */
  readonly concurrentScroll?: Schedule.Schedule<unknown, ConcurrentScroll> | undefined
  /** After a restart, skip records already emitted (by id). Default true. */
  readonly dedupe?: boolean | undefined
  /** Pages fetched ahead of the consumer; 0 fetches only on demand. Default 1. */
  readonly prefetch?: number | undefined
}

/**
 * @since 0.1.0
 * @category schedules
 */
export const defaultRestart: Schedule.Schedule<unknown, RestartRequired | Expired> = Schedule.exponential("1 second")
  .pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(5)))

/**
 * @since 0.1.0
 * @category schedules
 */
export const defaultConcurrentScroll: Schedule.Schedule<unknown, ConcurrentScroll> = Schedule.spaced("10 seconds")
  .pipe(Schedule.intersect(Schedule.recurs(12)))

/**
 * A page as the consumer sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Page<R extends Resource> {
  readonly resource: R
  /** 1 for the first scroll, then one more per restart. */
  readonly attempt: number
  /** 1-based, within the attempt. */
  readonly page: number
  /** The page's records, less those already emitted when dedupe is on. */
  readonly records: ReadonlyArray<RecordOf<R>>
  /** How many records Intercom sent in the page. */
  readonly received: number
}

/**
 * One scroll from the first page to the empty one, with no restart.
 */
const scrollOnce = <R extends Resource>(
  client: Service,
  resource: R,
  attempt: number,
  concurrentScroll: Schedule.Schedule<unknown, ConcurrentScroll>
): Stream.Stream<Page<R>, ScrollError> =>
  Stream.suspend(() => {
    const fetch = (page: number, scrollParam: string | undefined) =>
      client.scrollPage(resource, { page, scrollParam }).pipe(
        Effect.tap((fetched) => Effect.annotateCurrentSpan("records", fetched.records.length)),
        withSpanKeepingNoValue("Scroll.page", { attributes: { resource, page, attempt } })
      )
    // A page that comes back exactly as before (same scroll_param, same records) means the server is looping.
    const fingerprints = new Set<string>()
    type State = { readonly page: number; readonly scrollParam: string | undefined } | undefined
    return Stream.unfoldEffect<State, Page<R>, ScrollError, never>(
      { page: 1, scrollParam: undefined },
      (state) => {
        if (state === undefined) return Effect.succeed(Option.none())
        const { page } = state
        const request = page === 1 ? waitForWorkspace(fetch(1, undefined), resource, concurrentScroll) : fetch(page, state.scrollParam)
        return Effect.flatMap(request, (fetched) => {
          const records = fetched.records
          // The end is an empty page; its scroll_param is already dead, so nothing more is asked.
          if (records.length === 0) return Effect.succeed(Option.none())
          const next = fetched.scrollParam
          if (next === undefined || next === "") {
            return new InvalidResponse({ resource, page, issue: "a page of records came without a scroll_param" })
          }
          const fingerprint = `${next}\n${records.length}\n${records[0].id}\n${records[records.length - 1].id}`
          if (fingerprints.has(fingerprint)) {
            return new InvalidResponse({
              resource,
              page,
              issue: "the server handed back the same scroll_param with the same records again, so the scroll would never end"
            })
          }
          fingerprints.add(fingerprint)
          const out: Page<R> = { resource, attempt, page, records, received: records.length }
          return Effect.succeed(Option.some([out, { page: page + 1, scrollParam: next }] as const))
        })
      }
    )
  })

/** Opens the scroll, waiting by `schedule` while another scroll holds the workspace on Intercom's side. */
const waitForWorkspace = <A>(
  open: Effect.Effect<A, ScrollError>,
  resource: Resource,
  schedule: Schedule.Schedule<unknown, ConcurrentScroll>
): Effect.Effect<A, ScrollError> =>
  Effect.flatMap(Schedule.driver(schedule), (driver) => {
    const attempt: Effect.Effect<A, ScrollError> = Effect.catchTag(open, "ConcurrentScroll", (error) =>
      driver.next(error).pipe(
        waiting(resource, "concurrent-scroll", undefined),
        Effect.matchEffect({ onFailure: () => Effect.fail(error), onSuccess: () => Effect.suspend(() => attempt) })
      ))
    return attempt
  })

/**
 * The pages of a scroll, with their page number and attempt, restarting and deduplicating as `options` say.
 *
 * @since 0.1.0
 * @category constructors
 */
export const pages = <R extends Resource>(
  resource: R,
  options: Options = {}
): Stream.Stream<Page<R>, ScrollError, IntercomClient> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const prefetch = options.prefetch ?? 1
    if (!Number.isInteger(prefetch) || prefetch < 0) {
      return yield* Effect.dieMessage(`Scroll option prefetch must be a whole number ≥ 0, got ${prefetch}`)
    }
    const client = yield* IntercomClient
    const progress = yield* Progress
    const concurrentScroll = options.concurrentScroll ?? defaultConcurrentScroll
    const records = ScrollMetrics.forResource(ScrollMetrics.records, resource)
    const pagesReceived = ScrollMetrics.forResource(ScrollMetrics.pages, resource)
    const restarts = ScrollMetrics.forResource(ScrollMetrics.restarts, resource)

    // One scroll per workspace in this process: wait for any other to finish first.
    const locked = yield* client.isWorkspaceLocked
    yield* locked ? waiting(resource, "workspace-lock", undefined)(client.lockWorkspace) : client.lockWorkspace

    // Created once, so the restart budget counts across attempts (Stream.retry would reset it on every element).
    const restartBudget = yield* Schedule.driver(options.restart ?? defaultRestart)
    const seen = (options.dedupe ?? true) ? IdSet.make() : undefined

    const attempt = (n: number): Stream.Stream<Page<R>, ScrollError> =>
      scrollOnce(client, resource, n, concurrentScroll).pipe(
        (stream) => prefetch > 0 ? fetchAhead(stream, prefetch) : stream,
        Stream.catchAll((error) => isRestartable(error) ? Stream.unwrap(restartAfter(error, n)) : Stream.fail(error))
      )

    const restartAfter = (error: RestartRequired | Expired, n: number) =>
      restartBudget.next(error).pipe(
        waiting(resource, "restart", undefined),
        Effect.matchEffect({
          onFailure: () => Effect.succeed(Stream.fail(error)),
          onSuccess: () =>
            Effect.logWarning(`Restarting the ${resource} scroll from the first page`).pipe(
              Effect.annotateLogs({ resource, attempt: n + 1, cause: error.message }),
              Effect.zipRight(Metric.increment(restarts)),
              Effect.zipRight(progress.report(ProgressEvent.Restart({ resource, attempt: n + 1, cause: error.message }))),
              Effect.as(attempt(n + 1))
            )
        })
      )

    const emit = (page: Page<R>): Effect.Effect<Page<R>> => {
      const fresh = seen === undefined ? page : { ...page, records: page.records.filter((record) => seen.add(record.id)) }
      return Metric.increment(pagesReceived).pipe(
        Effect.zipRight(Metric.incrementBy(records, fresh.records.length)),
        Effect.zipRight(progress.report(ProgressEvent.Page({
          resource,
          attempt: fresh.attempt,
          page: fresh.page,
          records: fresh.records.length,
          received: fresh.received
        }))),
        Effect.as(fresh)
      )
    }

    return Stream.mapEffect(attempt(1), emit)
  })).pipe(Stream.withSpan(`Scroll.pages`, { attributes: { resource } }))

const records = <R extends Resource>(resource: R, options: Options | undefined) =>
  pages(resource, options).pipe(
    Stream.mapConcatChunk((page) => Chunk.unsafeFromArray(page.records)),
    Stream.withSpan(`Scroll.${resource}`)
  )

/**
 * Every user (`/users/scroll`, API 1.x).
 *
 * @since 0.1.0
 * @category constructors
 */
export const users = (options?: Options): Stream.Stream<User, ScrollError, IntercomClient> => records("users", options)

/**
 * Every lead (`/contacts/scroll`, API 1.x).
 *
 * @since 0.1.0
 * @category constructors
 */
export const leads = (options?: Options): Stream.Stream<Lead, ScrollError, IntercomClient> => records("leads", options)

/**
 * Every company (`/companies/scroll`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const companies = (options?: Options): Stream.Stream<Company, ScrollError, IntercomClient> =>
  records("companies", options)
