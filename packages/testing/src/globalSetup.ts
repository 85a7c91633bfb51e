/**
 * A vitest `globalSetup`: one PostgreSQL server for the whole test run of a project, whose URL test files read
 * through `PostgresDatabase` (`inject`). Name this file in the project's `test.globalSetup`.
 */
import type { TestProject } from "vitest/node"
import * as PostgresServer from "./PostgresServer.js"

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await PostgresServer.start()
  project.provide("intercomScrollPostgresUrl", server.url)
  return server.stop
}
