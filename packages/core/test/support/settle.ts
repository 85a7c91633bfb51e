/**
 * Lets forked fibers run without moving the TestClock.
 */
import { Effect } from "effect"

/** One turn of the event loop: what runs outside the fibers (a request's `setImmediate` before it is sent) runs then. */
const eventLoopTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/**
 * Lets forked fibers run until `done` holds, within a bound, without moving the clock: 10,000 turns of the fibers'
 * scheduler, every 100th a turn of the event loop. By the scheduler's turns alone the loop saw ~5 of the event loop's,
 * when the runtime fell back on a timer, and each request waits for one before it is sent: a test that waited on
 * a few requests passed or failed with the machine's load.
 */
export const settle = (done: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 10_000 && !done(); i++) yield* (i % 100 === 99 ? eventLoopTurn : Effect.yieldNow())
  })
