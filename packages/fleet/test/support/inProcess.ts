/**
 * A fleet in this process, for the tests of what a real runner leaves in its database (`WorkspaceSync.prune`,
 * `FleetStatus.read`): two workspaces on the simulator answered in process, their tokens, and a fresh database of each
 * dialect.
 */
import { SyncDatabase } from "@intercom-scroll/sync"
import { PostgresDatabase } from "@intercom-scroll/testing"
import { ConfigProvider, Duration, Effect, Layer, Redacted } from "effect"
import { join } from "node:path"
import { Secrets, WorkspaceConfig } from "../../src/index.js"
import { tempDir } from "./processes.js"

export const workspace = (name: string) =>
  new WorkspaceConfig.WorkspaceConfig({ workspace: name, baseUrl: "http://localhost:4010", tokenEnv: `${name.toUpperCase()}_TOKEN` })

export const acme = workspace("acme")
export const globex = workspace("globex")
// globex is slow (its two requests take a second), so that one of its syncs can be under way at the cutoff.
export const simulated = {
  workspaces: [{ token: "acme", users: 150 }, { token: "globex", users: 50, faults: { latency: Duration.millis(500) } }]
}

export const tokens = Secrets.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
  new Map([["ACME_TOKEN", "acme"], ["GLOBEX_TOKEN", "globex"]])
))))

export const databases = {
  sqlite: Effect.map(tempDir("fleet-in-process-"), (dir) => SyncDatabase.Database.Sqlite({ filename: join(dir, "fleet.db") })),
  postgres: Effect.flatMap(Effect.orDie(PostgresDatabase.make), (url) => Effect.orDie(SyncDatabase.parse(Redacted.value(url))))
}
