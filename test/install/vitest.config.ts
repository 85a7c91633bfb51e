import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

// Not one of the projects `pnpm test` runs: it needs the npm registry and takes minutes. `pnpm test:install` runs it
// (and .ci/run, after `pnpm test`).
export default defineConfig({
  test: {
    name: "install",
    root: here("."),
    include: ["*.test.ts"],
    environment: "node",
    testTimeout: 120_000,
    hookTimeout: 900_000,
    // A PostgreSQL server for the run, which the global CLI syncs into (global.test.ts).
    globalSetup: [here("../../packages/testing/src/globalSetup.ts")],
    // Each file builds the workspace before it packs: two builds at once would write the same files.
    fileParallelism: false
  }
})
