import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { UnsupportedDialect } from "../SyncError.js"

/**
 * The two dialects the sync has SQL for. They differ in a few column types (`jsonb` and `timestamptz` against JSON
 * text and ISO-8601 text), in how a time is passed, and in the lock; the statements are otherwise the same text.
 */
export type Dialect = "pg" | "sqlite"

export const of = (sql: SqlClient.SqlClient): Effect.Effect<Dialect, UnsupportedDialect> =>
  sql.onDialectOrElse({
    pg: () => Effect.succeed<Dialect>("pg"),
    sqlite: () => Effect.succeed<Dialect>("sqlite"),
    orElse: () => Effect.fail(new UnsupportedDialect())
  })

/**
 * A time on the Effect `Clock`, as a parameter: a `Date` for PostgreSQL's `timestamptz`, ISO-8601 UTC text with
 * milliseconds for SQLite (fixed width, so that text order is time order, and what SQLite's date functions read).
 */
export const time = (dialect: Dialect, millis: number): Date | string =>
  dialect === "pg" ? new Date(millis) : new Date(millis).toISOString()
