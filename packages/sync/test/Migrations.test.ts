/**
 * The sync's tables come from @effect/sql's Migrator, recorded in a table of their own, and a database migrated by a
 * newer version is refused, untouched. Each test starts from an empty database.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Effect, Exit, Layer, Option } from "effect"
import { Sync } from "../src/index.js"
import * as Databases from "./support/databases.js"
import { freshToken, intercom } from "./support/world.js"

const tablesOf = (sql: SqlClient.SqlClient) =>
  sql.onDialectOrElse({
    pg: () => sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'`,
    orElse: () => sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`
  }).pipe(Effect.map((rows) => rows.map((row) => row.name).filter((name) => !name.startsWith("sqlite_")).sort()))

describe.each(Databases.both)("Sync.migrate on %s", (_name, database) => {
  it.effect("creates the tables and records itself in intercom_sync_migrations, not the Migrator's default", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { dialect } = yield* Databases.TestDatabase
      yield* Sync.migrate
      const tables = yield* tablesOf(sql)
      expect(tables).toEqual([
        "intercom_companies",
        "intercom_leads",
        ...(dialect === "sqlite" ? ["intercom_sync_locks"] : []),
        "intercom_sync_migrations",
        "intercom_sync_runs",
        "intercom_users"
      ].sort())
      const recorded = yield* sql<{ migration_id: number; name: string }>`SELECT migration_id, name FROM intercom_sync_migrations`
      expect(recorded.map((row) => [Number(row.migration_id), row.name])).toEqual([[1, "create_tables"]])
      // Again: nothing to do, nothing fails.
      yield* Sync.migrate
      expect(yield* tablesOf(sql)).toEqual(tables)
    }).pipe(Effect.provide(database)))

  it.effect("refuses a database migrated by a newer version, with a typed error, and leaves it alone", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Sync.migrate
      yield* sql`INSERT INTO intercom_sync_migrations ${sql.insert({ migration_id: 7, name: "from_the_future" })}`
      const migrated = yield* Effect.exit(Sync.migrate)
      const error = Exit.isFailure(migrated) ? Option.getOrThrow(Cause.failureOption(migrated.cause)) : undefined
      expect(error?._tag).toBe("SchemaTooNew")
      expect(error?.message).toMatch(/lists migration 7, and this version knows only 1\. Upgrade @intercom-scroll\/sync/)
      const token = freshToken()
      const ran = yield* Effect.exit(Effect.provide(Sync.run("users", { workspace: token }), intercom(token)))
      expect(Exit.isFailure(ran) && Option.getOrThrow(Cause.failureOption(ran.cause))._tag).toBe("SchemaTooNew")
      const [{ n }] = yield* sql<{ n: number }>`SELECT CAST(count(*) AS INTEGER) AS n FROM intercom_sync_runs`
      expect(Number(n)).toBe(0)
    }).pipe(Effect.provide(database)))

  it.effect("two processes migrating a fresh database at once both end with the tables in place", () =>
    Effect.gen(function*() {
      const { client } = yield* Databases.TestDatabase
      // Two clients, as two processes would have, on the real clock (a lost race is looked at again 200 ms later).
      const migrateIn = Effect.provide(Sync.migrate, client)
      yield* Effect.all([migrateIn, migrateIn, migrateIn], { concurrency: "unbounded" }).pipe(
        Effect.withClock(Clock.make())
      )
      const sql = yield* SqlClient.SqlClient
      const recorded = yield* sql<{ migration_id: number }>`SELECT migration_id FROM intercom_sync_migrations`
      expect(recorded.map((row) => Number(row.migration_id))).toEqual([1])
    }).pipe(Effect.provide(database)))
})

it.effect("a SqlClient of another dialect is refused with a typed error", () =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(Sync.migrate)
    expect(Exit.isFailure(exit) && Option.getOrThrow(Cause.failureOption(exit.cause))._tag).toBe("UnsupportedDialect")
  }).pipe(Effect.provide(Layer.effect(SqlClient.SqlClient, Effect.map(SqlClient.SqlClient, (sql) => ({
    ...sql,
    onDialectOrElse: (options: { readonly orElse: () => unknown; readonly mysql?: () => unknown }) =>
      (options.mysql ?? options.orElse)()
  }) as unknown as SqlClient.SqlClient)).pipe(Layer.provide(Databases.sqlite)))))
