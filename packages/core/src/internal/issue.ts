import { ParseResult } from "effect"

/** The first thing a schema found wrong, and where: what an error message names. */
export const firstIssue = (issue: ParseResult.ParseIssue): {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
} => ParseResult.ArrayFormatter.formatIssueSync(issue)[0] ?? { path: [], message: "the value did not validate" }
