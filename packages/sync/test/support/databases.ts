/**
 * The two dialects the suite runs over: a SQLite file (not `:memory:`, since two clients must share it) and a fresh
 * PostgreSQL database on the server the run's globalSetup started. Each also gives more clients on the same database:
 * two clients are what two processes would be.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { PostgresDatabase } from "@intercom-scroll/testing"
import { type ConfigError, Context, Effect, Layer } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"

export interface Database {
  readonly dialect: "sqlite" | "pg"
  /** Another client on the same database, as a second process would have. */
  readonly client: Layer.Layer<SqlClient.SqlClient, SqlError.SqlError | ConfigError.ConfigError>
}

export class TestDatabase extends Context.Tag("test/TestDatabase")<TestDatabase, Database>() {}

const provideClient = (database: Database) =>
  Layer.merge(Layer.succeed(TestDatabase, database), database.client)

export const sqlite: Layer.Layer<TestDatabase | SqlClient.SqlClient, SqlError.SqlError | ConfigError.ConfigError> = Layer.unwrapScoped(
  Effect.gen(function*() {
    const directory = yield* Effect.acquireRelease(
      Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "intercom-scroll-sync-"))),
      (directory) => Effect.promise(() => fs.rm(directory, { recursive: true, force: true }))
    )
    const filename = path.join(directory, "sync.sqlite")
    return provideClient({ dialect: "sqlite", client: SqliteClient.layer({ filename }) })
  })
)

export const postgres: Layer.Layer<TestDatabase | SqlClient.SqlClient, SqlError.SqlError | ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(PostgresDatabase.make, (url) => provideClient({ dialect: "pg", client: PostgresDatabase.layerAt(url) }))
)

/** For `describe.each`: one test body, two layers. */
export const both = [["SQLite", sqlite], ["PostgreSQL", postgres]] as const

/**
 * A session of another client (another process, as an operator's psql is) that runs `statements` in a transaction it
 * leaves open until the scope closes. Its server process id.
 */
export const openTransaction = (statements: (workspace: string) => string, workspace: string) =>
  Effect.gen(function*() {
    const { client } = yield* TestDatabase
    // Built in the scope: the client's pool lives until the transaction ends.
    const sql = Context.get(yield* Layer.build(client), SqlClient.SqlClient)
    const connection = yield* sql.reserve
    yield* Effect.addFinalizer(() => Effect.ignore(connection.executeRaw("ROLLBACK", [])))
    const [row] = (yield* connection.execute("SELECT pg_backend_pid() AS pid", [], undefined)) as ReadonlyArray<{ pid: number }>
    yield* connection.executeRaw(`BEGIN; ${statements(workspace)}`, [])
    return row.pid
  })
