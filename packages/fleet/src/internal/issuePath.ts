/**
 * Where in a decoded value a schema's issue is, as a reader of the value writes it: `[2].tokenEnv`, `run`.
 *
 * @internal
 */
import type { ParseResult } from "effect"

/** An issue's path as `[2].tokenEnv`: indexes in brackets, fields joined by dots. Empty for the value itself. */
export const format = (path: ParseResult.ArrayFormatterIssue["path"]): string =>
  path.map((key, i) => typeof key === "number" ? `[${key}]` : `${i === 0 ? "" : "."}${String(key)}`).join("")
