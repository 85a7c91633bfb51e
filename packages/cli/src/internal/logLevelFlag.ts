/**
 * `--log-level`, wherever it is typed. @effect/cli lists it among every subcommand's flags but reads it only before the
 * first subcommand (`intercom-scroll fleet runner --log-level debug` was "Received unknown argument: '--log-level'"),
 * answers a level it does not know with "Invalid subcommand", and prints a usage error twice when the flag is given
 * (it runs the command again under the level). The command line takes the flag out of the arguments itself.
 *
 * @since 0.1.0
 */
import { LogLevel } from "effect"

const byName = new Map(LogLevel.allLevels.map((level) => [level._tag.toLowerCase(), level]))

/**
 * The arguments (after the runtime and the script) without `--log-level LEVEL` or `--log-level=LEVEL`; the level (the
 * last one given); and, for a level missing or unknown, what is wrong with it. Nothing after `--` is read.
 *
 * @since 0.1.0
 * @category parsing
 */
export const extract = (args: ReadonlyArray<string>): {
  readonly args: ReadonlyArray<string>
  readonly level: LogLevel.LogLevel | undefined
  readonly mistake: string | undefined
} => {
  const rest: Array<string> = []
  let level: LogLevel.LogLevel | undefined
  let mistake: string | undefined
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") {
      rest.push(...args.slice(i))
      break
    }
    if (arg !== "--log-level" && !arg.startsWith("--log-level=")) {
      rest.push(arg)
      continue
    }
    const name = arg === "--log-level" ? args[++i] : arg.slice("--log-level=".length)
    level = name === undefined ? undefined : byName.get(name)
    if (level === undefined) {
      mistake ??= `--log-level takes one of ${[...byName.keys()].join(", ")}; got ${name === undefined ? "nothing" : JSON.stringify(name)}`
    }
  }
  return { args: rest, level, mistake }
}
