import { Cause, type Clock, Duration, Effect, Exit, Fiber, type FiberId, HashSet, type Scope } from "effect"

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
 * clock at all. Deadlines are read on the clock the client was made with, the watchdog's own, as monotonic time (the
 * system clock stepped by NTP moves no deadline). Once the client's scope is closed, the requests still running fail
 * as timed out, and any sent after that are bounded by `Effect.timeoutFail`.
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
    const now = () => Number(clock.unsafeCurrentTimeNanos() / 1_000_000n)
    const running = new Set<Running>()
    let closed = false
    // Set while the watchdog waits for a request to start.
    let parked: (() => void) | undefined

    const expire = (request: Running, by: FiberId.FiberId) => {
      running.delete(request)
      request.timedOut = true
      request.fiber.unsafeInterruptAsFork(by)
    }

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
        const at = now()
        let wakeAt = at + Math.min(millis, LONGEST_SLEEP_MILLIS)
        for (const request of running) {
          if (request.deadline > at) wakeAt = Math.min(wakeAt, request.deadline)
          else expire(request, watchdog)
        }
        if (running.size > 0) yield* clock.sleep(Duration.millis(wakeAt - at))
      }
    })
    const watchdog = yield* Effect.forkScoped(Effect.interruptible(watch))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const request of running) expire(request, watchdog.id())
      })
    )

    const bound: RequestTimeout["bound"] = <A, E, E2>(self: Effect.Effect<A, E>, onTimeout: () => E2) =>
      closed ? Effect.timeoutFail(self, { duration: millis, onTimeout }) : Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(restore(self))
          const request: Running = {
            fiber: fiber as Fiber.RuntimeFiber<unknown, unknown>,
            deadline: now() + millis,
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
          // Interrupted by the watchdog, even if it failed in an uninterruptible stretch before the interruption landed;
          // a request that ended on its own before it keeps its own outcome.
          if (request.timedOut && Exit.isFailure(exit) && HashSet.size(Cause.interruptors(exit.cause)) > 0) {
            return yield* Effect.fail(onTimeout())
          }
          // As a join would: what the request set in its fiber's refs (log annotations, …) carries on in the caller's.
          yield* fiber.inheritAll
          return yield* exit
        })
      )

    return { bound }
  })
