import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    // Vitest's default on 2 cores is one worker, one file at a time: the process tests, which mostly wait on their
    // processes and the network, would hold the only worker while a core idles. Two files at once, one per core (three
    // made the CPU-bound property tests and the short-expiry tests time out on a loaded machine); `minWorkers` too, or
    // the pool ends a worker it thinks idle and loses the files queued on it.
    maxWorkers: 2,
    minWorkers: 2,
    // A worker runs the files of a project one after the other in one process (a new one for each project), so that
    // effect, the platform and our packages load once a worker, not once a file: 1.5–5 s of CPU a file. What a file
    // leaves in the process for the next is undone by test/support/freshFile.ts. Both are root options: the pool
    // reads them from here, not from a project.
    isolate: false,
    projects: ["packages/*/vitest.config.ts", "test/vitest.config.ts"]
  }
})
