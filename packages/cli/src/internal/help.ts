/**
 * `--help`, rendered by the command line itself from @effect/cli's `HelpDoc`, because @effect/cli's own rendering
 * styles it for a terminal wherever it goes (bold and colour escapes into a pipe or a file), spells a subcommand's
 * usage `$ export …` without the program's name, and gives every flag generic sentences ("A user-defined piece of
 * text.", "This setting is optional.") around the description that says what the flag does.
 *
 * @since 0.1.0
 */
import { type CliConfig, CommandDescriptor, HelpDoc, Usage } from "@effect/cli"
import type { Span } from "@effect/cli/HelpDoc/Span"
import * as Doc from "@effect/printer/Doc"
import { Array as Arr, HashMap, Option } from "effect"

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
  /^This setting is optional\./
]

/**
 * The help without @effect/cli's generic sentences.
 *
 * @since 0.1.0
 * @category help
 */
export const withoutGenericText = (doc: HelpDoc.HelpDoc): HelpDoc.HelpDoc => {
  switch (doc._tag) {
    case "Empty":
    case "Header":
      return doc
    case "Paragraph": {
      const text = textOf(doc.value)
      return generic.some((pattern) => pattern.test(text)) ? HelpDoc.empty : doc
    }
    case "DescriptionList":
      return HelpDoc.descriptionList(
        Arr.map(doc.definitions, ([span, block]): [Span, HelpDoc.HelpDoc] => [span, withoutGenericText(block)])
      )
    case "Enumeration":
      return HelpDoc.enumeration(Arr.map(doc.elements, withoutGenericText))
    case "Sequence":
      return HelpDoc.sequence(withoutGenericText(doc.left), withoutGenericText(doc.right))
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
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
 * The help for the subcommand the arguments name (the first argument that is one, as @effect/cli finds it), else
 * for the whole command: the version, the usage from the program's name on, then the description, arguments and
 * flags.
 *
 * @since 0.1.0
 * @category help
 */
export const render = (options: Options): string => {
  const subcommands = CommandDescriptor.getSubcommands(options.command)
  const subcommand = Arr.findFirst(options.args, (arg) => HashMap.get(subcommands, arg))
  const usage = Option.match(subcommand, {
    onNone: () => CommandDescriptor.getUsage(options.command),
    onSome: (child) => Usage.concat(Usage.named([options.name], Option.none()), CommandDescriptor.getUsage(child))
  })
  const help = CommandDescriptor.getHelp(Option.getOrElse(subcommand, () => options.command), options.config)
  const doc = HelpDoc.blocks([
    HelpDoc.p(`${options.name} ${options.version}`),
    HelpDoc.h1("USAGE"),
    ...Arr.map(Usage.enumerate(usage, options.config), (line) => HelpDoc.p(line)),
    withoutGenericText(help)
  ])
  return options.color
    ? HelpDoc.toAnsiText(doc)
    : Doc.render(Doc.unAnnotate(HelpDoc.toAnsiDoc(doc)), { style: "pretty" })
}
