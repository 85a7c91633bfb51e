/**
 * Periodic syncs of a list of workspaces, on a `ClusterCron`: one tick at a time across the fleet, whichever runner
 * holds the schedule. Its ticks live in a shard group of their own (`shardGroup`), which only the runners that host
 * the schedules hold (`Fleet.RunnerOptions.schedules`).
 *
 * A tick sends `Sync` to every workspace (up to `maxInFlight` unanswered at once) and waits until each has answered.
 * Each tick is scheduled from the one before, once its round has ended: the next one, or, if any came due during the
 * round, the latest of them, which runs then, so a slow round delays the next one instead of piling rounds up behind
 * it. The same for a schedule back after an absence (every runner that hosts it stopped, or the fleet down): the tick
 * it left waiting runs no round, and the latest due tick runs one at once, however many were missed.
 * Each request is named after its tick (`run` is `<name>@<tick>`): when the runner that holds the schedule dies
 * mid-round and the tick runs again elsewhere, the workspaces already synced in that round answer from storage
 * instead of syncing twice (unless a later tick is due by then: that one runs instead, beside what the stopped round
 * had sent; a workspace still never syncs twice at once). When the tick moves to another runner while its round runs (a runner joined
 * or left), the syncs it sent go on where they run, and the tick run again is answered with their results. A round
 * logs `Round started` and `Round done: N complete, M failed` under its run's name, and a warning for each workspace
 * that failed; a tick's round run again says at both ends how many of its workspaces were sent the run's sync before
 * (read from the cluster's SQL storage, with the `SqlClient` beside `Sharding`).
 *
 * A runner starting with a `cron` whose next tick comes before the tick the schedule has stored (the cron changed to
 * tick sooner) sends that next tick: the new cron applies from it, not from the stored one, which, when it comes, is
 * the same tick where it is one of the new cron's too (the schedule's first tick, sent to the entity "initial", is a
 * tick apart but the same run: its round's syncs are answered with those of the new chain's), or runs one more round
 * and sends the same next tick as the new chain (one chain from there). A cron changed to tick less often runs the
 * stored tick's round, then its own ticks. The stored ticks are read where the cluster's SQL storage keeps them (the
 * `SqlClient` beside `Sharding`, as a fleet's runner has it); over a storage in memory, a changed cron applies from the
 * stored tick.
 *
 * @example
 * ```ts
 * import { SyncCron, WorkspaceConfig } from "@intercom-scroll/fleet"
 * import { Cron } from "effect"
 *
 * const everySixHours = SyncCron.layer({
 *   name: "refresh",
 *   // In UTC: runners in other time zones would each read the expression in their own.
 *   cron: Cron.unsafeParse("0 *\/6 * * *", "UTC"),
 *   resources: ["users", "leads", "companies"],
 *   workspaces: [new WorkspaceConfig.WorkspaceConfig({ workspace: "acme", tokenEnv: "ACME_TOKEN" })]
 * })
 * ```
 *
 * @since 0.1.0
 */
import type { Sharding } from "@effect/cluster"
import type { Resource } from "@intercom-scroll/core"
import { type Cron, DateTime, Effect, Layer } from "effect"
import type { WorkspaceConfig } from "./WorkspaceConfig.js"
import * as ClusterCron from "./internal/clusterCron.js"
import * as CronName from "./internal/cronName.js"
import * as Round from "./internal/round.js"
import * as StoredTicks from "./internal/storedTicks.js"
import * as WorkspaceSync from "./WorkspaceSync.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Names the schedule in the cluster; one name per schedule. */
  readonly name: string
  readonly cron: Cron.Cron
  /**
   * The workspaces each round syncs: a list, or an effect run at the start of each round, whose list that round syncs
   * (`WorkspaceConfig.reader` reads a file again each time, so that an edit takes effect at the next round).
   */
  readonly workspaces: ReadonlyArray<WorkspaceConfig> | Effect.Effect<ReadonlyArray<WorkspaceConfig>>
  readonly resources: readonly [Resource.Resource, ...Array<Resource.Resource>]
  /**
   * Syncs of a round sent and not yet answered at once (default `WorkspaceSync.defaultMaxInFlight`, 1,000): the next
   * is sent as one is answered. Keep it above the fleet's runners × `maxSyncs`, or runners wait for work. A whole number
   * of 1 or more: the layer dies with any other.
   */
  readonly maxInFlight?: number | undefined
}

/**
 * The shard group of every schedule's ticks, apart from the `WorkspaceSync` entities' "default": only the runners that
 * host it (`Fleet.RunnerOptions.schedules`) take a tick, so a runner without the schedules takes none. Named to sort
 * after "default": the cluster numbers PostgreSQL's advisory locks by the groups' sorted order, so "default"'s shards
 * keep the lock numbers they had before this group was added, which runners of an older version still use.
 *
 * @since 0.1.0
 * @category constants
 */
export const shardGroup: string = "schedules"

/**
 * Registers the schedule. Provide it to every runner that hosts the schedules (`Fleet.RunnerOptions.schedules`, true
 * by default), with the same options: the cluster runs it on one of them. A runner not given it must be started with
 * `schedules: false`: a tick the cluster gave it would never run, and the schedule would stop there. On a cluster
 * built otherwise (`TestRunner`, a runner of your own), list `shardGroup` in its `ShardingConfig`'s
 * `availableShardGroups` and, on the runners that run the schedules, `assignedShardGroups`: no tick runs where no
 * runner hosts the group.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<never, never, Sharding.Sharding> => {
  const maxInFlight = options.maxInFlight ?? WorkspaceSync.defaultMaxInFlight
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    return Layer.effectDiscard(Effect.dieMessage(`SyncCron.layer: maxInFlight must be a whole number ≥ 1, got ${maxInFlight}`))
  }
  // Said here, once: each round's every request would die of it.
  if (new Set(options.resources).size !== options.resources.length) {
    return Layer.effectDiscard(
      Effect.dieMessage(`SyncCron.layer: resources must name each resource once, got ${options.resources.join(", ")}`)
    )
  }
  // Upstream's `ClusterCron` as the cluster stores it, but for the tick after a late one: the latest due, not the next.
  return ClusterCron.make({
    name: CronName.clusterCronName(options.name),
    cron: options.cron,
    shardGroup,
    // Read where the cluster's SQL storage keeps them, with the `SqlClient` beside `Sharding` (the fleet's runners
    // have it): elsewhere (a storage in memory) none, and a changed cron applies from the stored tick.
    storedTicks: StoredTicks.inClusterStorage(
      [],
      (sql) => Effect.map(StoredTicks.pending(sql, options.name), (ticks) => ticks.map((tick) => tick.at))
    ),
    execute: (tick) =>
      Effect.gen(function*() {
        // Named after the tick's time, the first tick's (its entity "initial") too: the same wherever it runs again,
        // and, when a changed cron's chain has a tick at that time, the same run as that tick's, whose workspaces then
        // sync once, the second round answered with the first's results.
        const run = `${options.name}@${DateTime.formatIso(tick)}`
        // Only the latest due tick runs a round. One delivered once a later one is due (the tick a schedule left waiting
        // when it went away, or one run again after its runner stopped mid-round) runs none: its successor, the latest
        // due tick, runs at once.
        if (Round.superseded(options.cron, tick, yield* DateTime.now)) {
          return yield* Effect.logInfo("Round skipped: a later tick is due (any syncs this tick sent before go on)").pipe(
            Effect.annotateLogs("run", run)
          )
        }
        const workspaces = Effect.isEffect(options.workspaces)
          ? yield* options.workspaces.pipe(Effect.annotateLogs("run", run))
          : options.workspaces
        yield* Round.run({ run, workspaces, resources: options.resources, maxInFlight })
      }).pipe(Effect.withSpan("SyncCron.tick", { attributes: { name: options.name } }))
  })
}
