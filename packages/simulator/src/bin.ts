/**
 * The standalone simulator: `pnpm -s simulator --port 4010 --token T [flags]` (see README.md).
 *
 * @since 0.1.0
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { defaultTeardown, type Teardown } from "@effect/platform/Runtime"
import { Effect } from "effect"
import * as Cli from "./Cli.js"

/**
 * Exits once stdout and stderr have handed the OS what was written to them: stopped by a signal, runMain exits the
 * process at once, and a pipe's reader then got only the first ~220 kB of a longer line (the stats line is ~600
 * bytes a workspace: with 1,000 tokens, 219,264 bytes of 597,255 came). An empty write's callback comes after the
 * writes before it.
 */
const teardown: Teardown = (exit, onExit) =>
  defaultTeardown(exit, (code) => process.stdout.write("", () => process.stderr.write("", () => onExit(code))))

// Failures are reported by `Cli.main` in one line; the runtime's own report is a log record with a stack.
Cli.main(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  (program) => NodeRuntime.runMain(program, { disableErrorReporting: true, teardown })
)
