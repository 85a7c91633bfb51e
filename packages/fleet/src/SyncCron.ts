/**
 * Periodic syncs of a list of workspaces, on a `ClusterCron`: one tick at a time across the fleet, whichever runner
 * holds the schedule.
 *
 * A tick sends `Sync` to every workspace (up to `maxInFlight` unanswered at once) and waits until each has answered;
 * the next tick is taken from the cron after that, so two runs of one workspace never overlap, and a slow round delays
 * the next one instead of piling requests up behind it. Each request is named after its tick (`run` is `<name>@<tick>`): when the runner that holds
 * the schedule dies mid-round and the tick runs again elsewhere, the workspaces already synced in that round answer
 * from storage instead of syncing twice.
 *
 * @example
 * ```ts
 * import { SyncCron, WorkspaceConfig } from "@intercom-scroll/fleet"
 * import { Cron } from "effect"
 *
 * const everySixHours = SyncCron.layer({
 *   name: "refresh",
 *   cron: Cron.unsafeParse("0 *\/6 * * *"),
 *   resources: ["users", "leads", "companies"],
 *   workspaces: [new WorkspaceConfig.WorkspaceConfig({ workspace: "acme", tokenEnv: "ACME_TOKEN" })]
 * })
 * ```
 *
 * @since 0.1.0
 */
import { ClusterCron, Entity, type Sharding } from "@effect/cluster"
import type { Resource } from "@intercom-scroll/core"
import { type Cron, DateTime, Effect, Layer, Option } from "effect"
import type { WorkspaceConfig } from "./WorkspaceConfig.js"
import * as WorkspaceSync from "./WorkspaceSync.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Names the schedule in the cluster; one name per schedule. */
  readonly name: string
  readonly cron: Cron.Cron
  readonly workspaces: ReadonlyArray<WorkspaceConfig>
  readonly resources: readonly [Resource.Resource, ...Array<Resource.Resource>]
  /**
   * Syncs of a round sent and not yet answered at once (default `WorkspaceSync.defaultMaxInFlight`, 1,000): the next
   * is sent as one is answered. Keep it above the fleet's runners × `maxSyncs`, or runners wait for work.
   */
  readonly maxInFlight?: number | undefined
}

/**
 * Registers the schedule. Provide it to every runner (with the same options); the cluster runs it on one.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<never, never, Sharding.Sharding> => {
  const maxInFlight = options.maxInFlight ?? WorkspaceSync.defaultMaxInFlight
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    return Layer.effectDiscard(Effect.dieMessage(`SyncCron.layer: maxInFlight must be a whole number ≥ 1, got ${maxInFlight}`))
  }
  return ClusterCron.make({
    name: `intercom-scroll/${options.name}`,
    cron: options.cron,
    execute: Effect.gen(function*() {
      // The cron's entity id is its tick, as an ISO date.
      const address = yield* Effect.serviceOption(Entity.CurrentAddress)
      const tick = Option.isSome(address) ? address.value.entityId : DateTime.formatIso(yield* DateTime.now)
      const run = `${options.name}@${tick}`
      yield* Effect.forEach(
        options.workspaces,
        (workspace) =>
          WorkspaceSync.sync(workspace, { resources: options.resources, run }).pipe(
            Effect.catchAll((error) =>
              Effect.logWarning(`Scheduled sync failed: ${error.message}`).pipe(
                Effect.annotateLogs({ workspace: workspace.workspace, run })
              )
            )
          ),
        { concurrency: maxInFlight, discard: true }
      )
    }).pipe(Effect.withSpan("SyncCron.tick", { attributes: { name: options.name } }))
  })
}
