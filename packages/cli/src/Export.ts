/**
 * One export: a scroll of users, leads or companies, encoded as NDJSON, JSON or CSV, written to stdout or
 * atomically to a file, with progress on stderr and a summary at the end.
 *
 * @example
 * ```ts
 * import { FileSystem } from "@effect/platform"
 * import { NodeContext } from "@effect/platform-node"
 * import { Export, Stdio } from "@intercom-scroll/cli"
 * import { IntercomClient } from "@intercom-scroll/core"
 * import { Simulator } from "@intercom-scroll/simulator"
 * import { Effect, Layer, Redacted } from "effect"
 *
 * // A workspace of 300 users, simulated in process.
 * const Intercom = IntercomClient.layer({ accessToken: Redacted.make("T") }).pipe(
 *   Layer.provide(Simulator.layerClient({ workspaces: [{ token: "T", users: 300 }] }))
 * )
 *
 * // `intercom-scroll export users --out users.ndjson`, without the progress output.
 * const program = Effect.gen(function*() {
 *   const fs = yield* FileSystem.FileSystem
 *   const out = `${yield* fs.makeTempDirectoryScoped()}/users.ndjson`
 *   const summary = yield* Export.run({ resource: "users", out, progress: "off" })
 *   const lines = (yield* fs.readFileString(out)).trim().split("\n")
 *   return [summary.records, lines.length]
 * }).pipe(Effect.scoped, Effect.provide([Intercom, Stdio.layer, NodeContext.layer]))
 *
 * Effect.runPromise(program).then((result) => assert.deepStrictEqual(result, [300, 300]))
 * ```
 *
 * @since 0.1.0
 */
import type { FileSystem, Path } from "@effect/platform"
import { type IntercomClient, Progress, type Resource, Scroll, type ScrollError } from "@intercom-scroll/core"
import { Clock, Effect, Schedule, Stream, SubscriptionRef } from "effect"
import * as AtomicFile from "./AtomicFile.js"
import type { OutputError, StdoutClosed } from "./ExportError.js"
import * as Format from "./Format.js"
import * as ProgressBar from "./ProgressBar.js"
import { Stdio } from "./Stdio.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly resource: Resource.Resource
  /** Default "ndjson". */
  readonly format?: Format.Format | undefined
  /** A file path, written atomically; stdout when undefined. */
  readonly out?: string | undefined
  readonly scroll?: Scroll.Options | undefined
  /**
   * Default "auto": a live line when stderr is a terminal (and the records do not go to the same one: stdout, when it
   * is a terminal too), plain lines otherwise. "off" prints no summary either.
   */
  readonly progress?: ProgressBar.Mode | "auto" | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Summary {
  readonly resource: Resource.Resource
  readonly format: Format.Format
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
 * Restarts at most `maxRestarts` times (0: never), each after an exponential backoff from 1 second with jitter,
 * as the core's default does, but never more than about a minute: uncapped, `--max-restarts 20` would wait hours
 * before its last attempts (the 12th alone ~34 minutes), and a minute is as long as Intercom keeps a scroll.
 *
 * @since 0.1.0
 * @category schedules
 */
export const restartAtMost = (
  maxRestarts: number
): Schedule.Schedule<unknown, ScrollError.RestartRequired | ScrollError.Expired> =>
  Schedule.exponential("1 second").pipe(
    Schedule.either(Schedule.spaced("1 minute")), // the shorter of the two delays
    Schedule.jittered,
    Schedule.intersect(Schedule.recurs(maxRestarts))
  )

const recordsOf = (
  resource: Resource.Resource,
  options: Scroll.Options | undefined
): Stream.Stream<Format.JsonRecord, ScrollError.ScrollError, IntercomClient.IntercomClient> => {
  switch (resource) {
    case "users":
      return Scroll.users(options)
    case "leads":
      return Scroll.leads(options)
    case "companies":
      return Scroll.companies(options)
  }
}

/**
 * Runs an export and returns its summary. Fails with the scroll's error, an `OutputError`, or `StdoutClosed` when the
 * reader of stdout goes away; a file target is then left as it was.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = Effect.fn("Export.run")(function*(options: Options): Effect.fn.Return<
  Summary,
  ScrollError.ScrollError | OutputError | StdoutClosed,
  IntercomClient.IntercomClient | FileSystem.FileSystem | Path.Path | Stdio
> {
  const stdio = yield* Stdio
  const format = options.format ?? "ndjson"
  const requested = options.progress ?? "auto"
  // A live line on the terminal the records also scroll through would be torn by them: plain lines there.
  const live = stdio.stderrIsTTY && !(options.out === undefined && stdio.stdoutIsTTY)
  const mode = requested === "auto" ? (live ? "live" : "plain") : requested
  yield* Effect.annotateCurrentSpan({ resource: options.resource, format })

  const startedAt = yield* Clock.currentTimeMillis
  // Scoped so the progress line is gone before the summary (or the caller's error line) is printed.
  const snapshot = yield* Effect.scoped(Effect.gen(function*() {
    const tracker = yield* ProgressBar.start(options.resource, mode)
    const bytes = recordsOf(options.resource, options.scroll).pipe(
      Stream.provideService(Progress.Progress, tracker.reporter),
      Format.encoder(format),
      Stream.encodeText
    )
    yield* options.out === undefined ? Stream.run(bytes, stdio.stdout) : AtomicFile.write(options.out, bytes)
    return yield* SubscriptionRef.get(tracker.snapshot)
  }))
  const finishedAt = yield* Clock.currentTimeMillis

  const summary: Summary = {
    resource: options.resource,
    format,
    destination: options.out ?? "stdout",
    records: snapshot.records,
    pages: snapshot.pages,
    restarts: snapshot.restarts,
    rateLimitWaits: snapshot.rateLimitWaits,
    durationMillis: finishedAt - startedAt
  }
  if (mode !== "off") yield* stdio.writeStderr(`${ProgressBar.renderSummary(summary)}\n`)
  return summary
})
