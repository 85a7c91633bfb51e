import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import * as Zlib from "node:zlib"
import { type Coding, codecs, failureOnTheWay, isEncoded, make, parse } from "../src/internal/contentCoding.js"
import { gzipBomb } from "./support/bomb.js"
import { user } from "./support/fakeIntercom.js"

const MiB = 1024 * 1024
const encoder = new TextEncoder()
const page = encoder.encode(
  JSON.stringify({ type: "user.list", users: Array.from({ length: 100 }, (_, i) => user(i)), scroll_param: "p-2" })
)

const compress: { readonly [C in Coding | "raw deflate"]: (body: Uint8Array) => Uint8Array } = {
  gzip: (body) => Zlib.gzipSync(body),
  deflate: (body) => Zlib.deflateSync(body),
  "raw deflate": (body) => Zlib.deflateRawSync(body),
  br: (body) => Zlib.brotliCompressSync(body)
}
const codingOf = (name: keyof typeof compress): Coding => name === "raw deflate" ? "deflate" : name

const failureOf = (decoded: Either.Either<Uint8Array, unknown>) => Either.isLeft(decoded) ? decoded.left : "decoded"

describe("parse", () => {
  it("reads none, identity and each coding asked for, whatever the case and spacing; x-gzip is gzip", () => {
    for (const none of ["", " ", "identity", "Identity", "identity, identity"]) expect(parse(none)).toBe(undefined)
    expect(["gzip", " GZIP ", "x-gzip", "identity, gzip"].map(parse)).toEqual(["gzip", "gzip", "gzip", "gzip"])
    expect(["deflate", "Deflate", "br", "BR"].map(parse)).toEqual(["deflate", "deflate", "br", "br"])
  })

  it("anything else is not asked for: another coding, or several in a row", () => {
    for (const other of ["zstd", "compress", "gzip, br", "br, br", "gzip;q=1"]) {
      expect(parse(other)).toEqual({ _tag: "NotAskedFor" })
    }
  })
})

describe("decode", () => {
  it("this runtime asks for gzip, deflate and br", () => {
    expect(codecs.acceptEncoding).toBe("gzip, deflate, br")
  })

  it("decodes each coding back to the bytes compressed, and raw deflate as deflate", () => {
    for (const [name, compressor] of Object.entries(compress)) {
      const decoded = codecs.decode(codingOf(name as keyof typeof compress), compressor(page), 10 * MiB)
      expect({ name, decoded: Either.map(decoded, (bytes) => Buffer.from(bytes).equals(page)) })
        .toEqual({ name, decoded: Either.right(true) })
    }
  })

  it("takes a body that was decoded on the way (as fetch hands it over) as it is, under each coding", () => {
    const html = encoder.encode("<html><body>Bad Gateway</body></html>")
    for (const coding of ["gzip", "deflate", "br"] as const) {
      for (const body of [page, html, new Uint8Array(0)]) {
        const decoded = codecs.decode(coding, body, 10 * MiB)
        expect(Either.isRight(decoded) && decoded.right).toBe(body)
      }
    }
  })

  it("a body that decodes to exactly the limit is read; one byte more is TooLarge", () => {
    for (const [name, compressor] of Object.entries(compress)) {
      const coding = codingOf(name as keyof typeof compress)
      expect(Either.isRight(codecs.decode(coding, compressor(page), page.length))).toBe(true)
      const body = compressor(page)
      expect(failureOf(codecs.decode(coding, body, page.length - 1))).toEqual({ _tag: "TooLarge", received: body.length })
    }
  })

  it("a gzip bomb (1 MiB that inflates to 1 GiB) stops decoding near the limit: the process's peak memory hardly moves", () => {
    const bomb = gzipBomb(1024)
    expect(bomb.length).toBeLessThan(1.1 * MiB)
    const before = process.resourceUsage().maxRSS
    const decoded = codecs.decode("gzip", bomb, 8 * MiB)
    // The peak resident set (kB), which no later GC can lower: the 1 GiB, had it been decoded, would show here.
    const grown = (process.resourceUsage().maxRSS - before) / 1024
    expect(failureOf(decoded)).toEqual({ _tag: "TooLarge", received: bomb.length })
    expect(grown).toBeLessThan(128)
  })

  it("a stream that stops before its end is EndsEarly, in each coding", () => {
    for (const [name, compressor] of Object.entries(compress)) {
      const whole = compressor(page)
      const failure = failureOf(codecs.decode(codingOf(name as keyof typeof compress), whole.subarray(0, whole.length >> 1), 10 * MiB))
      expect({ name, failure }).toEqual({ name, failure: { _tag: "EndsEarly", detail: "unexpected end of file" } })
    }
  })

  it("bytes that are not the coding's stream are Corrupt, in zlib's own words", () => {
    const damaged = (bytes: Uint8Array) => {
      const copy = Uint8Array.from(bytes)
      copy.fill(0xff, 20, 60)
      return copy
    }
    expect(failureOf(codecs.decode("gzip", damaged(compress.gzip(page)), 10 * MiB))).toMatchObject({ _tag: "Corrupt" })
    // A gzip stream whose CRC does not match what it holds.
    const gzip = Uint8Array.from(compress.gzip(page))
    gzip[gzip.length - 8] ^= 1
    expect(failureOf(codecs.decode("gzip", gzip, 10 * MiB))).toEqual({ _tag: "Corrupt", detail: "incorrect data check" })
    expect(failureOf(codecs.decode("deflate", damaged(compress.deflate(page)), 10 * MiB))).toMatchObject({ _tag: "Corrupt" })
    // Brotli says only "Decompression failed"; its code says what.
    const br = failureOf(codecs.decode("br", damaged(compress.br(page)), 10 * MiB))
    expect(br).toMatchObject({ _tag: "Corrupt", detail: expect.stringMatching(/^Decompression failed \(ERR_\w+\)$/) })
  })

  it("where the runtime has no node:zlib: asks for nothing, takes decoded bodies as they are, and cannot decode", () => {
    const without = make(undefined, 0)
    expect(without.acceptEncoding).toBe(undefined)
    expect(Either.isRight(without.decode("gzip", page, 10 * MiB))).toBe(true)
    for (const coding of ["gzip", "deflate", "br"] as const) {
      expect(failureOf(without.decode(coding, compress[coding](page), 10 * MiB))).toEqual({ _tag: "Unavailable" })
    }
  })
})

describe("isEncoded", () => {
  /**
   * JSON objects (as every Intercom body is) and HTML pages (as a proxy's error is), some after whitespace or a byte
   * order mark (a proxy that pretty-prints).
   */
  const bodies = fc.tuple(
    fc.oneof(
      fc.dictionary(fc.string(), fc.jsonValue()).map((value) => JSON.stringify(value)),
      fc.dictionary(fc.string(), fc.jsonValue()).map((value) => JSON.stringify(value, null, 2)),
      fc.string().map((text) => `<html><body>${text}</body></html>`),
      fc.string().map((text) => `<!DOCTYPE html>${text}`)
    ),
    fc.constantFrom("", "", "\n", " ", "\r\n\t ", "\uFEFF", "\uFEFF\n")
  ).map(([text, before]) => encoder.encode(before + text))

  /** Streams of every level, window and memory setting. */
  const streams = fc.oneof(
    fc.record({ level: fc.integer({ min: 0, max: 9 }), windowBits: fc.integer({ min: 9, max: 15 }) }).map((options) =>
      ["gzip", (body: Uint8Array) => Zlib.gzipSync(body, options)] as const
    ),
    fc.record({ level: fc.integer({ min: 0, max: 9 }), windowBits: fc.integer({ min: 9, max: 15 }) }).map((options) =>
      ["deflate", (body: Uint8Array) => Zlib.deflateSync(body, options)] as const
    ),
    fc.record({ quality: fc.integer({ min: 0, max: 11 }), lgwin: fc.integer({ min: 10, max: 24 }), text: fc.boolean() })
      .map(({ lgwin, quality, text }) =>
        [
          "br",
          (body: Uint8Array) =>
            Zlib.brotliCompressSync(body, {
              params: {
                [Zlib.constants.BROTLI_PARAM_QUALITY]: quality,
                [Zlib.constants.BROTLI_PARAM_LGWIN]: lgwin,
                [Zlib.constants.BROTLI_PARAM_MODE]: text
                  ? Zlib.constants.BROTLI_MODE_TEXT
                  : Zlib.constants.BROTLI_MODE_GENERIC
              }
            })
        ] as const
      )
  )

  it("never takes a stream of gzip, zlib or br for a decoded body, nor a JSON object or an HTML page for a stream", () => {
    fc.assert(
      fc.property(bodies, streams, (body, [coding, compressor]) =>
        isEncoded(coding, compressor(body)) && !isEncoded(coding, body)
      ),
      { numRuns: 1000 }
    )
  })
})

describe("failureOnTheWay", () => {
  /** zlib's own error for `body`, as fetch puts it under its TypeError("terminated"). */
  const zlibError = (decode: () => unknown) => {
    try {
      decode()
    } catch (error) {
      return error
    }
    throw new Error("decoded")
  }

  it("names the codec's failure where zlib's error is among the causes, and nothing for a connection's failure", () => {
    const gzip = Zlib.gzipSync(JSON.stringify({ users: [] }))
    const corrupt = zlibError(() => Zlib.gunzipSync(Uint8Array.from([0x1f, 0x8b, 8, 0xff, 0xff, 0, 0, 0, 0, 0])))
    const cut = zlibError(() => Zlib.gunzipSync(gzip.subarray(0, gzip.length >> 1)))
    const terminated = (cause: unknown) => new TypeError("terminated", { cause })
    expect(failureOnTheWay({ _tag: "ResponseError", cause: terminated(corrupt) })).toMatchObject({ _tag: "Corrupt" })
    expect(failureOnTheWay(terminated(cut))).toEqual({ _tag: "EndsEarly", detail: "unexpected end of file" })
    expect(failureOnTheWay(terminated(new Error("other side closed")))).toBeUndefined()
    expect(failureOnTheWay("terminated")).toBeUndefined()
  })
})
