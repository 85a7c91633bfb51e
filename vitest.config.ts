import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"
import { LongestFirst } from "./test/support/sequencer.js"

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

// TEST_CPU_REPORT=FILE: each test file appends the CPU its process and children spent (test/support/cpuReport.ts).
const cpuReport = process.env.TEST_CPU_REPORT === undefined ? [] : [here("./test/support/cpuReport.ts")]

export default defineConfig({
  test: {
    // One project for every package's tests and the process tests of test/: vitest runs its projects one after the
    // other, each on workers of its own, so seven projects left a core idle at the end of each (a long file running
    // alone) and started and loaded two workers seven times; one project's files go to whichever worker is free, the
    // longest first (test/support/sequencer.ts).
    include: ["packages/*/test/**/*.test.ts", "test/*.test.ts"],
    environment: "node",
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The bins' bundles brought up to date (the process tests run them); the run's one PostgreSQL server (sync, fleet
    // and the process tests make a database each on it).
    globalSetup: [here("./test/support/bundles.ts"), here("./packages/testing/src/globalSetup.ts")],
    // Before each file: what a file before it in the same worker process left behind, undone
    // (test/support/freshFile.ts); and a failed attempt of a test given retries said (test/support/retryReport.ts).
    setupFiles: [here("./test/support/freshFile.ts"), here("./test/support/retryReport.ts"), ...cpuReport],
    // Vitest's default on 2 cores is one worker, one file at a time: the process tests, which mostly wait on their
    // processes and the network, would hold the only worker while a core idles. Three files at once on two cores: with
    // two, a core idled through the last half of the run whenever one worker waited on real time (the fleet's runners,
    // live cases, processes) while the other ran an in-process file: 114–124 s against 95–97 s (bench NOTES, "The test
    // suite's time, a fifth time"). `minWorkers` too, or the pool ends a worker it thinks idle and loses the files
    // queued on it.
    maxWorkers: 3,
    minWorkers: 3,
    // A worker runs its files one after the other in one process, so that effect, the platform and our packages load
    // once a worker, not once a file: 1.5–5 s of CPU a file. What a file leaves in the process for the next is undone
    // by test/support/freshFile.ts.
    isolate: false,
    sequence: { sequencer: LongestFirst }
  }
})
