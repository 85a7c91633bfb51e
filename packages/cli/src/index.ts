/**
 * @since 0.1.0
 */
export * as AtomicFile from "./AtomicFile.js"

/**
 * @since 0.1.0
 */
export * as Cli from "./Cli.js"

/**
 * @since 0.1.0
 */
export * as Embedded from "./Embedded.js"

/**
 * @since 0.1.0
 */
export * as Export from "./Export.js"

/**
 * @since 0.1.0
 */
export * as ExportError from "./ExportError.js"

/**
 * @since 0.1.0
 */
export * as Failure from "./Failure.js"

/**
 * @since 0.1.0
 */
export * as Format from "./Format.js"

/**
 * @since 0.1.0
 */
export * as ProgressBar from "./ProgressBar.js"

/**
 * @since 0.1.0
 */
export * as Quickstart from "./Quickstart.js"

/**
 * @since 0.1.0
 */
export * as Stdio from "./Stdio.js"
