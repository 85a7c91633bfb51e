/**
 * A flag typed wrong, said in one line before @effect/cli parses the arguments. Its parser reads a subcommand's flags
 * one declared flag at a time, and what it says of a mistake depends on where the mistake stands: `sync all --databse
 * x` was `Expected to find option: '--database'` (the flag it looked for, not the one typed), `export users --out` was
 * `Received unknown argument: '--out'`, and `--max-restarts --base-url URL` took `--base-url` for the count. Its
 * `ValidationError` carries only that text, so the arguments are read here against the flags the command declares
 * (its `Usage`, and @effect/cli's built-in ones).
 *
 * @since 0.1.0
 */
import { AutoCorrect, BuiltInOptions, type CliConfig, CommandDescriptor, HelpDoc, Options as Flag, Usage } from "@effect/cli"
import { Config, Effect, Option } from "effect"
import * as FleetFlags from "./fleetFlags.js"
import * as Help from "./help.js"

/** A flag or an argument the command declares. */
interface Declared {
  readonly names: ReadonlyArray<string>
  /** What it takes (`N`, `us | eu | au`, `users | leads | companies`), or none for a flag that is on or off. */
  readonly value: Option.Option<string>
}

/** The usage's named parts, in order, whose names `named` picks: its flags (`--out`), or its arguments (`<resource>`). */
const namedIn = (usage: Usage.Usage, named: (name: string) => boolean): ReadonlyArray<Declared> => {
  switch (usage._tag) {
    case "Named":
      return usage.names.some(named) ? [{ names: usage.names, value: usage.acceptedValues }] : []
    case "Optional":
    case "Repeated":
      return namedIn(usage.usage, named)
    case "Alternation":
    case "Concat":
      return [...namedIn(usage.left, named), ...namedIn(usage.right, named)]
    default:
      return []
  }
}

const flagsOf = (usage: Usage.Usage) => namedIn(usage, (name) => name.startsWith("-"))

/** The command's arguments (`<resource>`) in order, with what each takes (`users | leads | companies`). */
const argumentsOf = (usage: Usage.Usage) => namedIn(usage, (name) => name.startsWith("<"))

/**
 * An argument of a few choices given none of them (`sync userz`), in one line naming the argument, what was typed and
 * the choice closest to it: @effect/cli said `Expected one of the following cases: users, leads, companies, all`.
 */
const notAChoice = (
  commandName: string,
  argument: Declared,
  typed: string,
  config: CliConfig.CliConfig
): string | undefined => {
  const choices: ReadonlyArray<string> = Option.match(argument.value, { onNone: () => [], onSome: (value) => value.split(" | ") })
  if (choices.length < 2 || choices.includes(typed)) return undefined
  const best = choices
    .map((choice) => ({ choice, distance: AutoCorrect.levensteinDistance(typed, choice, config) }))
    .reduce((best, next) => next.distance < best.distance ? next : best)
  const listed = `${choices.slice(0, -1).join(", ")} or ${choices[choices.length - 1]}`
  const meant = best.distance <= Math.max(2, Math.floor(typed.length / 3)) ? `: did you mean ${best.choice}?` : ""
  return `${commandName} ${argument.names[0]} is ${listed}, not ${JSON.stringify(typed)}${meant}`
}

/** `--help`, `-h`, `--version`, `--wizard`, `--completions SHELL`, as @effect/cli declares them for every command. */
const builtIns = (command: CommandDescriptor.Command<unknown>): ReadonlyArray<Declared> =>
  flagsOf(Flag.getUsage(BuiltInOptions.builtInOptions(command, Usage.empty, HelpDoc.empty)))

/** A flag as typed: `--name` or `-n`, not a negative number (`-1`) or `-` (stdin). */
const looksLikeFlag = (arg: string) => /^--?[A-Za-z]/.test(arg)

/** The closest of the command's flags to what was typed, if close enough to be what was meant. */
const closest = (typed: string, flags: ReadonlyArray<Declared>, config: CliConfig.CliConfig): string | undefined => {
  const candidates = flags.flatMap((flag) => flag.names.filter((name) => name.startsWith("--")))
  const scored = candidates.map((name) => ({ name, distance: AutoCorrect.levensteinDistance(typed, name, config) }))
  const best = scored.reduce<{ readonly name: string; readonly distance: number } | undefined>(
    (best, next) => best === undefined || next.distance < best.distance ? next : best,
    undefined
  )
  // A letter or two off, or a third of a long name: `--databse`, `--max-restart`, `--wokspace`, not `--bogus`.
  return best !== undefined && best.distance <= Math.max(2, Math.floor(typed.length / 3)) ? best.name : undefined
}

/**
 * What is wrong with the flags of the subcommand the arguments run, in one line, or undefined when they are as it
 * declares them (what @effect/cli then says of the rest stands): a flag it does not have (and the one closest to it),
 * or a flag that takes a value followed by nothing or by another of its flags. The arguments are those after the
 * runtime and the script; nothing after `--` is read.
 *
 * @since 0.1.0
 * @category parsing
 */
export const find = (
  name: string,
  command: CommandDescriptor.Command<unknown>,
  args: ReadonlyArray<string>,
  config: CliConfig.CliConfig
): string | undefined => {
  const run = Help.commandRun(command, args)
  // A command of subcommands only (`fleet`) takes no flags of its own: @effect/cli says which subcommands it has.
  if (run.hasSubcommands) return undefined
  const flags = [...flagsOf(CommandDescriptor.getUsage(run.command)), ...builtIns(run.command)]
  // As declared, whatever the case-sensitivity of @effect/cli's config: it ran `export users --REGION eu` against the
  // US region, the flag neither taken nor refused.
  const known = (typed: string) => flags.find((flag) => flag.names.includes(typed))
  const commandName = [name, ...run.path].join(" ")
  // The arguments given, in order: what is neither a flag nor a flag's value.
  const given: Array<string> = []
  for (let i = 0; i < run.args.length; i++) {
    const arg = run.args[i]!
    if (arg === "--") break
    if (!looksLikeFlag(arg)) {
      given.push(arg)
      continue
    }
    const equals = arg.indexOf("=")
    const typed = equals === -1 ? arg : arg.slice(0, equals)
    const flag = known(typed)
    if (flag === undefined) {
      const meant = closest(typed, flags, config)
      const help = `${commandName} --help lists its flags`
      return meant === undefined
        ? `${commandName} has no flag ${typed} (${help}).`
        : `${commandName} has no flag ${typed}: did you mean ${meant}? (${help})`
    }
    if (Option.isNone(flag.value) || equals !== -1) continue
    const next = run.args[i + 1]
    if (next === undefined || (looksLikeFlag(next) && known(next.split("=")[0]!) !== undefined)) {
      const after = next === undefined ? "nothing follows it" : `the next argument, ${next.split("=")[0]}, is a flag`
      return `${typed} is missing its value (${typed} ${flag.value.value}): ${after}.`
    }
    // The value, whatever it looks like (`--max-restarts -1` is refused by the flag, in its own words).
    i++
  }
  const declared = argumentsOf(CommandDescriptor.getUsage(run.command))
  for (const [index, typed] of given.entries()) {
    const argument = declared[index]
    const mistake = argument === undefined ? undefined : notAChoice(commandName, argument, typed, config)
    if (mistake !== undefined) return `${mistake} (${commandName} --help says what each does).`
  }
  return undefined
}

/** The variable each flag a subcommand needs (`FleetFlags.needed`) falls back on, and what its value is, where its name does not say. */
const neededFlags: Readonly<Record<string, { readonly variable: string; readonly forms?: string }>> = {
  "--database": { variable: FleetFlags.variables.database, forms: "sqlite:PATH, or postgres://USER@HOST:PORT/DATABASE" },
  "--port": { variable: FleetFlags.variables.port },
  "--workspaces": { variable: FleetFlags.variables.workspaces }
}

/**
 * A flag the subcommand needs (`sync --database`, `fleet runner --port`) missing from the arguments while its variable
 * is unset, in one line naming both: @effect/cli said `Expected to find option: '--database'`, which named neither the
 * variable that stands in for it nor what it takes. Undefined when none is missing (or the line asks for the wizard or
 * completions, which need none). Read through the `ConfigProvider`, as the flags read their variables.
 *
 * @since 0.1.0
 * @category parsing
 */
export const missing = (
  name: string,
  command: CommandDescriptor.Command<unknown>,
  args: ReadonlyArray<string>
): Effect.Effect<string | undefined> =>
  Effect.gen(function*() {
    const run = Help.commandRun(command, args)
    if (run.hasSubcommands || args.includes("--wizard") || args.includes("--completions")) return undefined
    const before = run.args.includes("--") ? run.args.slice(0, run.args.indexOf("--")) : run.args
    const commandName = [name, ...run.path].join(" ")
    const values = new Map(flagsOf(CommandDescriptor.getUsage(run.command)).flatMap((flag) => flag.names.map((each) => [each, flag.value] as const)))
    for (const flag of FleetFlags.needed[run.path.join(" ")] ?? []) {
      const given = before.some((arg) => arg === flag || arg.startsWith(`${flag}=`))
      const needed = neededFlags[flag]
      if (given || needed === undefined) continue
      const set = yield* Effect.orElseSucceed(Config.option(Config.string(needed.variable)), () => Option.none())
      if (Option.isSome(set)) continue
      const value = Option.match(values.get(flag) ?? Option.none(), { onNone: () => "", onSome: (value) => ` ${value}` })
      return needed.forms === undefined
        ? `${commandName} needs ${flag}${value}, or ${needed.variable} set to one (${commandName} --help says what it takes).`
        : `${commandName} needs ${flag}${value} (${needed.forms}), or ${needed.variable} set to one.`
    }
    return undefined
  })
