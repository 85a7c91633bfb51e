/**
 * `--log-level` and `--log-format`, wherever they are typed, else `INTERCOM_SCROLL_LOG_LEVEL` and
 * `INTERCOM_SCROLL_LOG_FORMAT`. @effect/cli lists `--log-level` among every subcommand's flags but reads it only before
 * the first subcommand (`intercom-scroll fleet runner --log-level debug` was "Received unknown argument:
 * '--log-level'"), answers a level it does not know with "Invalid subcommand", and prints a usage error twice when the
 * flag is given (it runs the command again under the level). The command line takes both flags out of the arguments
 * itself.
 *
 * @since 0.1.0
 */
import { Options as Flag } from "@effect/cli"
import { Config, DateTime, Effect, HashMap, Layer, Logger, LogLevel, Option } from "effect"

const byName = new Map(LogLevel.allLevels.map((level) => [level._tag.toLowerCase(), level]))

/**
 * What the log lines are: logfmt (`timestamp=… level=INFO message="Sync started" workspace=acme`), or one JSON object
 * a line (`{"message":"Sync started","logLevel":"INFO","timestamp":"…","annotations":{"workspace":"acme"},…}`) for a
 * log aggregator that reads JSON.
 *
 * @since 0.1.0
 * @category models
 */
export type Format = "logfmt" | "json"

const formats: ReadonlyArray<Format> = ["logfmt", "json"]

/**
 * The environment variables read where the flags are not given.
 *
 * @since 0.1.0
 * @category constants
 */
export const variables = { level: "INTERCOM_SCROLL_LOG_LEVEL", format: "INTERCOM_SCROLL_LOG_FORMAT" } as const

/**
 * The arguments (after the runtime and the script) without `--log-level LEVEL`, `--log-format FORMAT` or their
 * `--flag=VALUE` forms; the level and the format (the last of each given); and, for a value missing or unknown, what
 * is wrong with it. Nothing after `--` is read.
 *
 * @since 0.1.0
 * @category parsing
 */
export const extract = (args: ReadonlyArray<string>): {
  readonly args: ReadonlyArray<string>
  readonly level: LogLevel.LogLevel | undefined
  readonly format: Format | undefined
  readonly mistake: string | undefined
} => {
  const rest: Array<string> = []
  let level: LogLevel.LogLevel | undefined
  let format: Format | undefined
  let mistake: string | undefined
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") {
      rest.push(...args.slice(i))
      break
    }
    const flag = ["--log-level", "--log-format"].find((flag) => arg === flag || arg.startsWith(`${flag}=`))
    if (flag === undefined) {
      rest.push(arg)
      continue
    }
    const name = arg === flag ? args[++i] : arg.slice(flag.length + 1)
    if (flag === "--log-level") {
      level = name === undefined ? undefined : byName.get(name)
      if (level === undefined) mistake ??= levelMistake("--log-level", name)
    } else {
      format = formats.find((format) => format === name)
      if (format === undefined) mistake ??= formatMistake("--log-format", name)
    }
  }
  return { args: rest, level, format, mistake }
}

/**
 * `--log-level` and `--log-format` as `--help` lists them: @effect/cli knows the first only by its own words ("Sets the
 * minimum log level for a command."), and the second not at all, since the command line takes both out itself.
 *
 * @since 0.1.0
 * @category help
 */
export const help = {
  level: `The least level of the log lines on stderr, anywhere on the line (default error, which the progress line completes; warning adds a line per restart; info for fleet runner). Else ${variables.level}.`,
  format: Flag.choice("log-format", formats).pipe(
    Flag.withDescription(
      `logfmt (the default) or json: one JSON object a line, for a log aggregator. Anywhere on the line. Else ${variables.format}.`
    )
  )
}

const quoted = (name: string | undefined) => name === undefined ? "nothing" : JSON.stringify(name)
const levelMistake = (source: string, name: string | undefined) =>
  `${source} takes one of ${[...byName.keys()].join(", ")}; got ${quoted(name)}`
const formatMistake = (source: string, name: string | undefined) => `${source} takes logfmt or json; got ${quoted(name)}`

/**
 * What the command line and the environment say of the log: the arguments without the log flags, and the level and
 * format the flags gave, else those of the environment (`INTERCOM_SCROLL_LOG_LEVEL`, `INTERCOM_SCROLL_LOG_FORMAT`, read
 * through the current `ConfigProvider`; an empty variable is unset), with what is wrong with a flag's or a variable's
 * value (a flag's first). The flags win: a container sets the variables.
 *
 * @since 0.1.0
 * @category parsing
 */
export const settings = (args: ReadonlyArray<string>): Effect.Effect<Settings> => {
  const flags = extract(args)
  return Effect.map(
    Effect.all([
      orVariable(flags.level, variables.level, (name) => byName.get(name.toLowerCase()), levelMistake),
      orVariable(flags.format, variables.format, (name) => formats.find((format) => format === name.toLowerCase()), formatMistake)
    ]),
    ([level, format]) => ({
      args: flags.args,
      level: level.value,
      format: format.value,
      mistake: flags.mistake ?? level.mistake ?? format.mistake
    })
  )
}

/**
 * The log's settings of one command line (`settings`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  readonly args: ReadonlyArray<string>
  readonly level: LogLevel.LogLevel | undefined
  readonly format: Format | undefined
  readonly mistake: string | undefined
}

/** `given`, else the variable's value parsed, with what is wrong with it. */
const orVariable = <A>(
  given: A | undefined,
  variable: string,
  parse: (name: string) => A | undefined,
  mistakeOf: (source: string, name: string) => string
): Effect.Effect<{ readonly value: A | undefined; readonly mistake: string | undefined }> =>
  given !== undefined
    ? Effect.succeed({ value: given, mistake: undefined })
    : Config.option(Config.string(variable)).pipe(
      Effect.orElseSucceed(() => Option.none<string>()),
      Effect.map((name) => {
        if (Option.isNone(name) || name.value === "") return { value: undefined, mistake: undefined }
        const value = parse(name.value)
        return { value, mistake: value === undefined ? mistakeOf(variable, name.value) : undefined }
      })
    )

/**
 * The CLI's logger: logfmt, each line on stderr, so that the log never mixes into records on stdout.
 *
 * @since 0.1.0
 * @category logging
 */
export const logfmtToStderr = Logger.withConsoleError(
  // A `DateTime` annotation (`ClusterCron`'s `dateTime` on its round lines) as its ISO time: Effect's logfmt writes it
  // as JSON, a string quoted twice (`dateTime="\"2026-…Z\""`). The JSON logger writes it plainly already.
  Logger.mapInputOptions(Logger.logfmtLogger, (options) => ({
    ...options,
    annotations: HashMap.map(options.annotations, (value) => DateTime.isDateTime(value) ? DateTime.formatIso(value) : value)
  }))
)

/**
 * The logger of `format` in place of the CLI's (`logfmtToStderr`), on stderr too.
 *
 * @since 0.1.0
 * @category logging
 */
export const logger = (format: Format) =>
  format === "json" ? Logger.replace(logfmtToStderr, Logger.withConsoleError(Logger.jsonLogger)) : Layer.empty
