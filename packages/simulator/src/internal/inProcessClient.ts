/**
 * An `HttpClient` answered by an `HttpApp` in the caller's fiber: no sockets, and the app sees the caller's services
 * (a TestClock drives it).
 *
 * @internal
 */
import {
  type HttpApp,
  HttpClient,
  HttpClientError,
  type HttpClientRequest,
  HttpClientResponse,
  HttpServerRequest,
  HttpServerResponse,
  UrlParams
} from "@effect/platform"
import { Effect, Either } from "effect"
import * as Connection from "./connection.js"

/** Relative URLs are resolved against this; any absolute URL reaches the app too. */
const origin = "http://intercom.simulator"

/**
 * Relative URLs are resolved when the request runs, after every `mapRequest` a caller adds (a `mapRequest` here
 * would run before theirs, and a base URL they prepend would land in front of this origin).
 */
const urlOf = (request: HttpClientRequest.HttpClientRequest) =>
  UrlParams.makeUrl(URL.canParse(request.url) ? request.url : origin + request.url, request.urlParams, request.hash)

export const make = (app: HttpApp.Default): HttpClient.HttpClient =>
  HttpClient.makeWith(
    (requests: Effect.Effect<HttpClientRequest.HttpClientRequest>) =>
      Effect.flatMap(requests, (request) =>
      Effect.gen(function*() {
        const url = yield* Either.mapLeft(urlOf(request), (cause) =>
          new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause }))
        const transport = Connection.inProcess()
        const serverRequest = HttpServerRequest.fromWeb(
          new Request(url, { method: request.method, headers: request.headers })
        )
        const response = yield* app.pipe(
          Effect.provideService(HttpServerRequest.HttpServerRequest, serverRequest),
          Effect.provideService(Connection.CurrentConnection, transport.connection)
        )
        if (transport.dropped()) {
          return yield* new HttpClientError.RequestError({
            request,
            reason: "Transport",
            description: "the simulator dropped the connection"
          })
        }
        const runtime = yield* Effect.runtime<never>()
        return HttpClientResponse.fromWeb(request, HttpServerResponse.toWeb(response, { runtime }))
      })),
    Effect.succeed
  )
