/**
 * The runner's slots: one waiter woken per freed slot, in arrival order, and no slot lost to an interrupted wait.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Scheduler } from "effect"
import * as Slots from "../src/internal/slots.js"

/** The default scheduler, counting the tasks handed to it: each is a fiber resumed. */
class CountingScheduler implements Scheduler.Scheduler {
  tasks = 0
  scheduleTask(task: Scheduler.Task, priority: number) {
    this.tasks++
    Scheduler.defaultScheduler.scheduleTask(task, priority)
  }
  shouldYield(fiber: Parameters<Scheduler.Scheduler["shouldYield"]>[0]) {
    return Scheduler.defaultScheduler.shouldYield(fiber)
  }
}

/** Forks `effect` and lets it run until it waits. */
const started = <A, E>(effect: Effect.Effect<A, E>) => Effect.tap(Effect.fork(effect), () => Effect.yieldNow())

describe("Slots", () => {
  it.effect("a freed slot wakes one waiter, not all: the work stays linear with thousands waiting", () =>
    Effect.gen(function*() {
      const waiters = 2_000
      const scheduler = new CountingScheduler()
      const slots = yield* Slots.make(8)
      yield* Effect.forEach(
        Array.from({ length: waiters }),
        () => slots.withSlot(Effect.yieldNow()),
        { concurrency: "unbounded", discard: true }
      ).pipe(Effect.withScheduler(scheduler))
      // Each sync is resumed a handful of times (started, woken, its own yield); Effect's Semaphore resumed every
      // waiter at each release: ~250,000 tasks here.
      expect(scheduler.tasks / waiters).toBeLessThan(10)
    }))

  it.effect("waiters get their slots in the order they came", () =>
    Effect.gen(function*() {
      const slots = yield* Slots.make(1)
      const go = yield* Deferred.make<void>()
      const order: Array<number> = []
      const holder = yield* started(slots.withSlot(Deferred.await(go)))
      const waiters = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) => started(slots.withSlot(Effect.sync(() => order.push(i))))
      )
      yield* Deferred.succeed(go, undefined)
      yield* Fiber.join(holder)
      yield* Effect.forEach(waiters, Fiber.join)
      expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i))
    }))

  it.effect("an interrupted wait takes no slot, and one interrupted as it is given its slot passes it on", () =>
    Effect.gen(function*() {
      const slots = yield* Slots.make(1)
      const go = yield* Deferred.make<void>()
      const ran: Array<string> = []
      const record = (name: string) => slots.withSlot(Effect.sync(() => ran.push(name)))
      // Started after the holder, which must be first in: the holder reads it when it leaves.
      const waiter: { given?: Fiber.RuntimeFiber<number> } = {}
      // The holder, as it leaves its slot, interrupts the waiter it has just given it to, before that one runs.
      const holder = yield* started(
        slots.withSlot(Deferred.await(go)).pipe(
          // At once, in this fiber: the interrupt reaches `given` with its wake-up, before it runs.
          Effect.zipRight(Effect.withFiberRuntime<void>((self) => Effect.sync(() => waiter.given?.unsafeInterruptAsFork(self.id()))))
        )
      )
      const gone = yield* started(record("gone"))
      const given = yield* started(record("given"))
      waiter.given = given
      const next = yield* started(record("next"))
      // `gone` waited first, and leaves the line: the slot skips it.
      yield* Fiber.interrupt(gone)
      yield* Deferred.succeed(go, undefined)
      yield* Fiber.join(holder)
      expect(Exit.isInterrupted(yield* Fiber.await(given))).toBe(true)
      expect(ran).not.toContain("gone")
      yield* Fiber.join(next)
      // The slot is free again: one more runs at once.
      yield* record("after")
      expect(ran).toEqual(["next", "after"])
    }))
})
