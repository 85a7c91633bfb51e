/**
 * Redirects and empty answers through the platform's own clients, on real sockets. undici's `request` hands a 3xx over
 * as it came; fetch follows it on its own (dropping the Authorization header when the origin changes, not the
 * scroll_param) and hands over the answer from there as if the base URL's. Either way the client refuses it as
 * InvalidResponse naming where it pointed (never its query), not a restart and never a page.
 */
import { FetchHttpClient } from "@effect/platform"
import * as Undici from "@effect/platform-node/Undici"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted, Schedule, Stream } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"
import { IntercomClient, Scroll } from "../src/index.js"
import { platformClients } from "./support/platformClients.js"

const TOKEN = "tok_redirected_workspace_0123"

/** The platform's clients, and fetch as the undici package has it: a Response class other than the global one. */
const clients = [
  ...platformClients,
  [
    "fetch of the undici package",
    FetchHttpClient.layer.pipe(Layer.provide(Layer.succeed(FetchHttpClient.Fetch, Undici.fetch as unknown as typeof fetch)))
  ] as const
]

interface Seen {
  readonly url: string
  readonly authorization: string | undefined
}

/** A loopback server answering each request with `answer`, its requests in `seen`; closed with the scope. */
const server = (answer: (request: Http.IncomingMessage, response: Http.ServerResponse) => void) =>
  Effect.gen(function*() {
    const seen: Array<Seen> = []
    const http = Http.createServer((request, response) => {
      seen.push({ url: request.url ?? "", authorization: request.headers.authorization })
      answer(request, response)
    })
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => void http.listen(0, "127.0.0.1", () => resume(Effect.void))),
      () =>
        Effect.async<void>((resume) => {
          http.closeAllConnections()
          http.close(() => resume(Effect.void))
        })
    )
    return { url: `http://127.0.0.1:${(http.address() as Net.AddressInfo).port}`, seen }
  })

/** Scroll pages of a user each, ending at the third: what a server that took the redirect's requests would serve. */
const pages = (request: Http.IncomingMessage, response: Http.ServerResponse) => {
  const param = new URL(request.url ?? "/", "http://x").searchParams.get("scroll_param")
  const page = param === null ? 0 : Number(param.slice(1))
  const users = page >= 2 ? [] : [{ type: "user", id: String(page).padStart(24, "0") }]
  const body = JSON.stringify({ type: "user.list", users, scroll_param: `p${page + 1}` })
  response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
  response.end(body)
}

/** The users scroll at `baseUrl` over `http`, allowed 3 restarts: the error it fails with. */
const scrollAt = (http: (typeof clients)[number][1], baseUrl: string) =>
  Stream.runDrain(Scroll.users({ restart: Schedule.recurs(3) })).pipe(
    Effect.flip,
    Effect.provide(IntercomClient.layer({ accessToken: Redacted.make(TOKEN), baseUrl })),
    Effect.provide(http)
  )

describe("a redirect", () => {
  for (const [name, http] of clients) {
    for (const status of [301, 302, 307, 308]) {
      it.scopedLive(`${name}: ${status} to another origin is InvalidResponse naming it without its query; the token stays`, () =>
        Effect.gen(function*() {
          const elsewhere = yield* server(pages)
          const base = yield* server((request, response) => {
            response.writeHead(status, { location: `${elsewhere.url}${request.url}?sig=secret-signature` })
            response.end()
          })
          const error = yield* scrollAt(http, base.url)
          expect(error).toMatchObject({ _tag: "InvalidResponse", page: 1, location: `${elsewhere.url}/users/scroll?…` })
          expect(error.message).not.toContain("secret-signature")
          expect(error.message).toMatch(/redirect/)
          // Not a restart: the same answer would come again.
          expect(base.seen).toHaveLength(1)
          // fetch asked there (without the token), undici did not ask at all.
          expect(elsewhere.seen.filter((seen) => seen.authorization !== undefined)).toEqual([])
          expect(elsewhere.seen.length).toBeLessThanOrEqual(1)
        }))
    }

    it.scopedLive(`${name}: a redirect within the base URL's origin is refused alike, with a relative Location resolved`, () =>
      Effect.gen(function*() {
        const base = yield* server((request, response) => {
          if (request.url?.startsWith("/v2/")) return pages(request, response)
          response.writeHead(302, { location: `/v2${request.url}` })
          response.end()
        })
        const error = yield* scrollAt(http, base.url)
        expect(error).toMatchObject({ _tag: "InvalidResponse", location: `${base.url}/v2/users/scroll` })
        expect(error.message).toContain(`If ${base.url}/v2/users/scroll is Intercom's API`)
      }))

    it.scopedLive(`${name}: a redirect loop is InvalidResponse after one attempt, not restarts round it`, () =>
      Effect.gen(function*() {
        const base = yield* server((request, response) => {
          response.writeHead(302, { location: request.url ?? "/" })
          response.end()
        })
        const error = yield* scrollAt(http, base.url)
        expect(error).toMatchObject({ _tag: "InvalidResponse", page: 1 })
        expect(error.message).toMatch(/redirect/)
        // undici's client asked once; fetch followed the loop 20 times, and gave up once.
        expect(base.seen.length).toBeLessThanOrEqual(21)
      }))

    it.scopedLive(`${name}: a 3xx without a Location is InvalidResponse, not ApiError`, () =>
      Effect.gen(function*() {
        const base = yield* server((_request, response) => {
          response.writeHead(300)
          response.end()
        })
        const error = yield* scrollAt(http, base.url)
        expect(error).toMatchObject({ _tag: "InvalidResponse", issue: expect.stringContaining("without a Location") })
      }))
  }
})

describe("an empty answer", () => {
  for (const [name, http] of clients) {
    for (const status of [204, 304]) {
      // A complete answer with nothing in it: no body cut short, and no restart brings a page.
      it.scopedLive(`${name}: HTTP ${status} is InvalidResponse, not a restart`, () =>
        Effect.gen(function*() {
          const base = yield* server((_request, response) => {
            response.writeHead(status)
            response.end()
          })
          const error = yield* scrollAt(http, base.url)
          expect(error).toMatchObject({ _tag: "InvalidResponse", issue: `an empty answer (HTTP ${status}), where a page was expected` })
          expect(base.seen).toHaveLength(1)
        }))
    }
  }
})
