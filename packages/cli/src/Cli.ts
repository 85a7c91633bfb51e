/**
 * The `intercom-scroll` command line, as an app embeds it: the command (`command`, with one subcommand per module:
 * `export` today), how to run it (`run` parses argv, `main` adds the one-line failure report, `runMain` runs a
 * program as the process with its exit codes), and its Node platform (`layer`).
 *
 * @example
 * ```ts
 * import { Cli } from "@intercom-scroll/cli"
 *
 * // The whole command line, as the `intercom-scroll` bin runs it.
 * Cli.runMain(Cli.main(process.argv))
 * ```
 *
 * @example
 * ```ts
 * import { Command } from "@effect/cli"
 * import { Cli } from "@intercom-scroll/cli"
 * import { Effect } from "effect"
 *
 * // The command line as a subcommand of an app's own: `my-app intercom-scroll export users --out users.ndjson`.
 * const app = Command.make("my-app").pipe(Command.withSubcommands([Cli.command]))
 * const run = Command.run(app, { name: "my-app", version: "1.0.0" })
 *
 * Effect.runPromise(run(["node", "my-app", "--version"]).pipe(Effect.provide(Cli.layer)))
 * ```
 *
 * @since 0.1.0
 */
import { type CliApp, CliConfig, Command, type ValidationError } from "@effect/cli"
import type { FileSystem, HttpClient, Path } from "@effect/platform"
import { NodeContext, NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import type { Teardown } from "@effect/platform/Runtime"
import { IntercomClient, type ScrollError } from "@intercom-scroll/core"
import { Config, Effect, Exit, Layer, Logger, LogLevel, Option, type Redacted } from "effect"
import { type InvalidConfig, type OutputError, type StdoutClosed } from "./ExportError.js"
import * as Export from "./internal/export.js"
import * as Failure from "./internal/failure.js"
import * as OpenScroll from "./internal/openScroll.js"
import * as Help from "./internal/help.js"
import * as ScrollFlags from "./internal/scrollFlags.js"
import * as Stdio from "./internal/stdio.js"
import * as SyncCommand from "./internal/sync.js"
import { moduleVersion } from "./internal/version.js"

/**
 * The CLI's version, as `--version` and `--help` print it.
 *
 * @since 0.1.0
 * @category constants
 */
export const version: string = moduleVersion

const name = "intercom-scroll"

/** Where an export notes for the next one that it cut its scroll of the workspace short (see `OpenScroll`). */
const openScrollNote = Effect.gen(function*() {
  const { baseUrl } = yield* IntercomClient.IntercomClient
  const token = yield* Config.option(IntercomClient.environment.accessToken).pipe(
    Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>())
  )
  if (Option.isNone(token)) return OpenScroll.none
  return yield* OpenScroll.make(yield* OpenScroll.directory, baseUrl, token.value)
})

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
 * Everything a sync command can fail with, besides a usage error.
 *
 * @since 0.1.0
 * @category models
 */
export type SyncCommandError = SyncCommand.CommandError

/**
 * What an export command needs from its platform.
 *
 * @since 0.1.0
 * @category models
 */
export type ExportCommandContext = HttpClient.HttpClient | FileSystem.FileSystem | Path.Path | Stdio.Stdio

const exportCommand = Command.make("export", { ...Export.flags, ...ScrollFlags.flags }, (flags): Effect.Effect<void, ExportCommandError, ExportCommandContext> =>
  Effect.gen(function*() {
    const options = yield* Export.fromFlags(flags)
    yield* Effect.flatMap(openScrollNote, (openScroll) => Export.run({ ...options, openScroll })).pipe(
      Effect.provide(ScrollFlags.client(flags))
    )
  })).pipe(Command.withDescription(Export.description))

/**
 * The `intercom-scroll` command and its subcommands (`export`). `run` runs it as the CLI does; an app of its own can
 * also nest it with `Command.withSubcommands`, where `--help` is then @effect/cli's rendering, not `run`'s.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(name).pipe(
  Command.withDescription("Export Intercom users, leads and companies. The token comes from INTERCOM_ACCESS_TOKEN."),
  // One module per subcommand; `fleet` joins `export` and `sync` here.
  Command.withSubcommands([exportCommand, SyncCommand.command])
)

const runCommand = Command.run(command, { name, version })

/** @effect/cli's own configuration if the context has one, as `Command.run` reads it. */
const cliConfig = Effect.map(Effect.serviceOption(CliConfig.CliConfig), Option.getOrElse(() => CliConfig.defaultConfig))

/** Plain text into a pipe, a file, or when NO_COLOR is set; styled on a terminal. */
const printHelp = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const stdio = yield* Stdio.Stdio
    const color = yield* Stdio.styled(stdio.stdoutIsTTY)
    const config = yield* cliConfig
    yield* Stdio.print(Help.render({ name, version, command: command.descriptor, args, config, color }))
  })

/**
 * Parses `argv` (with the runtime and script first, as in `process.argv`) and runs the command. `--help` (or `-h`)
 * prints the help of the subcommand named, else of the whole command, to stdout: plain text unless stdout is a
 * terminal and NO_COLOR is unset.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  argv: ReadonlyArray<string>
): Effect.Effect<
  void,
  ExportCommandError | SyncCommandError | ValidationError.ValidationError,
  ExportCommandContext | CliApp.CliApp.Environment
> => {
  const args = argv.slice(2)
  return Help.isRequested(args) ? printHelp(args) : runCommand(argv)
}

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
 * When `self` fails, prints one line on stderr naming the error and what to do, with this command line's flags (never
 * the token). The exit code is `runMain`'s.
 *
 * @since 0.1.0
 * @category running
 */
export const reportFailure = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | Stdio.Stdio> =>
  Effect.onExit(self, (exit) =>
    Exit.isSuccess(exit) ? Effect.void : Effect.gen(function*() {
      const stdio = yield* Stdio.Stdio
      const token = yield* Config.option(Config.redacted("INTERCOM_ACCESS_TOKEN")).pipe(
        Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>())
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
