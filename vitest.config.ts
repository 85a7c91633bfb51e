import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    // Vitest's default on 2 cores is one worker, one file at a time: the process tests, which mostly wait on their
    // processes and the network, would hold the only worker while a core idles. Two files at once, one per core (three
    // made the CPU-bound property tests and the short-expiry tests time out on a loaded machine). Each file keeps a
    // process of its own: files sharing one (`isolate: false`, a second and a half of CPU less a file) broke the
    // fleet's entity tests, which found the cluster's state of the file before them.
    maxWorkers: 2,
    projects: ["packages/*/vitest.config.ts", "test/vitest.config.ts"]
  }
})
