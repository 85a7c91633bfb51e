/**
 * `pnpm start`: the main job (see internal/quickstart.ts), with the CLI's platform, one-line failures and exit codes.
 */
import * as Cli from "./Cli.js"
import * as Quickstart from "./internal/quickstart.js"

Cli.runMain(Cli.reportFailure(Quickstart.run()))
