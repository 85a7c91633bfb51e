import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as Zlib from "node:zlib"
import { Simulator } from "../src/index.js"
import { negotiate } from "../src/internal/contentCoding.js"
import { getBytes, send } from "./helpers.js"

const T = "T"
const workspaces = [{ token: T, companies: 250 }]
const inProcess = (options: Partial<Simulator.SimulatorOptions> = {}) =>
  Effect.provide(Simulator.layerClient({ workspaces, ...options }))
const overHttp = (options: Partial<Simulator.SimulatorOptions> = {}) =>
  Effect.provide(Simulator.layerTest({ workspaces, ...options }))

const decode: Record<string, (bytes: Uint8Array) => Buffer> = {
  br: (bytes) => Zlib.brotliDecompressSync(bytes),
  gzip: (bytes) => Zlib.gunzipSync(bytes),
  deflate: (bytes) => Zlib.inflateSync(bytes)
}

/** The first page of a fresh simulator: every fresh simulator of these options serves the same one. */
const firstPage = (acceptEncoding?: string) =>
  getBytes("/companies/scroll", { token: T, ...(acceptEncoding === undefined ? {} : { acceptEncoding }) })

describe("Accept-Encoding", () => {
  it("picks the acceptable coding of the highest weight, br before gzip before deflate, identity when asked", () => {
    const cases: ReadonlyArray<readonly [string | undefined, string | undefined]> = [
      [undefined, undefined], // no header: the client said nothing, and nothing is compressed
      ["", undefined],
      ["gzip", "gzip"],
      ["gzip, deflate", "gzip"], // Node's fetch over http
      ["gzip, deflate, br", "br"], // browsers and fetch over https
      ["deflate", "deflate"],
      ["GZip", "gzip"],
      ["x-gzip", "gzip"],
      ["br;q=0.5, gzip", "gzip"],
      ["br;q=0.8, gzip;q=0.9, deflate;q=1.0", "deflate"],
      ["gzip ; q=0.8 , br ;Q=0.7", "gzip"],
      ["gzip;q=0, deflate;q=0.1", "deflate"],
      ["*", "br"],
      ["*;q=0.5, br;q=0", "gzip"],
      ["identity", undefined],
      ["gzip;q=0.5, identity", undefined], // identity weighs more
      ["gzip;q=0.5, identity;q=0.5", "gzip"], // a tie goes to the compressed answer
      ["identity;q=0, gzip", "gzip"],
      ["identity;q=0, compress", undefined], // nothing acceptable that we have: uncompressed rather than a 406
      ["*;q=0", undefined],
      ["compress, zstd", undefined],
      ["gzip;q=2", undefined], // a malformed weight leaves the element out
      ["gzip;q=abc, deflate", "deflate"]
    ]
    for (const [header, coding] of cases) expect([header, negotiate(header)]).toEqual([header, coding])
  })
})

describe("compression in process", () => {
  it.effect("each coding carries the uncompressed page's bytes, with Content-Encoding, Content-Length and Vary", () =>
    Effect.gen(function*() {
      const plain = yield* firstPage().pipe(inProcess())
      expect(plain.headers["content-encoding"]).toBeUndefined()
      expect(plain.headers["vary"]).toBe("Accept-Encoding")
      for (const coding of ["gzip", "br", "deflate"]) {
        const compressed = yield* firstPage(coding).pipe(inProcess())
        expect(compressed.status).toBe(200)
        expect(compressed.headers["content-encoding"]).toBe(coding)
        expect(compressed.headers["vary"]).toBe("Accept-Encoding")
        expect(compressed.headers["content-length"]).toBe(String(compressed.bytes.length))
        expect(compressed.bytes.length).toBeLessThan(plain.bytes.length / 4)
        expect(decode[coding](compressed.bytes).toString("utf8")).toBe(new TextDecoder().decode(plain.bytes))
      }
    }))

  it.effect("off, every page goes uncompressed and nothing varies", () =>
    Effect.gen(function*() {
      const answer = yield* firstPage("gzip, deflate, br")
      expect(answer.headers["content-encoding"]).toBeUndefined()
      expect(answer.headers["vary"]).toBeUndefined()
      expect(JSON.parse(new TextDecoder().decode(answer.bytes)).data).toHaveLength(100)
      const stats = yield* (yield* Simulator.Simulator).stats
      expect(stats.total).toMatchObject({ requestsAskingCompression: 1, pagesCompressed: 0 })
    }).pipe(inProcess({ compression: false })))

  it.effect("a cut body is cut in its compressed bytes", () =>
    Effect.gen(function*() {
      const first = yield* getBytes("/companies/scroll", { token: T, acceptEncoding: "gzip" })
      const page = JSON.parse(Zlib.gunzipSync(first.bytes).toString("utf8"))
      const response = yield* send("/companies/scroll", { token: T, param: page.scroll_param, acceptEncoding: "gzip" })
      expect(response.headers["content-encoding"]).toBe("gzip")
      const promised = Number(response.headers["content-length"])
      expect(promised).toBeLessThan(20_000) // the compressed length: the page itself is ~40 kB
      expect((yield* Effect.flip(response.arrayBuffer))._tag).toBe("ResponseError")
      const stats = yield* (yield* Simulator.Simulator).stats
      expect(stats.total.bodiesCut).toBe(1)
      expect(stats.total.bytesSent).toBe(first.bytes.length + Math.floor(promised / 2))
    }).pipe(Effect.scoped, inProcess({ workspaces: [{ token: T, companies: 250, faults: { cutBodyAt: [2] } }] })))
})

describe("compression over real HTTP", () => {
  it.effect("gzip and br on the wire, decoded to the page", () =>
    Effect.gen(function*() {
      for (const coding of ["gzip", "br"]) {
        const answer = yield* firstPage(`${coding};q=1, identity;q=0.5`).pipe(overHttp())
        expect(answer.headers["content-encoding"]).toBe(coding)
        expect(answer.headers["vary"]).toBe("Accept-Encoding")
        expect(answer.headers["content-length"]).toBe(String(answer.bytes.length))
        expect(JSON.parse(decode[coding](answer.bytes).toString("utf8")).data).toHaveLength(100)
      }
    }))

  it.effect("a cut body stops half-way through its compressed bytes, which decode to the page's beginning", () =>
    Effect.gen(function*() {
      const first = yield* getBytes("/companies/scroll", { token: T, acceptEncoding: "gzip" })
      const param = JSON.parse(Zlib.gunzipSync(first.bytes).toString("utf8")).scroll_param
      const response = yield* send("/companies/scroll", { token: T, param, acceptEncoding: "gzip" })
      expect(response.headers["content-encoding"]).toBe("gzip")
      const promised = Number(response.headers["content-length"])
      const received: Array<Uint8Array> = []
      const error = yield* response.stream.pipe(
        Stream.runForEach((piece) => Effect.sync(() => received.push(piece))),
        Effect.flip
      )
      expect(error._tag).toBe("ResponseError")
      const head = Buffer.concat(received)
      expect(head.length).toBe(Math.floor(promised / 2))
      const text = Zlib.gunzipSync(head, { finishFlush: Zlib.constants.Z_SYNC_FLUSH }).toString("utf8")
      expect(text.startsWith('{"type":"list","data":[{"type":"company"')).toBe(true)
    }).pipe(Effect.scoped, overHttp({ workspaces: [{ token: T, companies: 250, faults: { cutBodyAt: [2] } }] })))

  it.effect("a dropped connection drops, compressed or not", () =>
    Effect.gen(function*() {
      const first = yield* getBytes("/companies/scroll", { token: T, acceptEncoding: "br" })
      const param = JSON.parse(Zlib.brotliDecompressSync(first.bytes).toString("utf8")).scroll_param
      const error = yield* Effect.flip(send("/companies/scroll", { token: T, param, acceptEncoding: "br" }))
      expect(error).toMatchObject({ _tag: "RequestError", reason: "Transport" })
      expect((yield* (yield* Simulator.Simulator).stats).total.connectionsDropped).toBe(1)
    }).pipe(Effect.scoped, overHttp({ workspaces: [{ token: T, companies: 250, faults: { dropConnectionAt: [2] } }] })))
})
