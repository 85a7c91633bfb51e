/**
 * `pnpm start`: the main job (see Quickstart.ts), with the CLI's platform, one-line failures and exit codes.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import * as Cli from "./Cli.js"
import * as Quickstart from "./Quickstart.js"

Quickstart.run().pipe(
  Cli.reportFailure,
  Effect.provide(Cli.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown: Cli.teardown })
)
