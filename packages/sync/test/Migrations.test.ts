/**
 * The sync's tables come from @effect/sql's Migrator, recorded in a table of their own, and a database migrated by a
 * newer version is refused, untouched. Each test starts from an empty database.
 */
import { SqlClient } from "@effect/sql"
import * as Migrator from "@effect/sql/Migrator"
import { describe, expect, it } from "@effect/vitest"
import { Progress } from "@intercom-scroll/core"
import { PostgresDatabase } from "@intercom-scroll/testing"
import { Cause, Clock, Context, Deferred, Effect, Exit, Fiber, Layer, Option, Redacted } from "effect"
import { Sync, SyncDatabase, type SyncError } from "../src/index.js"
import { time } from "../src/internal/dialect.js"
import { migrationsKey, withMigrationsLock } from "../src/internal/lock.js"
import * as Migrations from "../src/internal/migrations.js"
import * as Databases from "./support/databases.js"
import { freshToken, interruptAtPage, intercom, rows, runs, scripted } from "./support/world.js"

/** The database's tables and views, each as `name` or `name (view)`. */
const tablesOf = (sql: SqlClient.SqlClient) =>
  sql.onDialectOrElse({
    pg: () =>
      sql<{ name: string; view: boolean | number }>`SELECT table_name AS name, table_type = 'VIEW' AS view
        FROM information_schema.tables WHERE table_schema = 'public'`,
    orElse: () =>
      sql<{ name: string; view: boolean | number }>`SELECT name, type = 'view' AS view FROM sqlite_master WHERE type IN ('table', 'view')`
  }).pipe(Effect.map((rows) =>
    rows.filter((row) => !row.name.startsWith("sqlite_")).map((row) => row.view ? `${row.name} (view)` : row.name).sort()
  ))

/** The sync's tables as its first `count` migrations left them: a database of an older version. */
const migratedTo = (count: number) =>
  Migrator.make({})({
    loader: Migrator.fromRecord(Object.fromEntries(Object.entries(Migrations.migrations).slice(0, count))),
    table: Sync.migrationsTable
  })

/** The error a migration or a sync failed with: undefined when it did not fail, or died instead. */
const failureOf = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

describe.each(Databases.both)("Sync.migrate on %s", (_name, database) => {
  it.effect("creates the tables and records itself in intercom_sync_migrations, not the Migrator's default", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { dialect } = yield* Databases.TestDatabase
      yield* Sync.migrate
      const tables = yield* tablesOf(sql)
      expect(tables).toEqual([
        ...["intercom_companies", "intercom_leads", "intercom_users"].flatMap((name) => [
          `${name} (view)`,
          `${name}_records`,
          `${name}_seen`,
          ...(dialect === "sqlite" ? [`${name}_seen_log`] : [])
        ]),
        ...(dialect === "sqlite" ? ["intercom_sync_locks"] : []),
        "intercom_sync_migrations",
        "intercom_sync_runs",
        "intercom_sync_workspaces"
      ].sort())
      const recorded = yield* sql<{ migration_id: number; name: string }>`SELECT migration_id, name FROM intercom_sync_migrations ORDER BY migration_id`
      expect(recorded.map((row) => [Number(row.migration_id), row.name])).toEqual([[1, "create_tables"], [2, "split_seen"], [3, "seen_log"], [4, "record_hash"], [5, "run_label"], [6, "run_indexes"], [7, "run_runner"], [8, "workspace_apps"], [9, "run_alive_at"], [10, "run_interrupted"], [11, "seen_at_end"]])
      // Again: nothing to do, nothing fails.
      yield* Sync.migrate
      expect(yield* tablesOf(sql)).toEqual(tables)
    }).pipe(Effect.provide(database)))

  it.effect("pendingMigrations names what this version would migrate, and migrates nothing", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      expect(yield* Sync.pendingMigrations).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
      yield* migratedTo(8)
      expect(yield* Sync.pendingMigrations).toEqual([9, 10, 11])
      const recorded = yield* sql<{ migration_id: number }>`SELECT migration_id FROM intercom_sync_migrations`
      expect(recorded).toHaveLength(8)
      yield* Sync.migrate
      expect(yield* Sync.pendingMigrations).toEqual([])
      // A newer version's tables: nothing to migrate here (`migrate` refuses them).
      yield* sql`INSERT INTO intercom_sync_migrations ${sql.insert({ migration_id: 99, name: "from_the_future" })}`
      expect(yield* Sync.pendingMigrations).toEqual([])
    }).pipe(Effect.provide(database)))

  it.effect("refuses a database migrated by a newer version, with a typed error, and leaves it alone", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Sync.migrate
      yield* sql`INSERT INTO intercom_sync_migrations ${sql.insert({ migration_id: 99, name: "from_the_future" })}`
      const migrated = yield* Effect.exit(Sync.migrate)
      const error = Exit.isFailure(migrated) ? Option.getOrThrow(Cause.failureOption(migrated.cause)) : undefined
      expect(error?._tag).toBe("SchemaTooNew")
      expect(error?.message).toMatch(/lists migration 99, and this version knows only 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11\. Upgrade @intercom-scroll\/sync/)
      const token = freshToken()
      const ran = yield* Effect.exit(Effect.provide(Sync.run("users", { workspace: token }), intercom(token)))
      expect(Exit.isFailure(ran) && Option.getOrThrow(Cause.failureOption(ran.cause))._tag).toBe("SchemaTooNew")
      const [{ n }] = yield* sql<{ n: number }>`SELECT CAST(count(*) AS INTEGER) AS n FROM intercom_sync_runs`
      expect(Number(n)).toBe(0)
    }).pipe(Effect.provide(database)))

  it.effect("a database of the version before keeps its rows, their times and runs, and syncs on from them", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { dialect } = yield* Databases.TestDatabase
      // Migrated to 1 only, as the version before left it: three complete runs, and rows they wrote.
      yield* Migrator.make({})({
        loader: Migrator.fromRecord({ "1_create_tables": Migrations.migrations["1_create_tables"] }),
        table: Sync.migrationsTable
      })
      const workspace = freshToken()
      const hour = (n: number) => Date.UTC(2026, 10, 1, n)
      for (const n of [1, 2, 3]) {
        yield* sql`INSERT INTO intercom_sync_runs ${
          sql.insert({ workspace, resource: "users", status: "complete", started_at: time(dialect, hour(n)) })
        }`
      }
      const user = (id: string, name: string) => ({ type: "user", id, email: `${id}@example.com`, name, updated_at: 1 })
      const before = [
        { record: user("kept", "Kept"), first: 1, last: 3, changed: 1, deleted: null },
        { record: user("changed", "Old name"), first: 1, last: 3, changed: 2, deleted: null },
        { record: user("gone", "Gone"), first: 1, last: 2, changed: 1, deleted: 3 },
        { record: user("vanishing", "Vanishing"), first: 2, last: 3, changed: 2, deleted: null }
      ]
      yield* sql`INSERT INTO intercom_users ${
        sql.insert(before.map((row) => ({
          workspace,
          id: row.record.id,
          record: JSON.stringify(row.record),
          email: row.record.email,
          name: row.record.name,
          created_at: null,
          updated_at: 1,
          first_seen_at: time(dialect, hour(row.first)),
          last_seen_at: time(dialect, hour(row.last)),
          deleted_at: row.deleted === null ? null : time(dialect, hour(row.deleted)),
          first_seen_run: row.first,
          last_seen_run: row.last,
          changed_run: row.changed
        })))
      }`
      const company = { type: "company", id: "c1", company_id: "acme-1", name: "Acme", created_at: 5 }
      yield* sql`INSERT INTO intercom_companies ${
        sql.insert({
          workspace,
          id: "c1",
          record: JSON.stringify(company),
          company_id: "acme-1",
          name: "Acme",
          created_at: 5,
          updated_at: null,
          first_seen_at: time(dialect, hour(1)),
          last_seen_at: time(dialect, hour(1)),
          deleted_at: null,
          first_seen_run: 1,
          last_seen_run: 1,
          changed_run: 1
        })
      }`

      yield* Sync.migrate
      const upgraded = yield* rows(workspace, "users")
      expect(new Map([...upgraded].map(([id, row]) => [id, row]))).toEqual(new Map(before.map((row) => [row.record.id, {
        id: row.record.id,
        workspace,
        record: row.record,
        email: row.record.email,
        name: row.record.name,
        created_at: null,
        updated_at: 1,
        first_seen_at: hour(row.first),
        last_seen_at: hour(row.last),
        deleted_at: row.deleted === null ? null : hour(row.deleted),
        first_seen_run: row.first,
        last_seen_run: row.last,
        changed_run: row.changed
      }])))
      expect([...(yield* rows(workspace, "companies")).values()]).toMatchObject([
        { id: "c1", record: company, company_id: "acme-1", name: "Acme", created_at: 5, first_seen_at: hour(1), last_seen_run: 1 }
      ])

      // The next run counts against what the version before stored.
      const served = [before[0].record, { ...before[1].record, name: "New name" }, before[2].record, user("new", "New")]
      const summary = yield* Effect.provide(Sync.run("users", { workspace }), scripted(workspace, () => served))
      expect(summary).toMatchObject({ runId: 4, inserted: 1, updated: 2, unchanged: 1, deleted: 1 })
      const after = yield* rows(workspace, "users")
      expect(after.get("kept")).toMatchObject({ first_seen_run: 1, changed_run: 1, last_seen_run: 4, first_seen_at: hour(1), deleted_at: null })
      expect(after.get("changed")).toMatchObject({ name: "New name", first_seen_run: 1, changed_run: 4, last_seen_run: 4 })
      expect(after.get("gone")).toMatchObject({ deleted_at: null, changed_run: 4, last_seen_run: 4 })
      // Deleted by run 4: its row last changed then.
      expect(after.get("vanishing")).toMatchObject({ last_seen_run: 3, changed_run: 4 })
      expect(after.get("vanishing")!.deleted_at).not.toBeNull()
      expect((yield* runs(workspace)).map((run) => run.status)).toEqual(["complete", "complete", "complete", "complete"])
      // PostgreSQL: the rows stored before had no digest of their record; the run gave one to each record it saw (the
      // kept one compared whole once, and not rewritten), so that the next run tells them apart by digest alone.
      if (dialect === "pg") {
        const digests = yield* sql<{ id: string; record_hash: string | null }>`
          SELECT id, record_hash FROM intercom_users_seen WHERE workspace = ${workspace}`
        expect(new Map(digests.map((row) => [row.id, row.record_hash !== null]))).toEqual(
          new Map([["kept", true], ["changed", true], ["gone", true], ["new", true], ["vanishing", false]])
        )
      }
      const again = yield* Effect.provide(Sync.run("users", { workspace }), scripted(workspace, () => served))
      expect(again).toMatchObject({ inserted: 0, updated: 0, unchanged: 4, deleted: 0 })
    }).pipe(Effect.provide(database)))

  it.effect("a database of the version before 10 keeps its runs, ids and indexes, and its interrupted runs become so", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { dialect } = yield* Databases.TestDatabase
      yield* migratedTo(9)
      // The runs as the version before wrote them: an interruption recorded failed with its words, beside a real failure.
      const workspace = freshToken()
      const at = (minute: number) => time(dialect, Date.UTC(2026, 11, 1, 10, minute))
      const ended = (status: string, minute: number, error: string | null) => ({
        workspace,
        resource: "users",
        status,
        started_at: at(minute),
        finished_at: at(minute + 1),
        inserted: minute,
        updated: 0,
        unchanged: 0,
        deleted: 0,
        restarts: 0,
        error,
        label: `r${minute}`,
        runner: "10.0.0.1:34431",
        alive_at: at(minute + 1)
      })
      yield* sql`INSERT INTO intercom_sync_runs ${
        sql.insert([
          ended("complete", 1, null),
          ended("failed", 2, "Interrupted before the scroll reached its end"),
          ended("failed", 3, "RestartRequired: The users scroll broke off at page 3"),
          ended("abandoned", 4, "It never recorded its end"),
          { ...ended("running", 5, null), finished_at: null, deleted: null },
          ended("complete", 6, null)
        ])
      }`
      // Pruned: the highest id is gone, and must not be given again (the records' `*_run` columns name runs by id).
      yield* sql`DELETE FROM intercom_sync_runs WHERE id = 6`
      // An operator's index and view on the runs.
      yield* sql`CREATE INDEX mine_by_runner ON intercom_sync_runs (runner)`
      yield* sql`CREATE VIEW mine_failed AS SELECT id FROM intercom_sync_runs WHERE status = 'failed'`
      const indexes = dialect === "pg"
        ? sql<{ name: string }>`SELECT indexname AS name FROM pg_indexes WHERE tablename = 'intercom_sync_runs' ORDER BY 1`
        : sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'intercom_sync_runs' ORDER BY 1`
      const all = sql<Record<string, unknown>>`SELECT * FROM intercom_sync_runs ORDER BY id`
      const before = yield* all
      const indexesBefore = yield* indexes
      expect(indexesBefore.map((row) => row.name)).toContain("mine_by_runner")

      yield* Sync.migrate
      expect(yield* all).toEqual(before.map((row) => row.id === 2 || row.id === "2" ? { ...row, status: "interrupted" } : row))
      expect(yield* indexes).toEqual(indexesBefore)
      expect((yield* sql<{ id: number }>`SELECT id FROM mine_failed`).map((row) => Number(row.id))).toEqual([3])

      // Runs go on after the highest id ever given; one interrupted is recorded so, which the old CHECK refused.
      const token = freshToken()
      const users = intercom(token, { pageSize: 10, workspace: { users: 30 } })
      expect(yield* Effect.provide(Sync.run("users", { workspace: token }), users)).toMatchObject({ runId: 7, inserted: 30 })
      const exit = yield* Effect.exit(Effect.provide(Sync.run("users", { workspace: token }), users).pipe(
        Effect.provideService(Progress.Progress, interruptAtPage(2))
      ))
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect((yield* runs(token)).map((run) => [run.id, run.status])).toEqual([[7, "complete"], [8, "interrupted"]])
      // The CHECK still refuses what is no status.
      const refused = yield* Effect.exit(sql`INSERT INTO intercom_sync_runs ${sql.insert({ ...ended("complete", 9, null), status: "lost" })}`)
      const cause = Exit.isFailure(refused) ? (Cause.squash(refused.cause) as { readonly cause?: unknown }).cause : undefined
      expect(String(cause)).toMatch(/CHECK constraint failed|violates check constraint/)
    }).pipe(Effect.provide(database)))

  it.effect("a database of the version before the seen rows' deferral (migrations 9 and 10) shows the same rows, and syncs on from them", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { dialect } = yield* Databases.TestDatabase
      yield* migratedTo(9)
      // As that version left them: a complete run, and a seen row for every record, the deleted one's older.
      const workspace = freshToken()
      const hour = (n: number) => Date.UTC(2026, 10, 1, n)
      for (const n of [1, 2]) {
        yield* sql`INSERT INTO intercom_sync_runs ${
          sql.insert({ workspace, resource: "users", status: "complete", started_at: time(dialect, hour(n)), finished_at: time(dialect, hour(n)) })
        }`
      }
      const user = (id: string) => ({ type: "user", id, email: `${id}@example.com`, name: id, updated_at: 1 })
      const before = [{ id: "kept", last: 2, deleted: null }, { id: "gone", last: 1, deleted: 2 }]
      yield* sql`INSERT INTO intercom_users_records ${
        sql.insert(before.map((row) => ({
          workspace,
          id: row.id,
          record: JSON.stringify(user(row.id)),
          email: `${row.id}@example.com`,
          name: row.id,
          created_at: null,
          updated_at: 1,
          first_seen_at: time(dialect, hour(1)),
          deleted_at: row.deleted === null ? null : time(dialect, hour(row.deleted)),
          first_seen_run: 1,
          changed_run: row.deleted ?? 1
        })))
      }`
      yield* sql`INSERT INTO intercom_users_seen ${
        sql.insert(before.map((row) => ({ workspace, id: row.id, last_seen_at: time(dialect, hour(row.last)), last_seen_run: row.last })))
      }`
      const stored = yield* rows(workspace, "users")

      yield* Sync.migrate
      expect(yield* rows(workspace, "users")).toEqual(stored)
      expect(stored.get("kept")).toMatchObject({ last_seen_at: hour(2), last_seen_run: 2, deleted_at: null })
      const summary = yield* Effect.provide(Sync.run("users", { workspace }), scripted(workspace, () => [user("new")]))
      expect(summary).toMatchObject({ runId: 3, inserted: 1, updated: 0, unchanged: 0, deleted: 1 })
      const after = yield* rows(workspace, "users")
      expect(after.get("kept")).toMatchObject({ last_seen_run: 2, changed_run: 3 })
      expect(after.get("kept")!.deleted_at).not.toBeNull()
      expect(after.get("gone")).toEqual(stored.get("gone"))
      expect(after.get("new")).toMatchObject({ first_seen_run: 3, last_seen_run: 3, deleted_at: null })
    }).pipe(Effect.provide(database)))

  it.effect("a migration that fails fails, and does not die, with a MigrationError in the database's own words", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { dialect } = yield* Databases.TestDatabase
      // At 8, with a column of the user's own where migration 9 adds one.
      yield* migratedTo(8)
      yield* sql`ALTER TABLE intercom_sync_runs ADD COLUMN alive_at TEXT`
      const token = freshToken()
      const exits: ReadonlyArray<Exit.Exit<unknown, { readonly _tag: string; readonly message: string }>> = [
        yield* Effect.exit(Sync.migrate),
        yield* Effect.exit(Effect.provide(Sync.run("users", { workspace: token }), intercom(token)))
      ]
      for (const exit of exits) {
        const error = failureOf(exit)
        expect(error?._tag).toBe("MigrationError")
        expect(error?.message).toBe(`Migration "9_run_alive_at" failed: Failed to execute statement: ${
          dialect === "pg" ? "column \"alive_at\" of relation \"intercom_sync_runs\" already exists" : "duplicate column name: alive_at"
        }`)
      }
    }).pipe(Effect.provide(database)))

  it.effect("a database with a table of another application's where the sync makes one: the MigrationError says what to do", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { dialect } = yield* Databases.TestDatabase
      yield* sql`CREATE TABLE intercom_users (id integer primary key, email text)`
      const error = failureOf(yield* Effect.exit(Sync.migrate))
      expect(error?._tag).toBe("MigrationError")
      expect(error?.message).toBe(`Migration "1_create_tables" failed: Failed to ${dialect === "pg" ? "execute" : "prepare"} statement: ${
        dialect === "pg" ? "relation \"intercom_users\"" : "table intercom_users"
      } already exists (intercom_users, which the sync's migrations did not make, is in the way: sync into another database (in PostgreSQL, or a schema of its own: ?options=-c%20search_path%3Dintercom in the URL, the schema made beforehand), or rename yours)`)
      // Left as it was, but for SQLite's empty table of the migrations.
      expect((yield* tablesOf(sql)).filter((name) => name !== Sync.migrationsTable)).toEqual(["intercom_users"])
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
      expect(recorded.map((row) => Number(row.migration_id)).sort((a, b) => a - b)).toEqual(Migrations.known)
    }).pipe(Effect.provide(database)))
})

/** Another session takes the migrations' lock and holds it until the returned effect lets it go. */
const holdMigrationsLock = Effect.gen(function*() {
  const { client } = yield* Databases.TestDatabase
  const held = yield* Deferred.make<void>()
  const done = yield* Deferred.make<void>()
  const holder = yield* Effect.fork(Effect.provide(
    Effect.flatMap(SqlClient.SqlClient, (other) =>
      withMigrationsLock(other, Effect.zipRight(Deferred.succeed(held, undefined), Deferred.await(done)), {
        lockTimeoutMillis: 0,
        workspace: undefined
      })),
    client
  ))
  yield* Deferred.await(held)
  return Effect.zipRight(Deferred.succeed(done, undefined), Fiber.join(holder))
})

it.effect("PostgreSQL: on tables at this version, migrating takes no lock: it goes on while another session holds it", () =>
  Effect.gen(function*() {
    yield* Sync.migrate
    const release = yield* holdMigrationsLock
    // Each sync used to queue for the lock, one at a time across a fleet: here it would wait for as long as it is held.
    const migrated = yield* Sync.migrate.pipe(
      Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => "waited for the migrations lock" }),
      Effect.withClock(Clock.make()),
      Effect.either
    )
    yield* release
    expect(migrated._tag).toBe("Right")
  }).pipe(Effect.provide(Databases.postgres)))

it.effect("PostgreSQL: more syncs migrating at once than the pool has connections all end, each on one connection", () =>
  Effect.gen(function*() {
    // Another process migrates, so that every sync here has found the tables behind and waits for the lock at once.
    const release = yield* holdMigrationsLock
    // Six syncs on a pool of four connections (the suite's and `SyncDatabase.layer`'s default).
    const six = yield* Effect.fork(Effect.all(Array.from({ length: 6 }, () => Sync.migrate), { concurrency: "unbounded" }))
    yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 500)))
    yield* release
    const migrated = yield* Fiber.join(six).pipe(
      Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => "the migrations waited for a connection" }),
      Effect.withClock(Clock.make()),
      Effect.either
    )
    expect(migrated._tag).toBe("Right")
    const sql = yield* SqlClient.SqlClient
    const recorded = yield* sql<{ migration_id: number }>`SELECT migration_id FROM intercom_sync_migrations`
    expect(recorded).toHaveLength(Migrations.known.length)
  }).pipe(Effect.provide(Databases.postgres)))

it.effect("PostgreSQL: a view of the user's on a table a migration replaces: the migration fails naming the view, in PostgreSQL's words", () =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* migratedTo(1)
    yield* sql`CREATE VIEW my_users AS SELECT id, email FROM intercom_users`
    const error = failureOf(yield* Effect.exit(Sync.migrate))
    expect(error?._tag).toBe("MigrationError")
    expect(error?.message).toBe(
      "Migration \"2_split_seen\" failed: Failed to execute statement: cannot drop table intercom_users because other objects depend on it (view my_users depends on table intercom_users)"
    )
  }).pipe(Effect.provide(Databases.postgres)))

it.effect("PostgreSQL: a look at the tables' version that gets no connection fails with that wait's error, and goes no further", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const pool = yield* Layer.build(
      SyncDatabase.layer(SyncDatabase.Database.Postgres({ url }), { maxConnections: 2, connectTimeout: "1 second" })
    )
    yield* Effect.provide(Sync.migrate, pool)
    // Every connection of the pool taken, as by other syncs' locks.
    const sql = Context.get(pool, SqlClient.SqlClient)
    yield* Effect.all([sql.reserve, sql.reserve])
    const error = failureOf(yield* Effect.exit(Effect.provide(Sync.migrate, pool)))
    expect(error?._tag).toBe("SqlError")
    // A statement's wait: taken for "not current", the look went on to the migrations' transaction, whose wait for a
    // connection fails "… for transaction".
    expect(error?.message).toBe("Failed to acquire connection")
  }).pipe(Effect.scoped), 30_000)

it.effect("PostgreSQL: a migration blocked by another session's lock fails the sync after its tableLockTimeout with TableLocked naming it, and migrates nothing", () =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const recorded = Effect.map(
      sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM ${sql(Migrations.migrationsTable)}`,
      ([row]) => row.n
    )
    // The tables of the version before `alive_at`, whose migration alters the runs' table.
    yield* migratedTo(8)
    const workspace = freshToken("migrating")
    const sync = Sync.run("users", { workspace, tableLockTimeout: "300 millis" }).pipe(
      Effect.provide(intercom(freshToken(), { workspace: { users: 5 } }))
    )
    const { exit, pid } = yield* Effect.scoped(Effect.gen(function*() {
      const pid = yield* Databases.openTransaction(() => "LOCK TABLE intercom_sync_runs IN ACCESS EXCLUSIVE MODE", workspace)
      return { exit: yield* Effect.exit(sync), pid }
    }))
    const error = failureOf(exit)
    expect(error?._tag).toBe("TableLocked")
    const locked = error as SyncError.TableLocked
    expect(locked).toMatchObject({ workspace, migrating: true, waitedMillis: 300 })
    expect(locked.blockers.map((blocker) => [blocker.pid, blocker.lock])).toEqual([[pid, "AccessExclusiveLock on intercom_sync_runs"]])
    expect(locked.message).toMatch(
      /^A statement of the sync's migrations \(at the start of the sync of workspace "[^"]+"\) waited 0\.3 s for a lock on its tables held by pid \d+ \(intercom-scroll-test, .*LOCK TABLE intercom_sync_runs IN ACCESS EXCLUSIVE MODE\), and gave up\. Nothing was migrated: the tables are as they were\. End that session's transaction .* and run the sync again, or give a longer tableLockTimeout\.$/
    )
    // Rolled back whole, before the run's row: the tables as they were.
    expect(yield* recorded).toBe(8)
    expect(yield* runs(workspace)).toEqual([])
    // Once the session let go, the next run migrates and syncs.
    expect((yield* sync).inserted).toBe(5)
    expect(yield* recorded).toBe(Migrations.known.length)
  }).pipe(Effect.provide(Databases.postgres)), 20_000)

it.effect("SQLite: a table of the operator's with a foreign key to the runs stops migration 10's rebuild before it starts, its rows kept", () =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* migratedTo(9)
    yield* sql`INSERT INTO intercom_sync_runs ${
      sql.insert({ workspace: "acme", resource: "users", status: "complete", started_at: "2026-12-01T10:00:00.000Z" })
    }`
    // better-sqlite3 enforces foreign keys: the rebuild's DROP TABLE would delete these rows with the runs' (CASCADE),
    // or fail on them, and PRAGMA foreign_keys cannot be turned off inside the migrations' transaction.
    yield* sql`CREATE TABLE mine_notes (run INTEGER REFERENCES intercom_sync_runs (id) ON DELETE CASCADE, note TEXT)`
    yield* sql`INSERT INTO mine_notes (run, note) VALUES (1, 'audited')`
    const exit = yield* Effect.exit(Sync.migrate)
    expect(failureOf(exit)?.message).toMatch(
      /mine_notes has a FOREIGN KEY to intercom_sync_runs, whose rows the table's rebuild \(migration 10\) would delete or refuse/
    )
    expect(yield* sql<{ run: number; note: string }>`SELECT run, note FROM mine_notes`).toEqual([{ run: 1, note: "audited" }])
    const [recorded] = yield* sql<{ n: number }>`SELECT count(*) AS n FROM ${sql(Migrations.migrationsTable)}`
    expect(recorded.n).toBe(9)
    // Without it, the migration goes through.
    yield* sql`DROP TABLE mine_notes`
    yield* Sync.migrate
    expect((yield* sql<{ status: string }>`SELECT status FROM intercom_sync_runs`).map((row) => row.status)).toEqual(["complete"])
  }).pipe(Effect.provide(Databases.sqlite)))

it.effect("SQLite: an operator's trigger on the runs, its table named in another case, outlives migration 10's rebuild", () =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* migratedTo(9)
    yield* sql`CREATE TABLE mine_ended (id INTEGER, status TEXT)`
    // SQLite keeps a trigger's table name as written: "Intercom_Sync_Runs" is the same table.
    yield* sql.unsafe(`CREATE TRIGGER mine_on_end AFTER UPDATE OF status ON "Intercom_Sync_Runs"
      BEGIN INSERT INTO mine_ended VALUES (new.id, new.status); END`)
    yield* Sync.migrate
    const token = freshToken()
    yield* Effect.provide(Sync.run("users", { workspace: token }), intercom(token, { workspace: { users: 3 } }))
    expect(yield* sql<{ status: string }>`SELECT status FROM mine_ended`).toEqual([{ status: "complete" }])
  }).pipe(Effect.provide(Databases.sqlite)))

it.effect("SQLite: an operator's trigger on a view, whatever its name, outlives migration 11's new views", () =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* migratedTo(10)
    yield* sql`CREATE TABLE mine_renamed (id TEXT, name TEXT)`
    yield* sql.unsafe(`CREATE TRIGGER "mine ""odd"" rename" INSTEAD OF UPDATE OF name ON "Intercom_Users"
      BEGIN INSERT INTO mine_renamed VALUES (old.id, new.name); END`)
    yield* Sync.migrate
    const token = freshToken()
    expect(yield* Effect.provide(Sync.run("users", { workspace: token }), intercom(token, { workspace: { users: 3 } })))
      .toMatchObject({ inserted: 3 })
    yield* sql`UPDATE intercom_users SET name = 'renamed' WHERE workspace = ${token}`
    expect(yield* sql<{ name: string }>`SELECT name FROM mine_renamed`).toEqual(Array(3).fill({ name: "renamed" }))
  }).pipe(Effect.provide(Databases.sqlite)))

it.effect("a SqlClient of another dialect is refused with a typed error", () =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(Sync.migrate)
    expect(Exit.isFailure(exit) && Option.getOrThrow(Cause.failureOption(exit.cause))._tag).toBe("UnsupportedDialect")
  }).pipe(Effect.provide(Layer.effect(SqlClient.SqlClient, Effect.map(SqlClient.SqlClient, (sql) => ({
    ...sql,
    onDialectOrElse: (options: { readonly orElse: () => unknown; readonly mysql?: () => unknown }) =>
      (options.mysql ?? options.orElse)()
  }) as unknown as SqlClient.SqlClient)).pipe(Layer.provide(Databases.sqlite)))))

describe("migrations under an operator's timeouts (PostgreSQL)", () => {
  it.live("a sync that starts while another process migrates waits for it, whatever lock_timeout and statement_timeout the role has", () =>
    Effect.gen(function*() {
      const url = yield* PostgresDatabase.make
      const admin = Context.get(yield* Layer.build(PostgresDatabase.layerAt(url)), SqlClient.SqlClient)
      // As an operator sets them (ALTER ROLE or ALTER DATABASE … SET): the defaults of every session opened after.
      const name = new URL(Redacted.value(url)).pathname.slice(1)
      yield* admin.unsafe(`ALTER DATABASE ${name} SET lock_timeout = '100ms'`)
      yield* admin.unsafe(`ALTER DATABASE ${name} SET statement_timeout = '1s'`)
      // Another process is migrating: it holds the migrations' lock for two seconds.
      const [namespace, key] = migrationsKey
      const holder = yield* admin.reserve
      yield* holder.execute("SELECT pg_advisory_lock($1, $2)", [namespace, key], undefined)
      const migrating = yield* Effect.fork(Effect.provide(Sync.migrate, PostgresDatabase.layerAt(url)))
      yield* Effect.sleep("2 seconds")
      yield* holder.execute("SELECT pg_advisory_unlock($1, $2)", [namespace, key], undefined)
      yield* Fiber.join(migrating)
      const recorded = yield* admin<{ readonly n: number }>`SELECT count(*)::int AS n FROM ${admin(Migrations.migrationsTable)}`
      expect(recorded[0].n).toBe(Migrations.known.length)
    }).pipe(Effect.scoped), { timeout: 30_000 })
})
