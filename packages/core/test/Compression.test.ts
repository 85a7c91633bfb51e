/**
 * A corrupt stream and a gzip bomb through the platform's own clients, on a real socket: undici hands over the 1 MiB as sent and the client
 * decodes it; fetch decodes it itself. Either way the decoded size is what the limit bounds, and a body that does not
 * decode is named by its coding. (Compressed scrolls over both: Simulator.test.ts.)
 */
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import * as Http from "node:http"
import * as Zlib from "node:zlib"
import { IntercomClient, type ScrollError } from "../src/index.js"
import { gzipBomb } from "./support/bomb.js"
import { clientAtServer, platformClients } from "./support/platformClients.js"

const TOKEN = "tok_compressed_workspace"
const MiB = 1024 * 1024

/** A server that answers every request with `body` under `status` and `contentEncoding`, with the length it sends. */
const serving = (body: Uint8Array, contentEncoding: string, status = 200) =>
  NodeHttpServer.layerServer(
    () =>
      Http.createServer((_request, response) => {
        // The client may stop reading; the write then fails, which is expected.
        response.on("error", () => {})
        response.writeHead(status, {
          "content-type": "application/json",
          "content-encoding": contentEncoding,
          "content-length": body.length
        })
        response.end(body)
      }),
    { port: 0, host: "127.0.0.1" }
  )

const firstPage = Effect.flatMap(IntercomClient.IntercomClient, (client) =>
  client.scrollPage("users", { scrollParam: undefined, page: 1 }))

describe("a body that does not decode in its Content-Encoding", () => {
  const page = Buffer.from(JSON.stringify({ type: "user.list", users: [], scroll_param: "s1" }).repeat(50))
  /** A stream of `coding` with one byte flipped where the coding checks it. */
  const corrupt = {
    gzip: () => {
      const gzip = Uint8Array.from(Zlib.gzipSync(page))
      gzip[gzip.length - 8] ^= 1
      return gzip
    },
    br: () => {
      const br = Uint8Array.from(Zlib.brotliCompressSync(page))
      br[3] ^= 0xff
      return br
    }
  }

  for (const [name, http] of platformClients) {
    for (const coding of ["gzip", "br"] as const) {
      // fetch decodes on the way and fails the read with zlib's error inside a TypeError("terminated"): without a look
      // at that cause, it would read as a body cut short and restart the scroll.
      it.live(`${name}: ${coding} is InvalidResponse naming the coding, not a restart; under a 500 the status speaks`, () => {
        const body = corrupt[coding]()
        const client = (status: number) =>
          clientAtServer(http, { accessToken: Redacted.make(TOKEN) }).pipe(Layer.provideMerge(serving(body, coding, status)))
        return Effect.gen(function*() {
          const error = yield* Effect.flip(Effect.provide(firstPage, client(200)))
          expect(error._tag).toBe("InvalidResponse")
          expect(error._tag === "InvalidResponse" ? error.issue : "").toMatch(
            coding === "gzip"
              ? /^the body does not decode as Content-Encoding gzip: incorrect data check$/
              : /^the body does not decode as Content-Encoding br: Decompression failed \(ERR__ERROR_FORMAT_\w+\)$/
          )
          const server = yield* Effect.flip(Effect.provide(firstPage, client(500)))
          expect(server).toMatchObject({ _tag: "RestartRequired", cause: { _tag: "ServerError", status: 500 } })
        })
      })
    }
  }
})

describe("a gzip bomb (1 MiB that inflates to 1 GiB) from a server", () => {
  const limit = 8 * MiB

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
        const decodedByFetch = /^the body is over the (\d+)-byte limit \((\d+) bytes read when reading stopped\)$/.exec(issue)
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
      }).pipe(Effect.provide(clientAtServer(http, { accessToken: Redacted.make(TOKEN), maxResponseBytes: limit }).pipe(Layer.provideMerge(serving(bomb, "gzip")))))
    })
  }
})
