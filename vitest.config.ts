import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    // Vitest's default on 2 cores is one worker, one file at a time: the process tests, which mostly wait on their
    // processes and the network, would hold the only worker while a core idles. Two files at once, one per core (three
    // made the CPU-bound property tests and the short-expiry tests time out on a loaded machine). As many workers at
    // least: with fewer, the pool ends a worker it finds idle and loses the files it was to run next when they are
    // not isolated (below).
    maxWorkers: 2,
    minWorkers: 2,
    // A worker runs its files one after another in one process, rather than a fresh process for each file: loading
    // effect, the platform and our packages anew cost each file a second and a half of CPU (packages/bench/NOTES.md,
    // "The test suite's time"). What a file leaves in the process (effect's global values, such as the workspace
    // locks) the next file of that worker finds: tests name their own workspaces and release what they take. (Set
    // here: vitest reads the pool's isolation from the root config, not a project's.)
    isolate: false,
    projects: ["packages/*/vitest.config.ts", "test/vitest.config.ts"]
  }
})
