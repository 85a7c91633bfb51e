/**
 * A process that tells time by its PostgreSQL server's clock, not its own.
 *
 * Machines without good NTP disagree by minutes, and syncs of one database compare one process's times with another's
 * (a run's `started_at`, `alive_at`, `finished_at`, a record's `last_seen_at` and `deleted_at`). A fleet does more: a
 * `SyncCron` tick is sent for a time (`deliver_at`) that the runner holding its shard judges due by its own clock, a
 * round is skipped when its runner's clock says a later tick is due, a run's `alive_at` is written by its runner and
 * judged silent by `fleet status`'s clock, a request's id (a Snowflake) carries its sender's time and `fleet prune`
 * cuts by its own. The cluster itself already judges heartbeats and reads by the database's `NOW()`. With one clock,
 * the database's, they all agree.
 *
 * The clock is the process's monotonic clock (`Clock.currentTimeNanos`, which a step of the wall clock does not move)
 * plus an offset measured against `clock_timestamp()` at the round trip's midpoint, measured again every 30 seconds
 * to follow drift, and a database that fails over to a server whose clock differs.
 *
 * @internal
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { Database } from "../SyncDatabase.js"
import { Clock, Duration, Effect, Layer, type Scope } from "effect"

/** How often the offset is measured again. */
export const refreshInterval = Duration.seconds(30)

/** A measurement whose round trip took longer than this says too little of when the database read its clock. */
const maxRoundTrip = Duration.seconds(1)

class OffsetClock implements Clock.Clock {
  readonly [Clock.ClockTypeId]: Clock.ClockTypeId = Clock.ClockTypeId
  constructor(private readonly base: Clock.Clock, private readonly offset: () => bigint) {}
  unsafeCurrentTimeNanos(): bigint {
    return this.base.unsafeCurrentTimeNanos() + this.offset()
  }
  unsafeCurrentTimeMillis(): number {
    return Number(this.unsafeCurrentTimeNanos() / 1_000_000n)
  }
  currentTimeMillis: Effect.Effect<number> = Effect.sync(() => this.unsafeCurrentTimeMillis())
  currentTimeNanos: Effect.Effect<bigint> = Effect.sync(() => this.unsafeCurrentTimeNanos())
  sleep(duration: Duration.Duration): Effect.Effect<void> {
    return this.base.sleep(duration)
  }
}

/**
 * A clock that reads `databaseMillis`' time (milliseconds since the epoch) on the current clock's monotonic time, its
 * offset measured once now and, while `scope` is open, again every `refreshInterval` (a measurement that fails or
 * takes over a second keeps the last offset).
 */
export const make = <E, R>(databaseMillis: Effect.Effect<number, E, R>): Effect.Effect<Clock.Clock, E, R | Scope.Scope> =>
  Effect.gen(function*() {
    const base = yield* Effect.clock
    const measure = Effect.gen(function*() {
      const before = base.unsafeCurrentTimeNanos()
      const millis = yield* databaseMillis
      const after = base.unsafeCurrentTimeNanos()
      // Microseconds: a float of nanoseconds since the epoch is past a double's exact integers.
      const database = BigInt(Math.round(millis * 1000)) * 1000n
      return { offset: database - (before + after) / 2n, roundTrip: Duration.nanos(after - before) }
    })
    let offset = (yield* measure).offset
    yield* measure.pipe(
      Effect.tap((measured) => {
        if (Duration.lessThanOrEqualTo(measured.roundTrip, maxRoundTrip)) offset = measured.offset
      }),
      // The database away: the last offset stands, and the runner's own paths report the outage.
      Effect.ignore,
      Effect.delay(refreshInterval),
      Effect.forever,
      Effect.forkScoped
    )
    return new OffsetClock(base, () => offset)
  })

/** PostgreSQL's time now (not the transaction's), in milliseconds since the epoch. */
const postgresMillis: Effect.Effect<number, SqlError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    Effect.map(
      sql<{ readonly millis: number | string }>`SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS float8) AS millis`,
      ([row]) => Number(row?.millis)
    )
)

/**
 * Sets the database's clock as the clock of every layer built after this one, and of their fibers. PostgreSQL only: a
 * SQLite file's clock is the process's own (one machine), which it keeps.
 */
export const layer = (database: Database): Layer.Layer<never, SqlError, SqlClient.SqlClient> =>
  database._tag === "Postgres" ? Layer.unwrapScoped(Effect.map(make(postgresMillis), Layer.setClock)) : Layer.empty

/** Runs `effect` on the database's clock, measured once (PostgreSQL; SQLite keeps the process's). */
export const within = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R | SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.onDialectOrElse({
      pg: () => Effect.scoped(Effect.flatMap(make(postgresMillis), (clock) => Effect.withClock(effect, clock))),
      orElse: () => effect
    }))
