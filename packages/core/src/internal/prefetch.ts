import { Cause, Effect, Exit, type Fiber, Option, Stream } from "effect"

/**
 * Runs `self` ahead of its consumer in a fiber of its own: up to `capacity` elements wait for the consumer, and the
 * producer may hold one more while it waits for room (as `Stream.buffer` does). `self` is given `hasRoom`: whether an
 * element produced now would go straight to the consumer's side, leaving the producer's hand free for the next.
 *
 * Elements wait in a plain array and the two fibers only wake each other, where `Stream.buffer` passes them through a
 * `Queue` and `Deferred`s. Those are linked: once one is promoted to the old generation while a page sits in it, it
 * keeps the pages after it alive through every minor GC until the next full one. At full speed that cost a scroll
 * more garbage-collection time than all the rest it does to a page.
 */
export const prefetch = <A, E, R>(
  self: (hasRoom: () => boolean) => Stream.Stream<A, E, R>,
  capacity: number
): Stream.Stream<A, E, R> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const ready: Array<A> = []
    /**
     * How many elements of `ready` a sleeping consumer was woken for: they are its own, though it has not run yet to
     * take them. The producer goes on without yielding after a put, and if it asked for room before the consumer ran,
     * it would find none, and a scroll would send its next request only after the parse (a response that came during
     * the parse of the page before, say).
     */
    let handed = 0
    let end: Exit.Exit<void, E> | undefined
    const consumer = waiter()
    const producer = waiter()

    const hasRoom = () => ready.length - handed < capacity

    const put = (element: A): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (!hasRoom()) return Effect.zipRight(producer.sleep, put(element))
        ready.push(element)
        if (consumer.wake()) handed++
        return Effect.void
      })

    yield* Stream.runForEach(self(hasRoom), put).pipe(
      Effect.exit,
      Effect.flatMap((exit) =>
        Effect.sync(() => {
          end = exit
          consumer.wake()
        })
      ),
      Effect.forkScoped
    )

    const take: Effect.Effect<A, Option.Option<E>> = Effect.suspend(() => {
      if (ready.length > 0) {
        const element = ready.shift() as A
        if (handed > 0) handed--
        producer.wake()
        return Effect.succeed(element)
      }
      if (end === undefined) return Effect.zipRight(consumer.sleep, take)
      return Exit.isSuccess(end) ? Effect.fail(Option.none()) : Effect.failCause(Cause.map(end.cause, Option.some))
    })
    return Stream.repeatEffectOption(take)
  }))

/**
 * One fiber waiting for the other: `sleep` suspends until `wake` is called; an interruption withdraws it. A `wake` with
 * nobody asleep is kept for the next `sleep`, which then returns at once: the runtime may suspend a fiber between its
 * look at the buffer and its `sleep`, and the other fiber's `wake` in that gap must not be lost. A kept wake that turns
 * out to be stale costs one more look.
 */
const waiter = () => {
  let waker: (() => void) | undefined
  let pending = false
  return {
    sleep: Effect.async<void>((resume) => {
      if (pending) {
        pending = false
        return resume(Effect.void)
      }
      waker = () => resume(Effect.void)
      return Effect.sync(() => {
        waker = undefined
      })
    }),
    /** Whether a fiber was asleep. */
    wake: (): boolean => {
      const waiting = waker
      waker = undefined
      if (waiting === undefined) {
        pending = true
        return false
      }
      waiting()
      return true
    }
  }
}

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
