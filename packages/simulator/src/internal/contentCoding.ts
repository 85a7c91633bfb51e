/**
 * Response compression: which content coding a request's `Accept-Encoding` asks for (RFC 9110 §12.5.3), and the
 * compression itself (node:zlib).
 *
 * @internal
 */
import { Effect } from "effect"
import * as Zlib from "node:zlib"

/** The content codings the simulator can send. */
export type ContentCoding = "br" | "gzip" | "deflate"

/**
 * The order in which codings the client weighs equally are chosen: br is the smallest at the speed of gzip's default
 * level (at quality 4, as CDNs compress on the fly), and deflate is the one clients get wrong most often (zlib-wrapped
 * or raw), so it comes last.
 */
const preference: ReadonlyArray<ContentCoding> = ["br", "gzip", "deflate"]

/** `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` */
const qvalue = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/

/** The weights an `Accept-Encoding` value gives, by lower-case coding; elements of a malformed weight are left out. */
const weights = (header: string): Map<string, number> => {
  const out = new Map<string, number>()
  for (const element of header.split(",")) {
    const [name, ...parameters] = element.split(";")
    const coding = name.trim().toLowerCase()
    if (coding === "") continue
    let weight: number | undefined = 1
    for (const parameter of parameters) {
      const [key, value = ""] = parameter.split("=").map((part) => part.trim())
      if (key.toLowerCase() === "q") weight = qvalue.test(value) ? Number(value) : undefined
    }
    // "x-gzip" is an alias of gzip (RFC 9110 §8.4.1.3).
    if (weight !== undefined) out.set(coding === "x-gzip" ? "gzip" : coding, weight)
  }
  return out
}

/**
 * The coding to answer a request with, or undefined for none (identity).
 *
 * Without the header a client has said nothing, and servers do not compress for it. Otherwise the acceptable coding
 * of the highest weight wins, ties going by `preference`; `*` weighs every coding not named. Identity wins only when
 * the header weighs it (by name or by `*`) above every coding we have: a header that names codings and not identity
 * asks for compression, whatever their weights (as the `negotiator` package behind Express reads it). When nothing
 * offered is acceptable the answer is uncompressed, as most servers do, rather than a 406.
 */
export const negotiate = (header: string | undefined): ContentCoding | undefined => {
  if (header === undefined) return undefined
  const weighed = weights(header)
  const any = weighed.get("*")
  let chosen: ContentCoding | undefined = undefined
  let best = 0
  for (const coding of preference) {
    const weight = weighed.get(coding) ?? any ?? 0
    if (weight > best) {
      chosen = coding
      best = weight
    }
  }
  const identity = weighed.get("identity") ?? any ?? 0
  return chosen !== undefined && best >= identity ? chosen : undefined
}

const brotliParameters = (size: number): Zlib.BrotliOptions => ({
  params: {
    [Zlib.constants.BROTLI_PARAM_QUALITY]: 4,
    [Zlib.constants.BROTLI_PARAM_MODE]: Zlib.constants.BROTLI_MODE_TEXT,
    [Zlib.constants.BROTLI_PARAM_SIZE_HINT]: size
  }
})

type Done = (error: Error | null, result: Buffer) => void

/**
 * Each coding in this fiber and on libuv's thread pool. gzip and deflate at zlib's default level (6), the one most
 * servers use; HTTP's "deflate" is the zlib format (RFC 1950), which is what zlib's deflate writes.
 */
const codecs: Record<ContentCoding, {
  readonly now: (body: Uint8Array) => Buffer
  readonly offThread: (body: Uint8Array, done: Done) => void
}> = {
  br: {
    now: (body) => Zlib.brotliCompressSync(body, brotliParameters(body.length)),
    offThread: (body, done) => Zlib.brotliCompress(body, brotliParameters(body.length), done)
  },
  gzip: { now: (body) => Zlib.gzipSync(body), offThread: (body, done) => Zlib.gzip(body, done) },
  deflate: { now: (body) => Zlib.deflateSync(body), offThread: (body, done) => Zlib.deflate(body, done) }
}

/** `body` compressed with `coding`, in this fiber: nothing else happens meanwhile (what a TestClock needs). */
export const compressNow = (coding: ContentCoding, body: Uint8Array): Effect.Effect<Uint8Array> =>
  Effect.sync(() => codecs[coding].now(body))

/** `body` compressed with `coding` on libuv's thread pool, so that a server answers other requests meanwhile. */
export const compressOffThread = (coding: ContentCoding, body: Uint8Array): Effect.Effect<Uint8Array> =>
  Effect.async<Uint8Array>((resume) =>
    codecs[coding].offThread(body, (error, result) =>
      resume(error === null ? Effect.succeed(result) : Effect.die(error))
    )
  )
