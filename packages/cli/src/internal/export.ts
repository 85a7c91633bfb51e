/**
 * The `export` subcommand: a scroll of users, leads or companies, encoded as NDJSON, JSON or CSV, written to stdout
 * or atomically to a file, with progress on stderr and a summary at the end; and the export a command line's flags ask
 * for (`fromFlags`; the flags themselves are in `exportFlags.ts`, which `--help` loads without this module).
 *
 * @since 0.1.0
 */
import { type FileSystem, Path } from "@effect/platform"
import * as NodeStream from "@effect/platform-node/NodeStream"
import { type IntercomClient, Progress, type Resource, Scroll, type ScrollError } from "@intercom-scroll/core"
import { type Cause, Clock, Effect, Option, Stream, SubscriptionRef } from "effect"
import * as Zlib from "node:zlib"
import * as AtomicFile from "./atomicFile.js"
import { OutputError, type StdoutClosed } from "../ExportError.js"
import type { Flags, TimestampStyle } from "./exportFlags.js"
import * as Fields from "./fields.js"
import * as Format from "./format.js"
import * as OpenScroll from "./openScroll.js"
import * as ProgressBar from "./progressBar.js"
import * as ScrollOptions from "./scrollOptions.js"
import { Stdio } from "./stdio.js"

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
  /** Compress the output with gzip, as `gzip` would: for an `out` named `.gz`. Default false. */
  readonly gzip?: boolean | undefined
  /** For `csv`: start with a UTF-8 byte-order mark, for Excel. Default false. */
  readonly csvBom?: boolean | undefined
  /** The timestamp fields (`created_at`, …) as UNIX seconds, as received, or in ISO 8601. Default "unix". */
  readonly timestamps?: TimestampStyle | undefined
  readonly scroll?: Scroll.Options | undefined
  /**
   * What exports of the workspace leave each other: whether one cut its scroll short, so that the next can say that the
   * scroll it waits on is its own. Default: none.
   */
  readonly openScroll?: OpenScroll.OpenScroll | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Summary extends ProgressBar.Totals {
  readonly format: Format.Format
}

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
  // A live line when stderr is a terminal, but not on the terminal the records also scroll through (stdout, when it
  // is a terminal too): they would tear it. Plain lines otherwise.
  const live = stdio.stderrIsTTY && !(options.out === undefined && stdio.stdoutIsTTY)
  const mode = live ? "live" : "plain"
  yield* Effect.annotateCurrentSpan({ resource: options.resource, format })

  const startedAt = yield* Clock.currentTimeMillis
  // Scoped so the progress line is gone before the summary (or the caller's error line) is printed.
  const snapshot = yield* OpenScroll.keep(options.openScroll ?? OpenScroll.none, (track, leftOpenAt) => Effect.scoped(Effect.gen(function*() {
    const tracker = yield* ProgressBar.start(options.resource, mode, ProgressBar.exportWaits, { leftOpenAt })
    const records = recordsOf(options.resource, options.scroll).pipe(
      Stream.provideService(Progress.Progress, track(tracker.reporter))
    )
    const written = options.timestamps === "iso" ? Stream.map(records, Fields.isoTimestamps(options.resource)) : records
    const encoded = written.pipe(
      Format.encoder(format, { knownColumns: Fields.knownColumns(options.resource), bom: options.csvBom }),
      Stream.encodeText
    )
    const bytes = options.gzip === true ? gzipped(encoded, options.out ?? "stdout") : encoded
    yield* options.out === undefined ? Stream.run(bytes, stdio.stdout) : AtomicFile.write(options.out, bytes)
    return yield* SubscriptionRef.get(tracker.snapshot)
  })))
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
  yield* stdio.writeStderr(`${ProgressBar.renderSummary(summary)}\n`)
  return summary
})

/**
 * `bytes` gzipped, in Node's thread pool (off the thread that parses pages), failing as `bytes` does. The platform's
 * `pipeThroughDuplex` ends the gzip stream when its input fails and then ends as though it had not: a scroll that
 * failed (a 500 past the restarts, a token refused) made a whole file of what had come, renamed over the one before,
 * and an export that said it was done. So the input's failure is kept aside and raised once the gzip stream has
 * ended.
 */
const gzipped = <E, R>(bytes: Stream.Stream<Uint8Array, E, R>, target: string): Stream.Stream<Uint8Array, E | OutputError, R> =>
  Stream.suspend(() => {
    let failed: Cause.Cause<E> | undefined
    const input = Stream.catchAllCause(bytes, (cause) => {
      failed = cause
      return Stream.empty
    })
    const zipped = NodeStream.pipeThroughDuplex(input, () => Zlib.createGzip(), (error) =>
      new OutputError({ target, detail: `gzip failed: ${String(error)}` }))
    return Stream.concat(zipped, Stream.suspend(() => failed === undefined ? Stream.empty : Stream.failCause(failed)))
  })

/**
 * The process's own stdout by name, which a shell's `>` takes as that descriptor rather than opening it: opened, it
 * fails where stdout is a socket (as the pipes Node gives a child are). And `-`, stdout to most Unix tools.
 */
const stdoutNames: ReadonlySet<string> = new Set(["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"])

/**
 * The export a command line asks for. A relative `--out` is against the working directory, as for any Unix tool: not
 * an INIT_CWD that a package manager's script left behind. `--out /dev/stdout` is stdout.
 *
 * @since 0.1.0
 * @category flags
 */
export const fromFlags = (flags: Flags): Effect.Effect<Options, never, Path.Path> =>
  Effect.map(Path.Path, (path) => ({
    resource: flags.resource,
    format: flags.output.format,
    csvBom: flags.output.csvBom,
    gzip: flags.output.gzip,
    timestamps: flags.timestamps,
    out: Option.getOrUndefined(
      Option.flatMap(flags.output.out, (file) => stdoutNames.has(file) ? Option.none() : Option.some(path.resolve(file)))
    ),
    scroll: { ...ScrollOptions.scrollOptions(flags), dedupe: !flags.noDedupe }
  }))
