/**
 * The sync's tables, created and changed by @effect/sql's Migrator from migrations kept in this module (no files to
 * load), recorded in a migrations table of their own so that they never mix with an application's.
 *
 * A migration, once released, is never edited: a later change is a new migration with a higher id.
 */
import { SqlClient } from "@effect/sql"
import * as Migrator from "@effect/sql/Migrator"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Option, Predicate, Schedule } from "effect"
import { explain, SchemaTooNew, type TableLocked } from "../SyncError.js"
import * as Dialect from "./dialect.js"
import { whileBusy, withMigrationsLock } from "./lock.js"

export const migrationsTable = "intercom_sync_migrations"

/** Columns every record table has; `typed` are the resource's own. */
const recordTable = (dialect: Dialect.Dialect, name: string, typed: string) => {
  const [json, instant] = dialect === "pg" ? ["jsonb", "timestamptz"] : ["TEXT", "TEXT"]
  return `CREATE TABLE ${name} (
  workspace TEXT NOT NULL,
  id TEXT NOT NULL,
  record ${json} NOT NULL,
  ${typed},
  created_at BIGINT,
  updated_at BIGINT,
  first_seen_at ${instant} NOT NULL,
  last_seen_at ${instant} NOT NULL,
  deleted_at ${instant},
  first_seen_run INTEGER NOT NULL,
  last_seen_run INTEGER NOT NULL,
  changed_run INTEGER NOT NULL,
  PRIMARY KEY (workspace, id)
)`
}

/** A migration's client and dialect (the loader has already refused a dialect the sync has no SQL for). */
const migrationClient = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  return { sql, dialect: yield* Effect.orDie(Dialect.of(sql)) }
})

const createTables = Effect.gen(function*() {
  const { dialect, sql } = yield* migrationClient
  const instant = dialect === "pg" ? "timestamptz" : "TEXT"
  const runId = dialect === "pg" ? "INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"
  const person = "email TEXT,\n  name TEXT"
  yield* sql.unsafe(recordTable(dialect, "intercom_users", person))
  yield* sql.unsafe(recordTable(dialect, "intercom_leads", person))
  yield* sql.unsafe(recordTable(dialect, "intercom_companies", "company_id TEXT,\n  name TEXT"))
  yield* sql.unsafe(`CREATE TABLE intercom_sync_runs (
  id ${runId},
  workspace TEXT NOT NULL,
  resource TEXT NOT NULL CHECK (resource IN ('users', 'leads', 'companies')),
  status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed', 'abandoned')),
  started_at ${instant} NOT NULL,
  finished_at ${instant},
  inserted INTEGER,
  updated INTEGER,
  unchanged INTEGER,
  deleted INTEGER,
  restarts INTEGER,
  error TEXT
)`)
  yield* sql.unsafe("CREATE INDEX intercom_sync_runs_by_status ON intercom_sync_runs (workspace, status)")
  if (dialect === "sqlite") {
    yield* sql.unsafe(`CREATE TABLE intercom_sync_locks (
  workspace TEXT PRIMARY KEY NOT NULL,
  holder TEXT NOT NULL,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  acquired_at TEXT NOT NULL,
  expires_at TEXT NOT NULL
)`)
  }
})

/** Each resource's view, and the columns of its own that it shows. */
const viewed = [
  ["intercom_users", ["email", "name"]],
  ["intercom_leads", ["email", "name"]],
  ["intercom_companies", ["company_id", "name"]]
] as const

/**
 * Migration 2: each resource's table becomes two, and a view of the old name joins them with the old columns.
 *
 * `last_seen_at` and `last_seen_run` move for every record on every run, while the record itself rarely changes. In
 * one row, they made each run rewrite every stored record (~1.6 KB of JSON a user: SQLite rewrites a row whole, and
 * PostgreSQL writes a new tuple and a new primary-key entry). Apart, a run writes a narrow row per record into
 * `<table>_seen` and touches `<table>_records` only for a record that is new, changed, deleted or back. The rows
 * already stored move over as they are.
 */
const splitSeen = Effect.gen(function*() {
  const { dialect, sql } = yield* migrationClient
  const [json, instant] = dialect === "pg" ? ["jsonb", "timestamptz"] : ["TEXT", "TEXT"]
  for (const [name, typed] of viewed) {
    const kept = ["workspace", "id", "record", ...typed, "created_at", "updated_at", "first_seen_at", "deleted_at",
      "first_seen_run", "changed_run"].join(", ")
    yield* sql.unsafe(`CREATE TABLE ${name}_records (
  workspace TEXT NOT NULL,
  id TEXT NOT NULL,
  record ${json} NOT NULL,
  ${typed.map((column) => `${column} TEXT`).join(",\n  ")},
  created_at BIGINT,
  updated_at BIGINT,
  first_seen_at ${instant} NOT NULL,
  deleted_at ${instant},
  first_seen_run INTEGER NOT NULL,
  changed_run INTEGER NOT NULL,
  PRIMARY KEY (workspace, id)
)`)
    // SQLite: a narrow row lives best in its primary key's own b-tree (no rowid table beside the index). A rowid table
    // in the order first seen does not help: the scroll's order differs from run to run, so a page's updates land on
    // ~100 pages of the table either way (packages/bench/NOTES.md, "The sync writes only what changed").
    yield* sql.unsafe(`CREATE TABLE ${name}_seen (
  workspace TEXT NOT NULL,
  id TEXT NOT NULL,
  last_seen_at ${instant} NOT NULL,
  last_seen_run INTEGER NOT NULL,
  PRIMARY KEY (workspace, id)
)${dialect === "sqlite" ? " WITHOUT ROWID" : ""}`)
    yield* sql.unsafe(`INSERT INTO ${name}_records (${kept}) SELECT ${kept} FROM ${name}`)
    yield* sql.unsafe(`INSERT INTO ${name}_seen (workspace, id, last_seen_at, last_seen_run)
  SELECT workspace, id, last_seen_at, last_seen_run FROM ${name}`)
    yield* sql.unsafe(`DROP TABLE ${name}`)
    yield* sql.unsafe(`CREATE VIEW ${name} AS SELECT
  r.workspace, r.id, r.record, ${typed.map((column) => `r.${column}`).join(", ")}, r.created_at, r.updated_at,
  r.first_seen_at, s.last_seen_at, r.deleted_at, r.first_seen_run, s.last_seen_run, r.changed_run
FROM ${name}_records AS r JOIN ${name}_seen AS s ON s.workspace = r.workspace AND s.id = r.id`)
  }
})

/**
 * Migration 3, SQLite only: a log of the records each run saw, `<table>_seen_log (run, id)`, folded into `<table>_seen`
 * once at the run's end.
 *
 * SQLite writes its WAL in whole 4 KB pages, and the scroll's order is no order: a page's 100 seen upserts landed on
 * ~100 pages of the seen table, and every page's commit appended them all (~1.17 MB). Appended to a table with no
 * index but its rowid, a page's marks fill one or two pages; the fold at the end writes each page of the seen table
 * once (packages/bench/NOTES.md, "The sync writes only what changed"). PostgreSQL writes its WAL per tuple and keeps
 * its one statement a page: it gets no such table.
 */
const seenLog = Effect.gen(function*() {
  const { dialect, sql } = yield* migrationClient
  if (dialect !== "sqlite") return
  for (const name of ["intercom_users", "intercom_leads", "intercom_companies"]) {
    yield* sql.unsafe(`CREATE TABLE ${name}_seen_log (
  run INTEGER NOT NULL,
  id TEXT NOT NULL
)`)
  }
})

/**
 * Migration 4, PostgreSQL only: `<table>_seen.record_hash`, a digest of each record as last stored.
 *
 * A page first sends its ids and digests (a few KB), and the server compares them in the narrow seen table; only the
 * records that are new, changed or back go over the wire and into `<table>_records`. Sending every record (~160 KB a
 * page) to have the server parse and compare it against a table larger than its buffers cost more than the rest of
 * the sync (packages/bench/NOTES.md, "PostgreSQL: a page compares digests"). Rows stored before have none: their
 * records are compared whole once, and get one. SQLite, with no wire between the sync and its file, keeps comparing
 * the records themselves.
 */
const recordHash = Effect.gen(function*() {
  const { dialect, sql } = yield* migrationClient
  if (dialect !== "pg") return
  for (const name of ["intercom_users", "intercom_leads", "intercom_companies"]) {
    yield* sql.unsafe(`ALTER TABLE ${name}_seen ADD COLUMN record_hash TEXT`)
  }
})

/**
 * Migration 5: `intercom_sync_runs.label`, the name its caller gave a run (`Options.label`): a fleet's run name
 * (`<name>@<tick>` for a `SyncCron` round), so that an operator can tell the rows of one round with SQL.
 */
const runLabel = Effect.gen(function*() {
  const { sql } = yield* migrationClient
  yield* sql.unsafe(`ALTER TABLE intercom_sync_runs ADD COLUMN label TEXT`)
})

/**
 * Migration 6: indexes for what reads the runs across workspaces (`SyncActivity.read`, `fleet status`,
 * `SyncActivity.underWay`): the runs that ended since a time, by `finished_at`; those still running, a partial index of
 * the few; and a fleet's round, by `label`. Without them each read scans every run: ~1 s on PostgreSQL for a fleet of 10,000 workspaces synced four times a day and kept 90 days
 * (10.8 M runs), ~35 ms with them (packages/bench/NOTES.md, "Indexes for the runs' readers").
 */
const runIndexes = Effect.gen(function*() {
  const { sql } = yield* migrationClient
  yield* sql.unsafe("CREATE INDEX intercom_sync_runs_by_finish ON intercom_sync_runs (finished_at)")
  yield* sql.unsafe("CREATE INDEX intercom_sync_runs_running ON intercom_sync_runs (started_at) WHERE status = 'running'")
  yield* sql.unsafe("CREATE INDEX intercom_sync_runs_by_label ON intercom_sync_runs (label)")
})

/**
 * Migration 7: `intercom_sync_runs.runner`, the process that runs it as its caller names it (`Options.runner`): a
 * fleet's runner `HOST:PORT`, so that `fleet status` can say where a run under way, or one abandoned, ran.
 */
const runRunner = Effect.gen(function*() {
  const { sql } = yield* migrationClient
  yield* sql.unsafe(`ALTER TABLE intercom_sync_runs ADD COLUMN runner TEXT`)
})

/**
 * Migration 8: `intercom_sync_workspaces`, the Intercom app (workspace) whose records each workspace's rows hold, bound
 * at its first run that could ask (`GET /me`). A run whose token belongs to another app stops before writing
 * (`WorkspaceMismatch`): without it, a token of another workspace synced under the name would mark every row deleted
 * and fill the table with the other's records.
 */
const workspaceApps = Effect.gen(function*() {
  const { dialect, sql } = yield* migrationClient
  const instant = dialect === "pg" ? "timestamptz" : "TEXT"
  yield* sql.unsafe(`CREATE TABLE intercom_sync_workspaces (
  workspace TEXT PRIMARY KEY NOT NULL,
  app_id TEXT NOT NULL,
  app_name TEXT,
  bound_at ${instant} NOT NULL
)`)
})

/**
 * Migration 9: `intercom_sync_runs.alive_at`, a run's last sign of life, renewed every 10 seconds while it runs: a row
 * `running` whose `alive_at` stands still was left by a process that died, which a reader can tell before the next run
 * of its workspace marks it `abandoned` (then at that time: its end as near as anyone knows).
 */
const runAliveAt = Effect.gen(function*() {
  const { dialect, sql } = yield* migrationClient
  yield* sql.unsafe(`ALTER TABLE intercom_sync_runs ADD COLUMN alive_at ${dialect === "pg" ? "timestamptz" : "TEXT"}`)
})

/**
 * Migration 10: `interrupted`, a status of its own for a run stopped from outside (its workspace moved to another
 * runner, a runner stopping, a Ctrl-C), which versions before recorded `failed`: a deploy or a scale-up then read as
 * failures in `fleet status`, the `failed` counter and every query of the table. The `status` CHECK takes the new value:
 * PostgreSQL replaces the constraint; SQLite, which cannot alter one, rebuilds the table with its rows, its indexes and
 * triggers (an operator's too) and its AUTOINCREMENT counter, which a prune may have left above the highest id and which
 * must stay there: the records' `*_run` columns name runs by id, and an id given twice would make a new run look older.
 * An operator's table with a foreign key to the runs stops it before it changes anything (see below).
 * The runs the versions before recorded failed with their interruption's words become `interrupted`.
 */
const runInterrupted = Effect.gen(function*() {
  const { dialect, sql } = yield* migrationClient
  const statuses = "status IN ('running', 'complete', 'failed', 'abandoned', 'interrupted')"
  if (dialect === "pg") {
    // Found by the statuses it lists, not by the name PostgreSQL gave it: an operator's own check stays.
    const checks = yield* sql<{ readonly name: string }>`SELECT conname AS name FROM pg_constraint
      WHERE conrelid = 'intercom_sync_runs'::regclass AND contype = 'c'
      AND pg_get_constraintdef(oid) LIKE ${"%status%'running'%'complete'%'failed'%'abandoned'%"}`
    for (const check of checks) yield* sql`ALTER TABLE intercom_sync_runs DROP CONSTRAINT ${sql(check.name)}`
    yield* sql.unsafe(`ALTER TABLE intercom_sync_runs ADD CONSTRAINT intercom_sync_runs_status_check CHECK (${statuses})`)
  } else {
    // The table as created and altered since, an operator's columns included, with only its status CHECK widened: the
    // rows then copy over column for column.
    const [table] = yield* sql<{ readonly sql: string }>`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'intercom_sync_runs'`
    const before = "status IN ('running', 'complete', 'failed', 'abandoned')"
    if (table === undefined || !table.sql.includes(before)) {
      return yield* new SqlError({ message: `intercom_sync_runs does not have the CHECK (${before}) this migration widens`, cause: table?.sql })
    }
    // better-sqlite3 enforces foreign keys, and they cannot be turned off inside the migrations' transaction: the DROP
    // TABLE below would delete an operator's rows that refer to the runs (ON DELETE CASCADE) or fail on them. Refused
    // before anything changes.
    const children = yield* sql<{ readonly name: string }>`SELECT DISTINCT m.name FROM sqlite_master AS m,
      pragma_foreign_key_list(m.name) AS f WHERE m.type = 'table' AND lower(f."table") = 'intercom_sync_runs'
      AND (SELECT foreign_keys FROM pragma_foreign_keys) = 1 ORDER BY m.name`
    if (children.length > 0) {
      const names = children.map((child) => child.name).join(", ")
      return yield* new SqlError({
        message: `${names} ${children.length === 1 ? "has" : "have"} a FOREIGN KEY to intercom_sync_runs, whose rows the table's rebuild (migration 10) would delete or refuse: drop that foreign key and migrate again`
      })
    }
    const [counter] = yield* sql<{ readonly seq: number }>`SELECT seq FROM sqlite_sequence WHERE name = 'intercom_sync_runs'`
    // A trigger's table is named as its author wrote it ("Intercom_Sync_Runs" too), an index's as the table is.
    const dependents = yield* sql<{ readonly sql: string }>`SELECT sql FROM sqlite_master
      WHERE lower(tbl_name) = 'intercom_sync_runs' AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY rowid`
    yield* sql.unsafe(table.sql.replace("intercom_sync_runs", "intercom_sync_runs_rebuilt").replace(before, statuses))
    yield* sql.unsafe("INSERT INTO intercom_sync_runs_rebuilt SELECT * FROM intercom_sync_runs")
    yield* sql.unsafe("DROP TABLE intercom_sync_runs")
    // A view of the operator's on the runs refers to a table that is gone for this one statement, which SQLite's rename
    // refuses ("error in view …") unless it renames the old way, leaving views and triggers as they are written.
    const [{ legacy_alter_table: legacy }] = yield* sql<{ readonly legacy_alter_table: number }>`PRAGMA legacy_alter_table`
    yield* sql.unsafe("PRAGMA legacy_alter_table = ON")
    yield* sql.unsafe("ALTER TABLE intercom_sync_runs_rebuilt RENAME TO intercom_sync_runs")
    yield* sql.unsafe(`PRAGMA legacy_alter_table = ${legacy ? "ON" : "OFF"}`)
    for (const dependent of dependents) yield* sql.unsafe(dependent.sql)
    if (counter !== undefined) {
      yield* sql`UPDATE sqlite_sequence SET seq = max(seq, ${counter.seq}) WHERE name = 'intercom_sync_runs'`
      yield* sql`INSERT INTO sqlite_sequence (name, seq) SELECT 'intercom_sync_runs', ${counter.seq}
        WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'intercom_sync_runs')`
    }
  }
  // Exactly the words every version before wrote for a run whose cause was an interruption alone.
  yield* sql`UPDATE intercom_sync_runs SET status = 'interrupted'
    WHERE status = 'failed' AND error = 'Interrupted before the scroll reached its end'`
})

/**
 * Migration 11, SQLite only (PostgreSQL records it and does nothing): each view shows a record that has no seen row
 * yet, with its first sighting as its last.
 *
 * A record new to a run is then only logged, as the others are, and gets its seen row when the run's end folds the log.
 * Written at once, its seen row was one of ~100 a page that landed on as many pages of the seen table (the scroll's
 * order is no order), each appended whole to the WAL at every commit: 43 % of a first sync's WAL frames
 * (packages/bench/NOTES.md, "The first sync into SQLite, checkpointed less often").
 */
const seenAtEnd = Effect.gen(function*() {
  const { dialect, sql } = yield* migrationClient
  if (dialect !== "sqlite") return
  for (const [name, typed] of viewed) {
    // A view's triggers (an operator's INSTEAD OF) go with it: written again on the new one, as migration 10 does the runs'.
    const triggers = yield* sql<{ readonly sql: string }>`SELECT sql FROM sqlite_master
      WHERE type = 'trigger' AND lower(tbl_name) = ${name} AND sql IS NOT NULL ORDER BY rowid`
    yield* sql.unsafe(`DROP VIEW ${name}`)
    yield* sql.unsafe(`CREATE VIEW ${name} AS SELECT
  r.workspace, r.id, r.record, ${typed.map((column) => `r.${column}`).join(", ")}, r.created_at, r.updated_at,
  r.first_seen_at, COALESCE(s.last_seen_at, r.first_seen_at) AS last_seen_at, r.deleted_at, r.first_seen_run,
  COALESCE(s.last_seen_run, r.first_seen_run) AS last_seen_run, r.changed_run
FROM ${name}_records AS r LEFT JOIN ${name}_seen AS s ON s.workspace = r.workspace AND s.id = r.id`)
    for (const trigger of triggers) yield* sql.unsafe(trigger.sql)
  }
})

export const migrations: Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> = {
  "1_create_tables": createTables,
  "2_split_seen": splitSeen,
  "3_seen_log": seenLog,
  "4_record_hash": recordHash,
  "5_run_label": runLabel,
  "6_run_indexes": runIndexes,
  "7_run_runner": runRunner,
  "8_workspace_apps": workspaceApps,
  "9_run_alive_at": runAliveAt,
  "10_run_interrupted": runInterrupted,
  "11_seen_at_end": seenAtEnd
}

export const known: ReadonlyArray<number> = Object.keys(migrations).map((key) => Number.parseInt(key, 10))

const recorded = (sql: SqlClient.SqlClient) =>
  Effect.map(
    sql<{ migration_id: number | string }>`SELECT migration_id FROM ${sql(migrationsTable)}`,
    (rows) => rows.map((row) => Number(row.migration_id))
  )

/**
 * Runs inside the Migrator's transaction (after it has locked its table in PostgreSQL): a database that lists a
 * migration this version does not know was made by a newer version, and is left alone.
 */
const loader = (sql: SqlClient.SqlClient): Migrator.Loader<SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const ids = yield* recorded(sql).pipe(
      Effect.mapError((cause) =>
        new Migrator.MigrationError({ reason: "failed", message: "Could not read the sync's migrations", cause })
      )
    )
    const unknown = ids.filter((id) => !known.includes(id))
    if (unknown.length > 0) {
      const cause = new SchemaTooNew({ table: migrationsTable, unknown, known })
      return yield* new Migrator.MigrationError({ reason: "bad-state", message: cause.message, cause })
    }
    return yield* Migrator.fromRecord(migrations)
  })

const runMigrator = Migrator.make({})

/**
 * The Migrator's table, as the Migrator creates it in PostgreSQL. It asks for the table first by a statement that fails
 * while it is missing, and in the transaction the migrations run in (`withMigrationsLock`) that failure would abort it:
 * so the table is there before the Migrator asks.
 */
const createMigrationsTable = (sql: SqlClient.SqlClient) =>
  sql`CREATE TABLE IF NOT EXISTS ${sql(migrationsTable)} (
    migration_id integer primary key,
    created_at timestamp with time zone not null default now(),
    name text not null
  )`

/**
 * The Migrator runs each migration under `orDieWith`: a migration that fails dies with a `MigrationError`, and the
 * sync's callers (a CLI's one line, the fleet's answer) would see a defect and, of its words, only "Failed to execute
 * statement". Failed with instead, its message saying what the database said.
 */
const failedMigration = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | Migrator.MigrationError, R> =>
  Effect.catchSomeDefect(effect, (defect) => {
    // By its tag: the Migrator's `MigrationError` may come from another copy of @effect/sql than this module's.
    if (!Predicate.isTagged(defect, "MigrationError") || !(defect instanceof Error)) return Option.none()
    const { cause, reason } = defect as Error & { readonly cause?: unknown; readonly reason?: Migrator.MigrationError["reason"] }
    return Option.some(Effect.fail(new Migrator.MigrationError({ reason: reason ?? "failed", message: withNameTaken(explain(defect)), cause })))
  })

/**
 * A migration's words when a table or view of the name it makes is there and not the sync's (a database of another
 * application's, with its own `intercom_users`), followed by what to do: the database said only that it exists. Not a
 * column (`column "x" of relation "t" already exists`), which is a table of the sync's edited by hand.
 */
const withNameTaken = (message: string): string => {
  const taken = /(?:^|: )(?:relation|table|view) "?([^"\s]+)"? already exists/.exec(message)?.[1]
  return taken === undefined ? message : `${message} (${taken}, which the sync's migrations did not make, is in the way: sync into another database (in PostgreSQL, or a schema of its own: ?options=-c%20search_path%3Dintercom in the URL, the schema made beforehand), or rename yours)`
}

/** Another process's migrations, not yet committed: ours found nothing to do and must look again. */
class Incomplete extends Migrator.MigrationError {}

/**
 * Brings the tables up to this version. In PostgreSQL migrations take an advisory lock, so that two processes starting
 * on a fresh database do not both create the migrations table, and wait at most `bound.lockTimeoutMillis` (0: no
 * limit) for another session's lock on the tables (`withMigrationsLock`). SQLite serialises writers itself, but the
 * Migrator reports a write it lost to another process as "already running" and returns: so the result is checked, and
 * looked at again shortly while another process's migrations are still under way.
 */
export const migrate = (
  sql: SqlClient.SqlClient,
  dialect: Dialect.Dialect,
  bound: { readonly lockTimeoutMillis: number; readonly workspace: string | undefined }
): Effect.Effect<void, SchemaTooNew | TableLocked | Migrator.MigrationError | SqlError> => {
  const once = Effect.gen(function*() {
    yield* runMigrator({ loader: loader(sql), table: migrationsTable }).pipe(
      Effect.provideService(SqlClient.SqlClient, sql),
      failedMigration
    )
    const ids = yield* recorded(sql)
    if (known.some((id) => !ids.includes(id))) {
      return yield* new Incomplete({
        reason: "locked",
        message: "Another process is migrating the sync tables and has not finished; try again shortly"
      })
    }
  })
  const migrated = (dialect === "pg" ? withMigrationsLock(sql, Effect.zipRight(createMigrationsTable(sql), once), bound) : once).pipe(
    Effect.retry({
      schedule: Schedule.spaced("200 millis").pipe(Schedule.intersect(Schedule.recurs(50))),
      while: (error) => error instanceof Incomplete
    }),
    Effect.mapError((error) =>
      error._tag === "MigrationError" && error.cause instanceof SchemaTooNew ? error.cause : error
    ),
    Effect.asVoid
  )
  return Effect.flatMap(isCurrent(sql, dialect), (current) => current ? Effect.void : migrated)
}

/**
 * The migrations of this version that the tables lack, in order: none when they are at this version or past it (a
 * newer version's tables are `migrate`'s to refuse), all of them when there are no tables yet.
 */
export const pending = (sql: SqlClient.SqlClient, dialect: Dialect.Dialect): Effect.Effect<ReadonlyArray<number>, SqlError> =>
  Effect.gen(function*() {
    if (!(yield* present(sql, dialect))) return known
    const ids = yield* recorded(sql)
    return known.filter((id) => !ids.includes(id))
  }).pipe(whileBusy)

const present = (sql: SqlClient.SqlClient, dialect: Dialect.Dialect): Effect.Effect<boolean, SqlError> =>
  Effect.map(
    dialect === "pg"
      ? sql<{ present: boolean | number }>`SELECT to_regclass(${migrationsTable}) IS NOT NULL AS present`
      : sql<{ present: boolean | number }>`SELECT count(*) AS present FROM sqlite_master WHERE type = 'table' AND name = ${migrationsTable}`,
    ([row]) => Boolean(row.present)
  )

/**
 * Whether the tables are at this version: every migration it knows recorded, and no other. A read without the lock,
 * which every sync but a database's first finds true: each took the lock otherwise, one at a time across a whole
 * fleet (2,000 workspaces on two runners spent half their sync slots waiting for it). Anything else goes the locked
 * way, which decides. The table's presence is asked first, not learnt from a failed read: the SQLite client caches a
 * statement that failed to prepare, and the Migrator's own read would then fail with it once the table exists.
 *
 * A read that fails fails the sync with its error. Taken for "not current", a pool with no connection to spare (all
 * held by other syncs' locks) sent the sync the locked way, to wait for a connection a second time and fail there,
 * with that wait's error instead of this one.
 */
const isCurrent = (sql: SqlClient.SqlClient, dialect: Dialect.Dialect): Effect.Effect<boolean, SqlError> =>
  Effect.gen(function*() {
    if (!(yield* present(sql, dialect))) return false
    const ids = yield* recorded(sql)
    return ids.length === known.length && known.every((id) => ids.includes(id))
  }).pipe(whileBusy)
