import { ParseResult } from "effect"

/**
 * The most of a value's text an error message quotes. A schema's message quotes the value it refused whole
 * (`Expected string, actual {…}`): a wrong field of 8 MB would make an 8 MB message in every log line, span and
 * terminal it reaches.
 */
export const maxQuotedLength = 300

/** `text` cut to `maxQuotedLength` characters, saying how many were left out. */
export const bounded = (text: string): string =>
  text.length <= maxQuotedLength
    ? text
    : `${text.slice(0, maxQuotedLength)}… (${text.length - maxQuotedLength} more characters)`

/** The first thing a schema found wrong, and where: what an error message names, its quotes bounded. */
export const firstIssue = (issue: ParseResult.ParseIssue): {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
} => {
  const first = ParseResult.ArrayFormatter.formatIssueSync(issue)[0]
  return first === undefined
    ? { path: [], message: "the value did not validate" }
    : { path: first.path, message: bounded(first.message) }
}
