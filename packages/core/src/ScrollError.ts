/**
 * What can go wrong while scrolling, as tagged errors. Each message says what happened and what to do; none
 * carries the access token, a request or its headers.
 *
 * @example
 * import { Scroll } from "@intercom-scroll/core"
 * import { Console, Effect, Stream } from "effect"
 *
 * const program = Stream.runDrain(Scroll.users()).pipe(
 *   Effect.catchTags({
 *     Unauthorized: (error) => Console.error(`Check the token: ${error.message}`),
 *     RestartRequired: (error) => Console.error(`Gave up restarting: ${error.message}`),
 *     ConcurrentScroll: (error) => Console.error(error.message)
 *   })
 * )
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { Resource } from "./Resource.js"

const where = { resource: Resource, page: Schema.Number }

const requestIdSuffix = (requestId: string | undefined) => (requestId === undefined ? "" : ` (request ${requestId})`)

/**
 * Why a scroll has to start over: Intercom said so with a 5xx, or the transport failed so that nobody knows how
 * far the server moved on.
 *
 * @since 0.1.0
 * @category models
 */
export const RestartCause = Schema.Union(
  Schema.TaggedStruct("ServerError", {
    status: Schema.Number,
    code: Schema.optional(Schema.String),
    detail: Schema.String,
    requestId: Schema.optional(Schema.String)
  }),
  Schema.TaggedStruct("TransportError", { detail: Schema.String }),
  Schema.TaggedStruct("TruncatedBody", { detail: Schema.String }),
  Schema.TaggedStruct("Timeout", { millis: Schema.Number })
)

/**
 * @since 0.1.0
 * @category models
 */
export type RestartCause = typeof RestartCause.Type

const describeCause = (cause: RestartCause): string => {
  switch (cause._tag) {
    case "ServerError":
      return `HTTP ${cause.status}${cause.code === undefined ? "" : ` ${cause.code}`}: ${cause.detail}${
        requestIdSuffix(cause.requestId)
      }`
    case "TransportError":
      return `transport failure: ${cause.detail}`
    case "TruncatedBody":
      return `response body cut short: ${cause.detail}`
    case "Timeout":
      return `no response within ${cause.millis} ms`
  }
}

/**
 * The scroll_param was unused for over a minute, is unknown, or is past the end (404 `not_found`).
 *
 * @since 0.1.0
 * @category errors
 */
export class Expired extends Schema.TaggedError<Expired>()("Expired", {
  ...where,
  requestId: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `The ${this.resource} scroll expired before page ${this.page}${
      requestIdSuffix(this.requestId)
    }: Intercom forgets a scroll_param unused for a minute. Start over from the first page; consume faster or raise prefetch so pages are fetched while you work.`
  }
}

/**
 * Another scroll is open in this workspace (400 `scroll_exists`); it expires about a minute after its last use.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConcurrentScroll extends Schema.TaggedError<ConcurrentScroll>()("ConcurrentScroll", {
  resource: Resource,
  requestId: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `Another scroll is already open in this workspace, so the ${this.resource} scroll could not start${
      requestIdSuffix(this.requestId)
    }. Intercom allows one per workspace; it expires about a minute after its last use. Wait and try again, or give a longer concurrentScroll schedule.`
  }
}

/**
 * Intercom asked for the scroll to start over (a 5xx), or the transport failed mid-scroll. There is no resuming.
 *
 * @since 0.1.0
 * @category errors
 */
export class RestartRequired extends Schema.TaggedError<RestartRequired>()("RestartRequired", {
  ...where,
  cause: RestartCause
}) {
  override get message(): string {
    return `The ${this.resource} scroll must start over at page ${this.page} (${
      describeCause(this.cause)
    }). Intercom cannot resume a scroll; the restart schedule decides how often to start again from the first page.`
  }
}

/** A time for a message; a server's reset header can name one past what a `Date` holds, and a message must not throw. */
const instant = (millis: number) => {
  const date = new Date(millis)
  return Number.isNaN(date.getTime()) ? `${millis} ms after the UNIX epoch` : date.toISOString()
}

/**
 * Intercom kept answering 429 `rate_limit_exceeded`, or asked for a wait longer than the client allows.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  ...where,
  /** When Intercom's window resets, in UNIX milliseconds. */
  resetAt: Schema.Number,
  limit: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    return `Intercom's rate limit${
      this.limit === undefined ? "" : ` of ${this.limit} requests`
    } stopped the ${this.resource} scroll at page ${this.page}; it resets at ${
      instant(this.resetAt)
    }. Other apps may share this workspace's budget: retry later or allow longer rate-limit waits.`
  }
}

/**
 * The access token was refused (401/403: `unauthorized`, `token_revoked`, `token_unauthorized`, …).
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  resource: Resource,
  status: Schema.Number,
  code: Schema.String,
  detail: Schema.String,
  requestId: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `Intercom refused the access token for ${this.resource} (HTTP ${this.status} ${this.code}: ${this.detail})${
      requestIdSuffix(this.requestId)
    }. Check INTERCOM_ACCESS_TOKEN, its workspace region, and that the app may read ${this.resource}.`
  }
}

/**
 * Any other error Intercom answered with.
 *
 * @since 0.1.0
 * @category errors
 */
export class ApiError extends Schema.TaggedError<ApiError>()("ApiError", {
  ...where,
  status: Schema.Number,
  code: Schema.String,
  detail: Schema.String,
  requestId: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `Intercom answered HTTP ${this.status} ${this.code} on ${this.resource} page ${this.page}: ${this.detail}${
      requestIdSuffix(this.requestId)
    }.`
  }
}

/**
 * A response that is not the scroll envelope Intercom documents: not JSON, the wrong list type, a record without
 * an id, a missing or repeated scroll_param, a body over the size limit.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidResponse extends Schema.TaggedError<InvalidResponse>()("InvalidResponse", {
  ...where,
  issue: Schema.String
}) {
  override get message(): string {
    return `Page ${this.page} of the ${this.resource} scroll is not a valid Intercom response: ${this.issue}. Check the base URL points at Intercom's API (or a faithful proxy).`
  }
}

/**
 * A record's custom attributes do not match the schema given as the scroll's `customAttributes` option. Not a fault of
 * the scroll: no restart helps, so the stream ends here, after the records before it.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidCustomAttributes extends Schema.TaggedError<InvalidCustomAttributes>()("InvalidCustomAttributes", {
  resource: Resource,
  /** The record's Intercom id. */
  id: Schema.String,
  /** Where in the record, e.g. `custom_attributes.seats`. */
  path: Schema.String,
  issue: Schema.String
}) {
  override get message(): string {
    return `The custom attributes of ${this.resource} record ${this.id} do not match the customAttributes schema at ${this.path}: ${this.issue}. Loosen the schema (Schema.optional, Schema.NullOr, a union) or correct the attribute in Intercom.`
  }
}

/**
 * Everything a scroll can fail with.
 *
 * @since 0.1.0
 * @category models
 */
export type ScrollError =
  | Expired
  | ConcurrentScroll
  | RestartRequired
  | RateLimited
  | Unauthorized
  | ApiError
  | InvalidResponse

/**
 * The `ScrollError` classes as one schema: to decode an error that crossed a boundary, or to tell one from any
 * other value with `Schema.is`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ScrollError = Schema.Union(
  Expired,
  ConcurrentScroll,
  RestartRequired,
  RateLimited,
  Unauthorized,
  ApiError,
  InvalidResponse
)

/**
 * The errors after which starting over from the first page can succeed.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isRestartable = (error: ScrollError): error is RestartRequired | Expired =>
  error._tag === "RestartRequired" || error._tag === "Expired"

/**
 * Client options that cannot work, such as a plain-http base URL that would send the token in clear.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptions extends Schema.TaggedError<InvalidOptions>()("InvalidOptions", {
  detail: Schema.String
}) {
  override get message(): string {
    return `Invalid Intercom client options: ${this.detail}`
  }
}
