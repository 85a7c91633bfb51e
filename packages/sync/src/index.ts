/**
 * @since 0.1.0
 */
export * as Sync from "./Sync.js"

/**
 * @since 0.1.0
 */
export * as SyncError from "./SyncError.js"

/**
 * @since 0.1.0
 */
export * as SyncDatabase from "./SyncDatabase.js"

/**
 * @since 0.1.0
 */
export * as SyncMetrics from "./SyncMetrics.js"

/**
 * @since 0.1.0
 */
export * as SyncActivity from "./SyncActivity.js"
