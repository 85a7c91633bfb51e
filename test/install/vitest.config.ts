import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

// Not one of the projects `pnpm test` runs: it needs the npm registry and takes minutes. `pnpm test:install` runs it
// (and .ci/run, after `pnpm test`).
export default defineConfig({
  test: {
    name: "install",
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["*.test.ts"],
    environment: "node",
    testTimeout: 120_000,
    hookTimeout: 900_000
  }
})
