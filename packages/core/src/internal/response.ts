import type { Headers, HttpClientError, HttpClientResponse } from "@effect/platform"
import { Data, Effect, Either, Stream } from "effect"
import type { Resource } from "../Resource.js"
import {
  ApiError,
  ConcurrentScroll,
  Expired,
  InvalidResponse,
  RestartRequired,
  type ScrollError,
  Unauthorized
} from "../ScrollError.js"
import * as ContentCoding from "./contentCoding.js"
import { firstError, type PageBody, scrollParamAhead, validatePage } from "./envelope.js"
import { bounded } from "./issue.js"

/** Where in a scroll a response belongs. */
export interface Where {
  readonly resource: Resource
  readonly page: number
  readonly scrollParam: string | undefined
  /**
   * Removes the access token from text a server (or the transport) sent, in case it echoes it back. For their strings
   * only, never for our own words around them, which a short token would damage (see `redaction.ts`).
   */
  readonly redact: (text: string) => string
}

const truncated = (where: Where, detail: string) =>
  new RestartRequired({ resource: where.resource, page: where.page, cause: { _tag: "TruncatedBody", detail } })

/**
 * `issue` in our words, with what the server sent already redacted. `id` is the server's too: bounded like every quote,
 * as the error whole (JSON logs, a fleet's messages) carries it; cut after the redaction, which needs the token whole.
 */
const invalid = (where: Where, issue: string, maxResponseBytes?: number, id?: string) =>
  new InvalidResponse({
    resource: where.resource,
    page: where.page,
    issue,
    ...(maxResponseBytes === undefined ? {} : { maxResponseBytes }),
    ...(id === undefined ? {} : { id: bounded(where.redact(id)) })
  })

const decoder = new TextDecoder()
const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * The body as text. JSON is UTF-8 (RFC 8259 §8.1), and Intercom says so; a body labelled with another charset
 * (`application/json; charset=iso-8859-1`, a proxy's) is taken as UTF-8 still where it is valid UTF-8 (a label gone
 * wrong on the way), and decoded as labelled only where it is not, rather than with U+FFFD for each accented letter.
 * Unlabelled or labelled UTF-8, it is decoded as before: no strict pass on every page.
 */
const decodeText = (body: Uint8Array, contentType: string | undefined): string => {
  const charset = contentType === undefined ? undefined : /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1]
  if (charset === undefined || /^utf-?8$/i.test(charset)) return decoder.decode(body)
  try {
    return strictUtf8.decode(body)
  } catch {
    try {
      return new TextDecoder(charset).decode(body)
    } catch {
      // A charset this runtime does not know: as before.
      return decoder.decode(body)
    }
  }
}

/** A body that stops early is a transport failure: nobody knows whether the server moved on, so the scroll must start over. */
const cutShort = (where: Where) => (error: HttpClientError.ResponseError) =>
  truncated(where, where.redact(error.description ?? String(error.cause ?? error.reason)))

/** A body left unread, for an error's status to say what it has to say without it. */
class Unread extends Data.TaggedError("Unread") {}

/**
 * Reads the whole body as bytes, refusing one over `maxBytes` before it is held in memory. A read that fails is named
 * by `readFailed` within the body's stream: the transport's error, which carries the request, goes no further.
 */
const readBytes = <E>(
  response: HttpClientResponse.HttpClientResponse,
  declared: number | undefined,
  where: Where,
  maxBytes: number,
  readFailed: (error: HttpClientError.ResponseError) => E
): Effect.Effect<Uint8Array, InvalidResponse | E> => {
  const tooLarge = (bytes: string) => invalid(where, `the body is over the ${maxBytes}-byte limit (${bytes})`, maxBytes)
  if (declared !== undefined) {
    // Bytes, decoded once by `interpret`: `response.text` (undici's body.text()) gives the same string, but its pages
    // outlive minor GCs and pile up in the old generation (a CLI export peaked ~100 MB higher at 200k records than at
    // 20k).
    return declared > maxBytes
      ? Effect.fail(tooLarge(`Content-Length ${declared}`))
      : Effect.mapBoth(response.arrayBuffer, { onFailure: readFailed, onSuccess: (buffer) => new Uint8Array(buffer) })
  }
  // No length to go by: count while reading.
  return readAtMost(Stream.mapError(response.stream, readFailed), maxBytes, (bytes) =>
    tooLarge(`${bytes} bytes read when reading stopped`))
}

/**
 * The bytes of `stream`, counted as they come: past `maxBytes`, reading stops with `tooLarge` of the count so far,
 * before more is held in memory.
 */
export const readAtMost = <E, E2>(
  stream: Stream.Stream<Uint8Array, E>,
  maxBytes: number,
  tooLarge: (bytes: number) => E2
): Effect.Effect<Uint8Array, E | E2> =>
  stream.pipe(
    Stream.runFoldEffect({ bytes: 0, chunks: [] as Array<Uint8Array> }, (acc, chunk) => {
      const bytes = acc.bytes + chunk.length
      if (bytes > maxBytes) return Effect.fail(tooLarge(bytes))
      acc.chunks.push(chunk)
      return Effect.succeed({ bytes, chunks: acc.chunks })
    }),
    Effect.map(({ bytes, chunks }) => {
      const whole = new Uint8Array(bytes)
      let offset = 0
      for (const chunk of chunks) {
        whole.set(chunk, offset)
        offset += chunk.length
      }
      return whole
    })
  )

/**
 * Reads the whole body and decodes it by its `Content-Encoding`, refusing one over `maxBytes` as received or once
 * decoded (a decoding stops as soon as it passes the limit).
 *
 * Content-Length is the body's size only without a Content-Encoding: it counts the bytes as sent, and fetch hands over
 * a body it has decoded itself under the same headers. So a body with a Content-Encoding is counted as it is read,
 * whatever it declares. One that cannot be decoded, by us or by the transport on the way, fails a success; an error's
 * status says what it has to say without its body.
 */
const readBody = (
  response: HttpClientResponse.HttpClientResponse,
  headers: Headers.Headers,
  where: Where,
  maxBytes: number
): Effect.Effect<Uint8Array, InvalidResponse | RestartRequired> => {
  // Nothing to read, whatever the headers say; fetch's Response has no body at all, and the platform fails its stream.
  if (isBodiless(response.status)) return Effect.succeed(new Uint8Array(0))
  const contentEncoding = headers["content-encoding"]
  const coding = contentEncoding === undefined ? undefined : ContentCoding.parse(contentEncoding)
  if (contentEncoding === undefined || coding === undefined) {
    const declared = Number(headers["content-length"])
    return readBytes(response, Number.isFinite(declared) ? declared : undefined, where, maxBytes, cutShort(where))
  }
  const undecoded = (failure: ContentCoding.DecodeFailure) =>
    isSuccess(response.status) || failure._tag === "TooLarge"
      // The header is the server's, so it is redacted as what it says is.
      ? undecodable(failure, where.redact(contentEncoding), where, maxBytes)
      : new Unread()
  const readFailed = (error: HttpClientError.ResponseError) => {
    const onTheWay = ContentCoding.failureOnTheWay(error.cause)
    return onTheWay === undefined ? cutShort(where)(error) : undecoded(onTheWay)
  }
  return readBytes(response, undefined, where, maxBytes, readFailed).pipe(
    Effect.flatMap((bytes) => {
      const decoded = typeof coding === "string"
        ? ContentCoding.codecs.decode(coding, bytes, maxBytes)
        : Either.left(coding)
      return Either.isRight(decoded) ? Effect.succeed(decoded.right) : Effect.fail(undecoded(decoded.left))
    }),
    Effect.catchTag("Unread", () => Effect.succeed(new Uint8Array(0)))
  )
}

const undecodable = (
  failure: ContentCoding.DecodeFailure,
  contentEncoding: string,
  where: Where,
  maxBytes: number
): InvalidResponse | RestartRequired => {
  switch (failure._tag) {
    case "NotAskedFor":
      return invalid(
        where,
        `Content-Encoding ${contentEncoding} was not asked for (the client asks for ${
          ContentCoding.codecs.acceptEncoding ?? "none"
        })`
      )
    case "TooLarge":
      return invalid(
        where,
        `the body is over the ${maxBytes}-byte limit once decoded (Content-Encoding ${contentEncoding}, ${failure.received} bytes as received); decoding stopped there`,
        maxBytes
      )
    case "EndsEarly":
      return truncated(where, `the ${contentEncoding} stream ends early: ${where.redact(failure.detail)}`)
    case "Corrupt":
      return invalid(where, `the body does not decode as Content-Encoding ${contentEncoding}: ${where.redact(failure.detail)}`)
    case "Unavailable":
      return invalid(where, `Content-Encoding ${contentEncoding} cannot be decoded here: this runtime has no node:zlib`)
  }
}

/** Whether `text` stops inside a string or with an object or array still open: a body cut short. */
const endsEarly = (text: string): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      if (c === "\\") i++
      else if (c === "\"") inString = false
    } else if (c === "\"") inString = true
    else if (c === "{" || c === "[") depth++
    else if (c === "}" || c === "]") depth--
  }
  return inString || depth > 0
}

/** A body that ends before its JSON does was cut short; anything else that fails to parse is simply wrong. */
const parseJson = (text: string, where: Where): Either.Either<unknown, InvalidResponse | RestartRequired> => {
  try {
    return Either.right(JSON.parse(text))
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error)
    return endsEarly(text) || /end of JSON input/.test(detail)
      ? Either.left(truncated(where, `JSON ends early after ${text.length} characters`))
      // V8 quotes a stretch of the body (`Unexpected token 'x', ..."b" x"tok_abc"... is not valid JSON`), where a token's
      // prefix would escape the redaction. Quotes in the body need not pair up, so all from the first to the last goes.
      : Either.left(invalid(where, `malformed JSON: ${where.redact(detail.replace(/(\.\.\.)?"[\s\S]*"(\.\.\.)?/, "…"))}`))
  }
}

const isJson = (contentType: string | undefined) => contentType === undefined || /\bjson\b/i.test(contentType)

/** Statuses whose responses never have a body (RFC 9110 §6.4.1), so that an empty one is not a body cut short. */
const isBodiless = (status: number) => status === 204 || status === 205 || status === 304

/**
 * A redirect: one the server answered (a 3xx, which the client never follows), or one the HTTP client followed on its
 * own before it handed over the answer (fetch follows them by default).
 */
export interface Redirect {
  readonly status: number
  readonly followed: boolean
  /** Where to, as a message may show it: origin and path, a query only marked (`?…`); undefined without one. */
  readonly location: string | undefined
  /** The same in words: `to https://…`, `without a Location`, … */
  readonly said: string
}

/** A URL as an error shows it: the query may carry a secret (a signed link's), and credentials never belong there. */
const shownUrl = (url: URL, redact: (text: string) => string) =>
  redact(`${url.origin}${url.pathname}${url.search === "" ? "" : "?…"}`)

const redirectTo = (location: string, base: string, redact: (text: string) => string): Pick<Redirect, "location" | "said"> => {
  let url: URL
  try {
    url = new URL(location, base)
  } catch {
    return { location: undefined, said: "to a Location that is not a URL" }
  }
  const shown = shownUrl(url, redact)
  return { location: shown, said: `to ${shown}` }
}

/**
 * The URL the HTTP client ended at, where it followed a redirect itself. Fetch leaves no trace of one but on its
 * `Response` (`redirected`, `url`), which the platform keeps as the `source` of its response, itself the `original` of
 * the interruptible one the client hands over: fields it does not publish, read where they are there, so that an
 * answer from another URL than the request's is never taken for a page. Redirect.test.ts pins them over FetchHttpClient.
 */
const followedTo = (response: HttpClientResponse.HttpClientResponse): string | undefined => {
  let current: unknown = response
  for (let depth = 0; depth < 3 && typeof current === "object" && current !== null; depth++) {
    const { original, source } = current as { readonly original?: unknown; readonly source?: unknown }
    // By its shape, not `instanceof Response`: a fetch of its own (the undici package's) has a Response class of its own.
    if (typeof source === "object" && source !== null) {
      const { redirected, url } = source as { readonly redirected?: unknown; readonly url?: unknown }
      return redirected === true && typeof url === "string" ? url : undefined
    }
    current = original
  }
  return undefined
}

/** The redirect `response` is or came through, if any; `redact` scrubs the token from what the server said. */
export const redirectOf = (
  response: HttpClientResponse.HttpClientResponse,
  headers: Headers.Headers,
  redact: (text: string) => string
): Redirect | undefined => {
  const { status } = response
  const followed = followedTo(response)
  if (followed !== undefined) return { status, followed: true, ...redirectTo(followed, response.request.url, redact) }
  // 304 Not Modified points nowhere: it is an empty answer (to a request that made no condition).
  if (status < 300 || status >= 400 || status === 304) return undefined
  const location = headers["location"]
  return location === undefined || location.trim() === ""
    ? { status, followed: false, location: undefined, said: "without a Location" }
    : { status, followed: false, ...redirectTo(location.trim(), response.request.url, redact) }
}

/** A response read in full: all that `interpret` needs. */
export interface Received {
  readonly status: number
  readonly headers: Headers.Headers
  /** Decoded by `interpret`, so that the next request can go out first (`scrollParamAhead` reads the bytes). */
  readonly body: Uint8Array
  /** Set when the response is a redirect, or came from where the HTTP client was redirected to. */
  readonly redirect: Redirect | undefined
}

/** Reads a response's status, headers and whole body: the part of an exchange that waits on the network. */
export const receive = (
  response: HttpClientResponse.HttpClientResponse,
  where: Where,
  maxBytes: number
): Effect.Effect<Received, InvalidResponse | RestartRequired> => {
  // The platform builds the headers anew on each access.
  const headers = response.headers
  const redirect = redirectOf(response, headers, where.redact)
  return Effect.map(
    readBody(response, headers, where, maxBytes),
    (body) => ({ status: response.status, headers, body, redirect })
  )
}

/**
 * Why a redirect is refused: followed, the token would go wherever a server (or whoever controls its answers) says.
 * fetch drops the Authorization header when the origin changes, but takes the answer from there all the same.
 */
const redirected = (where: Where, { followed, location, said, status }: Redirect) =>
  new InvalidResponse({
    resource: where.resource,
    page: where.page,
    issue: followed
      ? `the HTTP client followed a redirect ${said} on its own and answered HTTP ${status} from there, not from the base URL; this client accepts no redirects`
      : `the server answered HTTP ${status}, a redirect ${said}, which the client does not follow`,
    ...(location === undefined ? {} : { location })
  })

const isSuccess = (status: number) => status >= 200 && status < 300

/** The scroll_param of a successful response, read from its bytes before `interpret` (see `scrollParamAhead`). */
export const readScrollParamAhead = (received: Received, resource: Resource): string | undefined =>
  isSuccess(received.status) && received.redirect === undefined ? scrollParamAhead(received.body, resource) : undefined

/** Turns a response, other than a 429 (waited out and resent), into a page or the typed error it stands for. */
export const interpret = (received: Received, where: Where): Either.Either<PageBody, ScrollError> => {
  const { resource, page } = where
  const { headers, status } = received
  const contentType = headers["content-type"]
  if (received.redirect !== undefined) return Either.left(redirected(where, received.redirect))
  const body = decodeText(received.body, contentType)

  // Not cut short: the status, or a Content-Length of 0, says there is nothing more to come.
  if (body === "" && (isBodiless(status) || (isSuccess(status) && headers["content-length"]?.trim() === "0"))) {
    return Either.left(invalid(where, `an empty answer (HTTP ${status}), where a page was expected`))
  }
  if (isSuccess(status)) {
    if (!isJson(contentType)) {
      return Either.left(invalid(where, `expected JSON, got ${where.redact(String(contentType))} (HTTP ${status})`))
    }
    return Either.flatMap(parseJson(body, where), (json) =>
      Either.mapLeft(validatePage[resource](json), ({ id, issue }) => {
        // An error said with a success status: what it says is worth more than the schema's account of its shape.
        const error = firstError(json)
        if (error !== undefined) {
          const said = error.message === undefined ? error.code : `${error.code}: ${error.message}`
          return invalid(
            where,
            `an error list with HTTP ${status} (${bounded(where.redact(said))})${
              error.requestId === undefined ? "" : ` (request ${where.redact(error.requestId)})`
            }`
          )
        }
        // The issue is the schema's account of what the server sent: its keys and values.
        return invalid(where, where.redact(issue), undefined, id)
      }))
  }

  const error = isJson(contentType)
    ? Either.match(parseJson(body, where), { onLeft: () => undefined, onRight: firstError })
    : undefined
  const sentCode = error?.code === undefined ? undefined : where.redact(error.code)
  const code = sentCode ?? `http_${status}`
  const requestId = error?.requestId === undefined ? undefined : where.redact(error.requestId)
  // Redacted before it is cut, so that a cut never leaves a token's prefix to escape the redaction.
  const detail = error?.message !== undefined
    ? bounded(where.redact(error.message))
    : isJson(contentType)
    ? "no error details"
    : `a ${where.redact(String(contentType))} body, likely from a proxy in front of Intercom`

  // Decided on the code as sent: redaction is for what is shown, and a short token may occur in a code.
  if (status === 400 && error?.code === "scroll_exists") return Either.left(new ConcurrentScroll({ resource, requestId }))
  if (status === 404 && where.scrollParam !== undefined) return Either.left(new Expired({ resource, page, requestId }))
  if (status === 401 || status === 403) {
    return Either.left(new Unauthorized({ resource, status, code, detail, requestId }))
  }
  if (status >= 500) {
    return Either.left(
      new RestartRequired({ resource, page, cause: { _tag: "ServerError", status, code: sentCode, detail, requestId } })
    )
  }
  return Either.left(new ApiError({ resource, page, status, code, detail, requestId }))
}
