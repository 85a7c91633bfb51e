/**
 * The command line's exit codes, apart from its failure line (`failure.ts`), which needs the core: the bin's teardown
 * reads these on every exit, and the core is loaded only when a subcommand runs.
 *
 * @since 0.1.0
 */
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
 * The exit code of a process stopped by SIGHUP (128 + 1), as shells report it: its terminal closed, its SSH session
 * dropped.
 *
 * @since 0.1.0
 * @category constants
 */
export const hungUpExitCode = 129

/**
 * The signals that stop the command (its cleanup run first), and the exit code each gives, as shells report them.
 *
 * @since 0.1.0
 * @category constants
 */
export const stopSignals = { SIGINT: interruptedExitCode, SIGTERM: terminatedExitCode, SIGHUP: hungUpExitCode } as const

/**
 * A signal that stops the command.
 *
 * @since 0.1.0
 * @category models
 */
export type StopSignal = keyof typeof stopSignals

/**
 * The exit code of a process stopped by a closed pipe (128 + SIGPIPE), as shells report `yes | head -1`'s `yes`.
 *
 * @since 0.1.0
 * @category constants
 */
export const stdoutClosedExitCode = 141

/**
 * Whether the reader of stdout closed it: a quiet end, exit 141.
 *
 * @since 0.1.0
 * @category exit
 */
export const isStdoutClosed = (cause: Cause.Cause<unknown>) =>
  Option.exists(Cause.failureOption(cause), (error) => error instanceof StdoutClosed)

/**
 * 0 on success, 130 when interrupted (Ctrl-C), 143 when that was SIGTERM's doing and 129 SIGHUP's, 141 when the
 * reader of stdout closed it, 1 on any other failure.
 *
 * @since 0.1.0
 * @category exit
 */
export const exitCode = <A, E>(exit: Exit.Exit<A, E>, stoppedBy: StopSignal = "SIGINT"): number => {
  if (Exit.isSuccess(exit)) return 0
  if (Cause.isInterruptedOnly(exit.cause)) return stopSignals[stoppedBy]
  return isStdoutClosed(exit.cause) ? stdoutClosedExitCode : 1
}
