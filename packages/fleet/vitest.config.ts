import { defineProject, mergeConfig } from "vitest/config"
import { shared } from "../../vitest.shared.js"

// One PostgreSQL server for the project's run (the process tests'); each test makes its own database on it.
export default mergeConfig(
  shared,
  defineProject({ test: { name: "fleet", globalSetup: ["../testing/src/globalSetup.ts"] } })
)
