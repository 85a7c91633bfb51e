import { Cause, type Clock, Duration, Effect, Exit, Fiber, type Scope } from "effect"

/**
 * Bounds requests in time with one watchdog fiber for the client's life, not a timer fiber per request.
 *
 * `Effect.timeoutFail` forks the request and a timer and, once the request is done, interrupts the timer and waits for
 * it to end: on every page, a fiber started and stopped between a response and the next request. Here each request
 * only registers its fiber and deadline, and the watchdog sleeps towards the earliest deadline it knows. A request that
 * starts while it sleeps has a deadline at least `millis` away, so never one before the watchdog wakes.
 *
 * It sleeps a second at most, so that a client whose scope is never closed (a `ManagedRuntime` not disposed) holds a
 * timer, and so the process, for no longer than that after its last request; while no request runs it waits on no
 * clock at all. Deadlines are read on the clock the client was made with, the watchdog's own.
 */
export interface RequestTimeout {
  /** Runs `self` in a fiber of its own, failing with `onTimeout()` if it takes longer than `millis` (it is interrupted). */
  readonly bound: <A, E, E2>(self: Effect.Effect<A, E>, onTimeout: () => E2) => Effect.Effect<A, E | E2>
}

interface Running {
  readonly fiber: Fiber.RuntimeFiber<unknown, unknown>
  readonly deadline: number
  timedOut: boolean
}

const LONGEST_SLEEP_MILLIS = 1_000

export const make = (millis: number): Effect.Effect<RequestTimeout, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock: Clock.Clock = yield* Effect.clock
    const running = new Set<Running>()
    // Set while the watchdog waits for a request to start.
    let parked: (() => void) | undefined

    const waitForRequest = Effect.async<void>((resume) => {
      if (running.size > 0) return resume(Effect.void)
      parked = () => resume(Effect.void)
      return Effect.sync(() => {
        parked = undefined
      })
    })

    const watch = Effect.gen(function*() {
      const watchdog = yield* Effect.fiberId
      for (;;) {
        if (running.size === 0) yield* waitForRequest
        const now = clock.unsafeCurrentTimeMillis()
        let wakeAt = now + Math.min(millis, LONGEST_SLEEP_MILLIS)
        for (const request of running) {
          if (request.deadline > now) {
            wakeAt = Math.min(wakeAt, request.deadline)
            continue
          }
          running.delete(request)
          request.timedOut = true
          request.fiber.unsafeInterruptAsFork(watchdog)
        }
        if (running.size > 0) yield* clock.sleep(Duration.millis(wakeAt - now))
      }
    })
    yield* Effect.forkScoped(Effect.interruptible(watch))

    const bound: RequestTimeout["bound"] = <A, E, E2>(self: Effect.Effect<A, E>, onTimeout: () => E2) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(restore(self))
          const request: Running = {
            fiber: fiber as Fiber.RuntimeFiber<unknown, unknown>,
            deadline: clock.unsafeCurrentTimeMillis() + millis,
            timedOut: false
          }
          running.add(request)
          const wake = parked
          parked = undefined
          wake?.()
          const exit = yield* restore(Fiber.await(fiber)).pipe(
            Effect.onInterrupt(() => Fiber.interrupt(fiber)),
            Effect.ensuring(Effect.sync(() => running.delete(request)))
          )
          // Interrupted by the watchdog: a request that ended on its own just before keeps its own outcome.
          return yield* request.timedOut && Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)
            ? Effect.fail(onTimeout())
            : exit
        })
      )

    return { bound }
  })
