/**
 * When a request goes out, in event-loop turns. Node's HTTP client (undici, under both the platform's undici client and
 * `fetch`) hands a keep-alive socket whose response has just completed to the next request only a full turn later
 * (`setImmediate`, "to make sure that non-spec compliant servers are not closing the connection"), and a request
 * dispatched within that turn goes to another connection, opened for it. A scroll sends each request right after the
 * last response (ahead of its parse, or after a parse that does not yield), so it held two connections where one does,
 * and on a real link the second costs a handshake: TCP's round trip and TLS's, 80 ms or more at 40 ms a round trip.
 *
 * @internal
 */
import { Effect, type Fiber, Option } from "effect"

/** `run` on the event loop's next turn; `setTimeout` where there is no `setImmediate`. Returns the cancellation. */
const later = (run: () => void): () => void => {
  if (typeof setImmediate === "function") {
    const handle = setImmediate(run)
    return () => clearImmediate(handle)
  }
  const handle = setTimeout(run, 0)
  return () => clearTimeout(handle)
}

/** Resumes after `turns` turns of the event loop. */
const afterTurns = (turns: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    let cancel = () => {}
    const turn = (left: number) => {
      cancel = later(() => left === 1 ? resume(Effect.void) : turn(left - 1))
    }
    turn(turns)
    return Effect.sync(() => cancel())
  })

/**
 * Before a request is handed to the transport: the next turn, by which the connection of the response just read is
 * free again. Only where there is `setImmediate` (Node, Bun, Deno): elsewhere a turn is a timer of 1–4 ms, and no
 * transport there is known to hold a connection back.
 */
export const beforeRequest: Effect.Effect<void> = typeof setImmediate === "function" ? afterTurns(1) : Effect.void

/**
 * Sends a request ahead: `request` in a child of the current fiber (so it cannot outlive the scroll's), resuming the
 * caller once the request is written, so that the parse that follows does not hold the thread before it is. Three
 * turns: the request waits one before it is handed over (`beforeRequest`), and undici lets one more pass before it
 * writes to a keep-alive socket that was idle (to see first whether the server closed it), queued behind the second.
 *
 * Its spans go under the parent of the current span (the scroll's, above the page being parsed): the page's span ends
 * before the request does, and the request is the next page's.
 */
export const forkAhead = <A, E>(request: Effect.Effect<A, E>): Effect.Effect<Fiber.RuntimeFiber<A, E>> =>
  Effect.flatMap(Effect.option(Effect.currentSpan), (current) => {
    const above = Option.flatMap(current, (span) => span.parent)
    const traced = Option.isSome(above) ? Effect.withParentSpan(request, above.value) : request
    return Effect.zipLeft(Effect.fork(traced), afterTurns(3))
  })
