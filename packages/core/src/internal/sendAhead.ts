import { Effect, type Fiber } from "effect"

/**
 * Sends a request ahead: `request` in a child of the current fiber (so it cannot outlive the scroll's), resuming the
 * caller once the request is written, so that the parse that follows does not hold the thread before it is.
 */
export const forkAhead = <A, E>(request: Effect.Effect<A, E>): Effect.Effect<Fiber.RuntimeFiber<A, E>> =>
  Effect.zipLeft(Effect.fork(request), afterTwoTurns)

/**
 * Resumes once the event loop has turned twice, by which time a request sent just before has been written. Twice,
 * because undici lets one turn pass before it writes to a keep-alive socket that was idle (to see first whether the
 * server closed it), and that turn is queued behind the first. `setTimeout` where there is no `setImmediate`.
 */
const afterTwoTurns: Effect.Effect<void> = Effect.async<void>((resume) => {
  const later = (run: () => void): () => void => {
    if (typeof setImmediate === "function") {
      const handle = setImmediate(run)
      return () => clearImmediate(handle)
    }
    const handle = setTimeout(run, 0)
    return () => clearTimeout(handle)
  }
  let cancel = later(() => {
    cancel = later(() => resume(Effect.void))
  })
  return Effect.sync(() => cancel())
})
