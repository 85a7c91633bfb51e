/**
 * The `intercom-scroll` command line, as an app embeds it: the command (`command`, with one subcommand per module:
 * `export`, `sync` and `fleet`), how to run it (`run` parses argv, `main` adds the one-line failure report, `runMain`
 * runs a program as the process with its exit codes), and its Node platform (`layer`).
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
import { type CliApp, CliConfig, Command, HelpDoc, ValidationError } from "@effect/cli"
import type { FileSystem, HttpClient, Path } from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import type { Teardown } from "@effect/platform/Runtime"
import type { ScrollError } from "@intercom-scroll/core"
import { Cause, Clock, Config, Console, Effect, Exit, FiberId, Layer, Logger, LogLevel, Option, type Redacted } from "effect"
import type { InvalidConfig, OutputError, StdoutClosed } from "./ExportError.js"
import * as ExportFlags from "./internal/exportFlags.js"
import * as ExitCode from "./internal/exitCode.js"
import type * as FleetCommand from "./internal/fleet.js"
import * as FleetFlags from "./internal/fleetFlags.js"
import * as Help from "./internal/help.js"
import * as LogLevelFlag from "./internal/logLevelFlag.js"
import * as ScrollFlags from "./internal/scrollFlags.js"
import * as Stdio from "./internal/stdio.js"
import * as StopDeadline from "./internal/stopDeadline.js"
import type * as SyncCommand from "./internal/sync.js"
import * as SyncFlags from "./internal/syncFlags.js"
import * as Undici from "./internal/undici.js"
import * as UsageMistake from "./internal/usageMistake.js"
import { moduleVersion } from "./internal/version.js"

/**
 * The CLI's version, as `--version` and `--help` print it.
 *
 * @since 0.1.0
 * @category constants
 */
export const version: string = moduleVersion

const name = "intercom-scroll"


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
 * Everything a `fleet` command can fail with, besides a usage error.
 *
 * @since 0.1.0
 * @category models
 */
export type FleetCommandError = FleetCommand.CommandError

/**
 * What an export or sync command needs from its platform (a sync, too, keeps the note of a scroll it cut short).
 *
 * @since 0.1.0
 * @category models
 */
export type ExportCommandContext = HttpClient.HttpClient | FileSystem.FileSystem | Path.Path | Stdio.Stdio

// A subcommand's flags and description are all that `--help` reads; what runs it (the core, the encoders, the sync and
// its drivers) is imported by its handler, when it runs, so that the bin starts without it (packages/bench/NOTES.md,
// "Startup").
const exportCommand = Command.make("export", { ...ExportFlags.flags, ...ScrollFlags.flags }, (flags): Effect.Effect<void, ExportCommandError, ExportCommandContext> =>
  Effect.gen(function*() {
    const [Export, Client] = yield* Effect.promise(() => Promise.all([import("./internal/export.js"), import("./internal/client.js")]))
    const options = yield* Export.fromFlags(flags)
    yield* Effect.flatMap(Client.openScrollNote, (openScroll) => Export.run({ ...options, openScroll })).pipe(
      Effect.provide(Client.layer(flags))
    )
  })).pipe(Command.withDescription(ExportFlags.description))

const syncCommand = Command.make("sync", { ...SyncFlags.flags, ...ScrollFlags.flags }, (flags): Effect.Effect<void, SyncCommandError, ExportCommandContext> =>
  Effect.flatMap(Effect.promise(() => import("./internal/sync.js")), (Sync) => Sync.fromFlags(flags))).pipe(
    Command.withDescription(SyncFlags.description)
  )

const fleetRuns = Effect.promise(() => import("./internal/fleet.js"))

const fleetCommand = Command.make("fleet").pipe(
  Command.withDescription(FleetFlags.description),
  Command.withSubcommands([
    Command.make("runner", FleetFlags.runner, (flags) => Effect.flatMap(fleetRuns, (Fleet) => Fleet.runRunner(flags))).pipe(
      Command.withDescription(FleetFlags.runnerDescription)
    ),
    Command.make("sync", FleetFlags.sync, (flags) => Effect.flatMap(fleetRuns, (Fleet) => Fleet.runSync(flags))).pipe(
      Command.withDescription(FleetFlags.syncDescription)
    ),
    Command.make("prune", FleetFlags.prune, (flags) => Effect.flatMap(fleetRuns, (Fleet) => Fleet.runPrune(flags))).pipe(
      Command.withDescription(FleetFlags.pruneDescription)
    ),
    Command.make("status", FleetFlags.status, (flags) => Effect.flatMap(fleetRuns, (Fleet) => Fleet.runStatus(flags))).pipe(
      Command.withDescription(FleetFlags.statusDescription)
    )
  ])
)

/**
 * The `intercom-scroll` command and its subcommands (`export`, `sync`, `fleet`). `run` runs it as the CLI does; an app of its own can
 * also nest it with `Command.withSubcommands`, where `--help` is then @effect/cli's rendering, not `run`'s.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(name).pipe(
  Command.withDescription(
    "Export Intercom users, leads and companies, or keep a copy of them in a database, for one workspace or a fleet of many. The token comes from INTERCOM_ACCESS_TOKEN (a fleet's, from the variables its workspaces file names)."
  ),
  // One module per subcommand, its flags apart from what runs it (see exportCommand).
  Command.withSubcommands([exportCommand, syncCommand, fleetCommand])
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
    yield* Stdio.print(Help.render({ name, version, command: command.descriptor, args, config, color, needed: FleetFlags.needed }))
  })

/**
 * Parses `argv` (with the runtime and script first, as in `process.argv`) and runs the command. `--help` (or `-h`)
 * prints the help of the subcommand named, else of the whole command, to stdout: plain text unless stdout is a
 * terminal and NO_COLOR is unset. `--version` prints the version, one line.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  argv: ReadonlyArray<string>
): Effect.Effect<
  void,
  ExportCommandError | SyncCommandError | FleetCommandError | ValidationError.ValidationError,
  ExportCommandContext | CliApp.CliApp.Environment
> => Effect.flatMap(LogLevelFlag.settings(argv.slice(2)), (log) => runWith(argv, log))

const runWith = (argv: ReadonlyArray<string>, { args, format, level, mistake }: LogLevelFlag.Settings) => {
  if (Help.isRequested(args)) return printHelp(args)
  if (mistake !== undefined) return usageError(mistake)
  // @effect/cli prints the version as a paragraph, which ends in a blank line.
  if (args.includes("--version")) return Stdio.print(`${version}\n`)
  // @effect/cli would print the help styled, whatever stdout is.
  if (Help.stopsShortOfSubcommand(command.descriptor, args)) return printHelp(args)
  const program = Effect.flatMap(Effect.zip(Stdio.Stdio, cliConfig), ([stdio, config]) => {
    // @effect/cli's wizard prompts on a terminal whatever stdin is: from a pipe it wrote its escapes and waited for ever.
    if (args.includes("--wizard") && !stdio.stdinIsTTY) {
      return usageError(wizardNeedsTerminal(Help.subcommandPath(command.descriptor, args)))
    }
    const mistake = UsageMistake.find(name, command.descriptor, args, config)
    if (mistake !== undefined) return usageError(mistake)
    return Effect.flatMap(
      UsageMistake.missing(name, command.descriptor, args),
      (missing) => missing === undefined ? commandProgram(argv, args) : usageError(missing)
    )
  })
  // A runner is a server: its log is what an operator reads, at info unless --log-level says otherwise.
  const minimum = level ?? (isRunner(args) ? LogLevel.Info : undefined)
  const leveled = minimum === undefined ? program : Logger.withMinimumLogLevel(program, minimum)
  return format === undefined ? leveled : Effect.provide(leveled, LogLevelFlag.logger(format))
}

/** Points at the help that lists the flags: the command's own; the top level's lists commands, not their flags. */
const wizardNeedsTerminal = (path: ReadonlyArray<string>) =>
  `--wizard asks its questions on a terminal, and stdin is not one: run it in a terminal, or give the flags on the command line (${
    path.length === 0 ? `${name} COMMAND --help lists a command's` : `${[name, ...path].join(" ")} --help lists them`
  }).`

const commandProgram = (argv: ReadonlyArray<string>, args: ReadonlyArray<string>) =>
  usageErrorsToStdio(withTelemetry(runCommand([...argv.slice(0, 2), ...args])))

const usageError = (mistake: string) =>
  usageErrorsToStdio(Console.error(mistake).pipe(Effect.zipRight(Effect.fail(ValidationError.invalidValue(HelpDoc.p(mistake))))))

/** With the command's spans, metrics and logs sent over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (or a signal's own) says where (loaded only then). */
const withTelemetry = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.promise(() => import("./internal/telemetry.js")), (Telemetry) => Telemetry.provide(self))

const isRunner = (args: ReadonlyArray<string>) =>
  Help.subcommandPath(command.descriptor, args).join(" ") === "fleet runner"

/**
 * @effect/cli reports a usage error with `Console.error`: it goes through `Stdio` as all else the command writes, so
 * that an app or a test that gives the command its own stdio gets it there too.
 */
const usageErrorsToStdio = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | Stdio.Stdio> =>
  Effect.flatMap(Effect.zip(Stdio.Stdio, Effect.console), ([stdio, console]) =>
    Effect.withConsole(self, {
      ...console,
      error: (...args: ReadonlyArray<unknown>) => stdio.writeStderr(`${args.map(String).join(" ")}\n`)
    }))

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
  Undici.layer,
  Stdio.layer,
  Logger.replace(Logger.defaultLogger, LogLevelFlag.logfmtToStderr),
  Logger.minimumLogLevel(LogLevel.Error)
)

/**
 * When `self` fails, prints one line on stderr naming the error and what to do, with this command line's flags (never
 * the token). A program that takes no flags itself (`pnpm start`) names, in `flagsOf`, the command that does; the
 * `subcommand` run (`["fleet", "runner"]`) says what a stop part-way leaves. The exit code is `runMain`'s.
 *
 * @since 0.1.0
 * @category running
 */
export const reportFailure = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  options: {
    readonly flagsOf?: string | undefined
    readonly subcommand?: ReadonlyArray<string> | undefined
    /** The log's format: with `json`, the line is a JSON log line too, so that a log aggregator reads all of stderr. */
    readonly logFormat?: LogLevelFlag.Format | undefined
  } = {}
): Effect.Effect<A, E, R | Stdio.Stdio> =>
  Effect.onExit(self, (exit) =>
    Exit.isSuccess(exit) ? Effect.void : Effect.gen(function*() {
      const stdio = yield* Stdio.Stdio
      const token = yield* Config.option(Config.redacted("INTERCOM_ACCESS_TOKEN")).pipe(
        Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>())
      )
      // Loaded only on failure: it needs the core, which `--help` never loads.
      const Failure = yield* Effect.promise(() => import("./internal/failure.js"))
      const text = Failure.line(exit.cause, Option.toArray(token), options)
      if (text === undefined) return
      if (options.logFormat !== "json") return yield* stdio.writeStderr(`${text}\n`)
      // The fields of the json logger's lines.
      const level = Cause.isInterruptedOnly(exit.cause) ? "INFO" : "ERROR"
      const timestamp = new Date(yield* Clock.currentTimeMillis).toISOString()
      yield* stdio.writeStderr(`${JSON.stringify({ message: text, logLevel: level, timestamp, annotations: {}, spans: {} })}\n`)
    }))

/**
 * Runs the command and, when it fails, prints one line naming the error. The exit code is `runMain`'s.
 *
 * @since 0.1.0
 * @category running
 */
export const main = (argv: ReadonlyArray<string>) =>
  Effect.flatMap(LogLevelFlag.settings(argv.slice(2)), (log) =>
    reportFailure(runWith(argv, log), {
      subcommand: Help.subcommandPath(command.descriptor, argv.slice(2)),
      logFormat: log.format
    }))

/**
 * Runs `program` as the process, with the CLI's layer: exit 0, 1 on failure (its line printed by `reportFailure`),
 * 130 on Ctrl-C, 143 on SIGTERM, 129 on SIGHUP, 141 when the reader of stdout closed it.
 *
 * @since 0.1.0
 * @category running
 */
export const runMain = <E>(program: Effect.Effect<unknown, E, Layer.Layer.Success<typeof layer>>): void => {
  // runMain interrupts the program on SIGINT and SIGTERM alike; the exit code tells them apart, as shells do, by the
  // first one (pnpm answers a second Ctrl-C by sending SIGTERM to its child).
  let stoppedBy: ExitCode.StopSignal | undefined
  // runMain stops listening after the first signal, so a second one (a terminal's Ctrl-C passed on by a parent such as
  // pnpm, on top of the terminal's own) would kill the process before the interrupted export removed its temporary
  // file. These listeners keep the process alive until runMain exits it, or the stop's deadline does (StopDeadline). A
  // stop signal after the first: a copy of it changes nothing, a Ctrl-C or SIGTERM sent again later stops at once; a
  // SIGHUP then (the terminal closed) is no one asking again.
  let again: ((signal: ExitCode.StopSignal) => void) | undefined
  // The SIGTERM sent here for a SIGHUP, which is no second signal however late a loaded machine delivers it.
  let passedOn = false
  const stopped = (signal: ExitCode.StopSignal) => () => {
    if (stoppedBy !== undefined) {
      if (signal === "SIGTERM" && passedOn) passedOn = false
      else if (signal !== "SIGHUP") again?.(signal)
      return
    }
    stoppedBy = signal
    again = StopDeadline.arm(signal, ExitCode.exitCode(Exit.interrupt(FiberId.none), signal), {
      setTimeout: (run, millis) => setTimeout(run, millis),
      writeStderr: (text) => process.stderr.write(text),
      exit: (code) => process.exit(code),
      now: () => performance.now()
    })
    // runMain does not listen for SIGHUP (a closed terminal, a dropped SSH session), which would end the process at
    // once, its cleanup undone: it is passed on as the SIGTERM runMain stops on.
    if (signal === "SIGHUP") {
      passedOn = true
      process.kill(process.pid, "SIGTERM")
    }
  }
  for (const signal of Object.keys(ExitCode.stopSignals) as ReadonlyArray<ExitCode.StopSignal>) {
    process.on(signal, stopped(signal))
  }
  // After a failure or a signal runMain exits the process at once, and what stdout and stderr still held for a slow
  // reader was lost: an export's last records cut mid-line, the error's line. An empty write's callback comes after the
  // writes before it; a stop's deadline still bounds the wait for a reader that never reads.
  const teardown: Teardown = (exit, onExit) =>
    process.stdout.write("", () => process.stderr.write("", () => onExit(ExitCode.exitCode(exit, stoppedBy ?? "SIGINT"))))
  program.pipe(
    Effect.provide(layer),
    // Errors are reported as one line; runMain's own reporting would add a stack trace.
    NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown })
  )
}
