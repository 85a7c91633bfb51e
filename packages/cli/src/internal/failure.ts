/**
 * How the command line ends: one line on stderr naming what went wrong (`Unauthorized: Intercom refused …`), and
 * the exit code. Pure, so each case is tested without a process.
 *
 * A scroll's error says what happened in the library's words (its `problem`); what to do about it is said here, in the
 * terms of this command line (its flags and variables), not in those of the library's options.
 *
 * @example
 * ```ts
 * import { Failure } from "@intercom-scroll/cli"
 * import { Cause, Exit, FiberId, Redacted } from "effect"
 *
 * // Ctrl-C interrupts the program: 130 (143 when SIGTERM did it).
 * assert.strictEqual(Failure.exitCode(Exit.interrupt(FiberId.none)), 130)
 * assert.strictEqual(Failure.exitCode(Exit.interrupt(FiberId.none), "SIGTERM"), 143)
 * // One line, whatever the message held, and never the token.
 * const cause = Cause.fail(new Error("token s3cr3t was refused\nby the server"))
 * assert.strictEqual(Failure.line(cause, [Redacted.make("s3cr3t")]), "Error: token <redacted> was refused by the server")
 * ```
 *
 * @since 0.1.0
 */
import { ValidationError } from "@effect/cli"
import { IntercomClient, ScrollError } from "@intercom-scroll/core"
import { Cause, Exit, Option, type Redacted, Schema } from "effect"
import { InvalidConfig, OutputError, StdoutClosed } from "../ExportError.js"

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

/**
 * What to do after each of the scroll's errors, with the flags and variables of this command line. Empty where
 * nothing general helps.
 */
const advice: { readonly [E in ScrollError.ScrollError as E["_tag"]]: (error: E) => string } = {
  Expired: () =>
    "If writing the records stalled (a slow disk, a slow reader of stdout), raise --prefetch N so that more pages are fetched meanwhile (default 1); --max-restarts N (default 5) starts over more often.",
  ConcurrentScroll: () =>
    "Another app may be scrolling the workspace: run again once it is done, or wait longer for it with --wait-for-other-scroll DURATION (default 2m), such as --wait-for-other-scroll 10m.",
  RestartRequired: () => "Run again later, or try again more often with --max-restarts N (default 5).",
  RateLimited: (error) => `Run again after ${error.resetTime}.`,
  Unauthorized: (error) =>
    `Check INTERCOM_ACCESS_TOKEN, the workspace's region (--region or INTERCOM_REGION: us, eu or au), and that the app may read ${error.resource}.`,
  ApiError: () => "",
  InvalidResponse: () => "Check that --base-url (or INTERCOM_BASE_URL) points at Intercom's API, or a faithful proxy.",
  Unreachable: () =>
    "Check --base-url (or INTERCOM_BASE_URL, or --region), that the server there is running, and the network or proxy in between."
}

const isScrollError = Schema.is(ScrollError.ScrollError)

/** The errors whose text this package and the core write, never holding the token: the client redacts what it quotes. */
const isOwnError = Schema.is(Schema.Union(ScrollError.ScrollError, ScrollError.InvalidOptions, InvalidConfig, OutputError))

const withAdvice = (error: ScrollError.ScrollError): string => {
  const said = (advice[error._tag] as (error: ScrollError.ScrollError) => string)(error)
  return said === "" ? error.problem : `${error.problem} ${said}`
}

const describe = (error: unknown): string => {
  if (isScrollError(error)) return `${error._tag}: ${withAdvice(error)}`
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
 * say nothing about it). A scroll's error comes with advice in this command line's terms. Line breaks are folded.
 *
 * The library's and this package's own errors are printed as they are: the client has already replaced the token in
 * whatever they quote from a server or the transport, and their own words are never touched, which a short token would
 * damage. Anything else (a defect, a failure of unknown kind) has each secret replaced, as the client would.
 *
 * @since 0.1.0
 * @category rendering
 */
export const line = (
  cause: Cause.Cause<unknown>,
  secrets: ReadonlyArray<Redacted.Redacted<string>> = []
): string | undefined => {
  if (isStdoutClosed(cause)) return undefined
  const oneLine = (text: string) => text.replace(/\s*[\r\n]+\s*/g, " ").trim()
  if (Cause.isInterruptedOnly(cause)) {
    return "Interrupted: the export stopped before the end; an --out file was left as it was"
  }
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && ValidationError.isValidationError(failure.value)) return undefined
  if (Option.isSome(failure) && isOwnError(failure.value)) return oneLine(describe(failure.value))
  const text = Option.match(failure, {
    onSome: describe,
    onNone: () => Option.match(Cause.dieOption(cause), { onSome: describe, onNone: () => `Error: ${Cause.pretty(cause)}` })
  })
  return secrets.map(IntercomClient.redactToken).reduce((redacted, redact) => redact(redacted), oneLine(text))
}
