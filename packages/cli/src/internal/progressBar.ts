/**
 * Progress of an export on stderr: on a terminal a live line redrawn in place, elsewhere a plain line every few
 * seconds; a line for each restart (or retry of a first page) with its cause, and one that explains a wait on another
 * scroll of the workspace. What a line says is a pure function of the core's
 * `Progress.Snapshot` and the clock, so it is tested without a terminal.
 *
 * @since 0.1.0
 */
import { Progress, type Resource } from "@intercom-scroll/core"
import { Clock, type Duration, Effect, Schedule, type Scope, SubscriptionRef } from "effect"
import * as OpenScroll from "./openScroll.js"
import { Stdio } from "./stdio.js"

/**
 * `live` redraws one line in place (for a terminal), `plain` prints a line every few seconds (for logs and
 * pipes).
 *
 * @since 0.1.0
 * @category models
 */
export type Mode = "live" | "plain"

/**
 * @since 0.1.0
 * @category models
 */
export interface Moment {
  /** Since the export started. */
  readonly elapsedMillis: number
  /** UNIX milliseconds, to count down a wait whose end is known. */
  readonly nowMillis: number
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 })

const count = (n: number, singular: string, plural = `${singular}s`) => `${integer.format(n)} ${n === 1 ? singular : plural}`

/**
 * `4.2 s`, `3 min 07 s`, `1 h 02 min`.
 *
 * @since 0.1.0
 * @category rendering
 */
export const formatDuration = (millis: number): string => {
  const seconds = Math.max(0, millis) / 1000
  // Tenths cut, as the seconds and minutes below are: rounded, 59.96 s read "60.0 s", and a tenth later "1 min 00 s".
  if (seconds < 60) return `${(Math.floor(Math.max(0, millis) / 100) / 10).toFixed(1)} s`
  const wholeSeconds = Math.floor(seconds)
  const minutes = Math.floor(wholeSeconds / 60)
  if (minutes < 60) return `${minutes} min ${String(wholeSeconds % 60).padStart(2, "0")} s`
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`
}

/**
 * What the line says while the scroll waits, by reason. The workspace lock is this process's own for an export;
 * a sync waits on the database's (`syncWaits`).
 *
 * @since 0.1.0
 * @category rendering
 */
export type WaitTexts = { readonly [W in Progress.WaitReason]: string }

/**
 * @since 0.1.0
 * @category rendering
 */
export const exportWaits: WaitTexts = {
  "rate-limit": "waiting for the rate limit",
  "concurrent-scroll": "waiting for another scroll of the workspace to close on Intercom's side",
  "own-scroll": "waiting for this tool's own scroll of the workspace, cut short, to close on Intercom's side",
  "restart": "waiting to restart",
  "retry": "waiting to ask for the first page again",
  "connect": "could not connect, waiting to try again",
  "workspace-lock": "waiting for this process's other scroll of the workspace"
}

/** A wait on another scroll ends when that scroll is gone: its end is only the most it can last. */
const endsAtTheLatest = (reason: Progress.WaitReason) => reason === "concurrent-scroll" || reason === "own-scroll"

/** Whole seconds, and minutes past a minute: `52 s`, `1 min 52 s`. */
const formatWait = (millis: number) => {
  const seconds = Math.max(0, Math.ceil(millis / 1000))
  return seconds < 60 ? `${seconds} s` : formatDuration(seconds * 1000)
}

/**
 * @since 0.1.0
 * @category rendering
 */
export const syncWaits: WaitTexts = {
  ...exportWaits,
  "workspace-lock": "waiting for another sync of the workspace to finish"
}

/**
 * @since 0.1.0
 * @category rendering
 */
export const describeWait = (
  waiting: NonNullable<Progress.Snapshot["waiting"]>,
  nowMillis: number,
  texts: WaitTexts = exportWaits
): string => {
  const reason = texts[waiting.reason]
  if (waiting.untilMillis === undefined) return reason
  const left = waiting.untilMillis - nowMillis
  return endsAtTheLatest(waiting.reason)
    ? `${reason} (up to ${formatWait(left)})`
    : `${reason} (${Math.max(0, Math.ceil(left / 1000))} s left)`
}

const perSecond = (records: number, elapsedMillis: number) =>
  elapsedMillis <= 0 ? 0 : records / (elapsedMillis / 1000)

/** Said only when there were some: most exports never meet the rate limit. */
/**
 * `N rate-limit waits` for a closing line, or nothing when there were none.
 *
 * @since 0.1.0
 * @category rendering
 */
export const rateLimitWaits = (waits: number): ReadonlyArray<string> =>
  waits === 0 ? [] : [count(waits, "rate-limit wait")]

/**
 * The progress line: `users: 12,300 records | 123 pages | 1,025 records/s | 0 restarts | 12.0 s`, then the
 * current wait, if any.
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (
  resource: Resource.Resource,
  snapshot: Progress.Snapshot,
  moment: Moment,
  waits: WaitTexts = exportWaits
): string => {
  const parts = [
    count(snapshot.records, "record"),
    count(snapshot.pages, "page"),
    `${integer.format(perSecond(snapshot.records, moment.elapsedMillis))} records/s`,
    count(snapshot.restarts, "restart"),
    ...rateLimitWaits(snapshot.rateLimitWaits),
    formatDuration(moment.elapsedMillis)
  ]
  if (snapshot.waiting !== undefined) parts.push(describeWait(snapshot.waiting, moment.nowMillis, waits))
  return `${resource}: ${parts.join(" | ")}`
}

/**
 * The line for a restart, which stays above the live line so the cause can be read afterwards.
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderRestart = (event: { readonly resource: Resource.Resource; readonly attempt: number; readonly cause: string }): string =>
  `${event.resource}: starting over from the first page (attempt ${event.attempt}): ${event.cause}`

/**
 * The line for a retry of a first page that failed: the scroll had not opened, so nothing starts over.
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderRetry = (event: { readonly resource: Resource.Resource; readonly attempt: number; readonly cause: string }): string =>
  `${event.resource}: asking again for the first page (attempt ${event.attempt}): ${event.cause}`

const waitingUpTo = (untilMillis: number | undefined, nowMillis: number) =>
  untilMillis === undefined ? "Waiting for it to close" : `Waiting up to ${formatWait(untilMillis - nowMillis)} for it to close`

/**
 * The line that explains, once, why an export or a sync waits on another scroll, whose it is, and for how long at most
 * (`untilMillis`, when the wait gives up). `own-scroll` is a scroll this run cut short (it broke off, and its restart
 * meets it), or, with `leftOpenAt`, one an earlier export or sync of the workspace cut short then (an interrupt, a
 * failure, a reader that closed the pipe), which Intercom drops about a minute after.
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderOtherScroll = (
  event: {
    readonly resource: Resource.Resource
    readonly reason: "concurrent-scroll" | "own-scroll"
    readonly untilMillis: number | undefined
    readonly leftOpenAt?: number | undefined
  },
  nowMillis: number
): string => {
  const howLong = waitingUpTo(event.untilMillis, nowMillis)
  if (event.reason === "concurrent-scroll") {
    return `${event.resource}: another scroll of this workspace is open on Intercom's side (another app's, or this tool's in another process: an export or a sync cut short, or one on another machine). Intercom drops a scroll about a minute after its last use. ${howLong} (--wait-for-other-scroll).`
  }
  if (event.leftOpenAt === undefined) {
    return `${event.resource}: this process's own scroll of the workspace, cut short, is still open on Intercom's side. Intercom drops a scroll about a minute after its last use. ${howLong} (--wait-for-other-scroll).`
  }
  const dropsIn = event.leftOpenAt + OpenScroll.INTERCOM_KEEPS_MILLIS - nowMillis
  return `${event.resource}: the scroll is this tool's own: an earlier export or sync of this workspace cut it short ${
    formatWait(nowMillis - event.leftOpenAt)
  } ago (interrupted, stopped by a failure, or its reader closed the pipe), and Intercom keeps it open about a minute after its last use, ${
    dropsIn > 0 ? `so about ${formatWait(dropsIn)} more` : "so any moment now"
  }. ${howLong} (--wait-for-other-scroll).`
}

/**
 * The line for a wait on a scroll first taken for this tool's own (`renderOtherScroll`'s `own-scroll`) that has
 * outlived what Intercom keeps a scroll cut short: another's after all.
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderNoLongerOwn = (
  event: { readonly resource: Resource.Resource; readonly untilMillis: number | undefined; readonly leftOpenAt?: number | undefined },
  nowMillis: number
): string => {
  const stillOpen = event.leftOpenAt === undefined
    ? "still open, longer than Intercom keeps the one this process cut short"
    : `still open ${formatWait(nowMillis - event.leftOpenAt)} after an earlier run of this tool cut its own short, longer than Intercom keeps one`
  return `${event.resource}: the scroll is ${stillOpen}: it is another's (another app's, or this tool's in another process). ${
    waitingUpTo(event.untilMillis, nowMillis)
  } (--wait-for-other-scroll).`
}

/**
 * What the closing line tells of a finished export.
 *
 * @since 0.1.0
 * @category models
 */
export interface Totals {
  readonly resource: Resource.Resource
  /** The file written, or "stdout". */
  readonly destination: string
  /** Records written (after dedupe). */
  readonly records: number
  /** Pages received, over every attempt. */
  readonly pages: number
  readonly restarts: number
  readonly rateLimitWaits: number
  readonly durationMillis: number
}

/**
 * The closing line: `Exported 25,000 users to out/users.ndjson in 12.3 s: 250 pages, 1 restart, 2,033 records/s.`
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderSummary = (summary: Totals): string =>
  `Exported ${countOf(summary.records, summary.resource)} to ${summary.destination} in ${
    formatDuration(summary.durationMillis)
  }: ${[count(summary.pages, "page"), count(summary.restarts, "restart"), ...rateLimitWaits(summary.rateLimitWaits)].join(", ")}, ${
    integer.format(perSecond(summary.records, summary.durationMillis))
  } records/s.`

const singularOf: { readonly [R in Resource.Resource]: string } = { users: "user", leads: "lead", companies: "company" }

/**
 * `1 user`, `25,000 users`; `1 restart`, `2 restarts`.
 *
 * @since 0.1.0
 * @category rendering
 */
export const countOf = (n: number, noun: Resource.Resource | "restart"): string =>
  noun === "restart" ? count(n, noun) : count(n, singularOf[noun], noun)

/**
 * Fits a live line to the terminal, since a wrapped line cannot be redrawn with `\r`. An unknown or zero width
 * (some pseudo-terminals report 0) leaves the line whole.
 *
 * @since 0.1.0
 * @category rendering
 */
export const fit = (line: string, columns: number | undefined): string =>
  columns === undefined || columns <= 1 || line.length < columns ? line : `${line.slice(0, columns - 2)}…`

/** Carriage return, then erase the whole line. */
const clearLine = "\r\x1b[2K"

/**
 * What `display` gives back, to print other lines beside the one it shows.
 *
 * @since 0.1.0
 * @category models
 */
export interface Display {
  /** Prints a line of its own on stderr, above a live line so that it can be read afterwards. */
  readonly printLine: (text: string) => Effect.Effect<void>
  /** Erases a live line (nothing otherwise), before a line printed on stdout, which may be the same terminal. */
  readonly clear: Effect.Effect<void>
}

/**
 * Shows `line` on stderr until the scope closes. `live` (a terminal): redrawn in place at once and then every
 * `redrawEvery`, cut to the terminal's width, and erased when the scope closes. Otherwise a line of its own every
 * 5 s, so that a short command prints none.
 *
 * @since 0.1.0
 * @category constructors
 */
export const display = <R>(
  line: Effect.Effect<string, never, R>,
  options: { readonly live: boolean; readonly redrawEvery: Duration.DurationInput }
): Effect.Effect<Display, never, Scope.Scope | Stdio | R> =>
  Effect.gen(function*() {
    const stdio = yield* Stdio
    const { live } = options
    const draw = live
      ? Effect.zipWith(line, stdio.stderrColumns, (text, columns) => `${clearLine}${fit(text, columns)}`).pipe(
        Effect.flatMap(stdio.writeStderr),
        Effect.repeat(Schedule.spaced(options.redrawEvery))
      )
      : line.pipe(Effect.flatMap((text) => stdio.writeStderr(`${text}\n`)), Effect.schedule(Schedule.spaced("5 seconds")))
    // Registered before the drawing fiber, so it runs after that fiber has been interrupted.
    if (live) yield* Effect.addFinalizer(() => stdio.writeStderr(clearLine))
    yield* Effect.forkScoped(draw)
    return {
      // One write, so that a redraw cannot come between the erasing and the line.
      printLine: (text) => stdio.writeStderr(`${live ? clearLine : ""}${text}\n`),
      clear: live ? stdio.writeStderr(clearLine) : Effect.void
    }
  })

/**
 * Starts showing the progress of one export until the scope closes (a live line is erased then). The tracker's
 * reporter is what the scroll reports to; its snapshot gives the summary at the end.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (
  resource: Resource.Resource,
  mode: Mode,
  waits: WaitTexts = exportWaits,
  earlier: { readonly leftOpenAt: number | undefined } = { leftOpenAt: undefined }
): Effect.Effect<Progress.Tracker, never, Scope.Scope | Stdio> =>
  Effect.gen(function*() {
    const tracker = yield* Progress.makeTracker
    const { leftOpenAt } = earlier
    // The core cannot tell the scroll an earlier process cut short from another app's; the note left by that export can,
    // for as long as it remembers: a wait that goes on past that is on another's.
    const ownIfNoted = (event: Progress.ProgressEvent, now: number): Progress.ProgressEvent =>
      event._tag === "Waiting" && event.reason === "concurrent-scroll" && OpenScroll.remembers(leftOpenAt, now)
        ? Progress.ProgressEvent.Waiting({ ...event, reason: "own-scroll" })
        : event
    const startedAt = yield* Clock.currentTimeMillis
    const line = Effect.gen(function*() {
      const nowMillis = yield* Clock.currentTimeMillis
      const snapshot = yield* SubscriptionRef.get(tracker.snapshot)
      return render(resource, snapshot, { elapsedMillis: nowMillis - startedAt, nowMillis }, waits)
    })
    const { printLine } = yield* display(line, { live: mode === "live", redrawEvery: "100 millis" })
    // The wait on another scroll is explained once; each retry after it is a wait of the same kind. One on a scroll
    // first taken for this tool's own that outlives the note's memory, before anything else happened, is on another's
    // after all: said once more.
    let explained = false
    let stillWaitingOnOwn = false
    const lineFor = (event: Progress.ProgressEvent): Effect.Effect<string | undefined> => {
      if (event._tag !== "Waiting" && event._tag !== "Resumed") stillWaitingOnOwn = false
      switch (event._tag) {
        case "Restart":
          return Effect.succeed(renderRestart(event))
        case "Retry":
          return Effect.succeed(renderRetry(event))
        case "Waiting": {
          const { reason } = event
          if (reason !== "concurrent-scroll" && reason !== "own-scroll") return Effect.succeed(undefined)
          if (!explained) {
            explained = true
            stillWaitingOnOwn = reason === "own-scroll"
            return Effect.map(Clock.currentTimeMillis, (now) => renderOtherScroll({ ...event, reason, leftOpenAt }, now))
          }
          if (!stillWaitingOnOwn || reason !== "concurrent-scroll") return Effect.succeed(undefined)
          stillWaitingOnOwn = false
          return Effect.map(Clock.currentTimeMillis, (now) => renderNoLongerOwn({ ...event, leftOpenAt }, now))
        }
        default:
          return Effect.succeed(undefined)
      }
    }
    const reporter: Progress.Reporter = {
      report: (reported) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const event = ownIfNoted(reported, now)
          return tracker.reporter.report(event).pipe(
            Effect.zipRight(lineFor(event)),
            Effect.flatMap((text) => text === undefined ? Effect.void : printLine(text))
          )
        })
    }
    return { snapshot: tracker.snapshot, reporter }
  })
