import { expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, TestClock } from "effect"
import * as Watchdog from "../src/Watchdog.js"

it.effect("dies after a real time, under a TestClock that never moves, with the report and the fibers forked under it", () =>
  Effect.gen(function*() {
    const exit = yield* Watchdog.within(
      Effect.gen(function*() {
        yield* Effect.fork(Effect.never.pipe(Effect.withSpan("stuck child")))
        return yield* Effect.never
      }),
      { after: "200 millis", report: Effect.succeed("stuck at the test's step") }
    ).pipe(Effect.exit)
    expect(Exit.isFailure(exit)).toBe(true)
    const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
    const message = defect instanceof Error ? defect.message : String(defect)
    expect(message).toMatch(/^stuck at the test's step\nfibers:\n/)
    expect(message).toContain("in stuck child")
    // The TestClock never moved: the watchdog waited on the real one.
    expect(yield* TestClock.currentTimeMillis).toBe(0)
  }))

it.effect("gives the effect's own result when it ends in time", () =>
  Effect.gen(function*() {
    const value = yield* Watchdog.within(Effect.succeed(42), {
      after: "10 seconds",
      report: Effect.succeed("never asked")
    })
    expect(value).toBe(42)
  }))
