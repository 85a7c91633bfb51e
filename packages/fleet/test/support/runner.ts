/**
 * TEMPORARY (until stage 3 of #19): a fleet runner as a process, for the process tests, until `intercom-scroll fleet
 * runner` exists. `tsx runner.ts --database URL --port P [--host H] [--max-syncs N]`; serves until SIGTERM.
 */
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { SyncDatabase } from "@intercom-scroll/sync"
import { Effect, Layer, Logger } from "effect"
import { parseArgs } from "node:util"
import { Fleet, Secrets } from "../../src/index.js"

const { values } = parseArgs({
  options: {
    database: { type: "string" },
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    "max-syncs": { type: "string", default: "4" }
  }
})

Effect.gen(function*() {
  const database = yield* SyncDatabase.parse(values.database ?? "")
  return yield* Layer.launch(
    Fleet.layerRunner({
      database,
      host: values.host,
      port: Number(values.port),
      maxSyncs: Number(values["max-syncs"])
    }).pipe(Layer.provide([NodeHttpClient.layerUndici, Secrets.layerConfig]))
  )
}).pipe(
  // One JSON object a line, which the tests read.
  Effect.provide(Logger.json),
  (effect) => NodeRuntime.runMain(effect, { disablePrettyLogger: true })
)
