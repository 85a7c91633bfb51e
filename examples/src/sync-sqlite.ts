/**
 * Every user upserted into SQLite, then queried. The upsert makes a restart harmless, so dedupe is off here:
 * records a restart sends again just overwrite themselves.
 *
 * The client is the one for production (INTERCOM_ACCESS_TOKEN, INTERCOM_REGION, INTERCOM_BASE_URL). Without a token, an
 * Intercom simulator started in this process stands in, and asks for one restart on page 5.
 */
import { FileSystem, Path } from "@effect/platform"
import { NodeContext, NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { IntercomClient, Scroll } from "@intercom-scroll/core"
import { Embedded } from "@intercom-scroll/simulator"
import { Console, Effect, Layer, Stream } from "effect"

// In out/ of the directory you run it from.
const database = "out/users.sqlite"

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const file = (yield* Path.Path).resolve(database)
  yield* sql`CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT,
    name TEXT,
    updated_at INTEGER,
    record TEXT NOT NULL
  )`

  let received = 0
  yield* Scroll.users({ dedupe: false }).pipe(
    Stream.grouped(500),
    Stream.mapEffect((batch) =>
      sql.withTransaction(Effect.forEach(batch, (user) => {
        received++
        const row = {
          id: user.id,
          email: user.email ?? null,
          name: user.name ?? null,
          updated_at: user.updated_at ?? null,
          record: JSON.stringify(user)
        }
        return sql`INSERT INTO users ${sql.insert(row)}
          ON CONFLICT(id) DO UPDATE SET email = excluded.email, name = excluded.name,
            updated_at = excluded.updated_at, record = excluded.record`
      }, { discard: true }))
    ),
    Stream.runDrain
  )

  const [{ users }] = yield* sql<{ users: number }>`SELECT count(*) AS users FROM users`
  yield* Console.log(`received ${received} records, stored ${users} users in ${file}`)
  const domains = yield* sql<{ domain: string; users: number }>`
    SELECT substr(email, instr(email, '@') + 1) AS domain, count(*) AS users
    FROM users WHERE email IS NOT NULL GROUP BY domain ORDER BY users DESC, domain LIMIT 3`
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
