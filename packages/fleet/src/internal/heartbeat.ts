/**
 * A runner's heartbeat that was not written, said. Every 5 s a runner writes `last_heartbeat` to its row (on SQLite
 * `Fleet`'s heartbeat, on PostgreSQL its address lock's session, `AddressLock`), and one not heard from for 30 s reads
 * as stopped or dead (`FleetStatus.runners`: `fleet status`, `fleet sync`, `OlderRunnersAlive`). A failed beat was
 * ignored, taken for a database away, which the cluster says: SQLite's `NOW()`, which it lacks, failed at every beat
 * for weeks, unsaid (packages/bench/NOTES.md, "The fleet's internals read again as Effect's maintainers would").
 *
 * @internal
 */
import { type Cause, Duration, Effect } from "effect"
import * as LogRepeats from "./logRepeats.js"
import * as ShardLockTiming from "./shardLockTiming.js"

/**
 * A warning, at the runner's default level, with the failure whole: the first time in full, then counted
 * (`LogRepeats.counted`), since a fault that stays fails every beat. The next beat tries again, as before.
 */
export const failed = (address: string, cause: Cause.Cause<unknown>): Effect.Effect<void> =>
  LogRepeats.counted(Effect.logWarning(
    `This runner's heartbeat (its row in cluster_runners, ${address}) was not written: a runner not heard from for 30s reads as stopped to fleet status and fleet sync. Trying again every ${
      Duration.format(ShardLockTiming.nearby)
    }`,
    cause
  ))
