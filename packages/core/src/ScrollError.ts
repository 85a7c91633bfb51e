/**
 * What can go wrong while scrolling, as tagged errors. Each message says what happened (`problem`, from the error's
 * fields) and what to do about it with this library's options (`advice`); none carries the access token, a request or
 * its headers. An app with a surface of its own (a command line, a UI) can show `problem` with advice in its own terms,
 * as the CLI does with its flags.
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
import { bounded } from "./internal/issue.js"
import { Resource } from "./Resource.js"

const where = { resource: Resource, page: Schema.Number }

const requestIdSuffix = (requestId: string | undefined) => (requestId === undefined ? "" : ` (request ${requestId})`)

/** What happened, then what to do; an error with nothing to advise is its problem alone. */
const messageOf = (error: { readonly problem: string; readonly advice: string }) =>
  error.advice === "" ? error.problem : `${error.problem} ${error.advice}`

/**
 * Why a connection to the API could not be made. Nothing reached the server, so nothing can have changed there.
 *
 * - `refused`: nothing listens at that address and port (ECONNREFUSED);
 * - `unknown-host`: the host name does not resolve (ENOTFOUND);
 * - `timeout`: the connection was not accepted in time (ETIMEDOUT, undici's connect timeout);
 * - `network`: the network cannot reach the host, or cannot resolve names now (EHOSTUNREACH, ENETUNREACH, EAI_AGAIN, …);
 * - `tls`: the TLS handshake failed, such as a certificate that is expired, self-signed or for another host, or a
 *   server that does not speak TLS on that port;
 * - `proxy`: the proxy in between did not open a tunnel to it (it answered CONNECT with an error status, such as 407
 *   or 502, or closed the connection without an answer).
 *
 * Where a proxy is in between, each of the others is said of the connection to the proxy.
 *
 * @since 0.1.0
 * @category models
 */
export const ConnectFailure = Schema.Literal("refused", "unknown-host", "timeout", "network", "tls", "proxy")

/**
 * @since 0.1.0
 * @category models
 */
export type ConnectFailure = typeof ConnectFailure.Type

const connectFailures: { readonly [F in ConnectFailure]: string } = {
  "refused": "nothing is listening there",
  "unknown-host": "no such host",
  "timeout": "it did not accept a connection in time",
  "network": "the network cannot reach it",
  "tls": "the TLS handshake failed",
  "proxy": "the proxy did not open a tunnel to it"
}

/** The same, of the connection to the proxy in between. */
const proxyConnectFailures: { readonly [F in ConnectFailure]: string } = {
  "refused": "nothing is listening at the proxy",
  "unknown-host": "the proxy's host does not resolve",
  "timeout": "the proxy did not accept a connection in time",
  "network": "the network cannot reach the proxy",
  "tls": "the TLS handshake with the proxy failed",
  "proxy": "the proxy did not open a tunnel to it"
}

/** Why no connection was made, said of the proxy when the failure was on the way to it. */
const connectFailureText = (reason: ConnectFailure, proxy: string | undefined) =>
  proxy === undefined ? connectFailures[reason] : proxyConnectFailures[reason]

const throughProxy = (proxy: string | undefined) => (proxy === undefined ? "" : ` through the proxy ${proxy}`)

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
  /**
   * No connection could be made, so the request never reached a server. `proxy` (its origin) when it failed on the
   * way to the proxy in between, or at the proxy.
   */
  Schema.TaggedStruct("ConnectFailed", { reason: ConnectFailure, detail: Schema.String, proxy: Schema.optional(Schema.String) }),
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
    case "ConnectFailed":
      return `could not connect${throughProxy(cause.proxy)}: ${connectFailureText(cause.reason, cause.proxy)} (${cause.detail})`
    case "TruncatedBody":
      return `response body cut short: ${cause.detail}`
    case "Timeout":
      return `no whole response within ${cause.millis} ms (its body included)`
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
  /** What happened. */
  get problem(): string {
    return `The ${this.resource} scroll expired before page ${this.page}${
      requestIdSuffix(this.requestId)
    }: Intercom forgets a scroll_param unused for a minute.`
  }
  /** What to do, with this library's options. */
  get advice(): string {
    return "Take each page within a minute of the one before: work slower than that, or that stalls, belongs apart from the scroll (buffer the pages without bound with Stream.buffer({ capacity: \"unbounded\" }), or write them out first); a larger prefetch option rides out a stall only for as long as its pages take to arrive. The restart option decides how often the scroll starts over."
  }
  override get message(): string {
    return messageOf(this)
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
  requestId: Schema.optional(Schema.String),
  /**
   * The open scroll is known to be this program's own, cut short a moment ago (interrupted, stopped early, or failed
   * after it opened), not another app's.
   */
  ownScroll: Schema.optional(Schema.Boolean),
  /**
   * The open scroll is one this scroll was started from within (inside its stream's `flatMap` or `mapEffect`, or in a
   * fiber forked there), which goes on only once this one has: waiting for it would wait forever. Seen only where the
   * outer scroll runs in the fiber that consumes it: behind an operator that pulls it in a fiber of its own
   * (`Stream.buffer`, `Stream.zip`), the inner scroll cannot tell it from another scroll of the process, and waits for
   * it for ever (reported as a `workspace-lock` wait).
   */
  nested: Schema.optional(Schema.Boolean)
}) {
  /** What happened. */
  get problem(): string {
    if (this.nested === true) {
      return `The ${this.resource} scroll was started from within another scroll of this workspace, still open, so it could never start: Intercom allows one at a time, and the open one goes on only once this one has.`
    }
    const whose = this.ownScroll === true
      ? "This program's own scroll of this workspace, cut short a moment ago, is still open"
      : "Another scroll of this workspace is open"
    return `${whose} on Intercom's side, so the ${this.resource} scroll could not start${
      requestIdSuffix(this.requestId)
    }: Intercom allows one at a time, and drops one about a minute after its last use.`
  }
  /** What to do, with this library's options. */
  get advice(): string {
    if (this.nested === true) {
      return "Run the scrolls one after the other: Stream.concat, or collect what the first gives before the second starts."
    }
    return this.ownScroll === true
      ? "Try again in about a minute, or wait for it with a longer concurrentScroll schedule."
      : "Another app may be scrolling the workspace: try again once it is done, or wait longer for it with a longer concurrentScroll schedule."
  }
  override get message(): string {
    return messageOf(this)
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
  /** What happened: a scroll that broke off, or one whose first page failed, so that it did not open. */
  get problem(): string {
    return this.page === 1
      ? `The ${this.resource} scroll did not open: its first page failed (${describeCause(this.cause)}).`
      : `The ${this.resource} scroll broke off at page ${this.page} (${
        describeCause(this.cause)
      }), and Intercom cannot resume a scroll: it has to start over from the first page.`
  }
  /** What to do, with this library's options. */
  get advice(): string {
    return "The restart option decides how often to try again from the first page: give it a schedule that allows more attempts, or try again later."
  }
  override get message(): string {
    return messageOf(this)
  }
}

/** A time for a message; a server's reset header can name one past what a `Date` holds, and a message must not throw. */
const instant = (millis: number) => {
  const date = new Date(millis)
  return Number.isNaN(date.getTime()) ? `${millis} ms after the UNIX epoch` : date.toISOString()
}

/**
 * Intercom kept answering 429 `rate_limit_exceeded`, or asked for a wait longer than the client allows; or a proxy or
 * CDN in front of Intercom did, which a 429 without Intercom's `X-RateLimit-*` headers may be.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  ...where,
  /** When the limit's window resets, in UNIX milliseconds. */
  resetAt: Schema.Number,
  limit: Schema.optional(Schema.Number),
  /**
   * Whether the 429 carried Intercom's `X-RateLimit-*` headers. Without them (a `Retry-After` alone, or nothing) the
   * limit may be a proxy's or a CDN's between the client and Intercom. Unset: known from `limit` alone, which only
   * Intercom's `X-RateLimit-Limit` gives.
   */
  intercomHeaders: Schema.optional(Schema.Boolean)
}) {
  /** When the limit resets, as an ISO 8601 time. */
  get resetTime(): string {
    return instant(this.resetAt)
  }
  /** Whether the limit is known to be Intercom's. */
  get isIntercom(): boolean {
    return this.intercomHeaders ?? this.limit !== undefined
  }
  /** What happened. */
  get problem(): string {
    const stopped = `stopped the ${this.resource} scroll at page ${this.page}; it resets at ${this.resetTime}.`
    return this.isIntercom
      ? `Intercom's rate limit${
        this.limit === undefined ? "" : ` of ${this.limit} ${this.limit === 1 ? "request" : "requests"}`
      } ${stopped} Other apps may share this workspace's budget.`
      : `A rate limit ${stopped} The 429 did not carry Intercom's X-RateLimit-* headers: the limit may be that of a proxy or CDN between this client and Intercom.`
  }
  /** What to do, with this library's options. */
  get advice(): string {
    return `Try again after the reset, or let the client wait longer with its rateLimit.maxWait and rateLimit.maxRetries options (a wait over a minute between two pages lets the scroll expire: it then starts over from the first page).${
      this.isIntercom ? "" : " If a proxy of yours limits the requests, raise its limit for Intercom's API."
    }`
  }
  override get message(): string {
    return messageOf(this)
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
  /** What happened. */
  get problem(): string {
    return `Intercom refused the access token for ${this.resource} (HTTP ${this.status} ${this.code}: ${this.detail})${
      requestIdSuffix(this.requestId)
    }.`
  }
  /** What to do, with this library's options. */
  get advice(): string {
    return `Check the accessToken option (INTERCOM_ACCESS_TOKEN, when read from the environment), the region or baseUrl option for the workspace's region, and that the app may read ${this.resource}.`
  }
  override get message(): string {
    return messageOf(this)
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
  /** What happened. */
  get problem(): string {
    return `Intercom answered HTTP ${this.status} ${this.code} on ${this.resource} page ${this.page}: ${this.detail}${
      requestIdSuffix(this.requestId)
    }.`
  }
  /** Nothing general, but for a version Intercom does not serve: what helps depends on the code, which Intercom's message explains. */
  get advice(): string {
    return this.code === "intercom_version_invalid"
      ? `Check the versions option: the client sends its ${this.resource} version as the Intercom-Version header.`
      : ""
  }
  override get message(): string {
    return messageOf(this)
  }
}

/**
 * No connection could be made to the API before a scroll ever opened: nothing listens at the base URL, its host does
 * not resolve, the network cannot reach it, or its TLS certificate is refused. Nothing reached a server, so there is
 * nothing to start over; a scroll gives up after a few quick attempts rather than spending its `restart` schedule.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unreachable extends Schema.TaggedError<Unreachable>()("Unreachable", {
  resource: Resource,
  /** The base URL the client could not connect to. */
  baseUrl: Schema.String,
  reason: ConnectFailure,
  /** The transport's own words, such as `connect ECONNREFUSED 127.0.0.1:4010`. */
  detail: Schema.String,
  /** Connections tried before giving up. */
  attempts: Schema.Number,
  /**
   * The proxy in between (its origin), when the connection failed on the way to it or at it: `reason` is then said
   * of the proxy, not of the base URL.
   */
  proxy: Schema.optional(Schema.String)
}) {
  /** What happened. */
  get problem(): string {
    return `Could not connect to ${this.baseUrl}${throughProxy(this.proxy)} for the ${this.resource} scroll: ${
      connectFailureText(this.reason, this.proxy)
    } (${this.detail}); gave up after ${this.attempts} ${this.attempts === 1 ? "attempt" : "attempts"}.`
  }
  /** What to do, with this library's options. */
  get advice(): string {
    return this.proxy === undefined
      ? "Check the baseUrl or region option, that the server there is running, and the network or proxy in between."
      : `Check the proxy setting, that the proxy at ${this.proxy} is running, and that it lets this program through to ${this.baseUrl}.`
  }
  override get message(): string {
    return messageOf(this)
  }
}

/** A record whose field is not of the type Intercom documents: no restart or option helps, the record must change. */
const recordAdvice =
  "The scroll stops here rather than hand on a record its type (Models) does not describe. Look the record up in Intercom by its id and correct the field there (an app that wrote it through the API may have sent the wrong type); if Intercom itself sends such values, report the field to intercom-scroll."

/**
 * A response that is not the scroll envelope Intercom documents: not JSON, the wrong list type, a record without
 * an id, a missing or repeated scroll_param, a body over the size limit, an empty answer, or a redirect (Intercom's
 * API sends none, and the client follows none: the access token goes to the base URL alone).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidResponse extends Schema.TaggedError<InvalidResponse>()("InvalidResponse", {
  ...where,
  issue: Schema.String,
  /** The client's `maxResponseBytes`, when the body went over it. */
  maxResponseBytes: Schema.optional(Schema.Number),
  /**
   * The Intercom id of the record the issue is in, when it is in one (a field of a type Intercom does not document):
   * past 300 characters (no Intercom id is that long), its first 300 and how many more there were.
   */
  id: Schema.optional(Schema.String),
  /**
   * Where a redirect pointed, when the answer was one (or the HTTP client followed one on its own): origin and path,
   * a query marked `?…` but left out, since it may carry a secret.
   */
  location: Schema.optional(Schema.String)
}) {
  /** What happened. */
  get problem(): string {
    return `Page ${this.page} of the ${this.resource} scroll is not a valid Intercom response: ${this.issue}.`
  }
  /** What to do, with this library's options. */
  get advice(): string {
    if (this.location !== undefined) {
      return `If ${this.location} is Intercom's API (or a proxy you trust), set the baseUrl option to where it points, without the scroll's path; otherwise check the baseUrl option.`
    }
    if (this.id !== undefined) return recordAdvice
    return this.maxResponseBytes === undefined
      ? "Check that the baseUrl option points at Intercom's API (or a faithful proxy)."
      : `If the workspace's pages are this large (many or long custom attributes), raise the maxResponseBytes option (now ${this.maxResponseBytes}); otherwise check that the baseUrl option points at Intercom's API (or a faithful proxy).`
  }
  override get message(): string {
    return messageOf(this)
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
  /** What happened. */
  get problem(): string {
    return `The custom attributes of ${this.resource} record ${bounded(this.id)} do not match the customAttributes schema at ${this.path}: ${this.issue}.`
  }
  /** What to do, with this library's options. */
  get advice(): string {
    return "Loosen the schema (Schema.optional, Schema.NullOr, a union) or correct the attribute in Intercom."
  }
  override get message(): string {
    return messageOf(this)
  }
}

/**
 * The client could not learn which app (workspace) its access token belongs to (`GET /me`): Intercom refused to say
 * (`refused`: 403, or 401 `token_unauthorized`: the app may not read admins), refused the token itself (401
 * `unauthorized`, `token_revoked`, …), answered something else, or could not be reached (no `status`).
 *
 * @since 0.1.0
 * @category errors
 */
export class IdentifyFailed extends Schema.TaggedError<IdentifyFailed>()("IdentifyFailed", {
  /** The HTTP status, when a response came. */
  status: Schema.optional(Schema.Number),
  code: Schema.String,
  detail: Schema.String,
  requestId: Schema.optional(Schema.String)
}) {
  /** Intercom refused to say, the token being good: its app lacks the "Read admins" permission. */
  get refused(): boolean {
    return this.status === 403 || (this.status === 401 && this.code === "token_unauthorized")
  }
  /** What happened. */
  get problem(): string {
    const answer = this.status === undefined ? "" : `HTTP ${this.status} ${this.code}: `
    return `Could not ask Intercom which workspace the access token belongs to (GET /me: ${answer}${this.detail})${
      requestIdSuffix(this.requestId)
    }.`
  }
  /** What to do. */
  get advice(): string {
    return this.refused
      ? "Give the app the \"Read admins\" permission in Intercom's Developer Hub."
      : this.status === 401
      ? "Check the accessToken option (INTERCOM_ACCESS_TOKEN, when read from the environment) and the region or baseUrl option."
      : "Check the baseUrl or region option, and the network or proxy in between."
  }
  override get message(): string {
    return messageOf(this)
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
  | Unreachable

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
  InvalidResponse,
  Unreachable
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
 * Client options that cannot work, refused when the client is built: a plain-http base URL that would send the token
 * in clear, a token or a version with a line break, a size limit or a timeout of zero, an unknown region, …
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
