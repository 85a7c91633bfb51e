import { defineConfig } from "vitest/config"

// Shared by every project: tests live beside their package, run in Node, and never reach the internet.
export const shared = defineConfig({
  test: {
    include: ["test/**/*.test.ts", "*.test.ts"],
    environment: "node",
    testTimeout: 30_000,
    hookTimeout: 30_000,
  }
})
