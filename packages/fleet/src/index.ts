/**
 * `@intercom-scroll/fleet`: thousands of Intercom workspaces synced into the sync tables across runner processes
 * on @effect/cluster, one scroll per workspace across the whole fleet.
 *
 * @since 0.1.0
 */

/**
 * The processes of a fleet as layers: runners and client-only processes over one database, and the cluster's
 * timings.
 *
 * @since 0.1.0
 */
export * as Fleet from "./Fleet.js"

/**
 * A fleet's state, read from its database: its runners, the syncs sent and not answered, the runs' activity.
 *
 * @since 0.1.0
 */
export * as FleetStatus from "./FleetStatus.js"

/**
 * A runner's health, for a container's probe or a monitor: whether its database answers, and how many of the fleet's
 * shards it holds.
 *
 * @since 0.1.0
 */
export * as Health from "./Health.js"

/**
 * Where a runner finds a workspace's access token (`tokenEnv`), replaceable by a vault or a table of tokens.
 *
 * @since 0.1.0
 */
export * as Secrets from "./Secrets.js"

/**
 * The sync's summary of one resource, as a Schema that crosses processes.
 *
 * @since 0.1.0
 */
export * as Summary from "./Summary.js"

/**
 * Periodic syncs of a list of workspaces on a `ClusterCron`, no two runs of a workspace overlapping.
 *
 * @since 0.1.0
 */
export * as SyncCron from "./SyncCron.js"

/**
 * The workspaces a fleet syncs, and the JSON file that lists them.
 *
 * @since 0.1.0
 */
export * as WorkspaceConfig from "./WorkspaceConfig.js"

/**
 * The `WorkspaceSync` entity, one per workspace, its `Sync` RPC, and `sync` to send it.
 *
 * @since 0.1.0
 */
export * as WorkspaceSync from "./WorkspaceSync.js"
