/**
 * @since 0.1.0
 */
export * as AtomicFile from "./AtomicFile.js"
export * as Cli from "./Cli.js"
export * as Embedded from "./Embedded.js"
export * as Export from "./Export.js"
export * as ExportError from "./ExportError.js"
export * as Failure from "./Failure.js"
export * as Format from "./Format.js"
export * as ProgressBar from "./ProgressBar.js"
export * as Quickstart from "./Quickstart.js"
export * as Stdio from "./Stdio.js"
