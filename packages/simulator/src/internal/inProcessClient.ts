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
  HttpClientRequest,
  HttpClientResponse,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { Effect } from "effect"
import * as Connection from "./connection.js"

/** Relative URLs are resolved against this; any absolute URL reaches the app too. */
const origin = "http://intercom.simulator"

export const make = (app: HttpApp.Default): HttpClient.HttpClient =>
  HttpClient.make((request, url, signal) =>
    Effect.gen(function*() {
      const transport = Connection.inProcess()
      const serverRequest = HttpServerRequest.fromWeb(
        new Request(url, { method: request.method, headers: request.headers, signal })
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
    })
  ).pipe(HttpClient.mapRequest((request) =>
    URL.canParse(request.url) ? request : HttpClientRequest.prependUrl(request, origin)
  ))
