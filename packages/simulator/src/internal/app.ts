/**
 * The HTTP face of the simulator: authentication, the rate limit, the three scroll routes, Intercom's error bodies,
 * and what carries a response to the client: compression, the link's bandwidth, and transport faults.
 *
 * @internal
 */
import { type HttpApp, HttpBody, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { type Clock, Context, type Duration, Effect, Encoding, Either, Stream } from "effect"
import * as Resource from "../Resource.js"
import * as ApiError from "./apiError.js"
import { CurrentConnection } from "./connection.js"
import * as ContentCoding from "./contentCoding.js"
import type * as Link from "./link.js"
import type { Rng } from "./random.js"
import type { Major } from "./records.js"
import type { Counters } from "./stats.js"
import type { Page, Workspace } from "./workspace.js"

export interface Host {
  readonly workspaces: ReadonlyMap<string, Workspace>
  /** Requests that no workspace accepted. */
  readonly unauthenticated: Counters
  readonly requestIds: Rng
  /** Whether pages are compressed for requests that ask. */
  readonly compression: boolean
  /** Without one, bytes cost no time. */
  readonly link: Link.Link | undefined
  /** What a new connection costs before its first response. */
  readonly handshake: Duration.Duration | undefined
  readonly clock: Clock.Clock
}

/** What the current request is answered through. */
class Exchange extends Context.Tag("@intercom-scroll/simulator/internal/Exchange")<Exchange, {
  readonly host: Host
  readonly workspace: Workspace
  /** The coding the request asked for, if the simulator compresses. */
  readonly coding: ContentCoding.ContentCoding | undefined
}>() {}

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

/** 1.x (`1`, `1.4`) or anything later (`2.14`, `Preview`): not `10.0`, which is no 1.x. */
const majorOf = (version: string): Major => (/^1(\.|$)/.test(version.trim()) ? 1 : 2)

const contentType = "application/json; charset=utf-8"

/** A page depends on Accept-Encoding whenever the simulator compresses, also when this one is not compressed. */
const varyHeaders = { vary: "Accept-Encoding" }
const codingHeaders: Record<ContentCoding.ContentCoding, Readonly<Record<string, string>>> = {
  br: { ...varyHeaders, "content-encoding": "br" },
  gzip: { ...varyHeaders, "content-encoding": "gzip" },
  deflate: { ...varyHeaders, "content-encoding": "deflate" }
}

/** A page as sent: compressed if asked, whole or broken off by its transport fault. */
const respond = (page: Page) =>
  Effect.gen(function*() {
    const { coding, host, workspace } = yield* Exchange
    const connection = yield* CurrentConnection
    const counts = workspace.counters.counts
    const headers = coding !== undefined ? codingHeaders[coding] : host.compression ? varyHeaders : undefined
    const body = coding === undefined ? page.body : yield* connection.compress(coding, page.body)
    // Served once something of it goes out: a dropped connection sends nothing, a cut body its first half.
    if (page.transportFault !== "dropConnection") {
      counts.pagesServed++
      counts.recordsServed += page.records
      if (coding !== undefined) counts.pagesCompressed++
    }
    // A whole body is counted and carried over the link with every other response (`overTheLink`).
    if (page.transportFault === undefined) return HttpServerResponse.uint8Array(body, { contentType, headers })
    const request = yield* HttpServerRequest.HttpServerRequest
    let sent = Math.floor(body.length / 2)
    if (page.transportFault === "dropConnection") {
      counts.connectionsDropped++
      yield* connection.drop(request)
      sent = 0
    } else {
      counts.bodiesCut++
    }
    // Cut in the bytes as sent: a compressed body breaks off in its compressed bytes.
    const head = body.subarray(0, sent)
    counts.bytesSent += head.length
    const delivered = sent === 0
      ? Stream.empty
      : host.link === undefined
      ? Stream.make(head)
      : yield* connection.transmit(request, host.link, head)
    return HttpServerResponse.stream(connection.cut(request, delivered), {
      contentType,
      contentLength: body.length,
      headers
    })
  })

const scrollRoute = (resource: Resource.Resource) =>
  HttpRouter.get(
    Resource.path[resource],
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const searchParams = yield* HttpServerRequest.ParsedSearchParams
      const { workspace } = yield* Exchange
      const param = searchParams.scroll_param
      const version = request.headers["intercom-version"] ?? workspace.config.defaultVersion
      const page = yield* workspace.request(resource, Array.isArray(param) ? param[0] : param, majorOf(version))
      return yield* respond(page)
    })
  )

/** `GET /me`: who the token is, and the app (the workspace) it belongs to; what a sync checks its rows against. */
const meRoute = HttpRouter.get(
  "/me",
  Effect.flatMap(Exchange, ({ workspace }) =>
    workspace.config.readAdmins
      ? Effect.succeed(HttpServerResponse.unsafeJson(workspace.me()))
      : Effect.fail(ApiError.tokenUnauthorized()))
)

const routes = HttpRouter.empty.pipe(
  meRoute,
  scrollRoute("users"),
  scrollRoute("leads"),
  scrollRoute("companies"),
  Effect.catchTag("RouteNotFound", () => Effect.fail(ApiError.routeNotFound()))
)

export const make = (host: Host): HttpApp.Default =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const token = tokenOf(request.headers.authorization)
    const workspace = token === undefined ? undefined : host.workspaces.get(token)
    const asked = ContentCoding.negotiate(request.headers["accept-encoding"])
    const counters = workspace?.counters ?? host.unauthenticated
    counters.recordRequest(asked !== undefined)
    if ((yield* CurrentConnection).opens(request)) {
      counters.counts.connectionsOpened++
      if (host.handshake !== undefined) yield* host.clock.sleep(host.handshake)
    }
    const response = workspace === undefined
      ? refuse(counters, ApiError.unauthorized(), host.requestIds.hex(20))
      : yield* answer(host, workspace, host.compression ? asked : undefined)
    return yield* overTheLink(host, counters, yield* stamped(host, response))
  })

const refuse = (counters: Counters, error: ApiError.ApiError, requestId: string) => {
  counters.recordError(error)
  return error.toResponse(requestId)
}

const answer = (host: Host, workspace: Workspace, coding: ContentCoding.ContentCoding | undefined) => {
  const requestId = host.requestIds.hex(20)
  const rateLimit = workspace.admit()
  const handled = rateLimit.allowed ? routes : Effect.fail(rateLimit.refusal())
  return handled.pipe(
    Effect.provideService(Exchange, { host, workspace, coding }),
    Effect.catchTag("ApiError", (error) => Effect.sync(() => refuse(workspace.counters, error, requestId))),
    Effect.map((response) => HttpServerResponse.setHeaders(response, rateLimit.headers))
  )
}

/**
 * Every response says when it was made, as Intercom's do: by the simulator's clock, which its expiry and rate-limit
 * windows go by (the TestClock in tests), not the request's.
 */
const stamped = (host: Host, response: HttpServerResponse.HttpServerResponse) =>
  Effect.map(host.clock.currentTimeMillis, (now) => HttpServerResponse.setHeader(response, "date", new Date(now).toUTCString()))

/**
 * A whole body's bytes are counted and cost their time on the link. (A body cut short is a stream, already counted
 * and carried where it was cut.)
 */
const overTheLink = (host: Host, counters: Counters, response: HttpServerResponse.HttpServerResponse) => {
  const body = response.body
  if (body._tag !== "Uint8Array") return Effect.succeed(response)
  counters.counts.bytesSent += body.body.length
  const link = host.link
  if (link === undefined) return Effect.succeed(response)
  return Effect.all([CurrentConnection, HttpServerRequest.HttpServerRequest]).pipe(
    Effect.flatMap(([connection, request]) => connection.transmit(request, link, body.body)),
    Effect.map((stream) =>
      HttpServerResponse.setBody(response, HttpBody.stream(stream, body.contentType, body.body.length))
    )
  )
}
