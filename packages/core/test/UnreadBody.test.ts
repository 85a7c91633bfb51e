/**
 * A body the client refuses unread, through the platform's own clients on a real socket: its request ends with the
 * exchange, so the server sees its connection close, rather than when the response happens to be garbage collected.
 * (The same over a test double, and a redirect's body in `identify`: IntercomClient.test.ts, Identify.test.ts.)
 */
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Layer, Redacted, Runtime } from "effect"
import * as Http from "node:http"
import { IntercomClient } from "../src/index.js"
import { clientAtServer, platformClients } from "./support/platformClients.js"

const declared = 40_000_000

/** A server that declares 40 MB, sends the first MiB, and holds the rest back; `closed` completes as the client lets go. */
const declaringTooMuch = (closed: Deferred.Deferred<void>) =>
  Layer.unwrapEffect(Effect.map(Effect.runtime<never>(), (runtime) =>
    NodeHttpServer.layerServer(
      () =>
        Http.createServer((_request, response) => {
          response.on("error", () => {})
          response.on("close", () => Runtime.runSync(runtime)(Deferred.succeed(closed, undefined)))
          response.writeHead(200, { "content-type": "application/json", "content-length": declared })
          response.write(new Uint8Array(1024 * 1024).fill(32))
        }),
      { port: 0, host: "127.0.0.1" }
    )))

describe("a body refused by its Content-Length, on a real socket", () => {
  for (const [name, http] of platformClients) {
    it.live(`${name}: InvalidResponse, and the server sees the connection close at once, not at a GC`, () =>
      Effect.gen(function*() {
        const closed = yield* Deferred.make<void>()
        yield* Effect.gen(function*() {
          const client = yield* IntercomClient.IntercomClient
          const error = yield* Effect.flip(client.scrollPage("users", { scrollParam: undefined, page: 1 }))
          expect(error).toMatchObject({
            _tag: "InvalidResponse",
            issue: `the body is over the 100-byte limit (Content-Length ${declared})`
          })
          // The exchange's end aborted the request: the connection is closed, the 39 MB never asked for. Unaborted, the
          // server waits until a GC reaches the response, or the client's layer closes (undici's own pool with it):
          // so the wait is made while the layer is still open.
          yield* Deferred.await(closed)
        }).pipe(
          Effect.provide(
            clientAtServer(http, { accessToken: Redacted.make("tok_unread_body"), maxResponseBytes: 100 }).pipe(
              Layer.provideMerge(declaringTooMuch(closed))
            )
          )
        )
      }))
  }
})
