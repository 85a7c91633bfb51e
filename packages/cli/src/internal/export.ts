/**
 * The `export` subcommand: a scroll of users, leads or companies, encoded as NDJSON, JSON or CSV, written to stdout
 * or atomically to a file, with progress on stderr and a summary at the end; and the flags that ask for one.
 *
 * @since 0.1.0
 */
import { Args, type Command, HelpDoc, Options as Flag, ValidationError } from "@effect/cli"
import { type FileSystem, Path } from "@effect/platform"
import { type IntercomClient, Progress, type Resource, Scroll, type ScrollError } from "@intercom-scroll/core"
import { Clock, Effect, Option, Schedule, Stream, SubscriptionRef } from "effect"
import * as AtomicFile from "./atomicFile.js"
import type { OutputError, StdoutClosed } from "../ExportError.js"
import * as Fields from "./fields.js"
import * as Format from "./format.js"
import * as ProgressBar from "./progressBar.js"
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
  /** For `csv`: start with a UTF-8 byte-order mark, for Excel. Default false. */
  readonly csvBom?: boolean | undefined
  /** The timestamp fields (`created_at`, …) as UNIX seconds, as received, or in ISO 8601. Default "unix". */
  readonly timestamps?: Fields.TimestampStyle | undefined
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
export interface Summary extends ProgressBar.Totals {
  readonly format: Format.Format
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
    const records = recordsOf(options.resource, options.scroll).pipe(
      Stream.provideService(Progress.Progress, tracker.reporter)
    )
    const written = options.timestamps === "iso" ? Stream.map(records, Fields.isoTimestamps(options.resource)) : records
    const bytes = written.pipe(
      Format.encoder(format, { knownColumns: Fields.knownColumns(options.resource), bom: options.csvBom }),
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

/**
 * What `intercom-scroll export --help` says the subcommand does.
 *
 * @since 0.1.0
 * @category flags
 */
export const description = "Export every user, lead or company of an Intercom workspace over the Scroll API."

/** `--name N`, a whole number 0 or more; a number below is refused in words that name the flag and say what N is. */
const count = (name: string, meaning: string) =>
  Flag.integer(name).pipe(
    Flag.filterMap((n) => n >= 0 ? Option.some(n) : Option.none(), `--${name} must be 0 or more: ${meaning}`),
    Flag.withPseudoName("N")
  )

/**
 * The `export` subcommand's own argument and flags. Where the workspace is (`--base-url`, `--region`) belongs to
 * the command line as a whole, which adds those.
 *
 * @since 0.1.0
 * @category flags
 */
export const flags = {
  resource: Args.choice<Resource.Resource>([["users", "users"], ["leads", "leads"], ["companies", "companies"]], {
    name: "resource"
  }).pipe(Args.withDescription("What to export: users, leads or companies.")),
  out: Flag.text("out").pipe(
    Flag.withPseudoName("FILE"),
    Flag.withDescription("Write to FILE (atomically: a failed export leaves it as it was) instead of stdout."),
    Flag.optional
  ),
  output: Flag.all({
    format: Flag.choice("format", Format.formats).pipe(
      Flag.withDefault("ndjson"),
      Flag.withDescription("ndjson (one record a line, the default), json (one array) or csv (nested fields as dotted columns).")
    ),
    csvBom: Flag.boolean("csv-bom").pipe(
      Flag.withDescription(
        "Start the CSV with a UTF-8 byte-order mark, so that Excel reads São Paulo as São Paulo (by default there is none: other readers take it for part of the first column's name)."
      )
    )
  }).pipe(
    // A BOM before JSON makes it invalid (JSON.parse refuses it): asked for anywhere but CSV, it is a mistake to point out.
    Flag.mapEffect((output) =>
      output.csvBom && output.format !== "csv"
        ? Effect.fail(ValidationError.invalidValue(HelpDoc.p("--csv-bom is for --format csv: JSON and NDJSON never start with a byte-order mark")))
        : Effect.succeed(output)
    )
  ),
  timestamps: Flag.choice("timestamps", Fields.timestampStyles).pipe(
    Flag.withDefault("unix"),
    Flag.withDescription(
      "unix (seconds since 1970, as Intercom sends them; the default) or iso (ISO 8601 in UTC: 2024-05-01T12:00:00Z), for created_at, updated_at and the other times of the records, in every format; custom attributes stay as they are."
    )
  ),
  maxRestarts: count("max-restarts", "how many times to start over").pipe(
    Flag.withDescription("Start the scroll over at most N times after a 5xx, a transport failure or an expiry (default 5; 0 never)."),
    Flag.optional
  ),
  prefetch: count("prefetch", "how many pages to fetch ahead of the writing").pipe(
    Flag.withDescription(
      "Fetch up to N pages (about 100 records each) ahead while earlier ones are written (default 1; 0 fetches a page only when the last is written). More keeps a slow disk or reader from letting the scroll expire."
    ),
    Flag.optional
  ),
  noDedupe: Flag.boolean("no-dedupe").pipe(
    Flag.withDescription("Keep records a restart delivers again (by default each id is written once).")
  )
}

/**
 * The flags as parsed.
 *
 * @since 0.1.0
 * @category flags
 */
export type Flags = Command.Command.ParseConfig<typeof flags>

/**
 * The export a command line asks for. A relative `--out` is against the working directory, as for any Unix tool: not
 * an INIT_CWD that a package manager's script left behind.
 *
 * @since 0.1.0
 * @category flags
 */
export const fromFlags = (flags: Flags): Effect.Effect<Options, never, Path.Path> =>
  Effect.map(Path.Path, (path) => ({
    resource: flags.resource,
    format: flags.output.format,
    csvBom: flags.output.csvBom,
    timestamps: flags.timestamps,
    out: Option.getOrUndefined(Option.map(flags.out, (file) => path.resolve(file))),
    scroll: {
      restart: Option.getOrUndefined(Option.map(flags.maxRestarts, restartAtMost)),
      prefetch: Option.getOrUndefined(flags.prefetch),
      dedupe: !flags.noDedupe
    }
  }))
