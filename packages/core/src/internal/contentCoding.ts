/**
 * Response compression: the codings the client asks for, and the decoding of a body that comes back in one of them,
 * bounded by the client's size limit.
 *
 * The codecs are node:zlib's, reached through `process.getBuiltinModule` (Node ≥ 20.16, Deno, Bun), so that the core
 * still loads where there is no node:zlib (a browser, a worker, an older Node). There the client asks for nothing, and
 * a body that arrives compressed anyway can be read only if the transport decoded it (as fetch does).
 *
 * A body is decoded in one synchronous call once all of it is in, not chunk by chunk as it arrives. node:zlib's
 * streaming decoders run on libuv's thread pool, and an exchange that waits on another thread lets a TestClock run on
 * meanwhile: under the in-process simulator, scroll_params would expire and requests time out while a page decodes.
 * The one call is also the cheaper: a page of 100 users (~16 KB of gzip or br, ~160 KB of JSON) decodes in 0.2–0.3 ms,
 * where a stream took 1.2–1.7 ms from its first write to its end.
 */
import { Either } from "effect"
import type * as Zlib from "node:zlib"

/** A content coding the client can ask for. HTTP's "deflate" is the zlib format (RFC 9110 §8.4.1.2). */
export type Coding = "gzip" | "deflate" | "br"

/** A `Content-Encoding` other than none or a single coding the client asks for. */
export interface NotAskedFor {
  readonly _tag: "NotAskedFor"
}

/** Why a body cannot be read in the coding its `Content-Encoding` names. */
export type DecodeFailure =
  | NotAskedFor
  /** Nothing in this runtime decodes it. */
  | { readonly _tag: "Unavailable" }
  /** It decodes to more than the limit; decoding stopped within a chunk past it. `received`: its size as sent. */
  | { readonly _tag: "TooLarge"; readonly received: number }
  /** The coding's stream stops before its end: the body was cut short. */
  | { readonly _tag: "EndsEarly"; readonly detail: string }
  /** The bytes are not a stream of the coding. */
  | { readonly _tag: "Corrupt"; readonly detail: string }

export interface Codecs {
  /** The `Accept-Encoding` the client sends, or undefined when it can decode nothing. */
  readonly acceptEncoding: string | undefined
  /**
   * The body of a response whose `Content-Encoding` is `coding`, decoded, or as it is when the transport has decoded
   * it already (`isEncoded`).
   */
  readonly decode: (coding: Coding, body: Uint8Array, maxBytes: number) => Either.Either<Uint8Array, DecodeFailure>
}

/**
 * What a `Content-Encoding` header names: undefined for none (empty, or identity), a coding the client asks for, or
 * anything else (a coding not asked for, or several in a row).
 */
export const parse = (header: string): Coding | NotAskedFor | undefined => {
  const codings = header.split(",").map((coding) => coding.trim().toLowerCase()).filter((coding) =>
    coding !== "" && coding !== "identity"
  )
  if (codings.length === 0) return undefined
  const [coding] = codings
  if (codings.length === 1) {
    if (coding === "gzip" || coding === "x-gzip") return "gzip"
    if (coding === "deflate" || coding === "br") return coding
  }
  return { _tag: "NotAskedFor" }
}

const OPEN_BRACE = 0x7b
const LESS_THAN = 0x3c

/** A zlib stream's first two bytes: method 8 (deflate), a window of at most 32 KiB, and the check bits. */
const isZlibHeader = (body: Uint8Array) =>
  body.length >= 2 && (body[0] & 0x0f) === 8 && body[0] >> 4 <= 7 && ((body[0] << 8) | body[1]) % 31 === 0

/**
 * Whether `body` is a stream of `coding`, or was decoded already on the way (fetch decodes gzip, deflate and br itself
 * and leaves `Content-Encoding` in place, in Node, Deno and browsers alike). Never both:
 * - a gzip stream begins 1f 8b;
 * - deflate is taken as zlib when it begins with a zlib header; some servers send raw deflate (no header), which is
 *   taken as such, as browsers and fetch do, unless the body begins as JSON or HTML does;
 * - no brotli stream begins with `{` or `<` (RFC 7932 §9.2: the first would close the stream with bits that must be 0,
 *   the second sets a reserved bit), and every body Intercom sends begins with `{`; a proxy's error page with `<`.
 *   JSON may come after whitespace or a byte order mark (a proxy that pretty-prints), which are looked past: a
 *   compressed body that begins with them and then `{` or `<` is not one a server makes.
 */
export const isEncoded = (coding: Coding, body: Uint8Array): boolean => {
  switch (coding) {
    case "gzip":
      return body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b
    case "deflate":
    case "br": {
      const first = firstAfterWhitespace(body)
      return first !== undefined && first !== OPEN_BRACE && first !== LESS_THAN
    }
  }
}

/** JSON's whitespace (RFC 8259 §2), and UTF-8's byte order mark. */
const isWhitespace = (byte: number) => byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d
const BYTE_ORDER_MARK = [0xef, 0xbb, 0xbf] as const

/** The body's first byte past a byte order mark and whitespace; undefined when there is none. */
const firstAfterWhitespace = (body: Uint8Array): number | undefined => {
  let index = body[0] === BYTE_ORDER_MARK[0] && body[1] === BYTE_ORDER_MARK[1] && body[2] === BYTE_ORDER_MARK[2] ? 3 : 0
  while (index < body.length && isWhitespace(body[index])) index++
  return index < body.length ? body[index] : undefined
}

/** Output chunks of 64 KiB: a page of 100 users takes 3, and decoding stops at most one past the limit. */
const chunkSize = 64 * 1024

type SyncDecoder = (body: Uint8Array, options: { readonly chunkSize: number; readonly maxOutputLength: number }) => Buffer

/** zlib's codes for input that ends before the stream does, and for output past `maxOutputLength`. */
const unexpectedEnd = "Z_BUF_ERROR"
const bufferTooLarge = "ERR_BUFFER_TOO_LARGE"

/** The bytes did not decode: input ending before the stream does, or anything else the codec refused. */
type StreamFailure = Extract<DecodeFailure, { readonly _tag: "EndsEarly" | "Corrupt" }>

const streamFailure = (error: unknown): StreamFailure => {
  const { code, message } = error as { readonly code?: unknown; readonly message?: unknown }
  const words = typeof message === "string" ? message : String(error)
  if (code === unexpectedEnd) return { _tag: "EndsEarly", detail: words }
  // Brotli's message is always "Decompression failed"; its code says what failed (ERR__ERROR_FORMAT_PADDING_2, …).
  return { _tag: "Corrupt", detail: typeof code === "string" && code.startsWith("ERR_") ? `${words} (${code})` : words }
}

/** zlib's codes (Z_DATA_ERROR, …) and brotli's (ERR__ERROR_FORMAT_…), as node:zlib's errors carry them. */
const isCodecCode = (code: unknown): boolean => typeof code === "string" && /^(Z_|ERR__)/.test(code)

/**
 * How a body failed to decode on the way, when the transport decodes it itself: fetch fails the read with a
 * `TypeError("terminated")` whose cause is node:zlib's error. Undefined when no codec's error is in the cause chain
 * (the connection failed).
 */
export const failureOnTheWay = (error: unknown): StreamFailure | undefined => {
  let cause = error
  // A few links: the platform's ResponseError, fetch's TypeError, zlib's error.
  for (let depth = 0; depth < 4 && typeof cause === "object" && cause !== null; depth++) {
    if (isCodecCode((cause as { readonly code?: unknown }).code)) return streamFailure(cause)
    cause = (cause as { readonly cause?: unknown }).cause
  }
  return undefined
}

/**
 * The codecs of a runtime with `zlib` (node:zlib), or of one without. `maxLength` is the largest Buffer the runtime
 * makes (node:buffer's `constants.MAX_LENGTH`), which caps zlib's output limit.
 */
export const make = (zlib: typeof Zlib | undefined, maxLength: number): Codecs => {
  if (zlib === undefined) {
    return {
      acceptEncoding: undefined,
      decode: (coding, body) => isEncoded(coding, body) ? Either.left({ _tag: "Unavailable" }) : Either.right(body)
    }
  }
  const decoders: { readonly [C in Coding]: (body: Uint8Array) => SyncDecoder } = {
    gzip: () => zlib.gunzipSync,
    deflate: (body) => isZlibHeader(body) ? zlib.inflateSync : zlib.inflateRawSync,
    br: () => zlib.brotliDecompressSync
  }
  return {
    acceptEncoding: "gzip, deflate, br",
    decode: (coding, body, maxBytes) => {
      if (!isEncoded(coding, body)) return Either.right(body)
      // zlib checks the limit after each chunk it writes and stops there; it takes 1 to its largest Buffer only.
      const maxOutputLength = Math.min(Math.max(1, maxBytes), maxLength)
      try {
        const decoded = decoders[coding](body)(body, { chunkSize, maxOutputLength })
        return decoded.length > maxBytes ? Either.left({ _tag: "TooLarge", received: body.length }) : Either.right(decoded)
      } catch (error) {
        return Either.left(
          (error as { readonly code?: unknown }).code === bufferTooLarge
            ? { _tag: "TooLarge", received: body.length }
            : streamFailure(error)
        )
      }
    }
  }
}

/** `process.getBuiltinModule` where the runtime has it: not in a browser or a worker, nor in Node before 20.16. */
const node = (globalThis as { readonly process?: Partial<Pick<NodeJS.Process, "getBuiltinModule">> }).process

/** This runtime's codecs. */
export const codecs: Codecs = node?.getBuiltinModule === undefined
  ? make(undefined, 0)
  : make(node.getBuiltinModule("node:zlib"), node.getBuiltinModule("node:buffer").constants.MAX_LENGTH)
