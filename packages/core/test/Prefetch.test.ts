import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Deferred, Effect, Exit, Fiber, Option, Stream } from "effect"
import * as fc from "fast-check"
import { prefetch } from "../src/internal/prefetch.js"

/** A source that counts what it has produced, so a test can see how far ahead of the consumer it runs. */
const counted = <A>(elements: ReadonlyArray<A>) => {
  const produced = { count: 0, finalized: false }
  const stream = Stream.fromIterable(elements).pipe(
    Stream.tap(() => Effect.sync(() => produced.count++)),
    Stream.ensuring(Effect.sync(() => produced.finalized = true))
  )
  return { stream, produced }
}

/** Lets the other fiber run until `done` holds (or a few hundred turns have passed). */
const settle = (done: () => boolean) =>
  Effect.gen(function*() {
    for (let turn = 0; turn < 500 && !done(); turn++) yield* Effect.yieldNow()
  })

describe("prefetch", () => {
  it.effect("emits every element once, in order, then ends", () =>
    Effect.promise(() =>
      fc.assert(fc.asyncProperty(
        fc.array(fc.option(fc.integer(), { nil: undefined }), { maxLength: 40 }),
        fc.integer({ min: 1, max: 4 }),
        async (elements, capacity) => {
          const out = await Effect.runPromise(Stream.runCollect(prefetch(() => Stream.fromIterable(elements), capacity)))
          expect(Chunk.toReadonlyArray(out)).toEqual(elements)
        }
      ))
    ))

  it.effect("fails after the elements produced before the failure", () =>
    Effect.gen(function*() {
      const source = Stream.concat(Stream.make(1, 2, 3), Stream.fail("boom"))
      const seen: Array<number> = []
      const exit = yield* prefetch(() => source, 1).pipe(Stream.runForEach((n) => Effect.sync(() => seen.push(n))), Effect.exit)
      expect(seen).toEqual([1, 2, 3])
      expect(exit).toEqual(Exit.fail("boom"))
    }))

  it.effect("passes a defect on as a defect", () =>
    Effect.gen(function*() {
      const exit = yield* Stream.runDrain(prefetch(() => Stream.dieMessage("broken"), 2)).pipe(Effect.exit)
      expect(Exit.isFailure(exit) && Option.isSome(Cause.dieOption(exit.cause))).toBe(true)
    }))

  it.effect("runs at most `capacity` elements ahead of a stalled consumer, plus the one in hand", () =>
    Effect.gen(function*() {
      for (const capacity of [1, 3]) {
        const { produced, stream } = counted(Array.from({ length: 20 }, (_, i) => i))
        const gate = yield* Deferred.make<void>()
        const fiber = yield* prefetch(() => stream, capacity).pipe(
          Stream.mapEffect((n) => n === 0 ? Deferred.await(gate) : Effect.void),
          Stream.runDrain,
          Effect.fork
        )
        yield* settle(() => produced.count > capacity + 2)
        // The consumer holds element 0; `capacity` wait for it; the producer holds one more.
        expect(produced.count).toBe(1 + capacity + 1)
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(fiber)
        expect(produced.count).toBe(20)
      }
    }))

  it.effect("loses no wake-up when a fiber is suspended between finding nothing to do and going to sleep", () =>
    Effect.gen(function*() {
      // The runtime suspends a fiber every so many operations, wherever it is: between a look at the buffer and the
      // sleep that follows it too, while the other fiber wakes it. Yielding often, with uneven work on each side,
      // puts a wake-up in that gap many times over.
      for (const capacity of [1, 2]) {
        const elements = Array.from({ length: 2000 }, (_, i) => i)
        const fiber = yield* prefetch(() => Stream.fromIterable(elements).pipe(Stream.tap(() => Effect.yieldNow())), capacity)
          .pipe(
            Stream.mapEffect((n) => Effect.as(Effect.forEach(Array.from({ length: n % 37 }), () => Effect.void), n)),
            Stream.runCollect,
            Effect.withMaxOpsBeforeYield(64),
            Effect.fork
          )
        // Two fibers asleep, each waiting for the other, would never end: stop looking after plenty of turns.
        for (let turn = 0; turn < 50_000 && fiber.unsafePoll() === null; turn++) yield* Effect.yieldNow()
        const exit = fiber.unsafePoll()
        expect(exit !== null && Exit.isSuccess(exit) ? Chunk.toReadonlyArray(exit.value) : exit).toEqual(elements)
      }
    }))

  it.effect("stops the producer when the consumer stops", () =>
    Effect.gen(function*() {
      const { produced, stream } = counted(Array.from({ length: 1000 }, (_, i) => i))
      const taken = yield* Stream.runCollect(Stream.take(prefetch(() => stream, 2), 3))
      expect(Chunk.toReadonlyArray(taken)).toEqual([0, 1, 2])
      expect(produced.finalized).toBe(true)
      expect(produced.count).toBeLessThan(1000)
    }))

  it.effect("tells the producer whether what it makes now goes straight to the consumer's side", () =>
    Effect.gen(function*() {
      const room: Array<boolean> = []
      const gate = yield* Deferred.make<void>()
      const source = (hasRoom: () => boolean) =>
        Stream.fromIterable([1, 2, 3, 4, 5]).pipe(Stream.tap(() => Effect.sync(() => room.push(hasRoom()))))
      const fiber = yield* prefetch(source, 2).pipe(Stream.runForEach(() => Deferred.await(gate)), Effect.fork)
      yield* settle(() => room.length === 4)
      // The consumer holds the first and two wait for it; the producer holds the fourth, for which there was no room.
      // The third had room: the first was the consumer's as soon as it was put, before the consumer ran to take it.
      expect(room).toEqual([true, true, true, false])
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(fiber)
      expect(room).toHaveLength(5)
    }))
})
