/**
 * Every user, lead and company of a workspace as a `Stream`.
 *
 * A scroll cannot be resumed: after a 5xx, a transport failure or an expired scroll_param it starts over from the
 * first page, as often as the `restart` schedule allows, and records already emitted are not emitted again. Pages
 * are fetched ahead of the consumer, so that the network works while it does (a consumer still takes each page within
 * about a minute, Intercom's life of a scroll_param), and this process runs one scroll per workspace at a time, as
 * Intercom requires.
 *
 * @example
 * import { Scroll } from "@intercom-scroll/core"
 * import { Console, Effect, Schema, Stream } from "effect"
 *
 * // The workspace's own attributes, typed and decoded: "seats" arrives as a string and comes out a number.
 * const Attributes = Schema.Struct({ plan_tier: Schema.optional(Schema.String), seats: Schema.NumberFromString })
 *
 * const program = Scroll.users({ customAttributes: Attributes, prefetch: 2 }).pipe(
 *   Stream.filter((user) => user.custom_attributes.seats > 10),
 *   Stream.runForEach((user) => Console.log(user.id, user.custom_attributes.plan_tier)),
 *   Effect.catchTag("InvalidCustomAttributes", (error) => Console.error(error.message))
 * )
 *
 * @since 0.1.0
 */
import { type Cause, Channel, Chunk, Clock, Duration, Effect, Either, Fiber, Metric, Option, Schedule, type Schema, Stream } from "effect"
import { type FetchedPage, IntercomClient, type Service } from "./IntercomClient.js"
import { internalsOf, type Internals, type ReceivedPage } from "./internal/client.js"
import * as CustomAttributes from "./internal/customAttributes.js"
import * as IdSet from "./internal/idSet.js"
import { forkAhead } from "./internal/sendAhead.js"
import { waiting } from "./internal/report.js"
import * as ScheduleDriver from "./internal/schedule.js"
import { withSpanKeepingNoValue } from "./internal/span.js"
import * as WorkspaceLock from "./internal/workspaceLock.js"
import type { Company, Lead, RecordOf, User } from "./Models.js"
import { Progress, ProgressEvent, type WaitReason } from "./Progress.js"
import type { Resource } from "./Resource.js"
import {
  ConcurrentScroll,
  type Expired,
  type InvalidCustomAttributes,
  InvalidResponse,
  isRestartable,
  type RestartRequired,
  type ScrollError,
  Unreachable
} from "./ScrollError.js"
import * as ScrollMetrics from "./ScrollMetrics.js"

/**
 * How a scroll restarts, waits, deduplicates, fetches ahead, and types custom attributes (as `A`, from `I` on the
 * wire).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<A = never, I = never> {
  /**
   * When to start over from the first page after `RestartRequired` or `Expired`, and when to ask again for a first
   * page that failed (a retry of a scroll that did not open, not counted as a restart). The budget holds across
   * attempts. Default: up to 5, exponential from 1 second with jitter. `Schedule.stop` never tries again.
   */
  readonly restart?: Schedule.Schedule<unknown, RestartRequired | Expired> | undefined
  /**
   * How to wait while another scroll of the workspace is open (`ConcurrentScroll`). Default: every 10 seconds,
   * up to 12 times (2 minutes): long enough for an abandoned scroll to expire. `waitForOtherScroll(wait)` waits longer
   * or shorter; a schedule of your own is stepped once a wait, effects and all, and its waits are reported without the
   * time they give up at.
   */
  readonly concurrentScroll?: Schedule.Schedule<unknown, ConcurrentScroll> | undefined
  /** After a restart, skip records already emitted (by id). Default true. */
  readonly dedupe?: boolean | undefined
  /**
   * Pages fetched ahead of the consumer; 0 fetches only on demand. Default 1. A number that is not a whole number of 0
   * or more is a mistake in the code, not in the data, so the stream dies with it rather than failing with a typed
   * error (the client's options, often read from configuration, are `InvalidOptions`).
   */
  readonly prefetch?: number | undefined
  /**
   * A schema of yours for the records' `custom_attributes`, which types them (`User<A>`) and decodes them: a
   * transformation such as `Schema.NumberFromString` gives its decoded value. Attributes the schema does not name stay
   * in the object, as received. An absent or null `custom_attributes` is decoded as `{}`. The record emitted is a
   * shallow copy whose `custom_attributes` is the decoded value; its other fields are the received ones. A record
   * whose attributes do not decode ends the stream with `InvalidCustomAttributes`, naming its id and the path.
   * Default: none, and custom attributes are left as received.
   */
  readonly customAttributes?: Schema.Schema<A, I> | undefined
}

/**
 * What a scroll fails with: `ScrollError`, and `InvalidCustomAttributes` when a `customAttributes` schema is given.
 *
 * @since 0.1.0
 * @category models
 */
export type Failure<A> = ScrollError | ([A] extends [never] ? never : InvalidCustomAttributes)

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
export const defaultConcurrentScroll: Schedule.Schedule<unknown, ConcurrentScroll> = ScheduleDriver.withoutEffects(
  Schedule.spaced("10 seconds").pipe(Schedule.intersect(Schedule.recurs(12)))
)

/**
 * A `concurrentScroll` schedule: waits up to `wait` for another scroll of the workspace to close on Intercom's side,
 * trying every 10 seconds (or sooner, for a shorter wait); zero or less gives up at once. Its waits are reported to
 * `Progress` with when they give up, as the default's are: its steps have no effects, so they can be taken ahead of
 * time. A schedule of your own is stepped only as the scroll waits (its steps may log, count or draw), and its waits
 * are reported without an end. Like Effect's own schedule constructors, it throws on an input that is no duration (a
 * mistake in the code: a duration read from configuration is a `Config.duration`, checked there).
 *
 * @example
 * ```ts
 * import { Scroll } from "@intercom-scroll/core"
 *
 * const users = Scroll.users({ concurrentScroll: Scroll.waitForOtherScroll("5 minutes") })
 * ```
 *
 * @since 0.1.0
 * @category schedules
 */
export const waitForOtherScroll = (wait: Duration.DurationInput): Schedule.Schedule<unknown, ConcurrentScroll> => {
  const total = Duration.decode(wait)
  const totalMillis = Duration.toMillis(total)
  return ScheduleDriver.withoutEffects<unknown, unknown>(
    Duration.lessThanOrEqualTo(total, Duration.zero)
      ? Schedule.stop
      : Schedule.spaced(Duration.min(total, Duration.seconds(10))).pipe(
        // The last try comes when `wait` is up, not at the next 10 s step past it (20 s for 15 s).
        Schedule.intersect(Schedule.elapsed),
        Schedule.modifyDelay(([, elapsed], delay) =>
          Duration.min(delay, Duration.millis(Math.max(0, totalMillis - Duration.toMillis(elapsed))))
        ),
        Schedule.upTo(total)
      )
  )
}

/**
 * How often to try again to connect before a scroll ever opened: twice, after half a second and after a second more.
 * Intercom's API hosts sit behind load balancers that accept connections even when the API fails (it answers 5xx
 * then), so a refused connection or an unknown host means a wrong base URL or region, or a proxy or simulator that is
 * down or still starting; a timeout or an unreachable network, a network not (yet) there. A short wait covers a server
 * coming up; a longer one would only delay the plain answer (`Unreachable`). A TLS failure (a certificate refused)
 * does not change by waiting and is not tried again. Once a scroll has opened, a failed connection is a transport
 * failure like any other, left to the `restart` schedule.
 */
const connectRetries: Schedule.Schedule<unknown, RestartRequired> = Schedule.exponential("500 millis")
  .pipe(Schedule.intersect(Schedule.recurs(2)))

/**
 * A page as the consumer sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Page<R extends Resource, A = never> {
  readonly resource: R
  /** 1 for the first try, then one more each time the first page is asked for again (a restart, a retry). */
  readonly attempt: number
  /** 1-based, within the attempt. */
  readonly page: number
  /** The page's records, less those already emitted when dedupe is on. */
  readonly records: ReadonlyArray<RecordOf<R, A>>
  /** How many records Intercom sent in the page. */
  readonly received: number
}

/**
 * What became of one try of a scroll, as far as Intercom's side of it goes: whether it opened (its first page came
 * back), and whether it is closed there again (it reached its end, or expired).
 */
interface AttemptState {
  opened: boolean
  closed: boolean
}

/**
 * One scroll from the first page to the empty one, with no restart.
 *
 * With `fetchAhead` (a prefetch above 0), each request goes out as soon as its scroll_param is known: as soon as the
 * previous page's body is in, if the scroll_param can be read from its bytes without doubt
 * (`ReceivedPage.scrollParamAhead`). The server then prepares the next page while this
 * one is decoded, parsed and validated. The parsed page has the last word: a request sent with a scroll_param it does
 * not confirm is interrupted. One in flight when the page fails is a child of the scroll's fiber and goes with it,
 * before the failure reaches a restart or the consumer. Requests stay serial: each goes out after the previous response
 * was read in full.
 */
const scrollOnce = <R extends Resource>(
  client: Service,
  internals: Internals,
  resource: R,
  attempt: number,
  concurrentScroll: Schedule.Schedule<unknown, ConcurrentScroll>,
  fetchAhead: boolean,
  outcome: AttemptState
): Stream.Stream<Page<R>, ScrollError> =>
  Stream.suspend(() => {
    const lock = internals.workspaceLock
    const receive = (page: number, scrollParam: string | undefined): Effect.Effect<ReceivedPage<R>, ScrollError> =>
      page === 1
        // The first page opens the scroll (waiting while another holds it); nothing comes before it to overlap with.
        ? waitForWorkspace(client.scrollPage(resource, { page, scrollParam }), resource, concurrentScroll, lock).pipe(
          // Intercom allows one scroll: any this process left open before is gone.
          Effect.tap(() => Effect.zipRight(Effect.sync(() => outcome.opened = true), lock.noteLeftOpen(undefined))),
          // A first page that reached Intercom and failed on its way back opened a scroll there all the same: the
          // next try meets it, and must know it for this process's own.
          Effect.tapError((error) => mayHaveOpened(error) ? Effect.flatMap(Clock.currentTimeMillis, lock.noteLeftOpen) : Effect.void),
          Effect.map((fetched) => ({ scrollParamAhead: () => undefined, page: Effect.succeed(fetched) }))
        )
        : resendUnconnected(internals.receivePage(resource, { page, scrollParam }), resource)

    const sendAhead = (page: number, scrollParam: string) => forkAhead(receive(page, scrollParam))

    // A page that comes back exactly as before (same scroll_param, same records) means the server is looping.
    const fingerprints = new Set<string>()

    /** What a parsed page leads to: the end of the scroll, or its records and the next scroll_param. */
    const follow = (
      page: number,
      fetched: FetchedPage<R>
    ): Effect.Effect<Option.Option<{ readonly out: Page<R>; readonly next: string }>, InvalidResponse> => {
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
      return Effect.succeed(Option.some({ out: { resource, attempt, page, records, received: records.length }, next }))
    }

    interface Step {
      readonly page: number
      readonly scrollParam: string | undefined
      /** The request for this page, when it went out while the previous page was parsed. */
      readonly ahead: Fiber.RuntimeFiber<ReceivedPage<R>, ScrollError> | undefined
    }

    const step = (state: Step): Effect.Effect<Option.Option<readonly [Page<R>, Step | undefined]>, ScrollError> =>
      Effect.gen(function*() {
        const { page } = state
        const received = yield* state.ahead === undefined ? receive(page, state.scrollParam) : Fiber.join(state.ahead)
        // Also the scroll_param just used: Intercom may hand back the same one on every page. A server going round in
        // circles is caught by the parse (`follow`), and the request sent ahead goes with the failure.
        const guess = fetchAhead ? received.scrollParamAhead() : undefined
        const ahead = guess === undefined ? undefined : yield* sendAhead(page + 1, guess)
        const followed = yield* received.page.pipe(
          Effect.tap((fetched) => Effect.annotateCurrentSpan("records", fetched.records.length)),
          Effect.flatMap((fetched) => follow(page, fetched))
        )
        // At the end, or on a failure, whatever went ahead goes with the scroll's fiber, whose child it is.
        if (Option.isNone(followed)) {
          outcome.closed = true
          return Option.none()
        }
        const { next, out } = followed.value
        const confirmed = next === guess
        if (!confirmed && ahead !== undefined) yield* Fiber.interrupt(ahead)
        return Option.some([out, { page: page + 1, scrollParam: next, ahead: confirmed ? ahead : undefined }] as const)
      }).pipe(
        // An expired scroll_param is a scroll Intercom has dropped.
        Effect.tapErrorTag("Expired", () => Effect.sync(() => outcome.closed = true)),
        withSpanKeepingNoValue("Scroll.page", { attributes: { resource, page: state.page, attempt } })
      )

    return Stream.unfoldEffect<Step | undefined, Page<R>, ScrollError, never>(
      { page: 1, scrollParam: undefined, ahead: undefined },
      (state) => state === undefined ? Effect.succeed(Option.none()) : step(state)
    )
  })

/**
 * A page asked for with a scroll_param, sent again (by `connectRetries`) while no connection could be made: the request
 * never reached Intercom, so the scroll_param is unused still, and the scroll need not start over. A certificate
 * refused now is refused in a second too.
 */
const resendUnconnected = <A>(request: Effect.Effect<A, ScrollError>, resource: Resource): Effect.Effect<A, ScrollError> =>
  Effect.suspend(() => {
    const driver = ScheduleDriver.driver(connectRetries)
    const send: Effect.Effect<A, ScrollError> = Effect.catchIf(
      request,
      (error): error is RestartRequired =>
        error._tag === "RestartRequired" && error.cause._tag === "ConnectFailed" && error.cause.reason !== "tls",
      (error) =>
        Effect.flatMap(driver.next(error), (next) =>
          Option.isNone(next) ? Effect.fail(error) : Effect.zipRight(pause(resource, "connect", next.value, next.value), send))
    )
    return send
  })

/**
 * Whether a request that failed this way may have opened a scroll at Intercom: its answer came and was cut short or
 * could not be read, or the connection broke or the time ran out after it was sent.
 */
const mayHaveOpened = (error: ScrollError): boolean =>
  error._tag === "InvalidResponse" ||
  (error._tag === "RestartRequired" &&
    (error.cause._tag === "TruncatedBody" || error.cause._tag === "TransportError" || error.cause._tag === "Timeout"))

/** Sleeps until `untilMillis` on the clock, reported as a wait for `reason` that ends by `endsBy`, when known. */
const pause = (resource: Resource, reason: WaitReason, untilMillis: number, endsBy: number | undefined) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    untilMillis <= now ? Effect.void : waiting(resource, reason, endsBy)(Effect.sleep(untilMillis - now)))

/**
 * How long a scroll waits for another scroll of its workspace in this process before it says so. Nothing here tells a
 * long scroll ahead of it from one that goes on only once this one has (two scrolls of one workspace in `Stream.zip`,
 * which wait for each other for ever); a log line tells the user who watches neither progress nor spans.
 */
const lockWaitWarning = Duration.minutes(1)

/** Waits for the workspace's lock in this process, reported as a wait, and said in a warning once it lasts. */
const waitForLock = (resource: Resource, lock: WorkspaceLock.WorkspaceLock) =>
  Effect.gen(function*() {
    const warning = yield* Effect.fork(Effect.delay(
      Effect.logWarning(
        `The ${resource} scroll has waited ${Duration.format(lockWaitWarning)} for another scroll of its workspace in ` +
          "this process to end (one open scroll per workspace). If that scroll goes on only once this one does, as two " +
          "scrolls of one workspace in Stream.zip do, they wait for each other for ever: run them one after the other."
      ),
      lockWaitWarning
    ))
    return yield* Effect.ensuring(lock.acquire, Fiber.interrupt(warning))
  }).pipe(waiting(resource, "workspace-lock", undefined))

/**
 * Opens the scroll, waiting by `schedule` while another scroll holds the workspace on Intercom's side: one this process
 * left open a moment ago (`own-scroll`), or one it knows nothing of (`concurrent-scroll`). Each wait is reported as
 * lasting until the schedule would give up, which is as long as it can last.
 */
const waitForWorkspace = <A>(
  open: Effect.Effect<A, ScrollError>,
  resource: Resource,
  schedule: Schedule.Schedule<unknown, ConcurrentScroll>,
  lock: WorkspaceLock.WorkspaceLock
): Effect.Effect<A, ScrollError> =>
  Effect.suspend(() => {
    const driver = ScheduleDriver.driver(schedule)
    const attempt: Effect.Effect<A, ScrollError> = Effect.catchTag(open, "ConcurrentScroll", (error) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const leftOpenAt = yield* lock.leftOpenAt
        const own = leftOpenAt !== undefined && now - leftOpenAt < WorkspaceLock.LEFT_OPEN_MEMORY_MILLIS
        const next = yield* driver.next(error)
        if (Option.isNone(next)) return yield* (own ? new ConcurrentScroll({ resource: error.resource, requestId: error.requestId, ownScroll: true }) : error)
        const giveUpAt = yield* driver.giveUpAt(error, next.value)
        yield* pause(resource, own ? "own-scroll" : "concurrent-scroll", next.value, giveUpAt)
        return yield* attempt
      }))
    return attempt
  })

/**
 * The pages of a scroll, with their page number and attempt, restarting and deduplicating as `options` say.
 *
 * @since 0.1.0
 * @category constructors
 */
export const pages = <R extends Resource, A = never, I = never>(
  resource: R,
  options: Options<A, I> = {}
): Stream.Stream<Page<R, A>, Failure<A>, IntercomClient> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const prefetch = options.prefetch ?? 1
    if (!Number.isInteger(prefetch) || prefetch < 0) {
      return yield* Effect.dieMessage(`Scroll option prefetch must be a whole number ≥ 0, got ${prefetch}`)
    }
    const client = yield* IntercomClient
    const internals = internalsOf(client)
    const progress = yield* Progress
    const concurrentScroll = options.concurrentScroll ?? defaultConcurrentScroll
    const records = ScrollMetrics.forResource(ScrollMetrics.records, resource)
    const pagesReceived = ScrollMetrics.forResource(ScrollMetrics.pages, resource)
    const restarts = ScrollMetrics.forResource(ScrollMetrics.restarts, resource)

    // One scroll per workspace in this process: wait for any other to finish first, unless this one was started from
    // within it, which then goes on only once this one has.
    const lock = internals.workspaceLock
    if (yield* lock.isHeldAbove) return yield* new ConcurrentScroll({ resource, nested: true })
    const giveBackLock = yield* (yield* lock.isHeld) ? waitForLock(resource, lock) : lock.acquire

    // Created once, so the restart budget counts across attempts (Stream.retry would reset it on every element).
    const restartBudget = ScheduleDriver.driver(options.restart ?? defaultRestart)
    const reconnects = ScheduleDriver.driver(connectRetries)
    const seen = (options.dedupe ?? true) ? IdSet.make() : undefined
    const typed = options.customAttributes === undefined
      // Without a schema `A` is never, and the records' type as received is the type emitted.
      ? (records: ReadonlyArray<RecordOf<R>>) => Either.right(records as ReadonlyArray<RecordOf<R, A>>)
      : CustomAttributes.decoder(resource, options.customAttributes)

    // Whether any try opened a scroll: until one has, a connection that fails means the API cannot be reached.
    let everOpened = false
    let connectFailures = 0
    let current: AttemptState = { opened: false, closed: false }

    /** A scroll this process opened and left before its end stays open on Intercom's side until it expires. */
    const noteIfLeftOpen = (outcome: AttemptState) =>
      outcome.opened && !outcome.closed ? Effect.flatMap(Clock.currentTimeMillis, lock.noteLeftOpen) : Effect.void
    // However the stream ends (its end, a failure, an interrupt, an early stop), before the lock goes to the next.
    yield* Effect.addFinalizer(() => Effect.suspend(() => noteIfLeftOpen(current)))

    const attempt = (n: number): Stream.Stream<Page<R>, ScrollError> =>
      Stream.suspend(() => {
        const outcome: AttemptState = { opened: false, closed: false }
        current = outcome
        const once = (fetchAhead: boolean) =>
          scrollOnce(client, internals, resource, n, concurrentScroll, fetchAhead, outcome)
        // Up to `prefetch` pages wait for the consumer, one more in the producer's hand, and the request after it out.
        return (prefetch > 0 ? Stream.buffer(once(true), { capacity: prefetch }) : once(false)).pipe(
          Stream.catchAll((error) =>
            isRestartable(error) ? Stream.unwrap(tryAgain(error, n, outcome)) : Stream.fail(error)
          )
        )
      })

    /**
     * After a try failed in a way that starting over can mend: a restart if the scroll had opened; otherwise a retry
     * of its first page, or, when no scroll ever opened and no connection could be made, a few quick tries more.
     */
    const tryAgain = (error: RestartRequired | Expired, n: number, outcome: AttemptState) =>
      Effect.gen(function*() {
        everOpened ||= outcome.opened
        yield* noteIfLeftOpen(outcome)
        if (!everOpened && error._tag === "RestartRequired" && error.cause._tag === "ConnectFailed") {
          return yield* reconnect(error, error.cause, n)
        }
        const next = yield* restartBudget.next(error)
        if (Option.isNone(next)) return Stream.fail(error)
        const restart = outcome.opened
        const event = { resource, attempt: n + 1, cause: error.problem }
        yield* Effect.logWarning(
          restart
            ? `Restarting the ${resource} scroll from the first page`
            : `Asking again for the first page of the ${resource} scroll, which did not open`
        ).pipe(Effect.annotateLogs({ resource, attempt: n + 1, cause: error.message }))
        yield* restart
          ? Effect.zipRight(Metric.increment(restarts), progress.report(ProgressEvent.Restart(event)))
          : progress.report(ProgressEvent.Retry(event))
        yield* pause(resource, restart ? "restart" : "retry", next.value, next.value)
        return attempt(n + 1)
      })

    const reconnect = (
      error: RestartRequired,
      cause: Extract<RestartRequired["cause"], { readonly _tag: "ConnectFailed" }>,
      n: number
    ) =>
      Effect.gen(function*() {
        connectFailures++
        // A certificate refused now is refused in a second too.
        const next = cause.reason === "tls" ? Option.none() : yield* reconnects.next(error)
        if (Option.isNone(next)) {
          return Stream.fail(
            new Unreachable({
              resource,
              baseUrl: client.baseUrl,
              reason: cause.reason,
              detail: cause.detail,
              attempts: connectFailures,
              ...(cause.proxy === undefined ? {} : { proxy: cause.proxy })
            })
          )
        }
        yield* Effect.logWarning(
          `Could not connect to ${client.baseUrl}${cause.proxy === undefined ? "" : ` through the proxy ${cause.proxy}`} for the ${resource} scroll; trying again`
        ).pipe(
          Effect.annotateLogs({ resource, attempt: n + 1, cause: error.message })
        )
        yield* pause(resource, "connect", next.value, next.value)
        return attempt(n + 1)
      })

    const emit = (page: Page<R>): Effect.Effect<Page<R, A>, InvalidCustomAttributes> =>
      Effect.flatMap(typed(seen === undefined ? page.records : page.records.filter((record) => seen.add(record.id))), (fresh) =>
        Metric.increment(pagesReceived).pipe(
          Effect.zipRight(Metric.incrementBy(records, fresh.length)),
          Effect.zipRight(progress.report(ProgressEvent.Page({
            resource,
            attempt: page.attempt,
            page: page.page,
            records: fresh.length,
            received: page.received
          }))),
          Effect.as({ ...page, records: fresh })
        ))

    // `Failure<A>` is `ScrollError` alone when no schema can fail a record. At the scroll's end the workspace is
    // given back at once: whatever runs this stream may close its scope only later (`Stream.merge` with another
    // scroll of the workspace, which waits for it). The end is reported here, after the last page went out: a stream
    // that failed, was interrupted or was stopped early by its consumer never gets here.
    const end = Effect.zipRight(progress.report(ProgressEvent.End({ resource })), giveBackLock)
    return Stream.concat(Stream.mapEffect(attempt(1), emit), Stream.execute(end)) as Stream.Stream<
      Page<R, A>,
      Failure<A>
    >
  })).pipe(Stream.withSpan(`Scroll.pages`, { attributes: { resource } }))

/**
 * The pages' records, a chunk a page, and no chunk for a page that dedupe emptied (a restart resending what was
 * emitted): `Stream.mapConcatChunk` would emit it empty, which a consumer rendering each chunk to bytes writes as zero
 * bytes, and the platform's file sink refuses (`WriteZero`).
 */
const recordsOfPages = <T, E>(): Channel.Channel<Chunk.Chunk<T>, PagesOf<T>, E, E, unknown, unknown> => {
  const loop: Channel.Channel<Chunk.Chunk<T>, PagesOf<T>, E, E, unknown, unknown> = Channel.readWithCause({
    onInput: (pages: PagesOf<T>) => {
      const records = Chunk.flatMap(pages, (page) => Chunk.unsafeFromArray(page.records))
      return Chunk.isEmpty(records) ? loop : Channel.zipRight(Channel.write(records), loop)
    },
    onFailure: (cause: Cause.Cause<E>) => Channel.failCause(cause),
    onDone: () => Channel.void
  })
  return loop
}

type PagesOf<T> = Chunk.Chunk<{ readonly records: ReadonlyArray<T> }>

const records = <R extends Resource, A, I>(resource: R, options: Options<A, I> | undefined) =>
  pages(resource, options).pipe(
    Stream.pipeThroughChannel(recordsOfPages()),
    Stream.withSpan(`Scroll.${resource}`)
  )

/**
 * Every user (`/users/scroll`, API 1.x). With a `customAttributes` schema, their custom attributes are decoded by it
 * and typed `A`.
 *
 * @example
 * import { Models, Scroll } from "@intercom-scroll/core"
 * import { Effect, Stream } from "effect"
 *
 * const emails = Scroll.users({ dedupe: true, prefetch: 2 }).pipe(
 *   Stream.filter(Models.hasValue("email")),
 *   Stream.map((user) => user.email),
 *   Stream.runCollect
 * )
 *
 * @since 0.1.0
 * @category constructors
 */
export const users = <A = never, I = never>(
  options?: Options<A, I>
): Stream.Stream<User<A>, Failure<A>, IntercomClient> => records("users", options)

/**
 * Every lead (`/contacts/scroll`, API 1.x). With a `customAttributes` schema, their custom attributes are decoded by it
 * and typed `A`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const leads = <A = never, I = never>(
  options?: Options<A, I>
): Stream.Stream<Lead<A>, Failure<A>, IntercomClient> => records("leads", options)

/**
 * Every company (`/companies/scroll`). With a `customAttributes` schema, their custom attributes are decoded by it
 * and typed `A`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const companies = <A = never, I = never>(
  options?: Options<A, I>
): Stream.Stream<Company<A>, Failure<A>, IntercomClient> => records("companies", options)
