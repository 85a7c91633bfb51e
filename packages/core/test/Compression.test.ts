/**
 * Compression over the platform's own clients, on real sockets. They differ in who decodes: undici's `request`
 * (`NodeHttpClient.layerUndici`) hands over the bytes as sent, with their Content-Encoding and Content-Length; Node's
 * fetch (`FetchHttpClient.layer`) decodes gzip, deflate and br itself, also when the request sets Accept-Encoding, and
 * still shows the Content-Encoding and the compressed Content-Length. The client must decode the first, not decode the
 * second twice, and bound both by the decoded size.
 */
import { FetchHttpClient, type HttpClient, HttpServer } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { Chunk, Effect, Layer, Redacted, Schedule, Stream } from "effect"
import * as Http from "node:http"
import { IntercomClient, Scroll, type ScrollError } from "../src/index.js"
import { gzipBomb } from "./support/bomb.js"
import { scrollParamModes } from "./support/fakeIntercom.js"

const TOKEN = "tok_compressed_workspace"
const MiB = 1024 * 1024

const clients: ReadonlyArray<readonly [string, Layer.Layer<HttpClient.HttpClient>]> = [
  ["undici (NodeHttpClient.layerUndici)", NodeHttpClient.layerUndici],
  ["fetch (FetchHttpClient.layer)", FetchHttpClient.layer]
]

/** The client over `http`, at the base URL of the server in context. */
const clientAt = (http: Layer.Layer<HttpClient.HttpClient>, options: Partial<IntercomClient.Options> = {}) =>
  Layer.unwrapEffect(
    Effect.map(Simulator.baseUrl, (baseUrl) => IntercomClient.layer({ accessToken: Redacted.make(TOKEN), baseUrl, ...options }))
  ).pipe(Layer.provide(http), Layer.orDie)

/** Scrolls the users and checks each the workspace holds came out exactly once. */
const everyUserOnce = (options?: Scroll.Options) =>
  Effect.gen(function*() {
    const simulator = yield* Simulator.Simulator
    const emitted = Chunk.toReadonlyArray(yield* Stream.runCollect(Scroll.users(options))).map((user) => user.id)
    const expected = yield* simulator.ids(TOKEN, "users")
    expect(emitted.length).toBe(expected.length)
    expect([...emitted].sort()).toEqual([...expected].sort())
    return (yield* simulator.stats).workspaces[TOKEN]
  })

describe("against the simulator on a port", () => {
  for (const [name, http] of clients) {
    for (const scrollParam of scrollParamModes) {
      it.live(`${name}, ${scrollParam} scroll_param: every page asked for compressed, each user once, connections kept`, () => {
        let connections = 0
        // The simulator's app on a server of our own, which counts the connections it accepts.
        const server = Layer.unwrapEffect(Effect.map(Simulator.Simulator, (simulator) => HttpServer.serve(simulator.app)))
          .pipe(
            Layer.provideMerge(NodeHttpServer.layerServer(
              () => Http.createServer().on("connection", () => connections++),
              { port: 0, host: "127.0.0.1" }
            )),
            Layer.provideMerge(Simulator.layer({ scrollParam, workspaces: [{ token: TOKEN, users: 1500 }] }))
          )
        return Effect.gen(function*() {
          const stats = yield* everyUserOnce()
          // 15 pages of 100 users and the empty one, each asked for compressed and sent so.
          expect(stats.pagesServed).toBe(16)
          expect(stats.requestsAskingCompression).toBe(stats.requests)
          expect(stats.pagesCompressed).toBe(16)
          // ~160 kB of JSON a page, sent in ~16 kB.
          expect(stats.bytesSent / stats.pagesServed).toBeLessThan(40_000)
          // Kept alive: not one a page. Two take turns (as before compression): the next request goes out in the turn
          // the body ends, before undici's pool has seen that connection free again.
          expect(connections).toBeLessThanOrEqual(2)
        }).pipe(Effect.provide(clientAt(http).pipe(Layer.provideMerge(server))))
      })

      it.live(`${name}, ${scrollParam} scroll_param: a compressed body cut short and a dropped connection restart the scroll, each user once`, () =>
        Effect.gen(function*() {
          // After a cut body Intercom's side of the scroll stays open until it expires: a short expiry, quick waits.
          const stats = yield* everyUserOnce({ restart: Schedule.recurs(5), concurrentScroll: Schedule.spaced("100 millis") })
          expect(stats.bodiesCut).toBe(1)
          expect(stats.connectionsDropped).toBe(1)
          expect(stats.pagesCompressed).toBe(stats.pagesServed)
          // A restart for each fault (and one more if a busy machine lets the short expiry pass between two pages).
          expect(stats.scrollsOpened).toBeGreaterThanOrEqual(3)
        }).pipe(Effect.provide(clientAt(http).pipe(Layer.provideMerge(Simulator.layerServer({
          scrollParam,
          expiry: "300 millis",
          workspaces: [{ token: TOKEN, users: 800, faults: { cutBodyAt: [3], dropConnectionAt: [8] } }]
        }))))))
    }
  }
})

describe("a gzip bomb (1 MiB that inflates to 1 GiB) from a server", () => {
  const limit = 8 * MiB

  /** A server that answers every request with the bomb, as gzip, with the length of what it sends. */
  const bombServer = (bomb: Uint8Array) =>
    NodeHttpServer.layerServer(
      () =>
        Http.createServer((_request, response) => {
          // The client stops reading; the write then fails, which is expected.
          response.on("error", () => {})
          response.writeHead(200, {
            "content-type": "application/json",
            "content-encoding": "gzip",
            "content-length": bomb.length
          })
          response.end(bomb)
        }),
      { port: 0, host: "127.0.0.1" }
    )

  const firstPage = Effect.flatMap(IntercomClient.IntercomClient, (client) =>
    client.scrollPage("users", { scrollParam: undefined, page: 1 }))

  const issueOf = (error: ScrollError.ScrollError) => {
    expect(error._tag).toBe("InvalidResponse")
    return error._tag === "InvalidResponse" ? error.issue : ""
  }

  for (const [name, http] of clients) {
    it.live(`${name}: InvalidResponse naming the limit, decoding stopped near it, and memory hardly moves`, () => {
      const bomb = gzipBomb(1024)
      return Effect.gen(function*() {
        const before = process.resourceUsage().maxRSS
        const issue = issueOf(yield* Effect.flip(firstPage))
        // The peak resident set in MiB, which no GC lowers after the fact: the whole would be over 1024.
        expect((process.resourceUsage().maxRSS - before) / 1024).toBeLessThan(128)
        const decodedByFetch = /^the body is over the (\d+)-byte limit \((\d+) bytes\)$/.exec(issue)
        if (name.startsWith("fetch")) {
          // fetch decoded it: its chunks were counted as they came, and reading stopped at the first past the limit.
          expect(Number(decodedByFetch?.[1])).toBe(limit)
          expect(Number(decodedByFetch?.[2])).toBeGreaterThan(limit)
          expect(Number(decodedByFetch?.[2])).toBeLessThanOrEqual(limit + 64 * 1024)
        } else {
          // undici handed over the 1 MiB as sent; the client's decoding stopped within a chunk of the limit.
          expect(issue).toBe(
            `the body is over the ${limit}-byte limit once decoded (Content-Encoding gzip, ${bomb.length} bytes as received); decoding stopped there`
          )
        }
      }).pipe(Effect.provide(clientAt(http, { maxResponseBytes: limit }).pipe(Layer.provideMerge(bombServer(bomb)))))
    })
  }
})
