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
