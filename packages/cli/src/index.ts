/**
 * `intercom-scroll`, the command line. An app embeds the command and runs it (`Cli`), and matches the errors a run
 * ends with (`ExportError`); formats, the atomic file, progress and stdio are internal.
 *
 * @since 0.1.0
 */

/**
 * The command, how to run it, and its Node platform.
 *
 * @since 0.1.0
 */
export * as Cli from "./Cli.js"

/**
 * What an export fails with besides the scroll's own errors: `OutputError`, `StdoutClosed`, `InvalidConfig`.
 *
 * @since 0.1.0
 */
export * as ExportError from "./ExportError.js"
