/**
 * SQLite's passes a chunk a transaction: each next chunk sized by the time the last took, on the Effect `Clock`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, TestClock } from "effect"
import * as ChunkSize from "../src/internal/chunkSize.js"

describe("ChunkSize", () => {
  it.effect("scales the next chunk to the time aimed at, grows it back at most twofold, within its bounds", () =>
    Effect.gen(function*() {
      const sizes = yield* ChunkSize.sizer(10_000)
      expect(sizes.size()).toBe(10_000)
      // 2 s for 10,000 against the 0.5 s aimed at: a quarter.
      sizes.took(Duration.seconds(2))
      expect(sizes.size()).toBe(2_500)
      // Quick: twice the last at most, not what the quick chunk alone would say.
      sizes.took(Duration.millis(50))
      expect(sizes.size()).toBe(5_000)
      // A chunk that took a minute: cut to the fewest, not to 41.
      sizes.took(Duration.minutes(1))
      expect(sizes.size()).toBe(500)
      // A clock that did not move (a test's, or a chunk quicker than its tick): twice, up to the first size and no more.
      for (let i = 0; i < 20; i++) sizes.took(Duration.zero)
      expect(sizes.size()).toBe(10_000)
      sizes.took(Duration.millis(100))
      expect(sizes.size()).toBe(10_000)
    }))

  it.effect("a first chunk smaller than the bounds widens them", () =>
    Effect.gen(function*() {
      const sizes = yield* ChunkSize.sizer(40)
      sizes.took(Duration.minutes(1))
      expect(sizes.size()).toBe(4)
    }))

  it.effect("times the transaction on the Clock, from asking to its end, with the size it was given", () =>
    Effect.gen(function*() {
      const sizes = yield* ChunkSize.sizer(8_000)
      const given: Array<number> = []
      // A transaction that takes 2 s of the TestClock's time: the next gets a quarter of the size.
      yield* ChunkSize.timed(sizes, (size) => Effect.sync(() => given.push(size)).pipe(Effect.zipRight(TestClock.adjust("2 seconds"))))
      yield* ChunkSize.timed(sizes, (size) => Effect.sync(() => given.push(size)))
      yield* ChunkSize.timed(sizes, (size) => Effect.sync(() => given.push(size)))
      yield* ChunkSize.timed(sizes, (size) => Effect.sync(() => given.push(size)))
      expect(given).toEqual([8_000, 2_000, 4_000, 8_000])
    }))

  it.effect("aims at the ChunkTime a caller gives", () =>
    Effect.gen(function*() {
      const sizes = yield* ChunkSize.sizer(10_000).pipe(Effect.provideService(ChunkSize.ChunkTime, Duration.millis(250)))
      sizes.took(Duration.seconds(1))
      expect(sizes.size()).toBe(2_500)
    }))
})
