/**
 * `intercom-simulator --help`, rendered here from the flags' own help: @effect/cli's rendering gives every flag its
 * generic sentences ("An integer.", "This setting is optional.") around the one that says what it does, and spells
 * the usage `$ intercom-simulator` with every flag on one line.
 *
 * @internal
 */
import { HelpDoc, Options } from "@effect/cli"
import type { Span } from "@effect/cli/HelpDoc/Span"
import * as PlainConsole from "./plainConsole.js"

/** A span's text, as @effect/cli renders it, without its styles. */
const textOf = (span: Span): string => PlainConsole.withoutStyles(HelpDoc.toAnsiText(HelpDoc.p(span))).trim()

const paragraphsOf = (doc: HelpDoc.HelpDoc): ReadonlyArray<string> => {
  switch (doc._tag) {
    case "Paragraph":
      return [textOf(doc.value)]
    case "Sequence":
      return [...paragraphsOf(doc.left), ...paragraphsOf(doc.right)]
    default:
      return []
  }
}

const definitionsOf = (doc: HelpDoc.HelpDoc): ReadonlyArray<readonly [Span, HelpDoc.HelpDoc]> => {
  switch (doc._tag) {
    case "DescriptionList":
      return doc.definitions
    case "Sequence":
      return [...definitionsOf(doc.left), ...definitionsOf(doc.right)]
    default:
      return []
  }
}

/**
 * Each flag as its usage shows it (`--port N`) and what it does. A flag's help is its type's sentence, then its
 * description, then what @effect/cli adds (optional, repeated): the description is the second paragraph.
 */
export const flags = (options: Options.Options<unknown>): ReadonlyArray<{ readonly flag: string; readonly description: string }> =>
  definitionsOf(Options.getHelp(options)).map(([span, block]) => ({
    // A repeated flag's `1+` or `...`: its description says it may be repeated.
    flag: textOf(span).replace(/(?: \d+\+|\.\.\.)$/, ""),
    description: paragraphsOf(block)[1] ?? ""
  }))

/**
 * @internal
 */
export interface Page {
  readonly name: string
  readonly version: string
  readonly description: string
  readonly usage: string
  readonly options: Options.Options<unknown>
  readonly examples: ReadonlyArray<readonly [command: string, what: string]>
}

/** The help, plain text: a flag a line, its description beside it. */
export const render = (page: Page): string => {
  const listed = flags(page.options)
  const width = Math.max(...listed.map(({ flag }) => flag.length))
  return [
    `${page.name} ${page.version}`,
    "",
    page.description,
    "",
    "USAGE",
    "",
    `  ${page.usage}`,
    "",
    "FLAGS",
    "",
    ...listed.map(({ description, flag }) => `  ${flag.padEnd(width)}  ${description}`),
    "",
    "EXAMPLES",
    "",
    ...page.examples.flatMap(([command, what]) => [`  ${command}`, `      ${what}`]),
    ""
  ].join("\n")
}
