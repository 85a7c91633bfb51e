/**
 * The HTTP face of the simulator: authentication, the rate limit, the three scroll routes and Intercom's error
 * bodies.
 *
 * @internal
 */
import { type HttpApp, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Clock, Context, Effect, Encoding, Either } from "effect"
import * as Resource from "../Resource.js"
import * as ApiError from "./apiError.js"
import { CurrentConnection } from "./connection.js"
import type { Rng } from "./random.js"
import type { Major } from "./records.js"
import type { Counters } from "./stats.js"
import type { Page, Workspace } from "./workspace.js"

export interface Host {
  readonly workspaces: ReadonlyMap<string, Workspace>
  /** Requests that no workspace accepted. */
  readonly unauthenticated: Counters
  readonly requestIds: Rng
}

class CurrentWorkspace extends Context.Tag("@intercom-scroll/simulator/internal/CurrentWorkspace")<
  CurrentWorkspace,
  Workspace
>() {}

/** The token of `Authorization: Bearer <token>`, or of HTTP Basic with the token as user name and no password. */
export const tokenOf = (authorization: string | undefined): string | undefined => {
  const match = authorization?.match(/^(\w+) +(\S+)$/)
  if (!match) return undefined
  const [, scheme, credentials] = match
  switch (scheme.toLowerCase()) {
    case "bearer":
      return credentials
    case "basic": {
      const decoded = Encoding.decodeBase64String(credentials)
      return Either.isRight(decoded) && decoded.right.endsWith(":") ? decoded.right.slice(0, -1) : undefined
    }
    default:
      return undefined
  }
}

const majorOf = (version: string): Major => (version.startsWith("1") ? 1 : 2)

const contentType = "application/json; charset=utf-8"

const respond = (page: Page) =>
  Effect.gen(function*() {
    const body = page.body
    if (page.transportFault === undefined) return HttpServerResponse.uint8Array(body, { contentType })
    const request = yield* HttpServerRequest.HttpServerRequest
    const connection = yield* CurrentConnection
    const workspace = yield* CurrentWorkspace
    let sent = Math.floor(body.length / 2)
    if (page.transportFault === "dropConnection") {
      workspace.counters.connectionsDropped++
      yield* connection.drop(request)
      sent = 0
    } else {
      workspace.counters.bodiesCut++
    }
    return HttpServerResponse.stream(connection.cut(request, body.subarray(0, sent)), {
      contentType,
      contentLength: body.length
    })
  })

const scrollRoute = (resource: Resource.Resource) =>
  HttpRouter.get(
    Resource.path[resource],
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const searchParams = yield* HttpServerRequest.ParsedSearchParams
      const workspace = yield* CurrentWorkspace
      const param = searchParams.scroll_param
      const version = request.headers["intercom-version"] ?? workspace.config.defaultVersion
      const page = yield* workspace.request(resource, Array.isArray(param) ? param[0] : param, majorOf(version))
      return yield* respond(page)
    })
  )

const routes = HttpRouter.empty.pipe(
  scrollRoute("users"),
  scrollRoute("leads"),
  scrollRoute("companies"),
  Effect.catchTag("RouteNotFound", () => Effect.fail(ApiError.routeNotFound()))
)

export const make = (host: Host): HttpApp.Default => Effect.flatMap(answer(host), stamped)

/** Every response says when it was made, by the simulator's clock (the TestClock in tests), as Intercom's do. */
const stamped = (response: HttpServerResponse.HttpServerResponse) =>
  Effect.map(Clock.currentTimeMillis, (now) => HttpServerResponse.setHeader(response, "date", new Date(now).toUTCString()))

const answer = (host: Host) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const token = tokenOf(request.headers.authorization)
    const workspace = token === undefined ? undefined : host.workspaces.get(token)
    const requestId = host.requestIds.hex(20)
    if (workspace === undefined) {
      const error = ApiError.unauthorized()
      host.unauthenticated.requests++
      host.unauthenticated.recordError(error)
      return error.toResponse(requestId)
    }
    workspace.counters.requests++
    const rateLimit = workspace.admit()
    const answer = rateLimit.allowed ? routes : Effect.fail(ApiError.rateLimited())
    const response = yield* answer.pipe(
      Effect.provideService(CurrentWorkspace, workspace),
      Effect.catchTag("ApiError", (error) =>
        Effect.sync(() => {
          workspace.counters.recordError(error)
          return error.toResponse(requestId)
        }))
    )
    return HttpServerResponse.setHeaders(response, rateLimit.headers)
  })
