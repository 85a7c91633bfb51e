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
 * The record as JSON text. For PostgreSQL, U+0000 and unpaired surrogates in strings become U+FFFD: `jsonb` refuses
 * them, and one such record would otherwise fail every sync of its workspace. The rare record that has one takes the
 * slow path.
 */
const recordJson = (dialect: Dialect, record: unknown): string => {
  const json = JSON.stringify(record)
  if (dialect !== "pg" || !unstorableEscape.test(json)) return json
  return JSON.stringify(record, (_key, value) => typeof value === "string" ? storableText(value) : value)
}
/** Intercom's timestamps are UNIX seconds; anything else is left to the record column. */
const seconds = (value: unknown): number | null => (Number.isSafeInteger(value) ? (value as number) : null)

/** The text columns copied out of each resource's records, beside `created_at` and `updated_at`. */
const typedColumns: { readonly [R in Resource.Resource]: ReadonlyArray<keyof Models.RecordOf<R> & string> } = {
  users: ["email", "name"],
  leads: ["email", "name"],
  companies: ["company_id", "name"]
}

/** Rows a statement carries at most: well under both dialects' limits on parameters (13 a row). */
const rowsPerStatement = 500

export interface Store {
  readonly markAbandoned: (now: number) => Effect.Effect<void, SqlError>
  readonly startRun: (now: number) => Effect.Effect<number, SqlError>
  /**
   * Upserts a page: one statement (or one per 500 records) whatever the page's size; call it inside the lock's
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
  const copyTyped = (record: Models.RecordOf<Resource.Resource>, row: Record<string, unknown>) => {
    for (const column of typed) {
      const value = text((record as Record<string, unknown>)[column])
      row[column] = value !== null && dialect === "pg" ? storableText(value) : value
    }
  }

  const upsert = (rows: ReadonlyArray<Record<string, unknown>>) =>
    sql<{ id: string; first_seen_run: number; changed_run: number }>`INSERT INTO ${table} ${sql.insert(rows)}
      ON CONFLICT (workspace, id) DO UPDATE SET
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
      const at = time(dialect, now)
      // A page that repeats an id would make PostgreSQL refuse the statement: the first one stands.
      const ids = new Set<string>()
      const rows: Array<Record<string, unknown>> = []
      for (const record of records) {
        if (ids.has(record.id)) continue
        ids.add(record.id)
        const row: Record<string, unknown> = {
          workspace,
          id: record.id,
          record: recordJson(dialect, record),
          created_at: seconds(record.created_at),
          updated_at: seconds(record.updated_at),
          first_seen_at: at,
          last_seen_at: at,
          deleted_at: null,
          first_seen_run: run,
          last_seen_run: run,
          changed_run: run
        }
        copyTyped(record, row)
        rows.push(row)
      }
      if (rows.length === 0) return Effect.succeed({ inserted: 0, updated: 0, unchanged: 0 })
      const batches: Array<ReadonlyArray<Record<string, unknown>>> = []
      for (let i = 0; i < rows.length; i += rowsPerStatement) batches.push(rows.slice(i, i + rowsPerStatement))
      return Effect.forEach(batches, upsert).pipe(Effect.map((results) => {
        let inserted = 0
        let updated = 0
        let unchanged = 0
        for (const row of results.flat()) {
          if (Number(row.first_seen_run) === run) inserted++
          else if (Number(row.changed_run) === run) updated++
          else unchanged++
        }
        return { inserted, updated, unchanged }
      }))
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
