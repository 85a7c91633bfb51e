/**
 * The statements a run makes. Every value goes in as a parameter; the only names spliced into SQL are this module's
 * own table and column names.
 */
import type { SqlClient, Statement } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { type Models, Resource } from "@intercom-scroll/core"
import { Context, Duration, Effect } from "effect"
import { createHash } from "node:crypto"
import * as ChunkSize from "./chunkSize.js"
import { type Dialect, time } from "./dialect.js"

/** What users query: in each, a view joining the two tables below. */
export const recordTables: { readonly [R in Resource.Resource]: string } = {
  users: "intercom_users",
  leads: "intercom_leads",
  companies: "intercom_companies"
}

/** The record as stored, written only when it is new, changed, deleted or back (migration 2). */
const storedTable = (resource: Resource.Resource) => `${recordTables[resource]}_records`
/** When each record was last seen: the one row a run writes for every record. */
const seenTable = (resource: Resource.Resource) => `${recordTables[resource]}_seen`
/** SQLite only: the ids each run saw, folded into `<table>_seen` at its end (migration 3). */
export const seenLogTable = (resource: Resource.Resource) => `${recordTables[resource]}_seen_log`

/** SQLite: a run's logged ids in key order, a temporary table of the connection during its fold. */
const sortedSeenLog = (run: number) => `intercom_scroll_fold_${run}`

export const runsTable = "intercom_sync_runs"

/** The Intercom app each workspace's rows belong to. */
export const workspacesTable = "intercom_sync_workspaces"

/** Ended runs, whose seen logs are discarded: their ids, a subquery in parentheses or `sql.in`. */
export type EndedRuns = Statement.Fragment | Statement.ArrayHelper

/** A range of a seen log's rowids: after `after` (from the first when undefined), up to `upTo`. */
export interface LogRange {
  readonly after: number | undefined
  readonly upTo: number
}

/**
 * SQLite: discards what the runs `ended` left in `resource`'s seen log,
 * runs no longer alive: the log's rows in the range `rowids` (see `leftLogChunk`). When they last saw those records
 * is not known; their seen rows stay as they are (an earlier run's). A record one of them stored first has none, and a
 * record without one is never marked deleted: it gets one of its first sighting, which the view showed.
 */
export const discardSeenLog = (
  sql: SqlClient.SqlClient,
  resource: Resource.Resource,
  ended: EndedRuns,
  rowids: LogRange
): Effect.Effect<void, SqlError> =>
  Effect.zipRight(
    firstSightings(sql, resource, ended, rowids),
    sql`DELETE FROM ${sql(seenLogTable(resource))} WHERE run IN ${ended} ${logRange(sql, rowids)}`
  )

const logRange = (sql: SqlClient.SqlClient, rowids: LogRange) =>
  rowids.after === undefined
    ? sql`AND rowid <= ${rowids.upTo}`
    : sql`AND rowid > ${rowids.after} AND rowid <= ${rowids.upTo}`

/**
 * `discardSeenLog`'s seen rows of first sightings. The log's range drives the join (`CROSS JOIN` fixes SQLite's order):
 * with `ended` a list of ids (`Sync.pruneRuns`), the planner took the workspace's records as the outer loop and read
 * the log's range once for each, 600,000 records × 10,000 ids a chunk (a prune of 400,000 logged ids had discarded
 * 54,000 after 10 minutes).
 */
export const firstSightings = (
  sql: SqlClient.SqlClient,
  resource: Resource.Resource,
  ended: EndedRuns,
  rowids: LogRange
) =>
  sql`INSERT INTO ${sql(seenTable(resource))} (workspace, id, last_seen_at, last_seen_run)
    SELECT r.workspace, r.id, r.first_seen_at, r.first_seen_run
    FROM (SELECT run, id FROM ${sql(seenLogTable(resource))} WHERE run IN ${ended} ${logRange(sql, rowids)}) AS l
    CROSS JOIN ${sql(runsTable)} AS u ON u.id = l.run
    CROSS JOIN ${sql(storedTable(resource))} AS r ON r.workspace = u.workspace AND r.id = l.id
    WHERE r.first_seen_run = l.run ORDER BY r.id
    ON CONFLICT (workspace, id) DO NOTHING`

/** What `leftLogChunk` found: its chunk's last rowid, and whether the chunk was full (more may follow). */
export interface LeftLogChunk {
  readonly upTo: number
  readonly full: boolean
}

/**
 * SQLite: the next `limit` rows, at most, that the runs `ended` left in `resource`'s seen log after the log's rowid
 * `after` (from the first when undefined): the last one's rowid, and whether the chunk was full (more may follow);
 * undefined when none is left. With `discardSeenLog` over that range, one chunk of a discard.
 */
export const leftLogChunk = (
  sql: SqlClient.SqlClient,
  resource: Resource.Resource,
  ended: EndedRuns,
  after: number | undefined,
  limit: number
): Effect.Effect<LeftLogChunk | undefined, SqlError> =>
  Effect.gen(function*() {
    const from = after === undefined ? sql`` : sql`AND rowid > ${after}`
    const [bound] = yield* sql<{ readonly last: number | null; readonly looked: number }>`SELECT max(rowid) AS last,
      count(*) AS looked FROM (SELECT rowid FROM ${sql(seenLogTable(resource))} WHERE run IN ${ended} ${from}
      ORDER BY rowid LIMIT ${limit})`
    return bound.last === null ? undefined : { upTo: Number(bound.last), full: Number(bound.looked) >= limit }
  })

/**
 * A chunk's transaction, as `discardLeftLogs` takes it: the lock's fence, or a plain `sql.withTransaction`.
 * `writesFirst`: its first statement writes (the fence renews the SQLite lease), so that the chunk's bound is read
 * inside it; a plain one reads it just before, outside: a SQLite transaction that reads and then writes fails at once
 * when another process wrote in between, where one that writes first waits its turn.
 */
export interface ChunkTransaction<E, R> {
  readonly run: (chunk: Effect.Effect<LeftLogChunk | undefined, SqlError>) => Effect.Effect<LeftLogChunk | undefined, E, R>
  readonly writesFirst: boolean
}

/**
 * SQLite: discards what the runs `ended` (for each resource) left in every resource's seen log, a chunk of the log's
 * rowids a transaction (`leftLogChunk`, then `discardSeenLog` over that range), `deletionPause` between two, each next
 * chunk sized by the time the last took (`ChunkSize`), the first `DeletionChunk`. A logged id costs a lookup of its record at random: 311,500 ids in one transaction held the file
 * 20.8 s on a loaded machine; 10,000 a chunk, 0.9 s. Stopped between two chunks, what was discarded stays discarded,
 * each chunk whole; the next discard of those runs takes the rest.
 */
export const discardLeftLogs = <E, R>(
  sql: SqlClient.SqlClient,
  ended: (resource: Resource.Resource) => EndedRuns,
  transaction: ChunkTransaction<E, R>
): Effect.Effect<void, E | SqlError, R> =>
  Effect.gen(function*() {
    const sizes = yield* ChunkSize.sizer(yield* DeletionChunk)
    for (const resource of Resource.Resource.literals) {
      const runs = ended(resource)
      let after: number | undefined
      for (;;) {
        const from = after
        const bound = (limit: number) => leftLogChunk(sql, resource, runs, from, limit)
        const discard = (chunk: LeftLogChunk) => discardSeenLog(sql, resource, runs, { after: from, upTo: chunk.upTo })
        // Most runs start on empty logs: a bound read, and nothing else touched.
        const chunk = transaction.writesFirst
          ? yield* ChunkSize.timed(sizes, (limit) =>
            transaction.run(Effect.tap(bound(limit), (chunk) => chunk === undefined ? Effect.void : discard(chunk))))
          : yield* Effect.tap(bound(sizes.size()), (chunk) =>
            chunk === undefined ? Effect.void : ChunkSize.timed(sizes, () => transaction.run(Effect.as(discard(chunk), chunk))))
        if (chunk === undefined || !chunk.full) break
        after = chunk.upTo
        yield* Effect.sleep(deletionPause)
      }
    }
  })

/** The outcome of writing one page. */
export interface PageCounts {
  readonly inserted: number
  readonly updated: number
  readonly unchanged: number
}

export type RunStatus = "running" | "complete" | "failed" | "interrupted" | "abandoned"

const text = (value: unknown): string | null => (typeof value === "string" ? value : null)

/** U+0000, and a UTF-16 surrogate without its pair: what PostgreSQL's `text` and `jsonb` cannot hold. */
// eslint-disable-next-line no-control-regex -- U+0000 is exactly what is looked for
const unstorable = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g
/** The same in JSON text, where `JSON.stringify` has escaped them (after an even run of backslashes: not a literal). */
const unstorableEscape = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i

/** `unstorable`, one at a time: a global expression's `test` goes on from where the last one stopped. */
const unstorableCharacter = new RegExp(unstorable.source)
const storableText = (value: string): string => value.replace(unstorable, "\uFFFD")

/**
 * JSON text for PostgreSQL, where U+0000 and unpaired surrogates in strings become U+FFFD: `jsonb` and `text` refuse
 * them, and one such record would otherwise fail every sync of its workspace. The rare page that has one takes the
 * slow path.
 */
const storableJson = (json: string): string => {
  if (!unstorableEscape.test(json)) return json
  return JSON.stringify(JSON.parse(json), (_key, inner) => typeof inner === "string" ? storableText(inner) : inner)
}

/** PostgreSQL: what tells a record from its stored version without sending it, a digest of its JSON text. */
const digest = (json: string): string => createHash("sha256").update(json).digest("base64")

/** Every column of `<table>_records` a run's statements name (migration 2's). */
const storedColumns = (resource: Resource.Resource): ReadonlyArray<string> => [
  "workspace", "id", "record", ...typedColumns[resource], "created_at", "updated_at", "first_seen_at", "deleted_at",
  "first_seen_run", "changed_run"
]
/** Every column of `<table>_seen` a run's statements name: PostgreSQL's with the digest of migration 4. */
const seenColumns: { readonly [D in Dialect]: ReadonlyArray<string> } = {
  sqlite: ["workspace", "id", "last_seen_at", "last_seen_run"],
  pg: ["workspace", "id", "last_seen_at", "last_seen_run", "record_hash"]
}
/** The columns of SQLite's `<table>_seen_log` (migration 3). */
const seenLogColumns: ReadonlyArray<string> = ["run", "id"]

/** Intercom's timestamps are UNIX seconds; anything else is left to the record column. */
const seconds = (value: unknown): number | null => (Number.isSafeInteger(value) ? (value as number) : null)

/** The text columns copied out of each resource's records, beside `created_at` and `updated_at`. */
const typedColumns: { readonly [R in Resource.Resource]: ReadonlyArray<keyof Models.RecordOf<R> & string> } = {
  users: ["email", "name"],
  leads: ["email", "name"],
  companies: ["company_id", "name"]
}

/** Why a run is marked abandoned: all that the next run of its workspace knows of it. */
const abandoned =
  "It never recorded its end (its process died, or its database went away as it ended); the next run of its workspace found it running"

/**
 * The longest record id a copy keeps, in UTF-8 bytes. Intercom's ids are 24 characters; the bound is PostgreSQL's: a
 * B-tree entry (the workspace, up to 800 bytes, and the id) must fit in 2,704 bytes, or the page fails with a bare
 * `SqlError`. SQLite holds to the same bound, so that a copy moves between the two.
 */
export const maxIdBytes = 1024

/** The first record of a page whose id cannot key a row (see `unstorable` and `maxIdBytes`), and why. */
export const unkeepableId = (
  records: ReadonlyArray<{ readonly id: string }>
): { readonly id: string; readonly issue: string } | undefined => {
  for (const record of records) {
    if (unstorableCharacter.test(record.id)) {
      return { id: record.id, issue: "holds a character a copy cannot keep (U+0000, or half of a surrogate pair)" }
    }
    // A UTF-8 byte is at most one UTF-16 unit's worth of length × 3: only a long id is measured.
    if (record.id.length * 3 <= maxIdBytes) continue
    const bytes = Buffer.byteLength(record.id, "utf8")
    if (bytes > maxIdBytes) {
      return {
        id: record.id,
        issue: `is ${bytes} bytes long, over the ${maxIdBytes} a database copy keeps (Intercom's ids are 24 characters)`
      }
    }
  }
  return undefined
}

/** SQLite: rows a statement carries at most, well under its limit on parameters (13 a row). */
const rowsPerStatement = 500

/**
 * SQLite: how many of the rows a run did not see one transaction of its deletion pass looks at, in key order, at most;
 * and how many logged ids of stopped runs one transaction of the next run's discard of them.
 * better-sqlite3 runs a statement synchronously and SQLite has one writer: a pass in one transaction held every other
 * writer of the file, and the process's signals, for as long as it took (~57 s for 800,000 deletions at 2,000,000
 * users). A chunk of 10,000 is ~0.3–1 s of rewriting record rows at 600,000 users, up to 15.8 s at 2,000,000 on a loaded
 * machine: this is the first chunk's size, and each next one is sized by the time the last took (`ChunkSize`). A
 * reference, so that a test can make it small.
 */
export class DeletionChunk extends Context.Reference<DeletionChunk>()("@intercom-scroll/sync/DeletionChunk", {
  defaultValue: () => 10_000
}) {}

/**
 * SQLite: how many of a run's logged ids one step of its fold copies into key order, and one transaction of it folds,
 * at most. The fold in one transaction held the file's write lock, and the process's signals, ~6 s at 1,200,000 logged
 * ids; a transaction of 50,000 held it 0.7–1.9 s at 2,000,000 users on a loaded machine (packages/bench/NOTES.md).
 * The size of each step of the copy, and of the first transaction of the fold and of the log's discard: each next one
 * is sized by the time the last took (`ChunkSize`). A reference, so that a test can make it small.
 */
export class FoldChunk extends Context.Reference<FoldChunk>()("@intercom-scroll/sync/FoldChunk", {
  defaultValue: () => 50_000
}) {}

/** SQLite: the pause between two chunks of the deletion pass, for other writers (see `Sync.run`'s pass). */
export const deletionPause = Duration.millis(100)

/** The connections whose automatic checkpoints a pass has put off: how many passes, and the setting to put back. */
const checkpointsPutOff = new WeakMap<object, { passes: number; pages: number | undefined }>()

/**
 * SQLite: runs `effect`, a deletion pass's chunks, with the connection's automatic checkpoints off, and puts the
 * setting back after (the next commit then checkpoints, once). The chunks go in key order, and so rewrite record rows
 * all over the file: a checkpoint every `wal_autocheckpoint` pages wrote each of those pages again and again (400,000
 * deletions: 20.2 GB by the kernel's count, against 3.6 GB in one transaction and 4.6 GB with the checkpoint put off),
 * where one transaction's commit checkpoints once. The WAL grows as that transaction's did. `client` is the
 * connection's client, counted so that passes of several workspaces at once put the setting back once, when the last
 * ends; where the driver refuses the pragma, the pass runs as it is.
 */
export const withCheckpointsPutOff = <A, E, R>(
  client: object,
  sql: SqlClient.SqlClient,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.acquireUseRelease(
    Effect.suspend(() => {
      const entry = checkpointsPutOff.get(client) ?? { passes: 0, pages: undefined }
      checkpointsPutOff.set(client, entry)
      if (entry.passes++ > 0) return Effect.void
      return sql<{ readonly wal_autocheckpoint: number }>`PRAGMA wal_autocheckpoint`.pipe(
        Effect.flatMap(([row]) => {
          entry.pages = Number(row.wal_autocheckpoint)
          return sql`PRAGMA wal_autocheckpoint = 0`
        }),
        Effect.ignore
      )
    }),
    () => effect,
    () =>
      Effect.suspend(() => {
        const entry = checkpointsPutOff.get(client)
        if (entry === undefined || --entry.passes > 0) return Effect.void
        checkpointsPutOff.delete(client)
        // A number the driver gave: nothing else is spliced in.
        return entry.pages === undefined || !Number.isSafeInteger(entry.pages)
          ? Effect.void
          : Effect.ignore(sql.unsafe(`PRAGMA wal_autocheckpoint = ${entry.pages}`))
      })
  )

/**
 * SQLite: empties the WAL file once a run has ended, where that waits for no one. SQLite keeps a WAL file at its
 * largest for as long as any connection has the database open (3.3 GB after a pass of 800,000 deletions at 2,000,000
 * users, whose checkpoints are put off): a process that stays (a runner, an app), or a reader beside the CLI, kept it.
 * On the connection reserved (no statement of the client's between), a passive checkpoint first, which takes no lock;
 * only when it found every frame in the database, `wal_checkpoint(TRUNCATE)` with the connection's busy timeout at 0,
 * the caller's put back after: a reader still on the WAL, or a writer, and it gives up at once, the file left as it is.
 * Not while another pass of the client has its checkpoints put off; a driver that refuses any of it changes nothing.
 */
export const truncateWal = (client: object, sql: SqlClient.SqlClient): Effect.Effect<void> =>
  checkpointsPutOff.has(client) ? Effect.void : Effect.scoped(Effect.gen(function*() {
    const connection = yield* sql.reserve
    const [[busy, frames, copied]] = yield* connection.executeValues("PRAGMA wal_checkpoint(PASSIVE)", [])
    if (Number(busy) !== 0 || Number(frames) <= 0 || Number(frames) !== Number(copied)) return
    const [[timeout]] = yield* connection.executeValues("PRAGMA busy_timeout", [])
    // A number the driver gave: nothing else is spliced in.
    if (!Number.isSafeInteger(Number(timeout))) return
    yield* Effect.acquireUseRelease(
      connection.executeValues("PRAGMA busy_timeout = 0", []),
      () => connection.executeValues("PRAGMA wal_checkpoint(TRUNCATE)", []),
      () => Effect.ignore(connection.executeValues(`PRAGMA busy_timeout = ${Number(timeout)}`, []))
    )
  })).pipe(Effect.ignore)

/** What one chunk of SQLite's deletion pass did: the rows it marked, and the key it stopped at (none: the pass is done). */
export interface DeletionChunkDone {
  readonly deleted: number
  readonly last: string | undefined
}

/** An Intercom app, as a workspace is bound to it: its `id_code`, and its name when Intercom gave one. */
export interface BoundApp {
  readonly id: string
  readonly name: string | null
}

export interface Store {
  /** Marks `abandoned` the workspace's runs left `running`; in SQLite, once `discardLeftLogs` has emptied the logs. */
  readonly markAbandoned: (now: number) => Effect.Effect<void, SqlError>
  /**
   * SQLite: discards what the workspace's runs left in the seen logs (`discardLeftLogs`), each chunk through
   * `transaction`, under the lock, where no run of the workspace is alive.
   */
  readonly discardLeftLogs: <E, R>(transaction: ChunkTransaction<E, R>) => Effect.Effect<void, E | SqlError, R>
  readonly startRun: (
    now: number,
    names: { readonly label: string | undefined; readonly runner: string | undefined }
  ) => Effect.Effect<number, SqlError>
  /** A run its caller refused before it began: `failed`, started and ended `now`, nothing written, `error` its words. */
  readonly recordRefused: (
    now: number,
    names: { readonly label: string | undefined; readonly runner: string | undefined },
    error: string
  ) => Effect.Effect<void, SqlError>
  /**
   * Writes a page: marks its records seen and upserts those that are new, changed or back; in PostgreSQL two
   * statements (the second only for a page with such records), in SQLite two (each one per 500 records) whatever
   * the page's size; call it inside the lock's transaction. In PostgreSQL a record this run already saw (sent again
   * by a restart) is left as it is and not counted again; in SQLite the run scrolls with dedupe on, so that the page
   * holds none.
   */
  readonly writePage: (
    run: number,
    records: ReadonlyArray<Models.RecordOf<Resource.Resource>>,
    now: number
  ) => Effect.Effect<PageCounts, SqlError>
  /**
   * SQLite: the first step of a run's fold of its log into the seen table. Copies the next `limit` ids the run logged
   * (after the log's rowid `after`; from the first when undefined) into a temporary table of this connection, in key
   * order: no write to the file, so that it takes no write lock. Returns the rowid to go on after; undefined once the
   * log is copied.
   */
  readonly sortSeenLog: (run: number, after: number | undefined, limit: number) => Effect.Effect<number | undefined, SqlError>
  /**
   * SQLite: folds the next `limit` ids of the run's sorted copy (after the key `after`) into the seen table (each one's
   * seen row moved to the run, a new record's made), in a transaction of its own each. Returns the key to go on after;
   * undefined after the last.
   */
  readonly foldSeenChunk: (
    run: number,
    now: number,
    after: string | undefined,
    limit: number
  ) => Effect.Effect<string | undefined, SqlError>
  /** SQLite: deletes up to `limit` of the run's logged ids, once folded; returns how many. */
  readonly discardSeenLogChunk: (run: number, limit: number) => Effect.Effect<number, SqlError>
  /** SQLite: drops the run's sorted copy of its log, if any. */
  readonly dropSortedSeenLog: (run: number) => Effect.Effect<void, SqlError>
  /**
   * PostgreSQL: marks deleted every live row the run did not see, and returns how many. Call inside the completing
   * transaction. SQLite marks them a chunk at a time (`markDeletedChunk`), so as not to hold its one file's lock.
   */
  readonly markDeleted: (run: number, now: number) => Effect.Effect<number, SqlError>
  /**
   * SQLite: `markDeleted` a chunk at a time, each to be called in a transaction of its own once the run's fold committed.
   * Looks at the next `limit` seen rows (in key order, after the key `after`; from the first when undefined) that the run
   * did not see, and marks deleted those whose record is live. `last` is the key to go on after; undefined once fewer
   * than `limit` were left, when this chunk was the last.
   */
  readonly markDeletedChunk: (
    run: number,
    now: number,
    after: string | undefined,
    limit: number
  ) => Effect.Effect<DeletionChunkDone, SqlError>
  /** Writes on the run's row how many rows it has marked deleted so far, in the transaction of the chunk that did. */
  readonly recordDeleted: (run: number, deleted: number) => Effect.Effect<void, SqlError>
  /** Writes on the run's row that it is alive now (`alive_at`); call inside the lock's transaction. */
  readonly recordAlive: (run: number, now: number) => Effect.Effect<void, SqlError>
  /** Writes on the run's row what it has written so far, while it runs; call inside the page's transaction. */
  readonly recordProgress: (run: number, counts: PageCounts & { readonly restarts: number }) => Effect.Effect<void, SqlError>
  /**
   * Records the run's end. A run recorded complete stays so: an interruption that comes as its last transaction
   * commits fails the program after the fact, and its `interrupted` then changes nothing.
   */
  readonly finishRun: (run: number, end: {
    readonly status: Exclude<RunStatus, "running" | "abandoned">
    readonly now: number
    readonly counts: PageCounts & { readonly deleted: number; readonly restarts: number }
    readonly error: string | null
  }) => Effect.Effect<void, SqlError>
  /** Binds the workspace to `app`; call inside the lock's transaction, once `boundApp` has found none. */
  readonly bindApp: (app: BoundApp, now: number) => Effect.Effect<void, SqlError>
  /** The app the workspace is bound to, if any. */
  readonly boundApp: Effect.Effect<BoundApp | undefined, SqlError>
  /**
   * The app a stored record of the workspace names (`app_id`, which Intercom's users and companies carry), in any of
   * the three tables, if one does: what an unbound workspace's rows came from. A workspace whose rows name none
   * (leads only) reads every row once, the first time it is bound.
   */
  readonly storedApp: Effect.Effect<string | undefined, SqlError>
  /**
   * Reads nothing from the resource's view (in PostgreSQL its name only looked up), its two tables and, in SQLite, its
   * seen log, naming every column of theirs a run writes: fails where the database cannot find one of them, a
   * statement that costs the database its parse and nothing else.
   */
  readonly checkTables: Effect.Effect<void, SqlError>
}

export const make = (
  sql: SqlClient.SqlClient,
  dialect: Dialect,
  workspace: string,
  resource: Resource.Resource
): Store => {
  const stored = sql(storedTable(resource))
  const seen = sql(seenTable(resource))
  const seenLog = sql(seenLogTable(resource))
  const runs = sql(runsTable)
  const workspaces = sql(workspacesTable)
  const storedApp = Effect.gen(function*() {
    const appId = dialect === "pg" ? sql`record->>'app_id'` : sql`json_extract(record, '$.app_id')`
    for (const kind of Resource.Resource.literals) {
      const [row] = yield* sql<{ readonly app_id: string }>`SELECT ${appId} AS app_id FROM ${sql(storedTable(kind))}
        WHERE workspace = ${workspace} AND ${appId} IS NOT NULL LIMIT 1`
      if (row !== undefined) return String(row.app_id)
    }
    return undefined
  })
  const boundApp = Effect.map(
    sql<{ readonly app_id: string; readonly app_name: string | null }>`SELECT app_id, app_name FROM ${workspaces}
      WHERE workspace = ${workspace}`,
    ([row]): BoundApp | undefined => row === undefined ? undefined : { id: row.app_id, name: row.app_name }
  )
  const typed: ReadonlyArray<string> = typedColumns[resource]
  // The view by its name and its tables by theirs: a view follows a table renamed (PostgreSQL binds it to the table
  // itself, SQLite rewrites it), while the run's writes name the table. PostgreSQL: the view's name looked up
  // (`::regclass` fails as a read would, 42P01), not read: a role granted the tables a run writes, and not the views
  // users query, synced before the check, and a read of the view refused it (42501).
  const view = dialect === "pg"
    ? sql`SELECT 1 WHERE ${recordTables[resource]}::regclass IS NULL`
    : sql`SELECT 1 FROM ${sql(recordTables[resource])} WHERE 1 = 0`
  // Each table with every column a run's statements name, so that one dropped or renamed is met here, before the
  // scroll, not at the first page's write (and, in SQLite, not in a prepare that its driver would cache failed).
  const named = (table: Statement.Identifier, columns: ReadonlyArray<string>) =>
    sql`SELECT 1 FROM ${table} WHERE 1 = 0 AND ${sql.and(columns.map((column) => sql`${sql(column)} IS NULL`))}`
  const check = sql`${view} UNION ALL ${named(stored, storedColumns(resource))} UNION ALL ${
    named(seen, seenColumns[dialect])
  }${dialect === "sqlite" ? sql` UNION ALL ${named(seenLog, seenLogColumns)}` : sql``}`
  // In SQLite unprepared: @effect/sql-sqlite-node keeps a statement's failed prepare in its cache for 10 minutes, so
  // that in a process that lives on and first met it missing (an app's hourly `Sync.run`, a fleet runner started then)
  // a view put back as the advice says still failed the check with the same `no such table`. Its unprepared path
  // throws the prepare's error as a defect (Effect-TS/effect#7721, mended in v4 only): an SqlError here.
  const checkTables = Effect.asVoid(
    dialect === "sqlite"
      ? check.unprepared.pipe(Effect.catchAllDefect((cause) => Effect.fail(new SqlError({ cause, message: "Failed to prepare statement" }))))
      : check
  )

  // SQLite: the ids of `source` (a chunk of a run's sorted copy of its log) folded into the seen table as seen by `run`,
  // in key order, so that each page of the table is written once. `last_seen_at` becomes the fold's time, the run's
  // end. `<` rather than `<>`: a run that lost its lock and folds late never moves a row back from a newer run.
  const foldIntoSeen = (run: number, now: number, source: Statement.Fragment) =>
    sql`INSERT INTO ${seen} (workspace, id, last_seen_at, last_seen_run)
      SELECT ${workspace}, id, ${time(dialect, now)}, ${run} FROM ${source} ORDER BY id
      ON CONFLICT (workspace, id) DO UPDATE SET last_seen_at = excluded.last_seen_at, last_seen_run = excluded.last_seen_run
      WHERE ${seen}.last_seen_run < excluded.last_seen_run`

  // PostgreSQL: a record this run has not seen yet moves its seen row to the run; one a restart sends again is left
  // alone, and is neither written nor counted again. RETURNING gives only the rows written: the ids newly seen.
  const seenOnConflict = sql`ON CONFLICT (workspace, id) DO UPDATE SET
      last_seen_at = excluded.last_seen_at,
      last_seen_run = excluded.last_seen_run
    WHERE ${seen}.last_seen_run <> excluded.last_seen_run
    RETURNING id`

  // Of those, a record stored before is replaced whole and un-deleted only when its stored version differed or it had
  // been deleted: an unchanged record is not written at all. `changed_run` marks the run that wrote it.
  const storedOnConflict = sql`ON CONFLICT (workspace, id) DO UPDATE SET
      record = excluded.record,
      ${sql.csv(typed.map((column) => sql`${sql(column)} = excluded.${sql(column)}`))},
      created_at = excluded.created_at,
      updated_at = excluded.updated_at,
      deleted_at = NULL,
      changed_run = excluded.changed_run
    WHERE ${stored}.deleted_at IS NOT NULL OR ${stored}.record <> excluded.record`

  /** Writes a page's records (no id twice) and counts them. */
  type Write = (
    run: number,
    at: Date | string,
    records: ReadonlyArray<Models.RecordOf<Resource.Resource>>
  ) => Effect.Effect<PageCounts, SqlError>

  const batched = <A>(rows: ReadonlyArray<A>): ReadonlyArray<ReadonlyArray<A>> => {
    const batches: Array<ReadonlyArray<A>> = []
    for (let i = 0; i < rows.length; i += rowsPerStatement) batches.push(rows.slice(i, i + rowsPerStatement))
    return batches
  }

  /**
   * SQLite: two statements in the page's transaction (one per 500 records each), multi-row VALUES that
   * better-sqlite3 binds natively from prepared statements it keeps. The run scrolls with dedupe on, so every record
   * of the page is one the run had not seen: the records first (writing only the new, changed or back), then every id
   * only appended to the run's log: the scroll's order is no order, and an upsert of their seen rows would touch ~100
   * pages of the seen table a page, each appended whole to the WAL at every commit. The fold writes them at the
   * run's end; meanwhile the view shows a new record, which has no seen row yet, with its first sighting (migration 11).
   */
  const writeValues: Write = (run, at, records) =>
    Effect.gen(function*() {
      let inserted = 0
      let written = 0
      for (const batch of batched(records)) {
        const rows = batch.map((record) => {
          const row: Record<string, unknown> = {
            workspace,
            id: record.id,
            record: JSON.stringify(record),
            created_at: seconds(record.created_at),
            updated_at: seconds(record.updated_at),
            first_seen_at: at,
            deleted_at: null,
            first_seen_run: run,
            changed_run: run
          }
          for (const column of typed) row[column] = text((record as Record<string, unknown>)[column])
          return row
        })
        const returned = yield* sql<{ readonly first_seen_run: number }>`INSERT INTO ${stored}
          ${sql.insert(rows)} ${storedOnConflict} RETURNING first_seen_run`
        written += returned.length
        inserted += returned.filter((row) => Number(row.first_seen_run) === run).length
      }
      for (const batch of batched(records)) {
        yield* sql`INSERT INTO ${seenLog} ${sql.insert(batch.map((record) => ({ run, id: record.id })))}`
      }
      return { inserted, updated: written - inserted, unchanged: records.length - written }
    })

  /**
   * PostgreSQL: two statements, each with the page as one JSON parameter that the server unnests (a short text, the
   * same for every page, planned in a fraction of a VALUES of a dozen parameters a record). The first marks the page
   * seen and compares each record's digest with the one stored beside its seen row; only the records that are new,
   * changed or back (their digest differs, or there is none) go to the second, which upserts them and stores their
   * digests. A page of unchanged records sends ids and digests, a few KB, not its ~160 KB of records, and the server
   * touches neither the records table nor their `jsonb`. Profiled in packages/bench/NOTES.md.
   */
  const writeJson: Write = (run, at, records) =>
    Effect.gen(function*() {
      const texts = records.map((record) => JSON.stringify(record))
      const digests = texts.map(digest)
      const thisRun = sql`CAST(${run} AS integer)`
      const seenAt = sql`CAST(${at} AS timestamptz)`
      const marks = JSON.stringify(records.map((record, index) => [record.id, digests[index]]))
      // A record new to the table gets its seen row with its digest at once: the second statement is sure to store it.
      // The subquery reads the digests as they were before the statement (all of it has one snapshot), a row at a
      // time by the primary key (a join let the planner scan the workspace's rows for a page of 100).
      const [marked] = yield* sql<{ readonly seen: number; readonly differing: ReadonlyArray<string> | null }>`WITH page AS (
        SELECT e ->> 0 AS id, e ->> 1 AS record_hash FROM json_array_elements(CAST(${marks} AS json)) AS page (e)
      ), newly_seen AS (
        INSERT INTO ${seen} (workspace, id, last_seen_at, last_seen_run, record_hash)
        SELECT CAST(${workspace} AS text), id, ${seenAt}, ${thisRun}, record_hash FROM page
        ${seenOnConflict}
      )
      SELECT CAST(count(*) AS integer) AS seen, array_agg(page.id) FILTER (WHERE page.record_hash IS DISTINCT FROM (
        SELECT record_hash FROM ${seen} WHERE workspace = CAST(${workspace} AS text) AND id = page.id
      )) AS differing
      FROM page JOIN newly_seen ON newly_seen.id = page.id`
      const seenCount = Number(marked.seen)
      const differing = new Set(marked.differing ?? [])
      if (differing.size === 0) return { inserted: 0, updated: 0, unchanged: seenCount }

      const entries: Array<string> = []
      records.forEach((record, index) => {
        if (!differing.has(record.id)) return
        const fields: Array<unknown> = [record.id, seconds(record.created_at), seconds(record.updated_at)]
        for (const column of typed) fields.push(text((record as Record<string, unknown>)[column]))
        fields.push(digests[index])
        entries.push(`${JSON.stringify(fields).slice(0, -1)},${texts[index]}]`)
      })
      const element = (index: number) => sql.literal(`e ->> ${index}`)
      const columns = sql.csv(typed.map((column) => sql`${sql(column)}`))
      const [row] = yield* sql<{ readonly inserted: number; readonly updated: number }>`WITH page AS (
        SELECT ${element(0)} AS id, CAST(${element(1)} AS bigint) AS created_at, CAST(${element(2)} AS bigint) AS updated_at, ${
        sql.csv(typed.map((column, index) => sql`${element(3 + index)} AS ${sql(column)}`))
      }, ${element(3 + typed.length)} AS record_hash, e -> ${sql.literal(String(4 + typed.length))} AS record
        FROM jsonb_array_elements(CAST(${storableJson(`[${entries.join(",")}]`)} AS jsonb)) AS page (e)
      ), written AS (
        INSERT INTO ${stored} (workspace, id, record, ${columns}, created_at, updated_at, first_seen_at, deleted_at,
          first_seen_run, changed_run)
        SELECT CAST(${workspace} AS text), page.id, page.record, ${
        sql.csv(typed.map((column) => sql`page.${sql(column)}`))
      }, page.created_at, page.updated_at, ${seenAt}, NULL, ${thisRun}, ${thisRun}
        FROM page
        ${storedOnConflict}
        RETURNING first_seen_run
      ), hashed AS (
        -- Every row exists (the first statement made it): an upsert finds each by its key, where an UPDATE … FROM
        -- let the planner scan the workspace's rows.
        INSERT INTO ${seen} (workspace, id, last_seen_at, last_seen_run, record_hash)
        SELECT CAST(${workspace} AS text), id, ${seenAt}, ${thisRun}, record_hash FROM page
        ON CONFLICT (workspace, id) DO UPDATE SET record_hash = excluded.record_hash
        WHERE ${seen}.record_hash IS DISTINCT FROM excluded.record_hash
      )
      SELECT CAST(count(*) FILTER (WHERE first_seen_run = ${thisRun}) AS integer) AS inserted,
        CAST(count(*) FILTER (WHERE first_seen_run <> ${thisRun}) AS integer) AS updated
      FROM written`
      return {
        inserted: Number(row.inserted),
        updated: Number(row.updated),
        unchanged: seenCount - Number(row.inserted) - Number(row.updated)
      }
    })

  return {
    markAbandoned: (now) =>
      Effect.gen(function*() {
        // Ended, as near as anyone knows, at its last sign of life; a run of a version before `alive_at`, now. What it wrote
        // is what it last recorded (every 5 seconds), 0 where it recorded none, so that every ended run has numbers: in a
        // reader's SQL, `inserted + updated` of a NULL is NULL. It deleted nothing, but in SQLite where it died in its
        // deletion pass: then what its committed chunks marked, which each recorded.
        yield* sql`UPDATE ${runs} SET status = 'abandoned', finished_at = COALESCE(alive_at, ${time(dialect, now)}),
          inserted = COALESCE(inserted, 0), updated = COALESCE(updated, 0), unchanged = COALESCE(unchanged, 0),
          restarts = COALESCE(restarts, 0), deleted = COALESCE(deleted, 0), error = ${abandoned} WHERE workspace = ${workspace} AND status = 'running'`
      }),

    // SQLite: under the lock no run of the workspace is alive, so whatever its runs left in the logs is discarded, not
    // folded (`discardSeenLog`): a run left `running` by a dead process, or one stopped before its fold was done. A fold
    // would stamp those records with this run's start; this run, if it completes, sees and folds every live one anyway.
    discardLeftLogs: (transaction) =>
      discardLeftLogs(sql, (other) => sql`(SELECT id FROM ${runs} WHERE workspace = ${workspace} AND resource = ${other})`, transaction),

    startRun: (now, { label, runner }) =>
      Effect.map(
        sql<{ id: number }>`INSERT INTO ${runs} ${
          sql.insert({
            workspace,
            resource,
            status: "running",
            started_at: time(dialect, now),
            alive_at: time(dialect, now),
            label: label ?? null,
            runner: runner ?? null
          })
        } RETURNING id`,
        ([row]) => Number(row.id)
      ),

    recordRefused: (now, { label, runner }, error) =>
      sql`INSERT INTO ${runs} ${
        sql.insert({
          workspace,
          resource,
          status: "failed",
          started_at: time(dialect, now),
          alive_at: time(dialect, now),
          finished_at: time(dialect, now),
          inserted: 0,
          updated: 0,
          unchanged: 0,
          deleted: 0,
          restarts: 0,
          error,
          label: label ?? null,
          runner: runner ?? null
        })
      }`.pipe(Effect.asVoid),

    writePage: (run, records, now) => {
      // A page that repeats an id would make PostgreSQL refuse the statement: the first one stands.
      const ids = new Set<string>()
      const unique: Array<Models.RecordOf<Resource.Resource>> = []
      for (const record of records) {
        if (ids.has(record.id)) continue
        ids.add(record.id)
        unique.push(record)
      }
      if (unique.length === 0) return Effect.succeed({ inserted: 0, updated: 0, unchanged: 0 })
      return (dialect === "pg" ? writeJson : writeValues)(run, time(dialect, now), unique)
    },

    // The log is in the scroll's order, which is no order: a chunk of it folded as it stands would land on pages all
    // over the seen table, each chunk's commit writing most of them again (1,200,000 ids in chunks of 10,000: a 4.4 GB
    // WAL, against 0.19 GB in one transaction). Copied first into a temporary table keyed by id (the connection's temp
    // file: no write lock, no WAL), it folds in key ranges, each page of the seen table written once, as before.
    sortSeenLog: (run, after, limit) =>
      Effect.gen(function*() {
        const sorted = sql(sortedSeenLog(run))
        yield* sql`CREATE TEMP TABLE IF NOT EXISTS ${sorted} (id TEXT PRIMARY KEY) WITHOUT ROWID`
        const from = after === undefined ? sql`` : sql`AND rowid > ${after}`
        const [bound] = yield* sql<{ readonly last: number | null; readonly looked: number }>`SELECT max(rowid) AS last,
          count(*) AS looked FROM (SELECT rowid FROM ${seenLog} WHERE run = ${run} ${from} ORDER BY rowid LIMIT ${limit})`
        if (bound.last === null) return undefined
        yield* sql`INSERT INTO ${sorted} (id) SELECT id FROM ${seenLog} WHERE run = ${run} ${from} AND rowid <= ${bound.last}
          ORDER BY id ON CONFLICT (id) DO NOTHING`
        return Number(bound.looked) < limit ? undefined : Number(bound.last)
      }),

    foldSeenChunk: (run, now, after, limit) =>
      Effect.gen(function*() {
        const sorted = sql(sortedSeenLog(run))
        const from = after === undefined ? sql`` : sql`WHERE id > ${after}`
        const [bound] = yield* sql<{ readonly last: string | null; readonly looked: number }>`SELECT max(id) AS last,
          count(*) AS looked FROM (SELECT id FROM ${sorted} ${from} ORDER BY id LIMIT ${limit})`
        if (bound.last === null) return undefined
        const upTo = after === undefined ? sql`WHERE id <= ${bound.last}` : sql`${from} AND id <= ${bound.last}`
        yield* foldIntoSeen(run, now, sql`${sorted} ${upTo}`)
        return Number(bound.looked) < limit ? undefined : bound.last
      }),

    discardSeenLogChunk: (run, limit) =>
      Effect.zipRight(
        sql`DELETE FROM ${seenLog} WHERE rowid IN (SELECT rowid FROM ${seenLog} WHERE run = ${run} ORDER BY rowid LIMIT ${limit})`,
        Effect.map(sql<{ readonly deleted: number }>`SELECT changes() AS deleted`, ([row]) => Number(row.deleted))
      ),

    dropSortedSeenLog: (run) => sql`DROP TABLE IF EXISTS temp.${sql(sortedSeenLog(run))}`.pipe(Effect.asVoid),

    markDeleted: (run, now) =>
      Effect.gen(function*() {
        if (dialect !== "pg") return yield* Effect.dieMessage("Store.markDeleted is PostgreSQL's: SQLite marks a chunk at a time")
        // PostgreSQL plans a workspace new to tables analyzed before it existed at one row a side, and joins its records
        // to its seen rows in a nested loop that scans all of them for each: quadratic (93 s for 20,000 users, the
        // fleet's second workspace). Without nested loops, for the rest of this transaction, it merges or hashes the
        // two: linear, whatever the statistics say.
        yield* sql`SET LOCAL enable_nestloop = off`
        // A deletion is a change by this run: `changed_run > N` finds what changed since run N, deletions included.
        // One statement, counted as it writes: the join hashes the workspace's records against the unseen ids, and a
        // count before it read them a second time (at 1,000,000 users, 2.5 s of a 4.6 s pass).
        const [{ deleted }] = yield* sql<{ deleted: number }>`WITH marked AS (
            UPDATE ${stored} SET deleted_at = ${time(dialect, now)}, changed_run = ${run}
            WHERE workspace = ${workspace} AND deleted_at IS NULL AND id IN (
              SELECT id FROM ${seen} WHERE workspace = ${workspace} AND last_seen_run <> ${run})
            RETURNING 1)
          SELECT CAST(count(*) AS INTEGER) AS deleted FROM marked`
        // A deleted record has no stored version to compare with, so that one that comes back is written.
        if (Number(deleted) > 0) {
          yield* sql`UPDATE ${seen} SET record_hash = NULL
            WHERE workspace = ${workspace} AND last_seen_run <> ${run} AND record_hash IS NOT NULL`
        }
        return Number(deleted)
      }),

    // The seen table's key bounds the chunk: the next `limit` unseen keys, read through its primary key, then the update
    // of the records in that range. A chunk looks at each unseen row once, whether or not its record was live.
    markDeletedChunk: (run, now, after, limit) =>
      Effect.gen(function*() {
        const from = after === undefined ? sql`` : sql`AND id > ${after}`
        const [bound] = yield* sql<{ readonly last: string | null; readonly looked: number }>`SELECT max(id) AS last,
          count(*) AS looked FROM (SELECT id FROM ${seen} WHERE workspace = ${workspace} AND last_seen_run <> ${run} ${from}
          ORDER BY id LIMIT ${limit})`
        if (bound.last === null) return { deleted: 0, last: undefined }
        yield* sql`UPDATE ${stored} SET deleted_at = ${time(dialect, now)}, changed_run = ${run}
          WHERE workspace = ${workspace} AND deleted_at IS NULL AND id IN (
            SELECT id FROM ${seen} WHERE workspace = ${workspace} AND last_seen_run <> ${run} ${from} AND id <= ${bound.last})`
        const [{ deleted }] = yield* sql<{ deleted: number }>`SELECT changes() AS deleted`
        return { deleted: Number(deleted), last: Number(bound.looked) < limit ? undefined : bound.last }
      }),

    recordDeleted: (run, deleted) => sql`UPDATE ${runs} SET deleted = ${deleted} WHERE id = ${run}`.pipe(Effect.asVoid),

    recordAlive: (run, now) => sql`UPDATE ${runs} SET alive_at = ${time(dialect, now)} WHERE id = ${run}`.pipe(Effect.asVoid),

    recordProgress: (run, counts) =>
      sql`UPDATE ${runs} SET ${
        sql.update({ inserted: counts.inserted, updated: counts.updated, unchanged: counts.unchanged, restarts: counts.restarts })
      } WHERE id = ${run}`.pipe(Effect.asVoid),

    finishRun: (run, end) =>
      sql`UPDATE ${runs} SET ${
        sql.update({
          status: end.status,
          finished_at: time(dialect, end.now),
          alive_at: time(dialect, end.now),
          inserted: end.counts.inserted,
          updated: end.counts.updated,
          unchanged: end.counts.unchanged,
          deleted: end.counts.deleted,
          restarts: end.counts.restarts,
          error: end.error
        })
      } WHERE id = ${run} AND status <> 'complete'`.pipe(Effect.asVoid),

    bindApp: (app, now) =>
      sql`INSERT INTO ${workspaces} ${
        sql.insert({ workspace, app_id: app.id, app_name: app.name, bound_at: time(dialect, now) })
      }`.pipe(Effect.asVoid),

    boundApp,
    storedApp,
    checkTables
  }
}
