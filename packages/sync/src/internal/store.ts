/**
 * The statements a run makes. Every value goes in as a parameter; the only names spliced into SQL are this module's
 * own table and column names.
 */
import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import type { Models, Resource } from "@intercom-scroll/core"
import { Effect } from "effect"
import { type Dialect, time } from "./dialect.js"

export const recordTables: { readonly [R in Resource.Resource]: string } = {
  users: "intercom_users",
  leads: "intercom_leads",
  companies: "intercom_companies"
}

export const runsTable = "intercom_sync_runs"

/** The outcome of writing one page. */
export interface PageCounts {
  readonly inserted: number
  readonly updated: number
  readonly unchanged: number
}

export type RunStatus = "running" | "complete" | "failed" | "abandoned"

const text = (value: unknown): string | null => (typeof value === "string" ? value : null)

/** U+0000, and a UTF-16 surrogate without its pair: what PostgreSQL's `text` and `jsonb` cannot hold. */
// eslint-disable-next-line no-control-regex -- U+0000 is exactly what is looked for
const unstorable = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g
/** The same in JSON text, where `JSON.stringify` has escaped them (after an even run of backslashes: not a literal). */
const unstorableEscape = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i

const storableText = (value: string): string => value.replace(unstorable, "\uFFFD")

/**
 * JSON text for PostgreSQL, where U+0000 and unpaired surrogates in strings become U+FFFD: `jsonb` and `text` refuse
 * them, and one such record would otherwise fail every sync of its workspace. The rare page that has one takes the
 * slow path.
 */
const storableJson = (value: unknown): string => {
  const json = JSON.stringify(value)
  if (!unstorableEscape.test(json)) return json
  return JSON.stringify(value, (_key, inner) => typeof inner === "string" ? storableText(inner) : inner)
}
/** Intercom's timestamps are UNIX seconds; anything else is left to the record column. */
const seconds = (value: unknown): number | null => (Number.isSafeInteger(value) ? (value as number) : null)

/** The text columns copied out of each resource's records, beside `created_at` and `updated_at`. */
const typedColumns: { readonly [R in Resource.Resource]: ReadonlyArray<keyof Models.RecordOf<R> & string> } = {
  users: ["email", "name"],
  leads: ["email", "name"],
  companies: ["company_id", "name"]
}

/** SQLite: rows a statement carries at most, well under its limit on parameters (13 a row). */
const rowsPerStatement = 500

export interface Store {
  readonly markAbandoned: (now: number) => Effect.Effect<void, SqlError>
  readonly startRun: (now: number) => Effect.Effect<number, SqlError>
  /**
   * Upserts a page: one statement (in SQLite, one per 500 records) whatever the page's size; call it inside the lock's
   * transaction. A record this run already wrote (sent again by a restart) is left as it is and not counted again.
   */
  readonly writePage: (
    run: number,
    records: ReadonlyArray<Models.RecordOf<Resource.Resource>>,
    now: number
  ) => Effect.Effect<PageCounts, SqlError>
  /** Marks deleted every live row the run did not see, and returns how many. Call inside the completing transaction. */
  readonly markDeleted: (run: number, now: number) => Effect.Effect<number, SqlError>
  readonly finishRun: (run: number, end: {
    readonly status: Exclude<RunStatus, "running" | "abandoned">
    readonly now: number
    readonly counts: PageCounts & { readonly deleted: number; readonly restarts: number }
    readonly error: string | null
  }) => Effect.Effect<void, SqlError>
}

export const make = (
  sql: SqlClient.SqlClient,
  dialect: Dialect,
  workspace: string,
  resource: Resource.Resource
): Store => {
  const table = sql(recordTables[resource])
  const runs = sql(runsTable)
  const typed: ReadonlyArray<string> = typedColumns[resource]

  // A record seen before is replaced whole and un-deleted; `changed_run` moves only when its stored version differed
  // (or it had been deleted), which is how a page's rows are counted. A row this run already wrote is left alone.
  const onConflict = sql`ON CONFLICT (workspace, id) DO UPDATE SET
      record = excluded.record,
      ${sql.csv(typed.map((column) => sql`${sql(column)} = excluded.${sql(column)}`))},
      created_at = excluded.created_at,
      updated_at = excluded.updated_at,
      last_seen_at = excluded.last_seen_at,
      last_seen_run = excluded.last_seen_run,
      deleted_at = NULL,
      changed_run = CASE WHEN ${table}.deleted_at IS NULL AND ${table}.record = excluded.record
        THEN ${table}.changed_run ELSE excluded.changed_run END
    WHERE ${table}.last_seen_run <> excluded.last_seen_run
    RETURNING id, first_seen_run, changed_run`

  type Returned = ReadonlyArray<{ readonly id: string; readonly first_seen_run: number; readonly changed_run: number }>
  /** Upserts a page's records (no id twice) and returns the rows the statement wrote. */
  type Upsert = (
    run: number,
    at: Date | string,
    records: ReadonlyArray<Models.RecordOf<Resource.Resource>>
  ) => Effect.Effect<Returned, SqlError>

  /**
   * SQLite: a multi-row VALUES, 13 parameters a row. better-sqlite3 binds them natively and keeps the prepared
   * statement of a full page's text.
   */
  const upsertValues: Upsert = (run, at, records) => {
    const rows = records.map((record) => {
      const row: Record<string, unknown> = {
        workspace,
        id: record.id,
        record: JSON.stringify(record),
        created_at: seconds(record.created_at),
        updated_at: seconds(record.updated_at),
        first_seen_at: at,
        last_seen_at: at,
        deleted_at: null,
        first_seen_run: run,
        last_seen_run: run,
        changed_run: run
      }
      for (const column of typed) row[column] = text((record as Record<string, unknown>)[column])
      return row
    })
    const batches: Array<ReadonlyArray<Record<string, unknown>>> = []
    for (let i = 0; i < rows.length; i += rowsPerStatement) batches.push(rows.slice(i, i + rowsPerStatement))
    return Effect.map(
      Effect.forEach(batches, (batch) => sql<Returned[number]>`INSERT INTO ${table} ${sql.insert(batch)} ${onConflict}`),
      (results) => results.flat()
    )
  }

  /**
   * PostgreSQL: the whole page as one `jsonb` parameter, an array of `[id, created_at, updated_at, ...typed, record]`,
   * unnested by the server. Against a VALUES of 13 parameters a record, the statement's text is short and the same
   * for every page: the server parses and plans it in a fraction of the time, the client compiles and binds 7
   * parameters instead of 1,300 a page, and serialises the page's JSON once. Profiled in packages/bench/NOTES.md.
   */
  const upsertJson: Upsert = (run, at, records) => {
    const entries = records.map((record) => {
      const entry: Array<unknown> = [record.id, seconds(record.created_at), seconds(record.updated_at)]
      for (const column of typed) entry.push(text((record as Record<string, unknown>)[column]))
      entry.push(record)
      return entry
    })
    const element = (index: number) => sql.literal(`e ->> ${index}`)
    return sql<Returned[number]>`INSERT INTO ${table} (workspace, id, created_at, updated_at, ${
      sql.csv(typed.map((column) => sql`${sql(column)}`))
    }, record, first_seen_at, last_seen_at, deleted_at, first_seen_run, last_seen_run, changed_run)
      SELECT CAST(${workspace} AS text), ${element(0)}, CAST(${element(1)} AS bigint), CAST(${element(2)} AS bigint), ${
      sql.csv(typed.map((_, index) => element(3 + index)))
    }, e -> ${sql.literal(String(3 + typed.length))}, CAST(${at} AS timestamptz), CAST(${at} AS timestamptz), NULL,
        CAST(${run} AS integer), CAST(${run} AS integer), CAST(${run} AS integer)
      FROM jsonb_array_elements(CAST(${storableJson(entries)} AS jsonb)) AS page (e)
      ${onConflict}`
  }

  return {
    markAbandoned: (now) =>
      sql`UPDATE ${runs} SET status = 'abandoned', finished_at = ${time(dialect, now)}
        WHERE workspace = ${workspace} AND status = 'running'`.pipe(Effect.asVoid),

    startRun: (now) =>
      Effect.map(
        sql<{ id: number }>`INSERT INTO ${runs} ${
          sql.insert({ workspace, resource, status: "running", started_at: time(dialect, now) })
        } RETURNING id`,
        ([row]) => Number(row.id)
      ),

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
      const upsert = dialect === "pg" ? upsertJson : upsertValues
      return Effect.map(upsert(run, time(dialect, now), unique), (returned) => {
        let inserted = 0
        let updated = 0
        let unchanged = 0
        for (const row of returned) {
          if (Number(row.first_seen_run) === run) inserted++
          else if (Number(row.changed_run) === run) updated++
          else unchanged++
        }
        return { inserted, updated, unchanged }
      })
    },

    markDeleted: (run, now) =>
      Effect.gen(function*() {
        const unseen = sql`workspace = ${workspace} AND deleted_at IS NULL AND last_seen_run <> ${run}`
        const [{ deleted }] = yield* sql<{ deleted: number }>`
          SELECT CAST(count(*) AS INTEGER) AS deleted FROM ${table} WHERE ${unseen}`
        if (Number(deleted) > 0) yield* sql`UPDATE ${table} SET deleted_at = ${time(dialect, now)} WHERE ${unseen}`
        return Number(deleted)
      }),

    finishRun: (run, end) =>
      sql`UPDATE ${runs} SET ${
        sql.update({
          status: end.status,
          finished_at: time(dialect, end.now),
          inserted: end.counts.inserted,
          updated: end.counts.updated,
          unchanged: end.counts.unchanged,
          deleted: end.counts.deleted,
          restarts: end.counts.restarts,
          error: end.error
        })
      } WHERE id = ${run}`.pipe(Effect.asVoid)
  }
}
