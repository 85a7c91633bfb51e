/**
 * How a `SyncCron` schedule is named in the cluster, and how its ticks are found in the cluster's tables.
 *
 * @internal
 */

/** The name a `SyncCron` gives its `ClusterCron`: ours apart from an app's own schedules. */
export const clusterCronName = (name: string): string => `intercom-scroll/${name}`

/** A SQL `LIKE` pattern for the entity type of every `SyncCron`'s ticks (`ClusterCron/` and its name). */
export const tickEntityTypes = `ClusterCron/${clusterCronName("%")}`

/** The `SyncCron` name of a tick's entity type (`ClusterCron/intercom-scroll/refresh` is `refresh`). */
export const scheduleName = (entityType: string): string => entityType.slice(`ClusterCron/${clusterCronName("")}`.length)
