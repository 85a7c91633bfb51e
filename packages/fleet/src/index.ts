/**
 * @since 0.1.0
 */
export * as Fleet from "./Fleet.js"
export * as Secrets from "./Secrets.js"
export * as Summary from "./Summary.js"
export * as SyncCron from "./SyncCron.js"
export * as WorkspaceConfig from "./WorkspaceConfig.js"
export * as WorkspaceSync from "./WorkspaceSync.js"
