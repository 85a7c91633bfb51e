/**
 * The `intercom-scroll` executable.
 */
import * as v8 from "node:v8"
import * as Cli from "./Cli.js"

// V8's defaults suit a server with memory to spare; an export is one long burst of short-lived pages. Each flag is read
// when it applies, so setting them here, before the first request, is in time (packages/bench/NOTES.md, "Memory").
// - undici parses HTTP with a WebAssembly llhttp, which V8 recompiles with its optimising compiler at the first request:
//   ~33 MiB of compiler memory at its peak for a parser that only reads a page's headers. Liftoff's code does that as fast.
v8.setFlagsFromString("--liftoff-only")
// - A full GC once the old generation has doubled since the last one, where V8 lets it grow up to 4×: pages that survive
//   a young GC wait there for the next full one, with their bytes.
v8.setFlagsFromString("--heap-growing-percent=100")
// - The young generation keeps the size it has now (8 MiB in the bundle) instead of growing to 32 MiB.
v8.setFlagsFromString("--semi-space-growth-factor=1")

Cli.runMain(Cli.main(process.argv))
