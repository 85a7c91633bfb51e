import { Either, ParseResult, type Schema } from "effect"
import { compileIs } from "./compileIs.js"
import { bounded, firstIssue } from "./issue.js"
import * as Models from "../Models.js"
import type { Resource } from "../Resource.js"

/** What one scroll page holds once its envelope is known to be right. */
export interface PageBody {
  readonly records: ReadonlyArray<unknown>
  readonly scrollParam: string | undefined
}

/** What is wrong with a page, and the id of the record it is in, when it is in one. */
export interface PageIssue {
  readonly issue: string
  readonly id?: string | undefined
}

type Validator = (json: unknown) => Either.Either<PageBody, PageIssue>

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
    // First: a schema's message quotes the value it refuses, and quoting one this deep overflows the stack too.
    const deep = tooDeep(json)
    if (deep !== undefined) return Either.left(deep)
    if (is(json)) {
      return Either.right({ records: records(json), scrollParam: json.scroll_param ?? undefined })
    }
    return Either.left(Either.match(explain(json), {
      onLeft: (issue) => describe(issue, json),
      onRight: () => ({ issue: "the envelope did not validate" })
    }))
  }
}

/**
 * The issue, and the record's id when it is in a record (`users.41.name`): the index in the page means nothing to
 * anyone, the id names the record in Intercom.
 */
const describe = (parseIssue: ParseResult.ParseIssue, json: unknown): PageIssue => {
  const { message, path } = firstIssue(parseIssue)
  const issue = `at ${path.length === 0 ? "the body" : bounded(path.map(String).join("."))}: ${message}`
  const [list, index, field] = path
  if (field === undefined || typeof index !== "number" || typeof list !== "string") return { issue }
  const record: unknown = (json as { readonly [key: string]: unknown })[list]
  const id: unknown = Array.isArray(record) ? (record[index] as { readonly id?: unknown } | null)?.id : undefined
  return typeof id === "string" && id !== "" ? { issue: `${issue} (in the record with id ${bounded(JSON.stringify(id))})`, id } : { issue }
}

/**
 * The most levels of objects and arrays a record may nest, the record itself the first. Whatever writes a record walks
 * it a level at a time on the stack (`JSON.stringify`, a CSV's columns), which overflows some thousands of levels
 * down; SQLite's JSON functions call a record 1001 levels deep malformed (a sync's app check reads its rows with
 * `json_extract`). Intercom's own records nest a few levels.
 */
const maxRecordDepth = 1000

/**
 * Whether `value`, an object or an array, nests objects and arrays more than `levels` levels deep (itself the first).
 * Recursive, but never past `levels` + 1 frames: the walk stops where a record is too deep, long before the stack would.
 * On every page, so kept plain, and only objects are called on: 0.08–0.15 ms a page of 100 users against 1.5 ms for its
 * `JSON.parse` (packages/bench/NOTES.md; measure 18 keeps its cost in view).
 */
const deeperThan = (value: object, levels: number): boolean => {
  if (levels === 0) return true
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      if (typeof item === "object" && item !== null && deeperThan(item, levels - 1)) return true
    }
  } else {
    for (const key in value) {
      const item: unknown = (value as { readonly [key: string]: unknown })[key]
      if (typeof item === "object" && item !== null && deeperThan(item, levels - 1)) return true
    }
  }
  return false
}

/**
 * The page's first record that nests deeper than a record may, as the issue it makes, named by its field and id; or
 * a body that is itself an array nested that deep.
 */
const tooDeep = (json: unknown): PageIssue | undefined => {
  if (typeof json !== "object" || json === null) return undefined
  // No envelope, but refused by a schema whose message would quote it all the same.
  if (Array.isArray(json)) {
    return deeperThan(json, maxRecordDepth)
      ? { issue: `at the body: arrays nested more than ${maxRecordDepth} levels deep, not a page's envelope` }
      : undefined
  }
  for (const list in json) {
    const records: unknown = (json as { readonly [key: string]: unknown })[list]
    if (!Array.isArray(records)) {
      if (typeof records === "object" && records !== null && deeperThan(records, maxRecordDepth)) {
        return { issue: `at ${bounded(list)}: ${deepIssue}` }
      }
      continue
    }
    for (let index = 0; index < records.length; index++) {
      const record: unknown = records[index]
      if (typeof record !== "object" || record === null) continue
      for (const field in record) {
        const value: unknown = (record as { readonly [key: string]: unknown })[field]
        if (typeof value !== "object" || value === null || !deeperThan(value, maxRecordDepth - 1)) continue
        const issue = `at ${bounded(`${list}.${index}.${field}`)}: ${deepIssue}`
        const id: unknown = (record as { readonly id?: unknown }).id
        return typeof id === "string" && id !== ""
          ? { issue: `${issue} (in the record with id ${bounded(JSON.stringify(id))})`, id }
          : { issue }
      }
    }
  }
  return undefined
}

const deepIssue = `objects and arrays nested more than ${maxRecordDepth} levels deep in a record, deeper than this client hands on: writing such a record out (JSON.stringify, a CSV's columns) overflows the stack`

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

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const quoted = (key: string) => encoder.encode(`"${key}"`)

/** The key of each envelope's list of records, quoted: companies have one for 2.x and one for 1.x. */
const listKeys: { readonly [R in Resource]: ReadonlyArray<Uint8Array> } = {
  users: [quoted("users")],
  leads: [quoted("contacts")],
  companies: [quoted("data"), quoted("companies")]
}
const scrollParamKey = quoted("scroll_param")

const QUOTE = 0x22
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_BRACKET = 0x5b
const BACKSLASH = 0x5c
const CLOSE_BRACKET = 0x5d
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d

/**
 * A page's scroll_param read from the body's bytes before they are decoded and parsed, so that the next request can
 * go out first. It looks only near the two ends of the body, and reads only where they leave no doubt:
 * - the root object's first nested value is the list, under its key, and not empty: the empty page ends the scroll,
 *   and its scroll_param is dead;
 * - `"scroll_param"` is the root object's last key, as in Intercom's envelopes: nothing but the root's closing brace
 *   follows its value, so it cannot be a record's;
 * - the value is printable ASCII without escapes: nothing to decode.
 *
 * The reasoning holds for valid JSON only. The parse has the last word: a request sent with this must be dropped if
 * the parsed page says otherwise, as it would for a body that is not valid JSON (say, one that stops right after a
 * record whose last key is a scroll_param).
 */
export const scrollParamAhead = (body: Uint8Array, resource: Resource): string | undefined =>
  startsWithNonEmptyList(body, listKeys[resource]) ? lastRootString(body, scrollParamKey) : undefined

/** Whether the first bracket or brace after the root's opens a non-empty list, the value of one of `keys`. */
const startsWithNonEmptyList = (body: Uint8Array, keys: ReadonlyArray<Uint8Array>): boolean => {
  let open = skipWhitespace(body, 0)
  if (body[open] !== OPEN_BRACE) return false
  // Nothing nested comes before it, so the key in front of it is the root object's.
  do open++
  while (open < body.length && body[open] !== OPEN_BRACKET && body[open] !== OPEN_BRACE)
  if (body[open] !== OPEN_BRACKET) return false
  const first = skipWhitespace(body, open + 1)
  if (first >= body.length || body[first] === CLOSE_BRACKET) return false
  return keys.some((key) => isKeyBefore(body, open, key))
}

/** The value of `key` (quoted) if it is the root object's last key and its value a plain string. */
const lastRootString = (body: Uint8Array, key: Uint8Array): string | undefined => {
  const brace = skipWhitespaceBack(body, body.length - 1)
  if (body[brace] !== CLOSE_BRACE) return undefined
  const close = skipWhitespaceBack(body, brace - 1)
  if (body[close] !== QUOTE) return undefined
  let open = close - 1
  for (; open >= 0 && body[open] !== QUOTE; open--) {
    if (body[open] < 0x20 || body[open] > 0x7e || body[open] === BACKSLASH) return undefined
  }
  if (open < 0 || open === close - 1 || !isKeyBefore(body, open, key)) return undefined
  return decoder.decode(body.subarray(open + 1, close))
}

/**
 * Whether the value that starts at `value` is that of `key` (quoted): `key`, a colon, and before the key a comma or a
 * brace. Inside a string every quote follows a backslash, so a quote after a comma or a brace opens a key.
 */
const isKeyBefore = (body: Uint8Array, value: number, key: Uint8Array): boolean => {
  const colon = skipWhitespaceBack(body, value - 1)
  if (body[colon] !== COLON) return false
  const end = skipWhitespaceBack(body, colon - 1) + 1
  const start = end - key.length
  if (start < 1) return false
  for (let i = 0; i < key.length; i++) {
    if (body[start + i] !== key[i]) return false
  }
  const before = body[skipWhitespaceBack(body, start - 1)]
  return before === COMMA || before === OPEN_BRACE
}

const isWhitespace = (byte: number | undefined) => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09

const skipWhitespace = (bytes: Uint8Array, from: number): number => {
  let i = from
  while (i < bytes.length && isWhitespace(bytes[i])) i++
  return i
}

const skipWhitespaceBack = (bytes: Uint8Array, from: number): number => {
  let i = from
  while (i >= 0 && isWhitespace(bytes[i])) i--
  return i
}
