/**
 * `pnpm start`: the main job (see internal/quickstart.ts), with the CLI's platform, one-line failures and exit codes.
 */
import * as Cli from "./Cli.js"
import * as Quickstart from "./internal/quickstart.js"

// `pnpm start` takes no flags: advice that names one names the CLI's command that runs the same export.
Cli.runMain(Cli.reportFailure(Quickstart.run(), { flagsOf: Quickstart.sameExport }))
