/**
 * `intercom-scroll export <users|leads|companies>`: the command, its Node platform layer, and `main`, which prints
 * one line for a failure and leaves the exit code to `runMain`.
 *
 * @example
 * ```ts
 * import { Command } from "@effect/cli"
 * import { Cli } from "@intercom-scroll/cli"
 * import { Effect } from "effect"
 *
 * // The export as a subcommand of an app's own command line: `my-app export users --out users.ndjson`.
 * const app = Command.make("my-app").pipe(Command.withSubcommands([Cli.exportCommand]))
 * const run = Command.run(app, { name: "my-app", version: "1.0.0" })
 *
 * Effect.runPromise(run(["node", "my-app", "--version"]).pipe(Effect.provide(Cli.layer)))
 * ```
 *
 * @since 0.1.0
 */
import { Args, Command, Options } from "@effect/cli"
import { Path } from "@effect/platform"
import { NodeContext, NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import type { Teardown } from "@effect/platform/Runtime"
import type { FileSystem, HttpClient } from "@effect/platform"
import { IntercomClient, type Resource, type ScrollError } from "@intercom-scroll/core"
import { Config, Effect, Exit, Layer, Logger, LogLevel, Option, Redacted } from "effect"
import * as Export from "./Export.js"
import { InvalidConfig, type OutputError, type StdoutClosed } from "./ExportError.js"
import * as Failure from "./Failure.js"
import * as Format from "./Format.js"
import * as Stdio from "./Stdio.js"
import { moduleVersion } from "./internal/version.js"

/**
 * @since 0.1.0
 * @category constants
 */
export const version: string = moduleVersion

const regions = ["us", "eu", "au"] as const satisfies ReadonlyArray<IntercomClient.Region>

const isRegion = (value: string): value is IntercomClient.Region => (regions as ReadonlyArray<string>).includes(value)

/** The environment a command reads, each variable checked so a bad one is named in a single line. */
const environment = Effect.gen(function*() {
  const token = yield* Config.option(Config.redacted("INTERCOM_ACCESS_TOKEN"))
  if (Option.isNone(token) || Redacted.value(token.value).trim() === "") {
    return yield* new InvalidConfig({
      variable: "INTERCOM_ACCESS_TOKEN",
      detail: "is not set: create an access token in Intercom's Developer Hub and export INTERCOM_ACCESS_TOKEN=… (it is never read from a flag)"
    })
  }
  const baseUrl = (yield* Config.option(Config.string("INTERCOM_BASE_URL"))).pipe(Option.filter((url) => url !== ""))
  const region = yield* Config.option(Config.string("INTERCOM_REGION")).pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeed(Option.none<IntercomClient.Region>()),
      onSome: (value) =>
        isRegion(value) ? Effect.succeed(Option.some(value)) : new InvalidConfig({
          variable: "INTERCOM_REGION",
          detail: `is ${JSON.stringify(value)}; use us, eu or au`
        })
    }))
  )
  return { accessToken: token.value, baseUrl, region }
}).pipe(
  Effect.catchTag("ConfigError", (error) => new InvalidConfig({ variable: "The environment", detail: `is invalid: ${error.message}` }))
)

const resource = Args.choice<Resource.Resource>([["users", "users"], ["leads", "leads"], ["companies", "companies"]], {
  name: "resource"
}).pipe(Args.withDescription("What to export: users, leads or companies."))

const exportOptions = {
  resource,
  out: Options.text("out").pipe(
    Options.withPseudoName("FILE"),
    Options.withDescription("Write to FILE (atomically: a failed export leaves it as it was) instead of stdout."),
    Options.optional
  ),
  format: Options.choice("format", Format.formats).pipe(
    Options.withDefault("ndjson"),
    Options.withDescription("ndjson (one record a line), json (one array) or csv (nested fields as dotted columns).")
  ),
  baseUrl: Options.text("base-url").pipe(
    Options.withPseudoName("URL"),
    Options.withDescription("The API's base URL; overrides INTERCOM_BASE_URL and --region."),
    Options.optional
  ),
  region: Options.choice("region", regions).pipe(
    Options.withDescription("The workspace's region (us, eu, au); overrides INTERCOM_REGION and INTERCOM_BASE_URL."),
    Options.optional
  ),
  maxRestarts: Options.integer("max-restarts").pipe(
    Options.filterMap(
      (n) => n >= 0 ? Option.some(n) : Option.none(),
      "--max-restarts must be 0 or more: how many times to start over"
    ),
    Options.withPseudoName("N"),
    Options.withDescription("Start the scroll over at most N times after a 5xx, a transport failure or an expiry (default 5; 0 never)."),
    Options.optional
  ),
  noDedupe: Options.boolean("no-dedupe").pipe(
    Options.withDescription("Keep records a restart delivers again (by default each id is written once).")
  )
}

/**
 * The `--base-url` and `--region` flags win over the environment; a `--region` flag also wins over an
 * INTERCOM_BASE_URL, since the core takes a base URL over a region.
 */
const resolveBaseUrl = (
  flags: { readonly baseUrl: Option.Option<string>; readonly region: Option.Option<IntercomClient.Region> },
  fromEnvironment: Option.Option<string>
) =>
  Option.getOrUndefined(Option.orElse(flags.baseUrl, () => Option.isSome(flags.region) ? Option.none() : fromEnvironment))

/**
 * Everything an export command can fail with, besides a usage error.
 *
 * @since 0.1.0
 * @category models
 */
export type ExportCommandError =
  | ScrollError.ScrollError
  | ScrollError.InvalidOptions
  | OutputError
  | StdoutClosed
  | InvalidConfig

/**
 * What an export command needs from its platform.
 *
 * @since 0.1.0
 * @category models
 */
export type ExportCommandContext = HttpClient.HttpClient | FileSystem.FileSystem | Path.Path | Stdio.Stdio

/**
 * @since 0.1.0
 * @category commands
 */
export const exportCommand = Command.make("export", exportOptions, (flags): Effect.Effect<void, ExportCommandError, ExportCommandContext> =>
  Effect.gen(function*() {
    const env = yield* environment
    const path = yield* Path.Path
    const client = IntercomClient.layer({
      accessToken: env.accessToken,
      baseUrl: resolveBaseUrl(flags, env.baseUrl),
      region: Option.getOrUndefined(Option.orElse(flags.region, () => env.region))
    })
    yield* Export.run({
      resource: flags.resource,
      format: flags.format,
      // Against the working directory, as any Unix tool: not an INIT_CWD that a package manager's script left behind.
      out: Option.getOrUndefined(Option.map(flags.out, (file) => path.resolve(file))),
      scroll: {
        restart: Option.getOrUndefined(Option.map(flags.maxRestarts, Export.restartAtMost)),
        dedupe: !flags.noDedupe
      }
    }).pipe(Effect.provide(client))
  })).pipe(Command.withDescription("Export every user, lead or company of an Intercom workspace over the Scroll API."))

/**
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("intercom-scroll").pipe(
  Command.withDescription("Export Intercom users, leads and companies. The token comes from INTERCOM_ACCESS_TOKEN."),
  Command.withSubcommands([exportCommand])
)

/**
 * Parses `argv` (with the runtime and script first, as in `process.argv`) and runs the command.
 *
 * @since 0.1.0
 * @category running
 */
export const run = Command.run(command, { name: "intercom-scroll", version })

/**
 * What the command needs on Node: files, paths, a terminal, undici, the process's stdio, and logs on stderr so
 * they never mix into an export on stdout. Restarts are shown by the progress output, so the core's warning
 * about them is below the default log level (`--log-level warning` shows it).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = Layer.mergeAll(
  NodeContext.layer,
  NodeHttpClient.layerUndici,
  Stdio.layer,
  Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger)),
  Logger.minimumLogLevel(LogLevel.Error)
)

/**
 * When `self` fails, prints one line on stderr naming the error (never the token). The exit code is `runMain`'s.
 *
 * @since 0.1.0
 * @category running
 */
export const reportFailure = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | Stdio.Stdio> =>
  Effect.onExit(self, (exit) =>
    Exit.isSuccess(exit) ? Effect.void : Effect.gen(function*() {
      const stdio = yield* Stdio.Stdio
      const token = yield* Config.option(Config.string("INTERCOM_ACCESS_TOKEN")).pipe(
        Effect.orElseSucceed(() => Option.none<string>())
      )
      const text = Failure.line(exit.cause, Option.toArray(token))
      if (text !== undefined) yield* stdio.writeStderr(`${text}\n`)
    }))

/**
 * Runs the command and, when it fails, prints one line naming the error. The exit code is `runMain`'s.
 *
 * @since 0.1.0
 * @category running
 */
export const main = (argv: ReadonlyArray<string>) => reportFailure(run(argv))

/**
 * Runs `program` as the process, with the CLI's layer: exit 0, 1 on failure (its line printed by `reportFailure`),
 * 130 on Ctrl-C, 143 on SIGTERM, 141 when the reader of stdout closed it.
 *
 * @since 0.1.0
 * @category running
 */
export const runMain = <E>(program: Effect.Effect<unknown, E, Layer.Layer.Success<typeof layer>>): void => {
  // runMain interrupts the program on SIGINT and SIGTERM alike; the exit code tells them apart, as shells do, by the
  // first one (pnpm answers a second Ctrl-C by sending SIGTERM to its child).
  let stoppedBy: "SIGINT" | "SIGTERM" | undefined
  // runMain stops listening after the first signal, so a second one (a terminal's Ctrl-C passed on by a parent such as
  // pnpm, on top of the terminal's own) would kill the process before the interrupted export removed its temporary
  // file. These listeners keep the process alive until runMain exits it. (A stuck process still yields to SIGKILL.)
  process.on("SIGINT", () => {
    stoppedBy ??= "SIGINT"
  })
  process.on("SIGTERM", () => {
    stoppedBy ??= "SIGTERM"
  })
  const teardown: Teardown = (exit, onExit) => onExit(Failure.exitCode(exit, stoppedBy ?? "SIGINT"))
  program.pipe(
    Effect.provide(layer),
    // Errors are reported as one line; runMain's own reporting would add a stack trace.
    NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown })
  )
}
