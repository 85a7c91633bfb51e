import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, TestClock } from "effect"
import * as RequestTimeout from "../src/internal/requestTimeout.js"

const timedOut = () => "timed out" as const

describe("RequestTimeout.bound", () => {
  it.scoped("gives a request's own outcome when it ends before its deadline", () =>
    Effect.gen(function*() {
      const timeout = yield* RequestTimeout.make(5_000)
      const answer = yield* Effect.fork(timeout.bound(Effect.as(Effect.sleep("4 seconds"), "page"), timedOut))
      const failure = yield* Effect.fork(Effect.either(timeout.bound(Effect.zipRight(Effect.sleep("4 seconds"), Effect.fail("reset")), timedOut)))
      yield* TestClock.adjust("4 seconds")
      expect(yield* Fiber.join(answer)).toBe("page")
      expect(yield* Fiber.join(failure)).toEqual(Either.left("reset"))
    }))

  it.scoped("is a timeout when the request fails in an uninterruptible stretch that outlasts its deadline, as timeoutFail is", () =>
    Effect.gen(function*() {
      const timeout = yield* RequestTimeout.make(5_000)
      const late = Effect.uninterruptible(Effect.zipRight(Effect.sleep("10 seconds"), Effect.fail("reset")))
      const fiber = yield* Effect.fork(Effect.either(timeout.bound(late, timedOut)))
      yield* TestClock.adjust("10 seconds")
      // The failure and the watchdog's interruption both end the request: the deadline passed first.
      expect(yield* Fiber.join(fiber)).toEqual(Either.left("timed out"))
    }))
})
