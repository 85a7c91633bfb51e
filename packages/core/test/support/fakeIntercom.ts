/**
 * A scripted stand-in for Intercom behind `HttpClient.make`: enough of the scroll protocol to drive the client,
 * with a hook that can answer any request differently (a fault) and a log of every request it saw.
 */
import { HttpClient, type HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { Effect, Layer, Redacted } from "effect"
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
  readonly clientOptions?: Partial<IntercomClient.Options>
  readonly token?: string
}

/** Pages `k` of a scroll are records [k*size, (k+1)*size); params are `s<scroll>-<k>`. */
export const makeFake = (options: FakeOptions = {}): Fake => {
  const total = options.records ?? 250
  const size = options.pageSize ?? 100
  const requests: Array<Seen> = []
  let scrolls = 0
  const respond = (seen: Seen): Response => {
    const fault = options.fault?.(seen)
    if (fault !== undefined) return fault
    const param = seen.url.searchParams.get("scroll_param")
    let page = 0
    let scroll = 0
    if (param === null) {
      scroll = ++scrolls
    } else {
      const match = /^s(\d+)-(\d+)$/.exec(param)
      if (match === null) return errorList(404, "not_found", "scroll parameter not found")
      scroll = Number(match[1])
      page = Number(match[2])
    }
    const from = page * size
    const users = Array.from({ length: Math.max(0, Math.min(size, total - from)) }, (_, k) => user(from + k))
    return json({ type: "user.list", users, scroll_param: `s${scroll}-${page + 1}` })
  }
  const httpClient = HttpClient.make((request: HttpClientRequest.HttpClientRequest, url: URL) =>
    Effect.sync(() => {
      const seen = { url, headers: { ...request.headers }, index: requests.length + 1 }
      requests.push(seen)
      return HttpClientResponse.fromWeb(request, respond(seen))
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
