/**
 * A copy of the workspace's users in SQLite that stays true: `Sync.run` of @intercom-scroll/sync upserts every user
 * into `intercom_users`, page by page, and marks deleted the rows Intercom no longer has. Run it again (every few
 * hours, from cron) and it updates the same table. Then a query of the copy.
 *
 * The client is the one for production (INTERCOM_ACCESS_TOKEN, INTERCOM_REGION, INTERCOM_BASE_URL). Without a token, an
 * Intercom simulator started in this process stands in, and asks for one restart on page 5.
 */
import { FileSystem, Path } from "@effect/platform"
import { NodeContext, NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { IntercomClient } from "@intercom-scroll/core"
import { Embedded } from "@intercom-scroll/simulator"
import { Sync } from "@intercom-scroll/sync"
import { Console, Effect, Layer } from "effect"

// In out/ of the directory you run it from.
const database = "out/intercom.sqlite"

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const file = (yield* Path.Path).resolve(database)
  // A name stays bound to the Intercom workspace of its first sync (another's token is refused, WorkspaceMismatch):
  // the simulator started here, a workspace of its own, syncs under a name of its own.
  const workspace = (yield* Embedded.Target)._tag === "Simulated" ? "simulated" : "example"
  const summary = yield* Sync.run("users", { workspace })
  yield* Console.log(
    `synced ${summary.resource} of ${workspace} into ${file}: ${summary.inserted} inserted, ${summary.updated} updated, ` +
      `${summary.unchanged} unchanged, ${summary.deleted} deleted, ${summary.restarts} restart${summary.restarts === 1 ? "" : "s"}`
  )
  // The copy is a table like any other: the typed columns for what people query most, `record` for every field.
  const domains = yield* sql<{ domain: string; users: number }>`
    SELECT substr(email, instr(email, '@') + 1) AS domain, count(*) AS users
    FROM ${sql(Sync.tables.users)}
    WHERE workspace = ${workspace} AND deleted_at IS NULL AND email IS NOT NULL
    GROUP BY domain ORDER BY users DESC, domain LIMIT 3`
  for (const { domain, users } of domains) yield* Console.log(`${String(users).padStart(5)}  ${domain}`)
})

const Database = Layer.unwrapEffect(Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  yield* fs.makeDirectory("out", { recursive: true })
  return SqliteClient.layer({ filename: database })
}))

const Intercom = IntercomClient.layerConfig().pipe(
  Layer.provide(NodeHttpClient.layerUndici),
  Layer.provideMerge(Embedded.layer({
    workspaces: [{ token: "dG9rOmV4YW1wbGU6MTIzNA==", users: 2_000, faults: { restartAt: [5] } }]
  }))
)

program.pipe(
  Effect.provide(Layer.mergeAll(Intercom, Database.pipe(Layer.provideMerge(NodeContext.layer)))),
  NodeRuntime.runMain
)
