/**
 * The database's clock (`SyncDatabase.withDatabaseClock`, `layerDatabaseClock`) on the process's own, under the
 * TestClock: the database's time is modelled as the TestClock's plus a skew the test changes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Ref, TestClock } from "effect"
import * as DatabaseClock from "../src/internal/databaseClock.js"

describe("DatabaseClock.make", () => {
  it.scoped("reads the database's time on the process's clock, and follows a change of the offset at the next measure", () =>
    Effect.gen(function*() {
      // The database's clock, 5 minutes ahead of this process's (the TestClock's), then 1 hour behind it.
      const skew = yield* Ref.make(300_000)
      const failing = yield* Ref.make(false)
      const databaseMillis = Effect.gen(function*() {
        if (yield* Ref.get(failing)) return yield* Effect.fail("the database does not answer")
        return (yield* Clock.currentTimeMillis) + (yield* Ref.get(skew))
      })
      const clock = yield* DatabaseClock.make(databaseMillis)
      const offset = Effect.map(Effect.all([clock.currentTimeMillis, Clock.currentTimeMillis]), ([database, own]) => database - own)

      expect(yield* offset).toBe(300_000)
      yield* TestClock.adjust("10 seconds")
      expect(yield* offset).toBe(300_000)

      yield* Ref.set(skew, -3_600_000)
      yield* TestClock.adjust("19 seconds")
      expect(yield* offset).toBe(300_000)
      yield* TestClock.adjust(DatabaseClock.refreshInterval)
      expect(yield* offset).toBe(-3_600_000)

      // A measure that fails keeps the offset it had.
      yield* Ref.set(failing, true)
      yield* Ref.set(skew, 0)
      yield* TestClock.adjust(Duration.times(DatabaseClock.refreshInterval, 2))
      expect(yield* offset).toBe(-3_600_000)
      yield* Ref.set(failing, false)
      yield* TestClock.adjust(DatabaseClock.refreshInterval)
      expect(yield* offset).toBe(0)
    }))
})

