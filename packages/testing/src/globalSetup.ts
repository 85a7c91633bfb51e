/**
 * A vitest `globalSetup`: one PostgreSQL server for the whole test run, whose URL test files read through
 * `PostgresDatabase` (`inject`). Name this file in the vitest config's `test.globalSetup` (the root
 * vitest.config.ts does, for the one project `pnpm test` runs).
 *
 * Projects that name it share the one server (each test makes a database of its own on it): vitest loads a
 * project's global setup apart from the others', so the server is kept on the main process's `globalThis`, and
 * stopped when the last project's teardown runs. A server costs a few seconds of CPU to create (initdb) and start.
 */
import type { TestProject } from "vitest/node"
import * as PostgresServer from "./PostgresServer.js"

interface Shared {
  readonly server: Promise<PostgresServer.Server>
  projects: number
}

const key = Symbol.for("@intercom-scroll/testing/globalSetup")

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const global = globalThis as { [key]?: Shared }
  const shared = global[key] ??= { server: PostgresServer.start(), projects: 0 }
  shared.projects++
  const server = await shared.server
  project.provide("intercomScrollPostgresUrl", server.url)
  return async () => {
    if (--shared.projects > 0) return
    delete global[key]
    await server.stop()
  }
}
