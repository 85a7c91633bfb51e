import { defineProject, mergeConfig } from "vitest/config"
import { shared } from "../../vitest.shared.js"

// One PostgreSQL server for the project's run; each test file makes its own database on it.
export default mergeConfig(
  shared,
  defineProject({ test: { name: "sync", globalSetup: ["../testing/src/globalSetup.ts"] } })
)
