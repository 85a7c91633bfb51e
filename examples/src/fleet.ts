/**
 * A one-runner fleet on this machine: the `WorkspaceSync` entities of @intercom-scroll/fleet on a cluster runner over
 * a SQLite file (out/fleet.sqlite), syncing six workspaces of the embedded simulator into the sync tables, four at a
 * time (`maxSyncs`), one scroll per workspace. Run it twice: the second run finds every user unchanged.
 *
 * The same, as processes (a runner per machine, PostgreSQL for more than one):
 *   intercom-scroll fleet runner --database sqlite:out/fleet.sqlite --port 34431
 *   intercom-scroll fleet sync --database sqlite:out/fleet.sqlite --workspaces workspaces.json
 */
import { Path } from "@effect/platform"
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Fleet, Secrets, WorkspaceConfig, WorkspaceSync } from "@intercom-scroll/fleet"
import { Simulator } from "@intercom-scroll/simulator"
import { Sync, SyncDatabase } from "@intercom-scroll/sync"
import { Console, DateTime, Duration, Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import { createServer } from "node:net"

const names = ["acme", "globex", "initech", "umbrella", "hooli", "stark"]
/** Each workspace of the simulator, by its token; some latency, so that syncs overlap. */
const simulated = names.map((name, i) => ({ token: `${name}-token`, users: 1_000 + 250 * i, faults: { latency: Duration.millis(10) } }))

/** A free port on the loopback interface, for the runner to listen on. */
const freePort = Effect.async<number>((resume) => {
  const server = createServer().listen(0, "127.0.0.1", () => {
    const address = server.address()
    server.close(() => resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0)))
  })
})

// In out/ of the directory you run it from.
const file = "out/fleet.sqlite"

const program = Effect.gen(function*() {
  const baseUrl = yield* Simulator.baseUrl
  // The workspaces file's content: a name, where its API is, and the variable that holds its token on the runners.
  const workspaces = names.map((name) =>
    new WorkspaceConfig.WorkspaceConfig({ workspace: name, baseUrl, tokenEnv: `${name.toUpperCase()}_TOKEN` })
  )
  const run = `example-${DateTime.formatIso(yield* DateTime.now)}`
  yield* Effect.forEach(workspaces, (workspace) =>
    WorkspaceSync.sync(workspace, { resources: ["users"], run }).pipe(
      Effect.tap((runs) =>
        Effect.forEach(runs, (users) =>
          Console.log(
            `${workspace.workspace.padEnd(9)} ${String(users.inserted + users.updated + users.unchanged).padStart(5)} users: ${users.inserted} inserted, ${users.updated} updated, ${users.unchanged} unchanged, ${users.deleted} deleted`
          ))
      )
    ), { concurrency: "unbounded", discard: true })

  const sql = yield* SqlClient.SqlClient
  const live = yield* sql<{ live: number }>`
    SELECT count(*) AS live FROM ${sql(Sync.tables.users)} WHERE deleted_at IS NULL`.pipe(Effect.map(([row]) => row?.live ?? 0))
  yield* Console.log(`${workspaces.length} workspaces synced; ${live} users in ${(yield* Path.Path).resolve(file)}`)
})

// Where the runner finds each workspace's token. On a real fleet `Secrets.layerConfig` reads the variable tokenEnv
// names from the runner's environment; a layer of your own can read a vault. Here, the simulator's tokens.
const tokens = Secrets.layer((workspace) =>
  names.includes(workspace.workspace)
    ? Effect.succeed(Redacted.make(`${workspace.workspace}-token`))
    : Effect.fail(new Secrets.MissingToken({ workspace: workspace.workspace, tokenEnv: workspace.tokenEnv }))
)

const Runner = Layer.unwrapEffect(Effect.gen(function*() {
  const database = yield* SyncDatabase.parse(`sqlite:${file}`)
  return Fleet.layerRunner({ database, port: yield* freePort, maxSyncs: 4 })
})).pipe(
  Layer.provide([NodeHttpClient.layerUndici, tokens])
)

program.pipe(
  Effect.provide(Layer.mergeAll(Runner, Simulator.layerServer({ workspaces: simulated }), Path.layer)),
  // The runner's log (what it receives, starts and ends) is for an operator; warnings still show.
  Logger.withMinimumLogLevel(LogLevel.Warning),
  NodeRuntime.runMain
)
