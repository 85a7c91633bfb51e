/**
 * What can go wrong in an export besides the scroll itself: the output cannot be written, or the environment does
 * not configure a client. Like the core's errors, each message says what to do and never carries the token.
 *
 * @example
 * ```ts
 * import { ExportError } from "@intercom-scroll/cli"
 *
 * const error = new ExportError.OutputError({ target: "out/users.ndjson", detail: "EACCES: permission denied" })
 * assert.strictEqual(error._tag, "OutputError")
 * assert.strictEqual(error.message, "Could not write out/users.ndjson: EACCES: permission denied")
 * ```
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * Writing the export failed: the target directory is missing or read-only, the disk is full, stdout was closed.
 *
 * @since 0.1.0
 * @category errors
 */
export class OutputError extends Schema.TaggedError<OutputError>()("OutputError", {
  /** A file path, or "stdout". */
  target: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `Could not write ${this.target}: ${this.detail}`
  }
}

/**
 * Whoever read the export on stdout closed it before the end, as `| head` does once it has read enough. The export
 * stops there, and the CLI exits as a Unix tool stopped by SIGPIPE does: quietly, with 141.
 *
 * @since 0.1.0
 * @category errors
 */
export class StdoutClosed extends Schema.TaggedError<StdoutClosed>()("StdoutClosed", {}) {
  override get message(): string {
    return "the reader of stdout closed it before the export's end"
  }
}

/**
 * An environment variable is missing or holds a value that cannot work.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidConfig extends Schema.TaggedError<InvalidConfig>()("InvalidConfig", {
  variable: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.variable} ${this.detail}`
  }
}
