/**
 * How the command line ends: one line on stderr naming what went wrong (`Unauthorized: Intercom refused …`), and
 * the exit code. Pure, so each case is tested without a process.
 *
 * @example
 * ```ts
 * import { Failure } from "@intercom-scroll/cli"
 * import { Cause, Exit, FiberId } from "effect"
 *
 * // Ctrl-C interrupts the program: 130 (143 when SIGTERM did it).
 * assert.strictEqual(Failure.exitCode(Exit.interrupt(FiberId.none)), 130)
 * assert.strictEqual(Failure.exitCode(Exit.interrupt(FiberId.none), "SIGTERM"), 143)
 * // One line, whatever the message held, and never the token.
 * const cause = Cause.fail(new Error("token s3cr3t was refused\nby the server"))
 * assert.strictEqual(Failure.line(cause, ["s3cr3t"]), "Error: token <redacted> was refused by the server")
 * ```
 *
 * @since 0.1.0
 */
import { ValidationError } from "@effect/cli"
import { Cause, Exit, Option } from "effect"
import { StdoutClosed } from "../ExportError.js"

/**
 * The exit code of a Ctrl-C (128 + SIGINT), as shells report it.
 *
 * @since 0.1.0
 * @category constants
 */
export const interruptedExitCode = 130

/**
 * The exit code of a process stopped by SIGTERM (128 + 15), as shells report it: `kill`, a container runtime's stop.
 *
 * @since 0.1.0
 * @category constants
 */
export const terminatedExitCode = 143

/**
 * The exit code of a process stopped by a closed pipe (128 + SIGPIPE), as shells report `yes | head -1`'s `yes`.
 *
 * @since 0.1.0
 * @category constants
 */
export const stdoutClosedExitCode = 141

const isStdoutClosed = (cause: Cause.Cause<unknown>) =>
  Option.exists(Cause.failureOption(cause), (error) => error instanceof StdoutClosed)

/**
 * 0 on success, 130 when interrupted (Ctrl-C) or 143 when that was SIGTERM's doing, 141 when the reader of stdout
 * closed it, 1 on any other failure.
 *
 * @since 0.1.0
 * @category exit
 */
export const exitCode = <A, E>(exit: Exit.Exit<A, E>, stoppedBy: "SIGINT" | "SIGTERM" = "SIGINT"): number => {
  if (Exit.isSuccess(exit)) return 0
  if (Cause.isInterruptedOnly(exit.cause)) return stoppedBy === "SIGTERM" ? terminatedExitCode : interruptedExitCode
  return isStdoutClosed(exit.cause) ? stdoutClosedExitCode : 1
}

const describe = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const { _tag, name, message } = error as { readonly _tag?: unknown; readonly name?: unknown; readonly message?: unknown }
    const label = typeof _tag === "string" ? _tag : typeof name === "string" ? name : "Error"
    if (typeof message === "string" && message !== "") return `${label}: ${message}`
    return label
  }
  return `Error: ${String(error)}`
}

/**
 * The one line to print for a failed run, or undefined when there is nothing to add: @effect/cli has already
 * printed its usage error, or the reader of stdout has gone away (a closed pipe is no one's mistake, and Unix tools
 * say nothing about it). Line breaks are folded and each secret replaced, so the line never carries a token even
 * if some message did.
 *
 * @since 0.1.0
 * @category rendering
 */
export const line = (cause: Cause.Cause<unknown>, secrets: ReadonlyArray<string> = []): string | undefined => {
  if (isStdoutClosed(cause)) return undefined
  let text: string
  if (Cause.isInterruptedOnly(cause)) {
    text = "Interrupted: the export stopped before the end; an --out file was left as it was"
  } else {
    const failure = Cause.failureOption(cause)
    if (Option.isSome(failure) && ValidationError.isValidationError(failure.value)) return undefined
    text = Option.match(failure, {
      onSome: describe,
      onNone: () => Option.match(Cause.dieOption(cause), { onSome: describe, onNone: () => `Error: ${Cause.pretty(cause)}` })
    })
  }
  const oneLine = text.replace(/\s*[\r\n]+\s*/g, " ").trim()
  return secrets.reduce((redacted, secret) => secret === "" ? redacted : redacted.replaceAll(secret, "<redacted>"), oneLine)
}
