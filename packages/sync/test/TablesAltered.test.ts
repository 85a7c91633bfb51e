/**
 * A sync's tables changed by hand: a run checks its resource's view and tables before its scroll opens, so that it
 * fails without leaving Intercom's one scroll of the workspace open, says what is missing and what to do, and is
 * recorded failed. Each test starts from an empty database, which it alters.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { PostgresDatabase } from "@intercom-scroll/testing"
import { Cause, Context, Effect, Exit, Layer, Option, Redacted, TestClock } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Sync, SyncDatabase, SyncError } from "../src/index.js"
import * as Databases from "./support/databases.js"
import { freshToken, intercom, runs } from "./support/world.js"

/** Runs `alter` on the migrated tables, then a sync of 30 users: how it ended, its runs, and the scrolls it opened. */
const syncAfter = (alter: (sql: SqlClient.SqlClient, dialect: "sqlite" | "pg") => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { dialect } = yield* Databases.TestDatabase
    yield* Sync.migrate
    yield* Effect.orDie(alter(sql, dialect))
    const token = freshToken("altered")
    return yield* Effect.gen(function*() {
      const exit = yield* Effect.exit(Sync.run("users", { workspace: token }))
      const { total } = yield* (yield* Simulator.Simulator).stats
      return { exit, runs: yield* runs(token), scrollsOpened: total.scrollsOpened, token }
    }).pipe(Effect.provide(intercom(token, { workspace: { users: 30 } })))
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

describe.each(Databases.both)("a sync's tables altered by hand, on %s", (_name, database) => {
  it.effect("a table dropped: the run fails with TablesAltered before its scroll opens, and is recorded failed", () =>
    Effect.gen(function*() {
      const { exit, runs, scrollsOpened, token } = yield* syncAfter((sql, dialect) =>
        sql.unsafe(`DROP TABLE intercom_users_seen${dialect === "pg" ? " CASCADE" : ""}`)
      )
      const failure = failureOf(exit)
      expect(failure).toBeInstanceOf(SyncError.TablesAltered)
      expect(failure?.message).toMatch(
        new RegExp(
          `^The sync of workspace "${token}" met a table, view, column or key of its own missing: .*intercom_users.*\\. The sync's tables are not as its migrations made them \\(a table, view, column or key dropped or renamed by hand\\)\\. One renamed: give it its name back\\. A view dropped: create it again`
        )
      )
      // No scroll opened at Intercom, for the next run to wait out.
      expect(scrollsOpened).toBe(0)
      expect(runs.map((run) => [run.status, run.error?.startsWith("TablesAltered: The sync of workspace")])).toEqual([["failed", true]])
    }).pipe(Effect.provide(database)))

  it.effect("the view dropped, which users query: the run fails with TablesAltered, where it would go on writing the tables", () =>
    Effect.gen(function*() {
      const { exit, runs, scrollsOpened } = yield* syncAfter((sql) => sql`DROP VIEW intercom_users`)
      expect(failureOf(exit)).toBeInstanceOf(SyncError.TablesAltered)
      // The advice says how to put it back: where its definition is; and that a table dropped is a new database's.
      expect(failureOf(exit)?.message).toContain("A view dropped: create it again as a new database's first sync makes it")
      expect(failureOf(exit)?.message).toContain("pg_dump --schema-only --table NAME")
      expect(failureOf(exit)?.message).toContain("A table or column dropped, what it held is gone: sync into a new database")
      expect(scrollsOpened).toBe(0)
      expect(runs.map((run) => run.status)).toEqual(["failed"])
    }).pipe(Effect.provide(database)))

  it.effect("the view dropped and made again from its definition, in the same process: the next run completes (SQLite kept the check's failed prepare for 10 minutes)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { dialect } = yield* Databases.TestDatabase
      yield* Sync.migrate
      // The definition as a new database's first sync makes it: the same migrations, read before the drop.
      const [definition] = dialect === "pg"
        ? yield* sql<{ readonly sql: string }>`SELECT 'CREATE VIEW intercom_users AS ' || pg_get_viewdef('intercom_users'::regclass) AS sql`
        : yield* sql<{ readonly sql: string }>`SELECT sql FROM sqlite_master WHERE type = 'view' AND name = 'intercom_users'`
      yield* sql`DROP VIEW intercom_users`
      const token = freshToken("view-back")
      yield* Effect.gen(function*() {
        const failed = yield* Effect.exit(Sync.run("users", { workspace: token }))
        const failure = failureOf(failed)
        expect(failure).toBeInstanceOf(SyncError.TablesAltered)
        yield* sql.unsafe(definition!.sql)
        const summary = yield* Sync.run("users", { workspace: token })
        expect(summary.inserted).toBe(30)
      }).pipe(Effect.provide(intercom(token, { workspace: { users: 30 } })))
      const [{ count }] = yield* sql<{ readonly count: number | string }>`SELECT count(*) AS count FROM intercom_users
        WHERE workspace = ${token}`
      expect(Number(count)).toBe(30)
      expect((yield* runs(token)).map((run) => run.status)).toEqual(["failed", "complete"])
    }).pipe(Effect.provide(database)))

  it.effect("the runs table dropped: the run fails with TablesAltered before it has a row, not with the driver's SqlError", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { dialect } = yield* Databases.TestDatabase
      yield* Sync.migrate
      yield* Effect.orDie(sql.unsafe(`DROP TABLE intercom_sync_runs${dialect === "pg" ? " CASCADE" : ""}`))
      const token = freshToken("altered")
      // Met before the run's lease, row and scroll: where `Sync.run` fails outside the part that records the run.
      const exit = yield* Effect.exit(Sync.run("users", { workspace: token })).pipe(
        Effect.provide(intercom(token, { workspace: { users: 30 } }))
      )
      expect(failureOf(exit)).toMatchObject({
        _tag: "TablesAltered",
        workspace: token,
        detail: expect.stringMatching(/^(no such table: (main\.)?intercom_sync_runs|relation "intercom_sync_runs" does not exist)$/)
      })
    }).pipe(Effect.provide(database)))

  it.effect("a column a run writes renamed, which the view follows: the run fails with TablesAltered before its scroll opens, and once it has its name back the next run in the same process completes", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Sync.migrate
      yield* sql`ALTER TABLE intercom_users_records RENAME COLUMN changed_run TO changed_by_run`
      const token = freshToken("column-back")
      yield* Effect.gen(function*() {
        const failed = yield* Effect.exit(Sync.run("users", { workspace: token }))
        expect(failureOf(failed)).toMatchObject({ _tag: "TablesAltered", detail: expect.stringContaining("changed_run") })
        expect((yield* (yield* Simulator.Simulator).stats).total.scrollsOpened).toBe(0)
        // In SQLite a write prepared while the column was missing stays failed in the driver's cache 10 minutes.
        yield* sql`ALTER TABLE intercom_users_records RENAME COLUMN changed_by_run TO changed_run`
        expect((yield* Sync.run("users", { workspace: token })).inserted).toBe(30)
      }).pipe(Effect.provide(intercom(token, { workspace: { users: 30 } })))
      expect((yield* runs(token)).map((run) => run.status)).toEqual(["failed", "complete"])
    }).pipe(Effect.provide(database)))

  it.effect("another resource's table dropped: this resource's run is not stopped by it", () =>
    Effect.gen(function*() {
      const { exit, runs } = yield* syncAfter((sql, dialect) =>
        sql.unsafe(`DROP TABLE intercom_companies_seen${dialect === "pg" ? " CASCADE" : ""}`)
      )
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(runs.map((run) => [run.status, run.inserted])).toEqual([["complete", 30]])
    }).pipe(Effect.provide(database)))
})

it.scoped("SQLite opened by SyncDatabase: a column of the runs table renamed and given its name back: a run 10 s on in the same process completes (the driver's failed prepare is not kept 10 minutes)", () =>
  Effect.gen(function*() {
    const directory = mkdtempSync(join(tmpdir(), "tables-altered-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
    const sql = Context.get(yield* Layer.build(SyncDatabase.layerFromUrl(`sqlite:${join(directory, "intercom.sqlite")}`)), SqlClient.SqlClient)
    const token = freshToken("runs-column-back")
    yield* Effect.gen(function*() {
      yield* Sync.migrate
      yield* sql`ALTER TABLE intercom_sync_runs RENAME COLUMN label TO label_by_hand`
      expect(failureOf(yield* Effect.exit(Sync.run("users", { workspace: token })))).toMatchObject({
        _tag: "TablesAltered",
        detail: "table intercom_sync_runs has no column named label"
      })
      yield* sql`ALTER TABLE intercom_sync_runs RENAME COLUMN label_by_hand TO label`
      yield* TestClock.adjust("11 seconds")
      expect((yield* Sync.run("users", { workspace: token })).inserted).toBe(30)
    }).pipe(Effect.provide(intercom(token, { workspace: { users: 30 } })), Effect.provideService(SqlClient.SqlClient, sql))
  }))

it.effect("PostgreSQL: a column the view does not show, dropped: found before the scroll opens too", () =>
  Effect.gen(function*() {
    const { exit, runs, scrollsOpened } = yield* syncAfter((sql) => sql`ALTER TABLE intercom_users_seen DROP COLUMN record_hash`)
    expect(failureOf(exit)).toMatchObject({ _tag: "TablesAltered", detail: "column \"record_hash\" does not exist" })
    expect(scrollsOpened).toBe(0)
    expect(runs.map((run) => [run.status, run.error?.startsWith("TablesAltered: ")])).toEqual([["failed", true]])
  }).pipe(Effect.provide(Databases.postgres)))

it.effect("PostgreSQL: a primary key dropped: met at the first page's upsert, and said as TablesAltered with how to add it back", () =>
  Effect.gen(function*() {
    const { exit, runs, scrollsOpened } = yield* syncAfter((sql) =>
      sql`ALTER TABLE intercom_users_seen DROP CONSTRAINT intercom_users_seen_pkey`
    )
    expect(failureOf(exit)).toMatchObject({
      _tag: "TablesAltered",
      detail: "there is no unique or exclusion constraint matching the ON CONFLICT specification"
    })
    expect(failureOf(exit)?.message).toContain("A primary key dropped: add it back (in PostgreSQL, ALTER TABLE NAME ADD PRIMARY KEY (workspace, id))")
    expect(scrollsOpened).toBe(1)
    expect(runs.map((run) => [run.status, run.error?.startsWith("TablesAltered: ")])).toEqual([["failed", true]])
  }).pipe(Effect.provide(Databases.postgres)))

it.effect("PostgreSQL: a records table dropped and made again empty is not the copy it was: the sync takes its records for unchanged (why the advice sends a dropped table to a new database)", () =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Sync.migrate
    const token = freshToken("records-back")
    const layer = intercom(token, { workspace: { users: 30 } })
    expect((yield* Sync.run("users", { workspace: token }).pipe(Effect.provide(layer))).inserted).toBe(30)
    // Made again as it was, by its definition (a copy of the empty table's, and the view's), its rows gone.
    const [view] = yield* sql<{ readonly sql: string }>`SELECT 'CREATE VIEW intercom_users AS ' || pg_get_viewdef('intercom_users'::regclass) AS sql`
    yield* sql`CREATE TABLE intercom_users_records_again (LIKE intercom_users_records INCLUDING ALL)`
    yield* sql`DROP TABLE intercom_users_records CASCADE`
    yield* sql`ALTER TABLE intercom_users_records_again RENAME TO intercom_users_records`
    yield* sql.unsafe(view!.sql)
    const again = yield* Sync.run("users", { workspace: token }).pipe(Effect.provide(layer))
    expect([again.inserted, again.unchanged]).toEqual([0, 30])
    const [{ count }] = yield* sql<{ readonly count: string }>`SELECT count(*) AS count FROM intercom_users WHERE workspace = ${token}`
    expect(Number(count)).toBe(0)
  }).pipe(Effect.provide(Databases.postgres)))

it.effect("PostgreSQL: a role granted the tables a run writes, not the view users query, syncs: the check asks for the view by its name, not its rows", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const role = `tables_only_${Math.random().toString(36).slice(2, 10)}`
    yield* Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Sync.migrate
      yield* sql.unsafe(`CREATE ROLE ${role} LOGIN PASSWORD 'tables-only'`)
      yield* sql.unsafe(`GRANT USAGE ON SCHEMA public TO ${role}`)
      yield* sql.unsafe(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${role}`)
      // Its tables, granted one by one as least privilege has it: not the views, which the run never read before.
      yield* sql.unsafe(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`)
      yield* sql.unsafe(`REVOKE ALL ON ${Object.values(Sync.tables).join(", ")} FROM ${role}`)
    }).pipe(Effect.provide(PostgresDatabase.layerAt(url)), Effect.orDie)
    const asRole = new URL(Redacted.value(url))
    asRole.username = role
    asRole.password = "tables-only"
    const token = freshToken("grants")
    const summary = yield* Sync.run("users", { workspace: token }).pipe(
      Effect.provide(intercom(token, { workspace: { users: 30 } })),
      Effect.provide(PostgresDatabase.layerAt(Redacted.make(asRole.href)))
    )
    expect(summary.inserted).toBe(30)
  }))

describe("TablesAltered.fromError", () => {
  it("reads the database's words for a missing table or column down an error's causes, and nothing else", () => {
    const sqlError = (cause: unknown) => new Error("Failed to execute statement", { cause })
    const postgres = Object.assign(new Error("relation \"intercom_users_seen\" does not exist"), { code: "42P01" })
    expect(SyncError.TablesAltered.fromError(sqlError(postgres), "acme")).toMatchObject({
      workspace: "acme",
      detail: "relation \"intercom_users_seen\" does not exist"
    })
    expect(SyncError.TablesAltered.fromError(sqlError(new Error("no such column: last_seen_run")))?.detail).toBe(
      "no such column: last_seen_run"
    )
    expect(SyncError.TablesAltered.fromError(sqlError(new Error("table intercom_users_records has no column named email")))).toBeDefined()
    expect(SyncError.TablesAltered.fromError(sqlError(new Error("ON CONFLICT clause does not match any PRIMARY KEY or UNIQUE constraint")))).toBeDefined()
    expect(SyncError.TablesAltered.fromError(sqlError(new Error("database is locked")))).toBeUndefined()
    expect(SyncError.TablesAltered.fromError(sqlError(Object.assign(new Error("permission denied"), { code: "42501" })))).toBeUndefined()
    // Its own message names what is missing, and is not read as the database's.
    const altered = new SyncError.TablesAltered({ detail: "no such table: intercom_users_seen" })
    expect(SyncError.TablesAltered.fromError(altered)).toBeUndefined()
  })
})
