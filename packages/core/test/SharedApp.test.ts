/**
 * Two access tokens of one app (a token rotated beside the old one, or two apps' tokens installed on one workspace)
 * scrolling at once. Intercom keeps one open scroll per app, whatever the token; this process's lock is keyed by base
 * URL and token and cannot tell that two tokens are one app, so the second scroll opens, meets `scroll_exists`, and
 * waits by its `concurrentScroll` schedule as for any other client's scroll. The simulator in process, under the
 * TestClock; two processes are no different here, since the two tokens never share this process's lock anyway.
 */
import { HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { Settle } from "@intercom-scroll/testing"
import { Chunk, Clock, Duration, Effect, Exit, Fiber, Layer, Option, Redacted, Stream, TestClock } from "effect"
import { IntercomClient, Progress, Scroll, ScrollError } from "../src/index.js"

const A = "tok_one_app_old_0123456789"
const B = "tok_one_app_rotated_0123456789"

/** 1,000 users of one app behind two tokens, each page `latency` on the clock. */
const oneApp = (latency: Duration.Duration, pageSize = 100) =>
  Layer.orDie(Simulator.layerClient({
    pageSize,
    workspaces: [A, B].map((token) => ({ token, seed: 7, users: 1000, faults: { latency } }))
  }))

/** The ids a token's scroll delivers, and the waits it reports, run in a fiber. */
const scrollOf = (token: string, options: Scroll.Options = {}) =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const waits: Array<Progress.ProgressEvent> = []
    const fiber = yield* Scroll.users(options).pipe(
      Stream.map((user) => user.id),
      Stream.runCollect,
      Effect.map(Chunk.toReadonlyArray),
      Effect.provide(Layer.orDie(IntercomClient.layer({ accessToken: Redacted.make(token), baseUrl: "https://api.intercom.io" }))),
      Effect.provideService(HttpClient.HttpClient, http),
      Effect.provideService(Progress.Progress, {
        report: (event) => Effect.sync(() => event._tag === "Waiting" && waits.push(event))
      }),
      Effect.exit,
      Effect.zip(Clock.currentTimeMillis),
      Effect.fork
    )
    return { fiber, waits }
  })

/** Moves the clock a second at a time until every fiber is done; how far it moved. */
const runToEnd = (fibers: ReadonlyArray<Fiber.Fiber<unknown, unknown>>) =>
  Effect.gen(function*() {
    let seconds = 0
    for (const fiber of fibers) {
      while (Option.isNone(yield* Fiber.poll(fiber))) {
        yield* TestClock.adjust("1 second")
        seconds++
      }
    }
    return seconds
  })

/** Until `token`'s scroll has opened: its first page waits out the latency on the clock. */
const opened = (token: string) =>
  Effect.gen(function*() {
    const simulator = yield* Simulator.Simulator
    yield* asked(token)
    while ((yield* simulator.stats).workspaces[token].scrollsOpened === 0) yield* TestClock.adjust("1 second")
  })

/**
 * Until `token`'s first request has reached the simulator, without moving the clock: a client's layer digests its
 * token on libuv's thread pool, and in a full run the clock, moved on meanwhile, ran ahead of a scroll's start (one
 * started ~46 s late gave up only after the scroll it waited for had ended).
 */
const asked = (token: string) =>
  Effect.flatMap(Simulator.Simulator, (simulator) =>
    Settle.until(
      `${token}'s first request`,
      Effect.map(simulator.stats, (stats) => (stats.workspaces[token]?.requests ?? 0) > 0)
    ))

const sorted = (ids: ReadonlyArray<string>) => [...ids].sort()

describe("two tokens of one app scrolling at once", () => {
  it.effect("the second meets scroll_exists, waits as concurrent-scroll, and both deliver every record once", () =>
    Effect.gen(function*() {
      const simulator = yield* Simulator.Simulator
      const first = yield* scrollOf(A)
      yield* opened(A)
      const second = yield* scrollOf(B)
      yield* asked(B)
      yield* runToEnd([first.fiber, second.fiber])
      const [[a, firstEnded], [b, secondEnded]] = [yield* Fiber.join(first.fiber), yield* Fiber.join(second.fiber)]
      const ids = yield* simulator.ids(A, "users")
      for (const exit of [a, b]) {
        expect(Exit.isSuccess(exit)).toBe(true)
        if (Exit.isSuccess(exit)) {
          expect(exit.value).toHaveLength(1000)
          expect(sorted(exit.value)).toEqual(sorted(ids))
        }
      }
      // The first took 55 s (11 pages, the empty one included); the second tried again every 10 s, opened once the
      // first had ended, and took 55 s more.
      expect(firstEnded).toBe(55_000)
      expect(first.waits).toEqual([])
      expect(second.waits.length).toBeGreaterThanOrEqual(3)
      expect(second.waits.every((event) => event._tag === "Waiting" && event.reason === "concurrent-scroll")).toBe(true)
      expect(secondEnded).toBeGreaterThanOrEqual(firstEnded + 55_000)
      const stats = yield* simulator.stats
      expect(stats.workspaces[A]).toMatchObject({ scrollsOpened: 1, errorsByCode: {} })
      expect(stats.workspaces[B].scrollsOpened).toBe(1)
      expect(stats.workspaces[B].errorsByCode.scroll_exists).toBe(second.waits.length)
    }).pipe(Effect.provide(oneApp(Duration.seconds(5)))))

  it.effect("a first scroll longer than the wait (2 minutes by default) fails the second; waitForOtherScroll waits longer", () =>
    Effect.gen(function*() {
      // 101 pages of 2 s: 202 s. The default tries 13 times, 10 s apart, each answer 2 s: about 156 s.
      const first = yield* scrollOf(A)
      yield* opened(A)
      const impatient = yield* scrollOf(B)
      const patient = yield* scrollOf(B, { concurrentScroll: Scroll.waitForOtherScroll("10 minutes") })
      // The patient one waits for the impatient one on this process's lock of the token.
      yield* asked(B)
      yield* runToEnd([first.fiber, impatient.fiber, patient.fiber])
      const [firstExit, firstEnded] = yield* Fiber.join(first.fiber)
      expect(Exit.isSuccess(firstExit) && firstExit.value.length).toBe(1000)
      expect(firstEnded).toBe(202_000)
      const [failed, gaveUp] = yield* Fiber.join(impatient.fiber)
      expect(failed).toEqual(Exit.fail(expect.any(ScrollError.ConcurrentScroll)))
      expect(gaveUp).toBeLessThan(firstEnded)
      const [waited] = yield* Fiber.join(patient.fiber)
      expect(Exit.isSuccess(waited) && waited.value.length).toBe(1000)
    }).pipe(Effect.provide(oneApp(Duration.seconds(2), 10))))
})
