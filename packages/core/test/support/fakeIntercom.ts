/**
 * A scripted stand-in for Intercom behind `HttpClient.make`: enough of the scroll protocol to drive the client,
 * with a hook that can answer any request differently (a fault) and a log of every request it saw.
 */
import { HttpClient, HttpClientError, type HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { Effect, Layer, Redacted } from "effect"
import * as Zlib from "node:zlib"
import { IntercomClient } from "../../src/index.js"
import { internalsOf } from "../../src/internal/client.js"

export const TOKEN = "tok_fake_0123456789abcdef"

/** Whether a scroll of the workspace of the client in context holds this process's lock now. */
export const isWorkspaceLocked: Effect.Effect<boolean, never, IntercomClient.IntercomClient> = Effect.flatMap(
  IntercomClient.IntercomClient,
  (client) => internalsOf(client).workspaceLock.isHeld
)

export const hexId = (i: number) => i.toString(16).padStart(24, "0")

export const user = (i: number) => ({ type: "user", id: hexId(i), email: `u${i}@example.com`, name: `User ${i}` })

export interface Seen {
  readonly url: URL
  readonly headers: Record<string, string>
  /** 1-based over every request. */
  readonly index: number
  /** The scroll the request belongs to (1-based), and the page (0-based) it asks for; undefined for an unknown param. */
  readonly scroll: number | undefined
  readonly page: number | undefined
}

/** What a request asked for, as `scroll:page` (`1:0` opens the first scroll), whatever the scroll_params look like. */
export const asked = (seen: Seen) => seen.scroll === undefined ? "unknown" : `${seen.scroll}:${seen.page}`

/**
 * How the fake hands out scroll_params: `s<scroll>-<page>`, a new one for each page (rotating), or `s<scroll>` for every
 * page of a scroll, the fake keeping the scroll's place (stable, as an SDK tracker reports Intercom doing).
 */
export type ScrollParamMode = "rotating" | "stable"

export const scrollParamModes: ReadonlyArray<ScrollParamMode> = ["rotating", "stable"]

export type Coding = "gzip" | "deflate" | "br"

const compressors: { readonly [C in Coding]: (body: Uint8Array) => Uint8Array } = {
  gzip: (body) => Zlib.gzipSync(body),
  deflate: (body) => Zlib.deflateSync(body),
  br: (body) => Zlib.brotliCompressSync(body)
}

/** `body` as JSON compressed in `coding`, with the headers a server sends with it. */
export const compressedJson = (
  body: unknown,
  coding: Coding,
  status = 200,
  headers: Record<string, string> = {}
): Response => {
  const bytes = compressors[coding](new TextEncoder().encode(JSON.stringify(body)))
  return new Response(bytes, {
    status,
    headers: {
      "content-type": "application/json",
      "content-encoding": coding,
      "content-length": String(bytes.length),
      ...headers
    }
  })
}

export interface Fake {
  readonly requests: Array<Seen>
  /** First-page requests that opened a scroll. */
  readonly opened: () => number
  readonly layer: Layer.Layer<IntercomClient.IntercomClient>
  readonly httpClient: Layer.Layer<HttpClient.HttpClient>
}

export const json = (body: unknown, status = 200, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } })

export const errorList = (status: number, code: string, message: string): Response =>
  json({ type: "error.list", request_id: "req_1", errors: [{ code, message }] }, status)

export interface FakeOptions {
  readonly records?: number
  readonly pageSize?: number
  /** Answers a request instead of the scroll, when it returns a Response. */
  readonly fault?: (seen: Seen) => Response | undefined
  /** Fails a request as a connection refused (it never reaches the server), when it returns true. */
  readonly refuseConnection?: (seen: Seen) => boolean
  readonly clientOptions?: Partial<IntercomClient.Options>
  readonly token?: string
  /** Default rotating. */
  readonly scrollParam?: ScrollParamMode | undefined
  /** Pages it serves, compressed in this coding when the request's Accept-Encoding names it. Default none. */
  readonly contentCoding?: Coding | undefined
}

/**
 * Page `k` of a scroll holds records [k*size, (k+1)*size). Params are `s<scroll>-<k>` (rotating) or `s<scroll>`
 * (stable: the fake then keeps each scroll's next page, which a page answered moves on, and an error does not).
 */
export const makeFake = (options: FakeOptions = {}): Fake => {
  const total = options.records ?? 250
  const size = options.pageSize ?? 100
  const stable = options.scrollParam === "stable"
  const requests: Array<Seen> = []
  /** The next page of each scroll, by scroll number, for stable params. */
  const positions = new Map<number, number>()
  let scrolls = 0
  const target = (param: string | null): { readonly scroll: number; readonly page: number } | undefined => {
    if (param === null) return { scroll: scrolls + 1, page: 0 }
    const match = (stable ? /^s(\d+)$/ : /^s(\d+)-(\d+)$/).exec(param)
    if (match === null) return undefined
    const scroll = Number(match[1])
    const page = stable ? positions.get(scroll) : Number(match[2])
    return page === undefined ? undefined : { scroll, page }
  }
  const serve = (seen: Seen): Response => {
    if (seen.scroll === undefined || seen.page === undefined) {
      return errorList(404, "not_found", "scroll parameter not found")
    }
    const { page, scroll } = seen
    const from = page * size
    const users = Array.from({ length: Math.max(0, Math.min(size, total - from)) }, (_, k) => user(from + k))
    const body = { type: "user.list", users, scroll_param: stable ? `s${scroll}` : `s${scroll}-${page + 1}` }
    const coding = options.contentCoding
    return coding !== undefined && (seen.headers["accept-encoding"] ?? "").includes(coding)
      ? compressedJson(body, coding)
      : json(body)
  }
  /** A page answered (by the fake or a fault) opens its scroll, or moves it on; an error leaves it where it was. */
  const respond = (seen: Seen): Response => {
    const response = options.fault?.(seen) ?? serve(seen)
    if (response.ok && seen.scroll !== undefined && seen.page !== undefined) {
      if (seen.page === 0) scrolls = seen.scroll
      positions.set(seen.scroll, seen.page + 1)
    }
    return response
  }
  const httpClient = HttpClient.make((request: HttpClientRequest.HttpClientRequest, url: URL) =>
    Effect.suspend(() => {
      const { page, scroll } = target(url.searchParams.get("scroll_param")) ?? {}
      const seen: Seen = { url, headers: { ...request.headers }, index: requests.length + 1, scroll, page }
      requests.push(seen)
      if (options.refuseConnection?.(seen) === true) {
        // As undici reports it: Node's own error, whose syscall says no connection was made.
        const cause = Object.assign(new Error(`connect ECONNREFUSED ${url.host}`), { code: "ECONNREFUSED", syscall: "connect" })
        return Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause }))
      }
      return Effect.succeed(HttpClientResponse.fromWeb(request, respond(seen)))
    })
  )
  const httpLayer = Layer.succeed(HttpClient.HttpClient, httpClient)
  return {
    requests,
    opened: () => scrolls,
    httpClient: httpLayer,
    layer: IntercomClient.layer({
      accessToken: Redacted.make(options.token ?? TOKEN),
      baseUrl: "https://api.intercom.test",
      ...options.clientOptions
    }).pipe(Layer.provide(httpLayer), Layer.orDie)
  }
}
