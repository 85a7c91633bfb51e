/**
 * A runner's shard lock timings for a database some distance away.
 *
 * @effect/cluster (0.60) keeps a runner's shard locks on one session, and gives a shard away with two round trips
 * (`pg_advisory_unlock`, then a look at `pg_locks`), one shard after another; the refresh of the runner's locks, due
 * every `shardLockRefreshInterval` and given as long to finish, waits behind them on that session. When a second runner
 * joins, the first gives away half its shards at once: 150 of a group's 300 take 12 s at 40 ms a round trip, the
 * refresh misses its deadline, and the runner, taking its lock storage for unhealthy, drops every shard and never
 * gets back to them (packages/bench/NOTES.md, "The sync and the fleet to a PostgreSQL across a real network link").
 * So the interval grows with the distance: twice what such a handover takes, never under the fleet's 5 seconds.
 *
 * @internal
 */
import type { ShardingConfig } from "@effect/cluster"
import { Clock, Duration, Effect } from "effect"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"

/**
 * The cluster's deadline for each shard lock operation (`effectiveInterval` of @effect/cluster's `internal/shardLock`):
 * a refresh past it marks the runner's lock storage unhealthy, and any operation past it rebuilds the lock session.
 */
export const operationInterval = (
  timings: Pick<ShardingConfig.ShardingConfig["Type"], "shardLockRefreshInterval" | "shardLockExpiration">
): Duration.Duration =>
  Duration.min(
    Duration.decode(timings.shardLockRefreshInterval),
    Duration.unsafeDivide(Duration.decode(timings.shardLockExpiration), 3)
  )

/** The fleet's interval on a database nearby (`Fleet.shardingConfig`). */
export const nearby = Duration.seconds(5)

/**
 * The refresh interval for a runner that holds `shards` shards (of every group it hosts) on a database `roundTrip`
 * away: giving half of them away takes `shards / 2` × 2 round trips; twice that, in whole seconds, at least `nearby`.
 */
export const refreshInterval = (roundTrip: Duration.Duration, shards: number): Duration.Duration => {
  const handover = Duration.toMillis(roundTrip) * shards
  return Duration.max(nearby, Duration.seconds(Math.ceil((2 * handover) / 1000)))
}

/** How many round trips `roundTrip` takes the least of. */
const roundTrips = 10

/**
 * The database's round trip: the least of ten `SELECT 1` on one session, after one that opens it (a new connection's
 * handshakes are not a round trip of the lock session's). A machine short of CPU only lengthens a round trip (the
 * runner's wake-up, the backend's), never shortens one: the median of five read a loopback database under a load of
 * 15–47 as 10.7–45 ms, and refreshed every 7–28 s (packages/bench/NOTES.md, "The fleet's heartbeat and a role with few
 * sessions").
 */
export const roundTrip: Effect.Effect<Duration.Duration, SqlError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return yield* Effect.scoped(Effect.gen(function*() {
    const connection = yield* sql.reserve
    yield* connection.executeRaw("SELECT 1", [])
    let least: bigint | undefined
    for (let i = 0; i < roundTrips; i++) {
      const start = yield* Clock.currentTimeNanos
      yield* connection.executeRaw("SELECT 1", [])
      const time = (yield* Clock.currentTimeNanos) - start
      if (least === undefined || time < least) least = time
    }
    return Duration.nanos(least ?? BigInt(0))
  }))
})
