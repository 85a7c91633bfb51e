import { Either, ParseResult, type Schema } from "effect"
import { compileIs } from "./compileIs.js"
import * as Models from "../Models.js"
import type { Resource } from "../Resource.js"

/** What one scroll page holds once its envelope is known to be right. */
export interface PageBody {
  readonly records: ReadonlyArray<unknown>
  readonly scrollParam: string | undefined
}

type Validator = (json: unknown) => Either.Either<PageBody, string>

/**
 * Validates in place with the compiled `Schema.is` (the parsed JSON is kept, every field included, nothing copied)
 * and only on failure runs the slower validation that explains what is wrong.
 */
const validator = <A extends { readonly scroll_param?: string | null | undefined }>(
  schema: Schema.Schema<A>,
  records: (page: A) => ReadonlyArray<unknown>
): Validator => {
  const check = compileIs(schema.ast)
  const is = (json: unknown): json is A => check(json)
  const explain = ParseResult.validateEither(schema, { errors: "first" })
  return (json) => {
    if (is(json)) {
      return Either.right({ records: records(json), scrollParam: json.scroll_param ?? undefined })
    }
    return Either.left(Either.match(explain(json), {
      onLeft: describe,
      onRight: () => "the envelope did not validate"
    }))
  }
}

const describe = (issue: ParseResult.ParseIssue): string => {
  const [first] = ParseResult.ArrayFormatter.formatIssueSync(issue)
  if (first === undefined) return "the envelope did not validate"
  const path = first.path.length === 0 ? "the body" : first.path.map(String).join(".")
  return `at ${path}: ${first.message}`
}

const users = validator(Models.UserPage, (page) => page.users)
const leads = validator(Models.LeadPage, (page) => page.contacts)
const companies = validator(Models.CompanyPage, (page) => page.data)
const companiesV1 = validator(Models.CompanyPageV1, (page) => page.companies)

const isCompanyV1 = (json: unknown) =>
  typeof json === "object" && json !== null && (json as { readonly type?: unknown }).type === "company.list"

/** Companies come in the 2.x envelope or, for a 1.x version, the 1.x one. */
export const validatePage: { readonly [R in Resource]: Validator } = {
  users,
  leads,
  companies: (json) => isCompanyV1(json) ? companiesV1(json) : companies(json)
}

const isErrorList = compileIs(Models.ErrorList.ast)
const ErrorList = (json: unknown): json is typeof Models.ErrorList.Type => isErrorList(json)

/** The first error of an `error.list` body, if the body is one. */
export const firstError = (json: unknown): {
  readonly code: string
  readonly message: string | undefined
  readonly requestId: string | undefined
} | undefined => {
  if (!ErrorList(json)) return undefined
  const [first] = json.errors
  return first === undefined ? undefined : {
    code: first.code,
    message: first.message ?? undefined,
    requestId: json.request_id ?? undefined
  }
}

/** The key of each envelope's list of records: companies have one for 2.x and one for 1.x. */
const listKeys: { readonly [R in Resource]: ReadonlyArray<string> } = {
  users: ["users"],
  leads: ["contacts"],
  companies: ["data", "companies"]
}

/**
 * A page's scroll_param read from its body before the body is parsed, so that the next request can go out while the
 * page is parsed. Only where the text leaves no doubt, else undefined:
 * - the list key appears once in the whole body (in JSON a quoted key followed by a colon is a key), and the list is
 *   not empty: the empty page ends the scroll, and its scroll_param is dead;
 * - `"scroll_param"` is the root object's last key, as in Intercom's envelopes: nothing but the root's closing brace
 *   follows its value, so it cannot be a record's;
 * - the value is a plain string, with no escapes to decode.
 *
 * The parse has the last word: a request sent with this must be dropped if the parsed page says otherwise.
 */
export const scrollParamAhead = (body: string, resource: Resource): string | undefined => {
  const list = listKeys[resource].map((key) => valueOfOnlyKey(body, `"${key}"`)).find((at) => at !== undefined)
  if (list === undefined || body[list] !== "[") return undefined
  const first = skipWhitespace(body, list + 1)
  if (first >= body.length || body[first] === "]") return undefined
  return lastRootString(body, "\"scroll_param\"")
}

/** Where the value of `quotedKey` starts, if the quoted text appears once in `body`, followed by a colon. */
const valueOfOnlyKey = (body: string, quotedKey: string): number | undefined => {
  const at = body.indexOf(quotedKey)
  if (at < 0 || body.lastIndexOf(quotedKey) !== at) return undefined
  const colon = skipWhitespace(body, at + quotedKey.length)
  return body[colon] === ":" ? skipWhitespace(body, colon + 1) : undefined
}

/** The value of `quotedKey` if it is the root object's last key and its value a string without escapes. */
const lastRootString = (body: string, quotedKey: string): string | undefined => {
  const at = body.lastIndexOf(quotedKey)
  if (at < 0) return undefined
  // Inside a string every quote follows a backslash: after a comma or a brace, the quote opens a key.
  const before = body[skipWhitespaceBack(body, at - 1)]
  if (before !== "," && before !== "{") return undefined
  const colon = skipWhitespace(body, at + quotedKey.length)
  const open = body[colon] === ":" ? skipWhitespace(body, colon + 1) : -1
  if (body[open] !== "\"") return undefined
  const close = body.indexOf("\"", open + 1)
  if (close < 0) return undefined
  const value = body.slice(open + 1, close)
  if (value === "" || value.includes("\\")) return undefined
  const brace = skipWhitespace(body, close + 1)
  return body[brace] === "}" && skipWhitespace(body, brace + 1) === body.length ? value : undefined
}

const isWhitespace = (c: string | undefined) => c === " " || c === "\n" || c === "\r" || c === "\t"

const skipWhitespace = (text: string, from: number): number => {
  let i = from
  while (i < text.length && isWhitespace(text[i])) i++
  return i
}

const skipWhitespaceBack = (text: string, from: number): number => {
  let i = from
  while (i >= 0 && isWhitespace(text[i])) i--
  return i
}
