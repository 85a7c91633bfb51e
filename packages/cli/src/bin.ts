/**
 * The `intercom-scroll` executable, bundled into one script that bin/intercom-scroll.js runs from a V8 code cache, with
 * the V8 flags it sets first.
 */
import * as Cli from "./Cli.js"

Cli.runMain(Cli.main(process.argv))
