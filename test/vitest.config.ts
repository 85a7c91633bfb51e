import { defineProject, mergeConfig } from "vitest/config"
import { shared } from "../vitest.shared.js"

// The bins' bundles brought up to date; the test run's one PostgreSQL server (sync.test.ts makes a database on it).
export default mergeConfig(shared, defineProject({
  test: { name: "integration", globalSetup: ["./support/bundles.ts", "../packages/testing/src/globalSetup.ts"] }
}))
