import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

// TEST_CPU_REPORT=FILE: each test file appends the CPU its process and children spent (test/support/cpuReport.ts).
const cpuReport = process.env.TEST_CPU_REPORT === undefined
  ? []
  : [fileURLToPath(new URL("./test/support/cpuReport.ts", import.meta.url))]

// Before each file: what a file before it in the same worker process left behind, undone (test/support/freshFile.ts).
const freshFile = fileURLToPath(new URL("./test/support/freshFile.ts", import.meta.url))

// Shared by every project: tests live beside their package, run in Node, and never reach the internet.
export const shared = defineConfig({
  test: {
    include: ["test/**/*.test.ts", "*.test.ts"],
    environment: "node",
    testTimeout: 30_000,
    hookTimeout: 30_000,
    setupFiles: [freshFile, ...cpuReport]
  }
})
