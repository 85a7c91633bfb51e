/**
 * A fresh PostgreSQL database on the server that the test run's `globalSetup` started: one per test file (or per
 * layer built), so that files running in parallel never see each other's tables or locks.
 */
import type { SqlClient, SqlError } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Duration, Effect, Layer, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { inject } from "vitest"

declare module "vitest" {
  export interface ProvidedContext {
    /** The maintenance database's URL of the server started by `globalSetup`. */
    readonly intercomScrollPostgresUrl: string
  }
}

/** The server's URL, as `globalSetup` provided it. */
export const serverUrl = (): string => {
  const url = inject("intercomScrollPostgresUrl")
  if (url === undefined) {
    throw new Error("No PostgreSQL server: add @intercom-scroll/testing's globalSetup to the project's vitest config")
  }
  return url
}

/** Creates a database with a random name and gives its URL. The server is thrown away whole, so nothing is dropped. */
export const make: Effect.Effect<Redacted.Redacted<string>, SqlError.SqlError> = Effect.gen(function*() {
  const server = new URL(serverUrl())
  const name = `t_${randomBytes(8).toString("hex")}`
  const admin = yield* PgClient.make({ url: Redacted.make(server.href), maxConnections: 1 })
  // The name is ours (hex digits), never input: CREATE DATABASE takes no parameters.
  yield* admin.unsafe(`CREATE DATABASE ${name}`)
  const database = new URL(server.href)
  database.pathname = `/${name}`
  return Redacted.make(database.href)
}).pipe(Effect.scoped, Effect.provide(Reactivity.layer))

/** A `PgClient` (and `SqlClient`) on a fresh database. */
export const layer = (
  options: { readonly maxConnections?: number } = {}
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError.SqlError> =>
  Layer.unwrapEffect(Effect.map(make, (url) => layerAt(url, options)))

/** A `PgClient` (and `SqlClient`) on a database made by `make`: two of them are two processes' views of one database. */
export const layerAt = (
  url: Redacted.Redacted<string>,
  options: { readonly maxConnections?: number } = {}
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError.SqlError> =>
  PgClient.layer({
    url,
    maxConnections: options.maxConnections ?? 4,
    applicationName: "intercom-scroll-test",
    // A test's own view of the database, not what it tests: @effect/sql-pg's 5 s for the first answer was once too
    // short for a full run's loaded machine (the fleet's partition case, "PgClient: Connection timed out").
    connectTimeout: Duration.seconds(30)
  })
