/**
 * The standalone simulator: `pnpm -s simulator --port 4010 --token T [flags]` (see README.md).
 *
 * @since 0.1.0
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import * as Cli from "./Cli.js"

// Failures are reported by `Cli.main` in one line; the runtime's own report is a log record with a stack.
Cli.main(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  (program) => NodeRuntime.runMain(program, { disableErrorReporting: true })
)
