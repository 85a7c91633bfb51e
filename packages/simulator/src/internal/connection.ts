/**
 * How a page's transport faults reach the client. Cutting a body or dropping a connection depends on what carries
 * the response: a Node socket, or the in-process client.
 *
 * @internal
 */
import type { HttpServerRequest } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Context, Effect, Schema, Stream } from "effect"

/** The failure of a body stream that the simulator cuts short on purpose. */
export class BodyCut extends Schema.TaggedError<BodyCut>()("BodyCut", {}) {
  override get message(): string {
    return "the simulator cut the response body short"
  }
}

export interface Connection {
  /** Destroys the connection before any response is sent. */
  readonly drop: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<void>
  /** A body that delivers `head` and then breaks off. */
  readonly cut: (request: HttpServerRequest.HttpServerRequest, head: Uint8Array) => Stream.Stream<Uint8Array, BodyCut>
}

const cutAfter = (head: Uint8Array): Stream.Stream<Uint8Array, BodyCut> =>
  Stream.concat(Stream.make(head), Stream.fail(new BodyCut()))

/** Hosts other than ours can only end a body early: a dropped connection becomes a body cut before its first byte. */
const portable: Connection = {
  drop: () => Effect.void,
  cut: (_request, head) => cutAfter(head)
}

export class CurrentConnection extends Context.Reference<CurrentConnection>()(
  "@intercom-scroll/simulator/internal/CurrentConnection",
  { defaultValue: (): Connection => portable }
) {}

/**
 * On a Node server the socket itself is destroyed: a failing body stream would only end the response, and a
 * keep-alive client would then wait for the missing bytes.
 */
export const node: Connection = {
  drop: (request) => Effect.sync(() => NodeHttpServerRequest.toIncomingMessage(request).socket.destroy()),
  cut: (request, head) =>
    Stream.fromEffect(Effect.async<never, BodyCut>((resume) => {
      const response = NodeHttpServerRequest.toServerResponse(request)
      // Destroy once the head has been flushed, so that the client receives it before the connection closes.
      response.write(head, () => {
        response.destroy()
        resume(Effect.fail(new BodyCut()))
      })
    }))
}

/** For the in-process client: a drop is remembered, and the client fails the request with a transport error. */
export const inProcess = (): { readonly connection: Connection; readonly dropped: () => boolean } => {
  let dropped = false
  return {
    connection: { ...portable, drop: () => Effect.sync(() => void (dropped = true)) },
    dropped: () => dropped
  }
}
