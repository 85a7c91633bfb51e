import { defineProject, mergeConfig } from "vitest/config"
import { shared } from "../../vitest.shared.js"

// test/Cli.test.ts starts the package's bin, which runs the bundle the global setup brings up to date.
export default mergeConfig(shared, defineProject({
  test: { name: "simulator", globalSetup: ["../../test/support/bundles.ts"] }
}))
