/**
 * packages/fleet/README.md's library route, kept here so that it is type-checked; test/readme.test.ts holds the two
 * together. It needs a PostgreSQL and tokens: `DATABASE_URL=postgres://… ACME_TOKEN=… node --import tsx
 * src/fleet-readme.ts runner` on each machine, then `DATABASE_URL=postgres://… node --import tsx src/fleet-readme.ts
 * sync` beside a workspaces.json.
 */
import { NodeFileSystem, NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { Fleet, Secrets, WorkspaceConfig, WorkspaceSync } from "@intercom-scroll/fleet"
import { SyncDatabase } from "@intercom-scroll/sync"
import { Config, Console, Effect, Layer } from "effect"

// Every process of the fleet names the same database (the password in PGPASSWORD, out of ps).
const database = Effect.flatMap(Config.string("DATABASE_URL"), SyncDatabase.parse)

// A runner hosts the workspaces the cluster gives it, each token read from its own environment (tokenEnv).
const Runner = Layer.unwrapEffect(Effect.gen(function*() {
  const port = yield* Config.port("RUNNER_PORT").pipe(Config.withDefault(34431))
  const host = yield* Config.string("RUNNER_HOST").pipe(Config.withDefault("127.0.0.1")) // what the others dial
  return Fleet.layerRunner({ database: yield* database, host, port, maxSyncs: 4, schedules: false })
})).pipe(Layer.provide([NodeHttpClient.layerUndici, Secrets.layerConfig]))

// A client sends Sync to each workspace of the file and waits for every answer.
const Client = Layer.unwrapEffect(Effect.map(database, (database) => Fleet.layerClient({ database })))
const syncAll = Effect.gen(function*() {
  const workspaces = yield* WorkspaceConfig.readFile("workspaces.json")
  const run = `nightly-${new Date().toISOString()}` // a name sent again is answered, not synced again
  yield* Effect.forEach(workspaces, (workspace) =>
    WorkspaceSync.sync(workspace, { resources: ["users"], run }).pipe(
      Effect.tap((runs) => Effect.forEach(runs, (run) => Console.log(`${run.workspace} ${run.resource}: ${run.inserted} new, ${run.deleted} deleted`)))
    ), { concurrency: 100, discard: true }) // ~66 KB of this process each while it waits
}).pipe(Effect.provide([Client, NodeFileSystem.layer]))

if (process.argv[2] === "runner") NodeRuntime.runMain(Layer.launch(Runner)) // serves until SIGTERM or Ctrl-C
else NodeRuntime.runMain(syncAll)
