/**
 * SQLite's passes a chunk a transaction, as a test meets them: another writer of the file between two chunks, and a
 * pass waited for with its pauses between chunks on the TestClock.
 */
import { SqlClient } from "@effect/sql"
import { Chunk, Clock, Duration, Effect, Fiber, Option, TestClock } from "effect"
import * as Store from "../../src/internal/store.js"

/**
 * Another writer of the file, in transactions of its own on the same connection, each taken whenever the pass lets go
 * of it: until `count` is above 0, when it does `then` in that transaction (the pass waiting for its next one). What
 * `count` found then.
 */
export const writeUntil = (
  count: Effect.Effect<number, unknown, SqlClient.SqlClient>,
  then: Effect.Effect<void, unknown, SqlClient.SqlClient>
) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.gen(function*() {
      yield* sql`CREATE TABLE IF NOT EXISTS other_writes (found INTEGER NOT NULL)`
      return yield* Effect.repeat(
        Effect.zipLeft(
          sql.withTransaction(Effect.gen(function*() {
            const found = yield* count
            yield* sql`INSERT INTO other_writes (found) VALUES (${found})`
            if (found > 0) yield* then
            return found
          })),
          Effect.yieldNow()
        ),
        { until: (found) => found > 0 }
      )
    }))

/**
 * Waits for `fiber`, moving the TestClock a pause on whenever one is pending (a sleep due within a pause), and not
 * otherwise: the lock's own sleeps, further off, are not hurried while a chunk's statements run.
 */
export const awaitPaused = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.gen(function*() {
    for (;;) {
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return done.value
      const now = yield* Clock.currentTimeMillis
      const dueWithinPause = (at: number) => at <= now + Duration.toMillis(Store.deletionPause)
      if (Chunk.some(yield* TestClock.sleeps(), dueWithinPause)) yield* TestClock.adjust(Store.deletionPause)
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 0)))
    }
  })
