/**
 * `GET /me`: which app (workspace) the access token belongs to, for `IntercomClient.Service.identify`.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Effect, Schedule, Schema, type Scope } from "effect"
import { type App, Me } from "../Models.js"
import { IdentifyFailed } from "../ScrollError.js"
import { firstError } from "./envelope.js"
import { readAtMost, redirectOf } from "./response.js"
import * as Transport from "./transport.js"

/** A 429 or a 5xx is asked again this many times, after a second, then two, then four. */
const retries = 3

/** At most this long for an answer, however long the client's `requestTimeout`: it holds up the scroll after it. */
const maxTimeoutMillis = 10_000

/** The answer is a few hundred bytes; more is not Intercom's, and is not read past this. */
const maxBytes = 1 << 16

export interface Settings {
  /** `GET /me`, with the client's token and an `Intercom-Version`. */
  readonly request: HttpClientRequest.HttpClientRequest
  readonly timeoutMillis: number
  /** Removes the token from what the server or the transport says. */
  readonly redact: (text: string) => string
}

/** Asks once, then answers from the first answer: a token belongs to one app for good. A failure is asked again. */
export const make = (httpClient: ScopedClient, settings: Settings): Effect.Effect<App, IdentifyFailed> => {
  let identified: App | undefined
  const ask = Effect.tap(once(httpClient, settings), (app) => {
    identified = app
  }).pipe(
    Effect.retry({
      schedule: Schedule.exponential("1 second"),
      times: retries,
      while: (error) => error.status === 429 || (error.status !== undefined && error.status >= 500)
    }),
    Effect.withSpan("IntercomClient.identify")
  )
  return Effect.suspend(() => identified === undefined ? ask : Effect.succeed(identified))
}

/** A client whose requests end with the scope they were sent in (`HttpClient.withScope`), as the scroll's do. */
type ScopedClient = HttpClient.HttpClient.With<HttpClientError.HttpClientError, Scope.Scope>

/** One `GET /me`, read into the app it embeds, or `IdentifyFailed` with what came instead. */
const once = (
  httpClient: ScopedClient,
  { redact, request, timeoutMillis }: Settings
): Effect.Effect<App, IdentifyFailed> => {
  const failed = (
    detail: string,
    answer?: { readonly status: number; readonly code?: string | undefined; readonly requestId?: string | undefined }
  ) =>
    new IdentifyFailed({
      detail: redact(detail),
      code: answer === undefined ? "transport" : redact(answer.code ?? `http_${answer.status}`),
      ...(answer === undefined ? {} : { status: answer.status }),
      ...(answer?.requestId === undefined ? {} : { requestId: redact(answer.requestId) })
    })
  return Effect.gen(function*() {
    const response = yield* httpClient.execute(request)
    const { status } = response
    // Followed, a redirect takes the token (or, over fetch, the answer) elsewhere: said as one, not as a body.
    const redirect = redirectOf(response, response.headers, redact)
    if (redirect !== undefined) {
      return yield* failed(
        redirect.followed
          ? `the HTTP client followed a redirect ${redirect.said} on its own; the client accepts no redirects`
          : `a redirect ${redirect.said}, which the client does not follow`,
        { status }
      )
    }
    const body = new TextDecoder().decode(
      yield* readAtMost(response.stream, maxBytes, () => failed(`an answer over ${maxBytes} bytes`, { status }))
    )
    const json = yield* Effect.try(() => JSON.parse(body) as unknown).pipe(
      // Redacted before it is cut: a cut through the token would leave its prefix for the redaction to miss.
      Effect.orElseFail(() => failed(`not JSON: ${redact(body).slice(0, 80)}`, { status }))
    )
    if (status < 200 || status >= 300) {
      const error = firstError(json)
      return yield* failed(error?.message ?? "no error details", { status, code: error?.code, requestId: error?.requestId })
    }
    return yield* Schema.decodeUnknown(Me)(json).pipe(
      Effect.mapBoth({ onFailure: () => failed("the answer names no app (app.id_code)", { status }), onSuccess: (me) => me.app })
    )
  }).pipe(
    Effect.scoped,
    Effect.catchTags({
      RequestError: (error) => transportFailure(error, redact, failed),
      ResponseError: (error) => transportFailure(error, redact, failed)
    }),
    Effect.timeoutFail({
      duration: Math.min(timeoutMillis, maxTimeoutMillis),
      onTimeout: () => failed(`no answer within ${Math.min(timeoutMillis, maxTimeoutMillis)} ms`)
    })
  )
}

/**
 * The transport's words, and the proxy in between when the failure was on the way to it, as the scroll's errors say; a
 * client closed beneath this one is the defect a scroll dies with, not a network to check.
 */
const transportFailure = (
  error: HttpClientError.HttpClientError,
  redact: (text: string) => string,
  failed: (detail: string) => IdentifyFailed
): Effect.Effect<never, IdentifyFailed> => {
  const failure = Transport.describe(error, redact)
  const { detail, proxy } = failure
  return Transport.wiringDefect(failure) ??
    Effect.fail(failed(proxy === undefined ? detail : `through the proxy ${proxy}: ${detail}`))
}
