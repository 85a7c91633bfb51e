/**
 * TEMPORARY (until stage 3 of #19): a client-only process, for the process tests, until `intercom-scroll fleet sync`
 * exists. `tsx client.ts --database URL --workspaces FILE --resources users[,…] --run NAME`: sends `Sync` to every
 * workspace, prints one JSON line per workspace as it answers, and exits 0 only if every workspace completed.
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import type { Resource } from "@intercom-scroll/core"
import { SyncDatabase } from "@intercom-scroll/sync"
import { Console, Effect, Exit } from "effect"
import { parseArgs } from "node:util"
import { Fleet, WorkspaceConfig, WorkspaceSync } from "../../src/index.js"

const { values } = parseArgs({
  options: {
    database: { type: "string" },
    workspaces: { type: "string" },
    resources: { type: "string", default: "users" },
    run: { type: "string" }
  }
})

Effect.gen(function*() {
  const database = yield* SyncDatabase.parse(values.database ?? "")
  const workspaces = yield* WorkspaceConfig.readFile(values.workspaces ?? "")
  const resources = (values.resources ?? "users").split(",") as [Resource.Resource, ...Array<Resource.Resource>]
  const run = values.run ?? `run-${Date.now()}`
  const exits = yield* Effect.forEach(workspaces, (workspace) =>
    WorkspaceSync.sync(workspace, { resources, run }).pipe(
      Effect.exit,
      Effect.tap((exit) =>
        Console.log(JSON.stringify(
          Exit.isSuccess(exit)
            ? { workspace: workspace.workspace, ok: true, summaries: exit.value, at: Date.now() }
            : { workspace: workspace.workspace, ok: false, error: String(exit.cause), at: Date.now() }
        ))
      )
    ), { concurrency: "unbounded" }).pipe(Effect.provide(Fleet.layerClient({ database })))
  if (!exits.every(Exit.isSuccess)) return yield* Effect.fail("not every workspace completed")
}).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain)
