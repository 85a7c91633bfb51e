/**
 * A gzip bomb through the platform's own clients, on a real socket: undici hands over the 1 MiB as sent and the client
 * decodes it; fetch decodes it itself. Either way the decoded size is what the limit bounds. (Compressed scrolls over
 * both: Simulator.test.ts.)
 */
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import * as Http from "node:http"
import { IntercomClient, type ScrollError } from "../src/index.js"
import { gzipBomb } from "./support/bomb.js"
import { clientAtServer, platformClients } from "./support/platformClients.js"

const TOKEN = "tok_compressed_workspace"
const MiB = 1024 * 1024

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

  for (const [name, http] of platformClients) {
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
      }).pipe(Effect.provide(clientAtServer(http, { accessToken: Redacted.make(TOKEN), maxResponseBytes: limit }).pipe(Layer.provideMerge(bombServer(bomb)))))
    })
  }
})
