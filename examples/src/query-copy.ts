/**
 * What changed in Intercom since the last sync, and who was deleted, asked of the copy `Sync.run` keeps: each row
 * records the run that last changed it, by storing its current version or by marking it deleted (`changed_run`), and
 * when a complete run no longer saw it (`deleted_at`). Two syncs here, with Intercom adding and removing users between
 * them.
 *
 * The client is the one for production (INTERCOM_ACCESS_TOKEN, INTERCOM_REGION, INTERCOM_BASE_URL), and then the two
 * syncs see whatever changed in your workspace meanwhile. Without a token, an Intercom simulator started in this
 * process stands in: 1,000 users, and at the second sync's first page 25 users added and 10 removed.
 */
import { FileSystem, Path } from "@effect/platform"
import { NodeContext, NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { IntercomClient } from "@intercom-scroll/core"
import { Embedded } from "@intercom-scroll/simulator"
import { Sync } from "@intercom-scroll/sync"
import { Console, Effect, Layer } from "effect"

// A copy of its own in out/ of the directory you run it from, started afresh each time.
const database = "out/query-copy.sqlite"

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const users = sql(Sync.tables.users)
  const first = yield* Sync.run("users", { workspace: "example" })
  yield* Console.log(`first sync into ${(yield* Path.Path).resolve(database)}: ${first.inserted} inserted`)
  const last = yield* Sync.run("users", { workspace: "example" })
  yield* Console.log(`second sync: ${last.inserted} inserted, ${last.updated} updated, ${last.deleted} deleted`)

  // Everything since the sync before, by run id: `>`, not `= last`, which would miss what a failed run in between
  // wrote (a failed run's writes are real: it marks nothing deleted, and the next run finds them unchanged).
  const since = yield* sql<{ id: string; email: string | null; isNew: number; deletedAt: string | null }>`
    SELECT id, email, first_seen_run > ${first.runId} AS isNew, deleted_at AS deletedAt FROM ${users}
    WHERE workspace = 'example' AND changed_run > ${first.runId} ORDER BY id`
  // New or changed, and deleted: rows a complete run did not see. They stay, with their last version, for as long as
  // you keep them.
  const changed = since.filter((row) => row.deletedAt === null)
  const deleted = since.filter((row) => row.deletedAt !== null)
  yield* Console.log(`changed since the last sync: ${changed.length} (${changed.filter((row) => row.isNew).length} new)`)
  yield* Console.log(`deleted: ${deleted.length}`)
  for (const row of deleted) yield* Console.log(`  ${row.id}  ${row.email ?? "(no email)"}  deleted at ${row.deletedAt}`)
})

const Database = Layer.unwrapEffect(Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  yield* fs.makeDirectory("out", { recursive: true })
  yield* fs.remove(database, { force: true })
  return SqliteClient.layer({ filename: database })
}))

const Intercom = IntercomClient.layerConfig().pipe(
  Layer.provide(NodeHttpClient.layerUndici),
  Layer.provideMerge(Embedded.layer({
    workspaces: [{
      token: "dG9rOmV4YW1wbGU6MTIzNA==",
      users: 1_000,
      // The first sync asks for 11 pages (10 of users and the empty one); these happen at the second sync's first.
      faults: { mutations: [{ atPage: 12, resource: "users", add: 25, remove: 10 }] }
    }]
  }))
)

program.pipe(
  Effect.provide(Layer.mergeAll(Intercom, Database.pipe(Layer.provideMerge(NodeContext.layer)))),
  NodeRuntime.runMain
)
