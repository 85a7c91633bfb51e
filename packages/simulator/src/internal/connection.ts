/**
 * How a response reaches the client, which depends on what carries it: a Node socket, or the in-process client.
 * Each cuts a body, drops a connection, paces a body at a bandwidth and compresses in its own way.
 *
 * @internal
 */
import type { HttpServerRequest } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Context, Effect, Schema, Stream } from "effect"
import * as ContentCoding from "./contentCoding.js"
import * as Link from "./link.js"

/** The failure of a body stream that the simulator cuts short on purpose. */
class BodyCut extends Schema.TaggedError<BodyCut>()("BodyCut", {}) {
  override get message(): string {
    return "the simulator cut the response body short"
  }
}

export interface Connection {
  /** Whether `request` is the first on its connection (always false where there are no connections). */
  readonly opens: (request: HttpServerRequest.HttpServerRequest) => boolean
  /** Destroys the connection before any response is sent. */
  readonly drop: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<void>
  /** A body that delivers `head` and then breaks off. */
  readonly cut: (
    request: HttpServerRequest.HttpServerRequest,
    head: Stream.Stream<Uint8Array>
  ) => Stream.Stream<Uint8Array, BodyCut>
  /** `bytes` as a body that takes its time over `link`. */
  readonly transmit: (
    request: HttpServerRequest.HttpServerRequest,
    link: Link.Link,
    bytes: Uint8Array
  ) => Effect.Effect<Stream.Stream<Uint8Array>>
  readonly compress: (coding: ContentCoding.ContentCoding, body: Uint8Array) => Effect.Effect<Uint8Array>
}

/** Hosts other than ours can only end a body early: a dropped connection becomes a body cut before its first byte. */
const portable: Connection = {
  opens: () => false,
  drop: () => Effect.void,
  cut: (_request, head) => Stream.concat(head, Stream.fail(new BodyCut())),
  transmit: (_request, link, bytes) => Effect.succeed(Link.paced(link, bytes)),
  compress: ContentCoding.compressOffThread
}

export class CurrentConnection extends Context.Reference<CurrentConnection>()(
  "@intercom-scroll/simulator/internal/CurrentConnection",
  { defaultValue: (): Connection => portable }
) {}

/**
 * On a Node server the socket itself is destroyed: a failing body stream would only end the response, and a
 * keep-alive client would then wait for the missing bytes. Its sockets are told apart, so that a connection's first
 * request is known.
 */
export const node = (): Connection => {
  const seen = new WeakSet<object>()
  return {
    opens: (request) => {
      const socket = NodeHttpServerRequest.toIncomingMessage(request).socket
      if (seen.has(socket)) return false
      seen.add(socket)
      return true
    },
    ...nodeCarriage
  }
}

const nodeCarriage: Omit<Connection, "opens"> = {
  drop: (request) => Effect.sync(() => NodeHttpServerRequest.toIncomingMessage(request).socket.destroy()),
  cut: (request, head) => {
    const response = NodeHttpServerRequest.toServerResponse(request)
    // Each piece is written here and flushed before the next, so that the client has the head before the socket
    // closes.
    const written = Stream.mapEffect(head, (piece) =>
      Effect.async<void>((resume) => {
        response.write(piece, () => resume(Effect.void))
      }))
    const broken = Effect.zipRight(Effect.sync(() => response.destroy()), Effect.fail(new BodyCut()))
    return Stream.concat(Stream.drain(written), Stream.fromEffect(broken))
  },
  // Node holds the headers back until the first write: they go at once, as they would over a slow link, and the
  // body follows at its pace.
  transmit: (request, link, bytes) =>
    Effect.succeed(Stream.concat(
      Stream.execute(Effect.sync(() => NodeHttpServerRequest.toServerResponse(request).flushHeaders())),
      Link.paced(link, bytes)
    )),
  compress: ContentCoding.compressOffThread
}

/**
 * For the in-process client, everything happens in the caller's fiber, so that a TestClock drives it: the body is
 * compressed in place and handed over whole once its time on the link has passed. A drop is remembered, and the
 * client fails the request with a transport error.
 */
export const inProcess = (): { readonly connection: Connection; readonly dropped: () => boolean } => {
  let dropped = false
  return {
    connection: {
      ...portable,
      drop: () => Effect.sync(() => void (dropped = true)),
      transmit: (_request, link, bytes) =>
        Effect.as(link.clock.sleep(Link.transmissionTime(link, bytes.length)), Stream.make(bytes)),
      compress: ContentCoding.compressNow
    },
    dropped: () => dropped
  }
}
