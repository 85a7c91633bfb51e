/**
 * The `sync` subcommand: `Sync.run` of @intercom-scroll/sync from the command line, into the database a URL names
 * (`SyncDatabase`), one resource or all three one after the other, with the export's progress on stderr and a
 * summary per resource.
 *
 * @since 0.1.0
 */
import { Args, Command, Options as Flag } from "@effect/cli"
import type { HttpClient } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import type { ServeError } from "@effect/platform/HttpServerError"
import { type IntercomClient, Progress, type Resource, type Scroll, type ScrollError } from "@intercom-scroll/core"
import { Sync, SyncDatabase, type SyncError } from "@intercom-scroll/sync"
import { Config, type ConfigError, Duration, Effect, Layer, Option, Redacted } from "effect"
import type { InvalidConfig } from "../ExportError.js"
import * as ProgressBar from "./progressBar.js"
import * as ScrollFlags from "./scrollFlags.js"
import { Stdio } from "./stdio.js"

/**
 * What a sync command line names: one resource, or `all` of them.
 *
 * @since 0.1.0
 * @category models
 */
export type Target = Resource.Resource | "all"

const resources: ReadonlyArray<Resource.Resource> = ["users", "leads", "companies"]

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly target: Target
  readonly workspace: string
  /** How long to wait for another sync of the workspace; undefined: as long as it takes. */
  readonly lockTimeout?: Duration.Duration | undefined
  readonly scroll?: Scroll.Options | undefined
  /** Where the summary says the rows went: the database as `SyncDatabase.display` names it (no password). */
  readonly destination: string
  /** Default "auto": a live line when stderr is a terminal, plain lines otherwise. "off" prints no summary either. */
  readonly progress?: ProgressBar.Mode | "auto" | undefined
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 })

/**
 * The closing line of one resource: `Synced 1,200 users into sqlite:/data/intercom.sqlite (workspace default) in
 * 3.1 s: 1,190 inserted, 4 updated, 6 unchanged, 2 deleted, 0 restarts.`
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderSummary = (summary: Sync.Summary, destination: string): string => {
  const seen = summary.inserted + summary.updated + summary.unchanged
  const counts = [
    `${integer.format(summary.inserted)} inserted`,
    `${integer.format(summary.updated)} updated`,
    `${integer.format(summary.unchanged)} unchanged`,
    `${integer.format(summary.deleted)} deleted`,
    `${integer.format(summary.restarts)} ${summary.restarts === 1 ? "restart" : "restarts"}`
  ]
  return `Synced ${integer.format(seen)} ${summary.resource} into ${destination} (workspace ${summary.workspace}) in ${
    ProgressBar.formatDuration(Duration.toMillis(summary.duration))
  }: ${counts.join(", ")}.`
}

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
  const requested = options.progress ?? "auto"
  const mode = requested === "auto" ? (stdio.stderrIsTTY ? "live" : "plain") : requested
  const summaries: Array<Sync.Summary> = []
  for (const resource of options.target === "all" ? resources : [options.target]) {
    // Scoped so the progress line is gone before the summary (or the caller's error line) is printed.
    const summary = yield* Effect.scoped(Effect.gen(function*() {
      const tracker = yield* ProgressBar.start(resource, mode, ProgressBar.syncWaits)
      return yield* Sync.run(resource, { ...options.scroll, workspace: options.workspace, lockTimeout: options.lockTimeout })
        .pipe(Effect.provideService(Progress.Progress, tracker.reporter))
    }))
    if (mode !== "off") yield* stdio.writeStderr(`${renderSummary(summary, options.destination)}\n`)
    summaries.push(summary)
  }
  return summaries
})

/**
 * What `intercom-scroll sync --help` says the subcommand does.
 *
 * @since 0.1.0
 * @category flags
 */
export const description =
  "Copy every user, lead or company of an Intercom workspace into a table of a SQLite or PostgreSQL database, and mark deleted the rows Intercom no longer has. Each run scrolls the whole workspace: Intercom's scroll has no \"changed since\"."

/**
 * The `sync` subcommand's own argument and flags; the scroll's are `ScrollFlags.flags`.
 *
 * @since 0.1.0
 * @category flags
 */
export const flags = {
  target: Args.choice<Target>(
    [["users", "users"], ["leads", "leads"], ["companies", "companies"], ["all", "all"]],
    { name: "resource" }
  ).pipe(Args.withDescription("What to sync: users, leads, companies, or all three one after the other.")),
  // Redacted: the URL may hold a password.
  database: Flag.redacted("database").pipe(
    Flag.withPseudoName("URL"),
    Flag.withDescription(
      "sqlite:PATH (a file, created if missing) or postgres://USER@HOST:PORT/DATABASE (postgresql:// too), the password in the URL or in PGPASSWORD. It is never printed."
    )
  ),
  workspace: Flag.text("workspace").pipe(
    Flag.withPseudoName("NAME"),
    Flag.withDescription(
      "The name the workspace's rows and runs are kept under, so that one database can hold several (default default; simulator for the embedded simulator)."
    ),
    Flag.optional
  ),
  lockTimeout: ScrollFlags.count("lock-timeout", "how many seconds to wait for another sync of the workspace").pipe(
    Flag.withDescription(
      "Wait at most N seconds while another sync of the workspace runs, then fail (default: wait as long as it takes). Intercom allows one scroll of a workspace at a time."
    ),
    Flag.optional
  )
}

/**
 * The flags as parsed.
 *
 * @since 0.1.0
 * @category flags
 */
export type Flags = Command.Command.ParseConfig<typeof flags> & ScrollFlags.Parsed

/** With no token and no `--base-url` or `--region`: the embedded simulator, as `pnpm start` uses. */
const wantsSimulator = (flags: Flags) =>
  Effect.map(
    Config.option(Config.redacted("INTERCOM_ACCESS_TOKEN")).pipe(Effect.orElseSucceed(() => Option.none())),
    (token) =>
      Option.isNone(flags.baseUrl) && Option.isNone(flags.region) &&
      Option.match(token, { onNone: () => true, onSome: (value) => Redacted.value(value).trim() === "" })
  )

/**
 * `client` with the embedded simulator as its configuration (`Embedded.layer`, as `pnpm start` has it), announced on
 * stderr. Loaded only when used: the simulator is no small part of the bundle's start.
 */
const simulated = <E>(
  client: Layer.Layer<IntercomClient.IntercomClient, E, HttpClient.HttpClient>
): Layer.Layer<IntercomClient.IntercomClient, E | ServeError | ConfigError.ConfigError, HttpClient.HttpClient | Stdio> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const [{ Embedded }, Quickstart] = yield* Effect.promise(() =>
      Promise.all([import("@intercom-scroll/simulator"), import("./quickstart.js")])
    )
    const simulator = Quickstart.simulatedWorkspace
    const announce = Layer.effectDiscard(Effect.gen(function*() {
      const target = yield* Embedded.Target
      const stdio = yield* Stdio
      if (target._tag === "Simulated") {
        yield* stdio.writeStderr(
          `No INTERCOM_ACCESS_TOKEN: syncing from the embedded simulator at ${target.baseUrl} (${Quickstart.describeSimulator(simulator)}).\n`
        )
      }
    }))
    return Layer.merge(client, announce).pipe(Layer.provide(Embedded.layer(simulator)))
  }))

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
  | ServeError

/**
 * `intercom-scroll sync <users|leads|companies|all> --database URL …`.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(
  "sync",
  { ...flags, ...ScrollFlags.flags },
  (flags): Effect.Effect<void, CommandError, HttpClient.HttpClient | Stdio> =>
    Effect.gen(function*() {
      const url = Redacted.value(flags.database)
      const database = yield* SyncDatabase.parse(url)
      const simulator = yield* wantsSimulator(flags)
      const intercom = simulator ? simulated(ScrollFlags.client(flags)) : ScrollFlags.client(flags)
      yield* run({
        target: flags.target,
        workspace: Option.getOrElse(flags.workspace, () => simulator ? "simulator" : "default"),
        lockTimeout: Option.getOrUndefined(Option.map(flags.lockTimeout, Duration.seconds)),
        scroll: ScrollFlags.scrollOptions(flags),
        destination: SyncDatabase.display(database)
      }).pipe(Effect.provide(Layer.merge(intercom, SyncDatabase.layer(database))))
    })
).pipe(Command.withDescription(description))
