/**
 * `pnpm start`: the main job (see Quickstart.ts), with the CLI's platform, one-line failures and exit codes.
 */
import * as Cli from "./Cli.js"
import * as Quickstart from "./Quickstart.js"

Cli.runMain(Cli.reportFailure(Quickstart.run()))
