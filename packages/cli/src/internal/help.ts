/**
 * `--help`, rendered by the command line itself from @effect/cli's `HelpDoc`, because @effect/cli's own rendering
 * styles it for a terminal wherever it goes (bold and colour escapes into a pipe or a file), spells a subcommand's
 * usage `$ export …` without the program's name, and gives every flag generic sentences ("A user-defined piece of
 * text.", "This setting is optional.") around the description that says what the flag does.
 *
 * @since 0.1.0
 */
import { type CliConfig, CommandDescriptor, HelpDoc, Options as Flag, Usage } from "@effect/cli"
import * as SpanOf from "@effect/cli/HelpDoc/Span"
import type { Span } from "@effect/cli/HelpDoc/Span"
import * as Doc from "@effect/printer/Doc"
import { Array as Arr, Option } from "effect"
import * as LogLevelFlag from "./logLevelFlag.js"

/**
 * Whether the arguments (after the runtime and the script) ask for help anywhere, as @effect/cli reads them.
 *
 * @since 0.1.0
 * @category help
 */
export const isRequested = (args: ReadonlyArray<string>): boolean => args.includes("--help") || args.includes("-h")

const textOf = (span: Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Highlight":
    case "Strong":
    case "Weak":
      return textOf(span.value)
    case "Sequence":
      return textOf(span.left) + textOf(span.right)
  }
}

/**
 * What @effect/cli says of every flag of a type (the flag's line already shows its values) and of every optional
 * flag (all of them are, and each description gives the default).
 */
const generic: ReadonlyArray<RegExp> = [
  /^A user-defined piece of text( that is confidential)?\.$/,
  /^A true or false value\.$/,
  /^An integer\.$/,
  /^A floating point number\.$/,
  /^One of the following: /,
  /^This setting is optional\./,
  // Each such flag's description names its variable.
  /^This option can be set from environment variables\.$/
]

/** The usage with the `needed` flags shown as needed. */
const withNeeded = (usage: Usage.Usage, needed: ReadonlyArray<string>): Usage.Usage => {
  switch (usage._tag) {
    case "Optional":
      return usage.usage._tag === "Named" && usage.usage.names.some((name) => needed.includes(name))
        ? usage.usage
        : Usage.optional(withNeeded(usage.usage, needed))
    case "Repeated":
      return Usage.repeated(withNeeded(usage.usage, needed))
    case "Alternation":
      return Usage.alternation(withNeeded(usage.left, needed), withNeeded(usage.right, needed))
    case "Concat":
      return Usage.concat(withNeeded(usage.left, needed), withNeeded(usage.right, needed))
    default:
      return usage
  }
}

/**
 * The help without @effect/cli's generic sentences.
 *
 * @since 0.1.0
 * @category help
 */
export const withoutGenericText = (doc: HelpDoc.HelpDoc, needed: Needed = {}): HelpDoc.HelpDoc => {
  switch (doc._tag) {
    case "Empty":
    case "Header":
      return doc
    case "Paragraph": {
      const text = textOf(doc.value)
      if (generic.some((pattern) => pattern.test(text))) return HelpDoc.empty
      // A subcommand's line of COMMANDS: its usage first, as @effect/cli brackets it (see `withNeeded`).
      const subcommand = Object.keys(needed).find((name) => text.startsWith(`${name} `))
      return subcommand === undefined ? doc : HelpDoc.p(
        needed[subcommand]!.reduce(
          (line, flag) => line.replace(new RegExp(`\\[(${flag} [^\\]]*)\\]`), "$1"),
          text
        )
      )
    }
    case "DescriptionList":
      return HelpDoc.descriptionList(
        Arr.flatMap(doc.definitions, ([span, block]): Arr.NonEmptyArray<[Span, HelpDoc.HelpDoc]> =>
          textOf(span).startsWith("--log-level ")
            ? [[span, HelpDoc.p(LogLevelFlag.help.level)], ...logFormatEntries(needed)]
            : [[span, withoutGenericText(block, needed)]])
      )
    case "Enumeration":
      return HelpDoc.enumeration(Arr.map(doc.elements, (element) => withoutGenericText(element, needed)))
    case "Sequence":
      return HelpDoc.sequence(withoutGenericText(doc.left, needed), withoutGenericText(doc.right, needed))
  }
}

/** `--log-format`, listed after `--log-level`, which the command line reads as it does that one (`LogLevelFlag`). */
const logFormatEntries = (needed: Needed): Array<[Span, HelpDoc.HelpDoc]> => {
  const doc = Flag.getHelp(LogLevelFlag.help.format)
  return doc._tag === "DescriptionList"
    ? Arr.map(doc.definitions, ([span, block]): [Span, HelpDoc.HelpDoc] => [span, withoutGenericText(block, needed)])
    : []
}

/**
 * By subcommand (`fleet runner`), the flags a variable may stand in for that it needs all the same (`--database`):
 * @effect/cli brackets every flag with a fallback, as it does an optional one.
 *
 * @since 0.1.0
 * @category models
 */
export type Needed = Readonly<Record<string, ReadonlyArray<string>>>

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The flags a variable may stand in for that are needed all the same, to show without brackets. */
  readonly needed?: Needed | undefined
  /** The program's name, as typed: `intercom-scroll`. */
  readonly name: string
  readonly version: string
  readonly command: CommandDescriptor.Command<unknown>
  /** The arguments after the runtime and the script. */
  readonly args: ReadonlyArray<string>
  readonly config: CliConfig.CliConfig
  /** Bold headings and flags, for a terminal; plain text otherwise. */
  readonly color: boolean
}

/**
 * A command descriptor as the tree @effect/cli builds. `CommandDescriptor.getSubcommands` gives a nested command
 * without its own subcommands (`fleet` without `runner` and `sync`), so the help walks the tree itself.
 */
type Node =
  | { readonly _tag: "Standard" | "GetUserInput"; readonly name: string; readonly description: HelpDoc.HelpDoc }
  | { readonly _tag: "Map"; readonly command: Node }
  | { readonly _tag: "Subcommands"; readonly parent: Node; readonly children: ReadonlyArray<Node> }

const nameOf = (node: Node): string => {
  switch (node._tag) {
    case "Map":
      return nameOf(node.command)
    case "Subcommands":
      return nameOf(node.parent)
    default:
      return node.name
  }
}

/** The command itself, without its subcommands: its name, description and flags. */
const ownOf = (node: Node): Node => node._tag === "Map" ? ownOf(node.command) : node._tag === "Subcommands" ? ownOf(node.parent) : node

const childrenOf = (node: Node): ReadonlyArray<Node> =>
  node._tag === "Map" ? childrenOf(node.command) : node._tag === "Subcommands" ? node.children : []

/**
 * The chain of subcommands the arguments name, outermost first (`fleet`, then `runner`), and the arguments after the
 * last one's name.
 */
const walk = (node: Node, args: ReadonlyArray<string>): { readonly chain: ReadonlyArray<Node>; readonly rest: ReadonlyArray<string> } => {
  const children = childrenOf(node)
  const index = args.findIndex((arg) => children.some((child) => nameOf(child) === arg))
  if (index === -1) return { chain: [], rest: args }
  const child = children.find((child) => nameOf(child) === args[index])!
  const below = walk(child, args.slice(index + 1))
  return { chain: [child, ...below.chain], rest: below.rest }
}

const subcommandsNamed = (node: Node, args: ReadonlyArray<string>): ReadonlyArray<Node> => walk(node, args).chain

/**
 * The names of the subcommands the arguments run, outermost first (`["fleet", "runner"]`), as @effect/cli finds them;
 * none for the command itself.
 *
 * @since 0.1.0
 * @category help
 */
export const subcommandPath = (command: CommandDescriptor.Command<unknown>, args: ReadonlyArray<string>): ReadonlyArray<string> =>
  subcommandsNamed(command as unknown as Node, args).map(nameOf)

/**
 * The subcommand the arguments run (the last they name, else the command itself) and the arguments after its name,
 * which are its own: its flags and arguments, as @effect/cli reads them.
 *
 * @since 0.1.0
 * @category help
 */
export const commandRun = (
  command: CommandDescriptor.Command<unknown>,
  args: ReadonlyArray<string>
): {
  readonly path: ReadonlyArray<string>
  readonly command: CommandDescriptor.Command<unknown>
  readonly args: ReadonlyArray<string>
  readonly hasSubcommands: boolean
} => {
  const { chain, rest } = walk(command as unknown as Node, args)
  const last = chain.length === 0 ? command as unknown as Node : chain[chain.length - 1]!
  return {
    path: chain.map(nameOf),
    command: last as unknown as CommandDescriptor.Command<unknown>,
    args: rest,
    hasSubcommands: childrenOf(last).length > 0
  }
}

/**
 * Whether the arguments are only the names of subcommands and stop at one that only has subcommands
 * (`intercom-scroll`, `intercom-scroll fleet`): its help is all there is to print, and it is printed as `--help` is
 * (plain into a pipe). Any other argument (`--bogus`, `fleet --max-syncs 3`) is @effect/cli's to report as a usage
 * error, not a help that exits 0.
 *
 * @since 0.1.0
 * @category help
 */
export const stopsShortOfSubcommand = (command: CommandDescriptor.Command<unknown>, args: ReadonlyArray<string>): boolean => {
  const root = command as unknown as Node
  const chain = subcommandsNamed(root, args)
  const last = chain.length === 0 ? root : chain[chain.length - 1]!
  // `--` names nothing.
  return childrenOf(last).length > 0 && args.filter((arg) => arg !== "--").length === chain.length
}

/**
 * The help for the subcommand the arguments name (the first argument that is one, as @effect/cli finds it, and so on
 * down: `fleet runner`), else for the whole command: the version, the usage from the program's name on, then the
 * description, arguments and flags.
 *
 * @since 0.1.0
 * @category help
 */
export const render = (options: Options): string => {
  const chain = subcommandsNamed(options.command as unknown as Node, options.args) as ReadonlyArray<
    CommandDescriptor.Command<unknown> & Node
  >
  const subcommand = Arr.last(chain)
  const parents = chain.slice(0, -1).map(nameOf)
  const usage = Option.match(subcommand, {
    onNone: () => CommandDescriptor.getUsage(options.command),
    onSome: (child) =>
      Usage.concat(
        [options.name, ...parents].map((name) => Usage.named([name], Option.none())).reduce(Usage.concat),
        CommandDescriptor.getUsage(child)
      )
  })
  // By subcommand below this one, as its COMMANDS list names them (`fleet --help`: `runner`); its own under "".
  const path = chain.map(nameOf).join(" ")
  const needed = Object.fromEntries(
    Object.entries(options.needed ?? {}).flatMap(([name, flags]) =>
      name === path ? [["", flags]] : path === "" ? [[name, flags]] : name.startsWith(`${path} `) ? [[name.slice(path.length + 1), flags]] : []
    )
  )
  const named = Option.getOrElse(subcommand, () => options.command as CommandDescriptor.Command<unknown> & Node)
  const doc = childrenOf(named).length > 0
    ? groupHelp(named, [options.name, ...chain.map(nameOf)].join(" "), needed, options)
    : HelpDoc.blocks([
      HelpDoc.p(`${options.name} ${options.version}`),
      HelpDoc.h1("USAGE"),
      ...Arr.map(Usage.enumerate(withNeeded(usage, needed[""] ?? []), options.config), (line) => HelpDoc.p(line)),
      withoutGenericText(CommandDescriptor.getHelp(named, options.config), needed)
    ])
  return options.color
    ? HelpDoc.toAnsiText(doc)
    : Doc.render(Doc.unAnnotate(HelpDoc.toAnsiDoc(doc)), { style: "pretty" })
}

/** The blocks of a help, in order, out of its nested sequences. */
const blocksOf = (doc: HelpDoc.HelpDoc): ReadonlyArray<HelpDoc.HelpDoc> =>
  doc._tag === "Sequence" ? [...blocksOf(doc.left), ...blocksOf(doc.right)] : doc._tag === "Empty" ? [] : [doc]

/** A description's first sentence: what the command does, the rest being for its own help. */
const firstSentence = (description: HelpDoc.HelpDoc): string => {
  const text = blocksOf(description).map((block) => block._tag === "Paragraph" ? textOf(block.value) : "").join(" ")
  return /^.*?\.(?=\s|$)/.exec(text)?.[0] ?? text
}

/**
 * A command's usage in brief, after its name: its argument's values, the flags it needs, and `[FLAG ...]` for the
 * flags it may take (its own help lists them).
 */
const briefUsage = (usage: Usage.Usage, config: CliConfig.CliConfig): string => {
  const argument: Array<string> = []
  const flags: Array<string> = []
  let optional = false
  const walk = (usage: Usage.Usage): void => {
    switch (usage._tag) {
      case "Named": {
        const [name = ""] = usage.names
        const values = Option.getOrUndefined(usage.acceptedValues)
        if (name.startsWith("<")) argument.push(values === undefined ? name : `<${values.replaceAll(" | ", "|")}>`)
        else flags.push(values === undefined ? name : `${name} ${values}`)
        return
      }
      case "Optional":
        optional = true
        return
      case "Concat":
        walk(usage.left)
        walk(usage.right)
        return
      case "Repeated":
      case "Alternation":
        flags.push(...Usage.enumerate(usage, config).map(textOf))
        return
      default:
        return
    }
  }
  // The command's own name first, which the list says already.
  if (usage._tag === "Concat") walk(usage.right)
  return [...argument, ...flags, ...(optional ? ["[FLAG ...]"] : [])].join(" ")
}

/**
 * The help of a command made of subcommands (`intercom-scroll`, `intercom-scroll fleet`): @effect/cli says only its
 * name in USAGE and lists its subcommands with every flag of each on one line. Here: how it is called, what it does,
 * each subcommand with its argument and the flags it needs, and how to get a subcommand's own help; then its flags.
 */
/** A subcommand as a command made of subcommands lists it. */
interface Listed {
  /** Its names after the command's: `fleet runner`. */
  readonly path: ReadonlyArray<string>
  /** Its argument and the flags it needs (`COMMAND` for one made of subcommands). */
  readonly usage: string
  readonly description: string
  readonly leaf: boolean
}

/** Every subcommand below `node`, each followed by its own. */
const listed = (node: Node, path: ReadonlyArray<string>, needed: Needed, config: CliConfig.CliConfig): ReadonlyArray<Listed> =>
  childrenOf(node).flatMap((child) => {
    const childPath = [...path, nameOf(child)]
    const own = ownOf(child)
    const leaf = childrenOf(child).length === 0
    const usage = leaf
      ? briefUsage(withNeeded(CommandDescriptor.getUsage(child as unknown as CommandDescriptor.Command<unknown>), needed[childPath.join(" ")] ?? []), config)
      : "COMMAND"
    const description = own._tag === "Standard" || own._tag === "GetUserInput" ? firstSentence(own.description) : ""
    return [{ path: childPath, usage, description, leaf }, ...listed(child, childPath, needed, config)]
  })

const groupHelp = (group: Node, prefix: string, needed: Needed, options: Options): HelpDoc.HelpDoc => {
  const subcommands = listed(group, [], needed, options.config)
  // The first subcommand at each depth, to show that the whole path goes before --help (`fleet runner --help`).
  const examples = Arr.dedupe(subcommands.filter((entry) => entry.leaf).map((entry) => entry.path.length)).map((depth) =>
    `${prefix} ${subcommands.find((entry) => entry.leaf && entry.path.length === depth)!.path.join(" ")} --help`
  )
  const own = blocksOf(withoutGenericText(CommandDescriptor.getHelp(ownOf(group) as unknown as CommandDescriptor.Command<unknown>, options.config), needed))
  const flagsAt = own.findIndex((block) => block._tag === "Header" && textOf(block.value) === "OPTIONS")
  const commands = [
    HelpDoc.h1("COMMANDS"),
    HelpDoc.descriptionList(
      Arr.map(subcommands as Arr.NonEmptyReadonlyArray<Listed>, (entry): [Span, HelpDoc.HelpDoc] => [
        SpanOf.strong([...entry.path, entry.usage].filter((part) => part !== "").join(" ")),
        HelpDoc.p(entry.description)
      ])
    ),
    HelpDoc.p(`${prefix} COMMAND --help describes a command and each of its flags: ${examples.join(", ")}.`)
  ]
  return HelpDoc.blocks([
    HelpDoc.p(`${options.name} ${options.version}`),
    HelpDoc.h1("USAGE"),
    HelpDoc.p(`${prefix} COMMAND [FLAG ...]`),
    ...(flagsAt === -1 ? [...own, ...commands] : [...own.slice(0, flagsAt), ...commands, ...own.slice(flagsAt)])
  ])
}
