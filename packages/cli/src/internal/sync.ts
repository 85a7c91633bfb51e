/**
 * The `sync` subcommand: `Sync.run` of @intercom-scroll/sync from the command line, into the database a URL names
 * (`SyncDatabase`), one resource or all three one after the other, with the export's progress on stderr and a
 * summary per resource.
 *
 * @since 0.1.0
 */
import type { FileSystem, HttpClient, Path } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import { type IntercomClient, Progress, type Resource, type Scroll, type ScrollError } from "@intercom-scroll/core"
import { Sync, SyncDatabase, SyncError } from "@intercom-scroll/sync"
import { type ConfigError, Duration, Effect, Layer, Option, ParseResult, Redacted, Ref, Schema, SubscriptionRef } from "effect"
import type { InvalidConfig } from "../ExportError.js"
import * as Client from "./client.js"
import * as OpenScroll from "./openScroll.js"
import * as ProgressBar from "./progressBar.js"
import * as ScrollOptions from "./scrollOptions.js"
import { Stdio } from "./stdio.js"
import type * as SyncFlags from "./syncFlags.js"

const resources: ReadonlyArray<Resource.Resource> = ["users", "leads", "companies"]

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly target: SyncFlags.Target
  readonly workspace: string
  /** How long to wait for another sync of the workspace; undefined: as long as it takes. */
  readonly lockTimeout?: Duration.Duration | undefined
  /** PostgreSQL: how long a statement waits for another session's lock on the tables; undefined: the library's 1 minute. */
  readonly tableLockTimeout?: Duration.Duration | undefined
  /** PostgreSQL: how long the database may answer nothing at all; undefined: the library's 2 minutes. */
  readonly unansweredTimeout?: Duration.Duration | undefined
  /** At most how many pages one transaction writes; undefined: one (`Sync.Options.pagesPerTransaction`). */
  readonly pagesPerTransaction?: number | undefined
  readonly scroll?: Omit<Scroll.Options, "customAttributes"> | undefined
  /** Where the summary says the rows went: the database as `SyncDatabase.display` names it (no password). */
  readonly destination: string
  /** Where a run notes for the next that it cut its scroll of the workspace short (`Client.openScrollNote`). */
  readonly openScroll?: OpenScroll.OpenScroll | undefined
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 })

/**
 * The closing line of one resource: `Synced 1,200 users into sqlite:/data/intercom.sqlite (workspace default) in
 * 3.1 s: 1,190 inserted, 4 updated, 6 unchanged, 2 deleted, 0 restarts.`, and `, 3 rate-limit waits` before the
 * period when the scroll waited for Intercom's rate limit, as an export's line says; `, after 2.2 s waiting for another
 * sync of the workspace` after its time when it waited for that sync's lock first.
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderSummary = (
  summary: Sync.Summary,
  destination: string,
  rateLimitWaits = 0,
  lockWaitMillis = 0
): string => {
  const seen = summary.inserted + summary.updated + summary.unchanged
  const counts = [
    `${integer.format(summary.inserted)} inserted`,
    `${integer.format(summary.updated)} updated`,
    `${integer.format(summary.unchanged)} unchanged`,
    `${integer.format(summary.deleted)} deleted`,
    ProgressBar.countOf(summary.restarts, "restart"),
    ...ProgressBar.rateLimitWaits(rateLimitWaits)
  ]
  // The run's time starts once it holds the lock: a wait for another sync before it is said apart, or the command's
  // own time reads longer than its line.
  const waited = lockWaitMillis > 0
    ? `, after ${ProgressBar.formatDuration(lockWaitMillis)} waiting for another sync of the workspace`
    : ""
  return `Synced ${ProgressBar.countOf(seen, summary.resource)} into ${destination} (workspace ${summary.workspace}) in ${
    ProgressBar.formatDuration(Duration.toMillis(summary.duration))
  }${waited}: ${counts.join(", ")}.`
}

/**
 * Said once, after the summaries, when a resource's run could not check the token's workspace (`Summary.app` null):
 * the library only logs it, below the command line's default log level.
 *
 * @since 0.1.0
 * @category rendering
 */
export const uncheckedNote =
  "Not checked: Intercom did not say which workspace the token belongs to (GET /me), so these rows are not guarded against another workspace's token. Give the app the \"Read admins\" permission (run with --log-level warning to see what Intercom answered)."

/**
 * Syncs the resources in turn, each with its progress and summary on stderr; stops at the first that fails (the
 * ones before it stay synced).
 *
 * @since 0.1.0
 * @category running
 */
export const run = Effect.fn("SyncCommand.run")(function*(options: Options): Effect.fn.Return<
  ReadonlyArray<Sync.Summary>,
  SyncError.SyncError,
  IntercomClient.IntercomClient | SqlClient.SqlClient | Stdio
> {
  const stdio = yield* Stdio
  // A live line when stderr is a terminal, plain lines otherwise.
  const mode = stdio.stderrIsTTY ? "live" : "plain"
  const summaries: Array<Sync.Summary> = []
  // A transaction pooler refused before anything is locked or written.
  yield* Sync.checkSessions
  for (const resource of options.target === "all" ? resources : [options.target]) {
    // Scoped so the progress line is gone before the summary (or the caller's error line) is printed.
    const [summary, snapshot, lockWaitMillis] = yield* OpenScroll.keep(options.openScroll ?? OpenScroll.none, (track, leftOpenAt) =>
      Effect.scoped(Effect.gen(function*() {
        const tracker = yield* ProgressBar.start(resource, mode, ProgressBar.syncWaits, { leftOpenAt })
        const waitedForLock = yield* Ref.make(false)
        const reporter: Progress.Reporter = {
          report: (event) =>
            Effect.zipRight(
              event._tag === "Waiting" && event.reason === "workspace-lock" ? Ref.set(waitedForLock, true) : Effect.void,
              tracker.reporter.report(event)
            )
        }
        const [elapsed, summary] = yield* Sync.run(resource, {
          ...options.scroll,
          workspace: options.workspace,
          lockTimeout: options.lockTimeout,
          tableLockTimeout: options.tableLockTimeout,
          unansweredTimeout: options.unansweredTimeout,
          pagesPerTransaction: options.pagesPerTransaction
        })
          .pipe(Effect.provideService(Progress.Progress, track(reporter)), Effect.timed)
        // What the run's own duration leaves out, before it held the lock: mostly that wait.
        const lockWaitMillis = (yield* Ref.get(waitedForLock))
          ? Math.max(0, Duration.toMillis(elapsed) - Duration.toMillis(summary.duration))
          : 0
        return [summary, yield* SubscriptionRef.get(tracker.snapshot), lockWaitMillis] as const
      })))
    yield* stdio.writeStderr(`${renderSummary(summary, options.destination, snapshot.rateLimitWaits, lockWaitMillis)}\n`)
    summaries.push(summary)
  }
  if (summaries.some((summary) => summary.app === null)) yield* stdio.writeStderr(`${uncheckedNote}\n`)
  return summaries
})

/**
 * Everything a sync command can fail with, besides a usage error.
 *
 * @since 0.1.0
 * @category models
 */
export type CommandError =
  | SyncError.SyncError
  | ScrollError.InvalidOptions
  | SyncDatabase.InvalidDatabaseUrl
  | SyncDatabase.DatabaseUnavailable
  | InvalidConfig
  | ConfigError.ConfigError

/**
 * `intercom-scroll sync <users|leads|companies|all> --database URL …` as its flags ask.
 *
 * @since 0.1.0
 * @category running
 */
export const fromFlags = (flags: SyncFlags.Flags): Effect.Effect<void, CommandError, HttpClient.HttpClient | FileSystem.FileSystem | Path.Path | Stdio> =>
  Effect.gen(function*() {
    const url = Redacted.value(flags.database)
    const database = yield* SyncDatabase.parse(url)
    const workspace = Option.getOrElse(flags.workspace, () => "default")
    // Before the database is opened (a SQLite file created), as `Sync.run` would refuse it after.
    yield* Schema.decode(Sync.WorkspaceName)(workspace).pipe(
      Effect.mapError((error) =>
        new SyncError.InvalidOptions({
          detail: `--workspace ${JSON.stringify(workspace)} ${ParseResult.ArrayFormatter.formatErrorSync(error)[0]?.message ?? "is not a workspace name"}`
        })
      )
    )
    // On the database's clock: the run's row and the records' times agree with those a sync on another machine, whose
    // clock may be minutes off, writes into the same tables.
    yield* SyncDatabase.withDatabaseClock(Effect.flatMap(Client.openScrollNote, (openScroll) =>
      run({
        target: flags.target,
        workspace,
        lockTimeout: Option.getOrUndefined(flags.lockTimeout),
        tableLockTimeout: Option.getOrUndefined(flags.tableLockTimeout),
        unansweredTimeout: Option.getOrUndefined(flags.unansweredTimeout),
        pagesPerTransaction: Option.getOrUndefined(flags.pagesPerTransaction),
        scroll: ScrollOptions.scrollOptions(flags),
        destination: SyncDatabase.display(database),
        openScroll
      }))).pipe(
        // The client first: without a token (a cron job's environment that lacks it), nothing is opened or written.
        Effect.provide(SyncDatabase.layer(database).pipe(Layer.provideMerge(Client.layer(flags))))
      )
  })
