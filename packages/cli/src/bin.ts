/**
 * The `intercom-scroll` executable.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import * as Cli from "./Cli.js"

// Errors are reported by Cli.main as one line; runMain's own reporting would add a stack trace.
Cli.main(process.argv).pipe(
  Effect.provide(Cli.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown: Cli.teardown })
)
