/**
 * The `intercom-scroll` executable.
 */
import * as Cli from "./Cli.js"

Cli.runMain(Cli.main(process.argv))
