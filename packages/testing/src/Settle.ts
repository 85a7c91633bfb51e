/**
 * Lets forked fibers run under the TestClock without moving it. Some of what they wait on is the event loop's rather
 * than the clock's (a request sent ahead waits turns for its connection: the core's internal/sendAhead.ts), which no
 * `Effect.yieldNow` gives, so a turn of the event loop passes every tenth yield.
 */
import { Duration, Effect } from "effect"

/** One turn of the event loop. */
export const turn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

const step = (i: number) => i % 10 === 9 ? turn : Effect.yieldNow()

/**
 * Runs the others until `done` holds; dies, naming `what`, if it does not within `within` of real time. Bounded by
 * real time, not by a count of steps: some of what they wait on is the machine's, not the event loop's (a client's
 * layer digests its token on libuv's thread pool), and a loaded machine answers that after thousands of turns.
 */
export const until = <E = never, R = never>(
  what: string,
  done: (() => boolean) | Effect.Effect<boolean, E, R>,
  within: Duration.DurationInput = "10 seconds"
): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    const check = Effect.isEffect(done) ? done : Effect.sync(done)
    const deadline = Date.now() + Duration.toMillis(within)
    for (let i = 0;; i++) {
      if (yield* check) return
      if (i % 10 === 9 && Date.now() > deadline) {
        return yield* Effect.dieMessage(`never reached within ${Duration.format(within)}: ${what}`)
      }
      yield* step(i)
    }
  })

/**
 * Runs the others until `count` has stayed the same through `turns` turns of the event loop, and returns it: what a
 * program does before it waits on something only the test can give.
 */
export const untilStill = (count: () => number, turns = 20, bound = 10_000): Effect.Effect<number> =>
  Effect.gen(function*() {
    let last = count()
    let still = 0
    for (let i = 0; i < bound; i++) {
      yield* step(i)
      const now = count()
      if (now !== last) {
        last = now
        still = 0
      } else if (i % 10 === 9 && ++still === turns) {
        return now
      }
    }
    return yield* Effect.dieMessage(`still changing after ${bound} steps: ${last}`)
  })
