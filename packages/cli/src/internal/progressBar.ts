/**
 * Progress of an export on stderr: on a terminal a live line redrawn in place, elsewhere a plain line every few
 * seconds, and a line for each restart with its cause. What a line says is a pure function of the core's
 * `Progress.Snapshot` and the clock, so it is tested without a terminal.
 *
 * @example
 * ```ts
 * import { ProgressBar } from "@intercom-scroll/cli"
 *
 * assert.strictEqual(ProgressBar.formatDuration(4_200), "4.2 s")
 * assert.strictEqual(ProgressBar.formatDuration(187_000), "3 min 07 s")
 * // A live line cut to the terminal's width, since a wrapped line cannot be redrawn in place.
 * assert.strictEqual(ProgressBar.fit("users: 1,000 records | 10 pages", 12), "users: 1,0…")
 * ```
 *
 * @since 0.1.0
 */
import { Progress, type Resource } from "@intercom-scroll/core"
import { Clock, Effect, Schedule, type Scope, SubscriptionRef } from "effect"
import { Stdio } from "./stdio.js"

/**
 * `live` redraws one line in place (for a terminal), `plain` prints a line every few seconds (for logs and
 * pipes), `off` prints nothing.
 *
 * @since 0.1.0
 * @category models
 */
export type Mode = "live" | "plain" | "off"

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
  if (seconds < 60) return `${seconds.toFixed(1)} s`
  const wholeSeconds = Math.floor(seconds)
  const minutes = Math.floor(wholeSeconds / 60)
  if (minutes < 60) return `${minutes} min ${String(wholeSeconds % 60).padStart(2, "0")} s`
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`
}

const waitReasons: { readonly [W in Progress.WaitReason]: string } = {
  "rate-limit": "waiting for the rate limit",
  "concurrent-scroll": "waiting for another scroll of the workspace to expire",
  "restart": "waiting to restart",
  "workspace-lock": "waiting for this process's other scroll of the workspace"
}

/**
 * @since 0.1.0
 * @category rendering
 */
export const describeWait = (waiting: NonNullable<Progress.Snapshot["waiting"]>, nowMillis: number): string => {
  const reason = waitReasons[waiting.reason]
  if (waiting.untilMillis === undefined) return reason
  return `${reason} (${Math.max(0, Math.ceil((waiting.untilMillis - nowMillis) / 1000))} s left)`
}

const perSecond = (records: number, elapsedMillis: number) =>
  elapsedMillis <= 0 ? 0 : records / (elapsedMillis / 1000)

/** Said only when there were some: most exports never meet the rate limit. */
const rateLimitWaits = (waits: number): ReadonlyArray<string> =>
  waits === 0 ? [] : [count(waits, "rate-limit wait")]

/**
 * The progress line: `users: 12,300 records | 123 pages | 1,025 records/s | 0 restarts | 12.0 s`, then the
 * current wait, if any.
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (resource: Resource.Resource, snapshot: Progress.Snapshot, moment: Moment): string => {
  const parts = [
    count(snapshot.records, "record"),
    count(snapshot.pages, "page"),
    `${integer.format(perSecond(snapshot.records, moment.elapsedMillis))} records/s`,
    count(snapshot.restarts, "restart"),
    ...rateLimitWaits(snapshot.rateLimitWaits),
    formatDuration(moment.elapsedMillis)
  ]
  if (snapshot.waiting !== undefined) parts.push(describeWait(snapshot.waiting, moment.nowMillis))
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
  `Exported ${count(summary.records, singularOf[summary.resource], summary.resource)} to ${summary.destination} in ${
    formatDuration(summary.durationMillis)
  }: ${[count(summary.pages, "page"), count(summary.restarts, "restart"), ...rateLimitWaits(summary.rateLimitWaits)].join(", ")}, ${
    integer.format(perSecond(summary.records, summary.durationMillis))
  } records/s.`

const singularOf: { readonly [R in Resource.Resource]: string } = { users: "user", leads: "lead", companies: "company" }

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

const interval = { live: "100 millis", plain: "5 seconds" } as const

/**
 * Starts showing the progress of one export until the scope closes (a live line is erased then). The tracker's
 * reporter is what the scroll reports to; its snapshot gives the summary at the end.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (
  resource: Resource.Resource,
  mode: Mode
): Effect.Effect<Progress.Tracker, never, Scope.Scope | Stdio> =>
  Effect.gen(function*() {
    const tracker = yield* Progress.makeTracker
    if (mode === "off") return tracker
    const stdio = yield* Stdio
    const startedAt = yield* Clock.currentTimeMillis
    const line = Effect.gen(function*() {
      const nowMillis = yield* Clock.currentTimeMillis
      const snapshot = yield* SubscriptionRef.get(tracker.snapshot)
      return render(resource, snapshot, { elapsedMillis: nowMillis - startedAt, nowMillis })
    })
    // A live line is redrawn at once and then often; a plain one waits its interval, so short exports print none.
    const draw = mode === "live"
      ? Effect.zipWith(line, stdio.stderrColumns, (text, columns) => `${clearLine}${fit(text, columns)}`).pipe(
        Effect.flatMap(stdio.writeStderr),
        Effect.repeat(Schedule.spaced(interval.live))
      )
      : line.pipe(Effect.flatMap((text) => stdio.writeStderr(`${text}\n`)), Effect.schedule(Schedule.spaced(interval.plain)))
    // Registered before the drawing fiber, so it runs after that fiber has been interrupted.
    if (mode === "live") yield* Effect.addFinalizer(() => stdio.writeStderr(clearLine))
    yield* Effect.forkScoped(draw)
    const reporter: Progress.Reporter = {
      report: (event) =>
        tracker.reporter.report(event).pipe(
          Effect.zipRight(
            event._tag === "Restart"
              ? stdio.writeStderr(`${mode === "live" ? clearLine : ""}${renderRestart(event)}\n`)
              : Effect.void
          )
        )
    }
    return { snapshot: tracker.snapshot, reporter }
  })
