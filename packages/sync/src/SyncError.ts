/**
 * What can stop a sync besides the scroll itself, as tagged errors. Each message says what happened and what to do;
 * none carries the access token (the sync never holds it) or a record.
 *
 * @example
 * import { Sync, SyncError } from "@intercom-scroll/sync"
 * import { Console, Effect } from "effect"
 *
 * const program = Sync.run("users", { workspace: "acme", lockTimeout: "10 minutes" }).pipe(
 *   Effect.catchTags({
 *     LockTimeout: (error: SyncError.LockTimeout) => Console.error(error.message),
 *     SchemaTooNew: (error: SyncError.SchemaTooNew) => Console.error(error.message)
 *   })
 * )
 *
 * @since 0.1.0
 */
import type { MigrationError } from "@effect/sql/Migrator"
import type { SqlError } from "@effect/sql/SqlError"
import type { ScrollError } from "@intercom-scroll/core"
import { Schema } from "effect"

/**
 * An error's message followed by what its causes said, down the chain, each once: "database is locked", "connect
 * ECONNREFUSED 127.0.0.1:5432", where @effect/sql's `SqlError` says only that a statement failed, and PostgreSQL's
 * detail, which names the object in the way ("view my_users depends on table intercom_users"). For a log line or a
 * report.
 *
 * @example
 * import { SqlError } from "@effect/sql/SqlError"
 * import { SyncError } from "@intercom-scroll/sync"
 *
 * const error = new SqlError({ message: "Failed to execute statement", cause: new Error("database is locked") })
 * console.log(SyncError.explain(error)) // Failed to execute statement: database is locked
 *
 * @since 0.1.0
 * @category formatting
 */
export const explain = (error: { readonly message: string; readonly cause?: unknown }): string => {
  // Trimmed: the SQLite client's "Failed to prepare statement " ends in a space.
  let text = error.message.trimEnd()
  const heard = (words: unknown, wrap: (words: string) => string) => {
    if (typeof words === "string" && words.trim() !== "" && !text.includes(words.trim())) text += wrap(words.trim())
  }
  // A few levels at most: a cause's chain is the driver's, not ours, and may loop.
  for (let cause = error.cause, depth = 0; cause instanceof Error && depth < 4; cause = cause.cause, depth++) {
    heard(cause.message, (words) => `: ${words}`)
    // Node's connection to a name of several addresses (`localhost`, both IPv4 and IPv6) that all refuse it: an
    // AggregateError with no message of its own, each address's refusal in `errors`.
    if (cause instanceof AggregateError) {
      heard(cause.errors.map((each) => each instanceof Error ? each.message : "").filter((each) => each !== "").join("; "), (words) => `: ${words}`)
    }
    heard((cause as Error & { readonly detail?: unknown }).detail, (detail) => ` (${detail})`)
  }
  return text
}

/**
 * Another sync of the workspace held its lock for longer than `lockTimeout`.
 *
 * @since 0.1.0
 * @category errors
 */
export class LockTimeout extends Schema.TaggedError<LockTimeout>()("LockTimeout", {
  workspace: Schema.String,
  waitedMillis: Schema.Number
}) {
  /** What happened. */
  get problem(): string {
    return `Another sync of workspace ${JSON.stringify(this.workspace)} still held its lock after ${
      Math.round(this.waitedMillis / 1000)
    } s, so this one gave up: Intercom allows one scroll per workspace.`
  }
  /** What to do, with this library's options. */
  get advice(): string {
    return "Wait for the other to finish, or give a longer lockTimeout."
  }
  override get message(): string {
    return `${this.problem} ${this.advice}`
  }
}

/**
 * The sync lost its workspace lock mid-run: its PostgreSQL session ended, or its SQLite lease expired (the process
 * stalled longer than the lease) and another sync took it over. It wrote nothing once the lock was gone, and marked
 * nothing deleted.
 *
 * @since 0.1.0
 * @category errors
 */
export class LockLost extends Schema.TaggedError<LockLost>()("LockLost", {
  workspace: Schema.String,
  reason: Schema.String,
  /**
   * Lost because the server answered nothing at all, on any connection, for `Sync.Options.unansweredTimeout` while a
   * statement of the run waited (its host gone, its address moved): a longer timeout rides out a longer outage.
   */
  unanswered: Schema.optionalWith(Schema.Boolean, { default: () => false })
}) {
  override get message(): string {
    return `The sync of workspace ${
      JSON.stringify(this.workspace)
    } lost its lock (${this.reason}), so it stopped before marking anything deleted. Run it again.`
  }
}

/**
 * A session that held (or queued for) a lock on the sync's tables while a statement of the run waited: what
 * `pg_locks` and `pg_stat_activity` said of it.
 *
 * @since 0.1.0
 * @category models
 */
export class Blocker extends Schema.Class<Blocker>("Blocker")({
  pid: Schema.Number,
  applicationName: Schema.String,
  user: Schema.NullOr(Schema.String),
  /** `pg_stat_activity.state`: `idle in transaction` is a transaction left open. */
  state: Schema.NullOr(Schema.String),
  /** The lock it holds or waits for, and on which table: `AccessExclusiveLock on intercom_users_records`. */
  lock: Schema.String,
  /** How long its transaction had been open, in seconds. */
  transactionSeconds: Schema.Number,
  /** Its current or last statement, cut at 200 characters. */
  query: Schema.String
}) {
  /** `pid 4242 (psql, user ops, idle in transaction for 65 s, AccessExclusiveLock on …: LOCK TABLE …)`. */
  get description(): string {
    return `pid ${this.pid} (${this.applicationName === "" ? "no application_name" : this.applicationName}${
      this.user === null ? "" : `, user ${this.user}`
    }, ${this.state ?? "state unknown"} for ${Math.round(this.transactionSeconds * 10) / 10} s, ${this.lock}: ${this.query})`
  }
}

/**
 * PostgreSQL: a statement of the run waited longer than `tableLockTimeout` for a lock that another session held on
 * the sync's tables (an operator's `LOCK TABLE` or open transaction, a long `ALTER TABLE`, a `SELECT … FOR UPDATE` on
 * its rows), and PostgreSQL cancelled it (`lock_timeout`, 55P03). The transaction was rolled back: pages written
 * before stay, nothing was marked deleted. When it was a migration's statement (`migrating`), the migrations were
 * rolled back whole: the tables are as they were.
 *
 * @since 0.1.0
 * @category errors
 */
export class TableLocked extends Schema.TaggedError<TableLocked>()("TableLocked", {
  /** The workspace whose sync it stopped; none when `Sync.migrate` met it, before any sync. */
  workspace: Schema.optional(Schema.String),
  /** Whether the statement was a migration's, before the run took its workspace's lock (its row not yet written). */
  migrating: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  waitedMillis: Schema.Number,
  /**
   * The sessions holding or awaiting a lock on the sync's tables (but a plain read's `AccessShareLock`) in a
   * transaction open for at least as long as the statement waited, looked up once it gave up: empty when they had let
   * go by then.
   */
  blockers: Schema.Array(Blocker)
}) {
  /** What happened. */
  get problem(): string {
    const who = this.blockers.length === 0
      ? "another session (it had let go by the time it was looked for)"
      : this.blockers.map((blocker) => blocker.description).join("; ")
    const waited = `waited ${Math.round(this.waitedMillis / 100) / 10} s for a lock on its tables held by ${who}, and gave up.`
    if (this.migrating) {
      const whose = this.workspace === undefined ? "" : ` (at the start of the sync of workspace ${JSON.stringify(this.workspace)})`
      return `A statement of the sync's migrations${whose} ${waited} Nothing was migrated: the tables are as they were.`
    }
    return `A statement of the sync of workspace ${JSON.stringify(this.workspace)} ${waited} Pages written before stay; nothing was marked deleted.`
  }
  /** What to do, with this library's options. */
  get advice(): string {
    const end = "End that session's transaction (COMMIT or ROLLBACK it, or SELECT pg_terminate_backend(pid))"
    return this.workspace === undefined
      ? `${end} and migrate again: Sync.migrate waits 1 minute for such a lock (Sync.run, its tableLockTimeout).`
      : `${end} and run the sync again, or give a longer tableLockTimeout.`
  }
  override get message(): string {
    return `${this.problem} ${this.advice}`
  }
}

/**
 * The PostgreSQL session the sync took its workspace lock on is not its own: a pooler between it and PostgreSQL
 * (PgBouncer's `pool_mode = transaction` or `statement`, a managed database's transaction pooler) hands each
 * transaction to whichever server session is free. The lock is a session-level advisory lock: through such a pooler it
 * stays on a session other clients use, and a second sync of the workspace may be given that very session and take the
 * lock again. The run stopped there, before writing anything more; with nothing written yet when found at the lock's
 * take.
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionPooled extends Schema.TaggedError<SessionPooled>()("SessionPooled", {
  /** The workspace whose sync found it; none when `Sync.checkSessions` did, before any sync. */
  workspace: Schema.optional(Schema.String),
  /** What gave it away. */
  evidence: Schema.String
}) {
  /** What happened. */
  get problem(): string {
    const who = this.workspace === undefined
      ? "The PostgreSQL connections were found to share their sessions"
      : `The sync of workspace ${JSON.stringify(this.workspace)} found that its PostgreSQL session is shared`
    return `${who} with other clients (${this.evidence}): transaction or statement pooling is not supported, since the workspace lock lives in a session of its own. It stopped before writing anything${
      this.workspace === undefined ? "" : " more"
    }.`
  }
  /** What to do. */
  get advice(): string {
    return "Connect to PostgreSQL directly, or through a pooler in session mode (PgBouncer: pool_mode = session)."
  }
  override get message(): string {
    return `${this.problem} ${this.advice}`
  }
}

/**
 * The database's sync tables were migrated by a newer version of this package: this version does not know the
 * migrations it lists, and so neither what the tables look like.
 *
 * @since 0.1.0
 * @category errors
 */
export class SchemaTooNew extends Schema.TaggedError<SchemaTooNew>()("SchemaTooNew", {
  table: Schema.String,
  unknown: Schema.Array(Schema.Number),
  known: Schema.Array(Schema.Number)
}) {
  override get message(): string {
    return `The sync tables were migrated by a newer version of @intercom-scroll/sync: ${this.table} lists migration ${
      this.unknown.join(", ")
    }, and this version knows only ${this.known.join(", ")}. Upgrade @intercom-scroll/sync (or the CLI) to sync into this database.`
  }
}

/**
 * The `SqlClient` speaks a dialect the sync has no SQL for. SQLite and PostgreSQL are supported, through any of
 * their @effect/sql drivers.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnsupportedDialect extends Schema.TaggedError<UnsupportedDialect>()("UnsupportedDialect", {}) {
  override get message(): string {
    return "The sync writes to SQLite or PostgreSQL (through any of their @effect/sql drivers); this SqlClient is neither."
  }
}

/**
 * Options that cannot work, such as an empty workspace name or a negative lock timeout.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptions extends Schema.TaggedError<InvalidOptions>()("InvalidOptions", {
  detail: Schema.String
}) {
  override get message(): string {
    return `Invalid sync options: ${this.detail}`
  }
}

/** An app by its `id_code`, and its name where known: `ecahpwf5 ("Acme")`. */
const named = (id: string, name: string | undefined) => (name === undefined ? id : `${id} (${JSON.stringify(name)})`)

/** A string as an SQL literal. */
const quoted = (text: string): string => `'${text.replaceAll("'", "''")}'`

/**
 * The access token belongs to another Intercom workspace (app) than the one whose records the workspace's rows hold:
 * synced, it would mark every row deleted and fill the table with the other's records. The run stopped before writing
 * anything. A workspace is bound to its app at its first run whose token Intercom identifies (`GET /me`), after a
 * check against the `app_id` of the records it already holds.
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkspaceMismatch extends Schema.TaggedError<WorkspaceMismatch>()("WorkspaceMismatch", {
  workspace: Schema.String,
  /** The `id_code` of the app whose records the rows hold. */
  boundApp: Schema.String,
  /** The `id_code` of the app the token belongs to. */
  tokenApp: Schema.String,
  /** The bound app's name, when Intercom gave it. */
  boundAppName: Schema.optional(Schema.String),
  /** The token's app's name. */
  tokenAppName: Schema.optional(Schema.String)
}) {
  /** What happened. */
  get problem(): string {
    return `The access token belongs to Intercom workspace ${named(this.tokenApp, this.tokenAppName)}, but the rows of workspace ${
      JSON.stringify(this.workspace)
    } hold the records of ${named(this.boundApp, this.boundAppName)}: synced, every one of them would be marked deleted. Nothing was written.`
  }
  /** What to do. */
  get advice(): string {
    return `Sync this token under a workspace name of its own, or give ${
      JSON.stringify(this.workspace)
    } the token of ${this.boundApp}. If its rows should follow ${this.tokenApp} from now on (the next complete run then marks the old records deleted), bind the name to it: ${this.rebind}`
  }
  /**
   * The statement that binds the name to the token's app, for SQLite and PostgreSQL alike. Deleting the name's row of
   * `intercom_sync_workspaces` is not enough: a name bound to none is checked against the app its stored records name.
   */
  get rebind(): string {
    return `INSERT INTO intercom_sync_workspaces (workspace, app_id, bound_at) VALUES (${quoted(this.workspace)}, ${
      quoted(this.tokenApp)
    }, CURRENT_TIMESTAMP) ON CONFLICT (workspace) DO UPDATE SET app_id = excluded.app_id, app_name = NULL, bound_at = excluded.bound_at`
  }
  override get message(): string {
    return `${this.problem} ${this.advice}`
  }
}

/**
 * The workspace's rows are bound to an Intercom app, and Intercom refused to say which app the access token belongs to
 * (its app may not read admins): the run cannot tell whether the token is the workspace's, and stopped before writing
 * anything.
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkspaceUnchecked extends Schema.TaggedError<WorkspaceUnchecked>()("WorkspaceUnchecked", {
  workspace: Schema.String,
  /** The `id_code` of the app whose records the rows hold. */
  boundApp: Schema.String,
  /** What Intercom answered: `IdentifyFailed`'s problem. */
  detail: Schema.String
}) {
  /** What happened. */
  get problem(): string {
    return `The rows of workspace ${JSON.stringify(this.workspace)} hold the records of Intercom workspace ${this.boundApp}, and Intercom would not say which workspace the access token belongs to, so nothing was written. ${this.detail}`
  }
  /** What to do. */
  get advice(): string {
    return `Give the token's app the "Read admins" permission in Intercom's Developer Hub, or delete the workspace's row from intercom_sync_workspaces to sync it unchecked.`
  }
  override get message(): string {
    return `${this.problem} ${this.advice}`
  }
}

/**
 * A table, view, column or key of the sync's that the database could not find, down an error's causes: PostgreSQL's
 * 42P01 (undefined_table), 42703 (undefined_column) and 42P10 (an upsert's `ON CONFLICT (workspace, id)` with no
 * primary key to match: its primary key dropped), SQLite's words for each. The database's words, or undefined.
 */
const missingInSchema = (error: unknown): string | undefined => {
  // A few levels at most, as `explain`: the chain is the driver's.
  for (let cause = error, depth = 0; typeof cause === "object" && cause !== null && depth < 5; depth++) {
    const { code, message } = cause as { readonly code?: unknown; readonly message?: unknown }
    if (
      typeof message === "string" &&
      // PostgreSQL by its codes, whatever the server's language; 42P10, of our statements, is only the upsert's.
      (code === "42P01" || code === "42703" || code === "42P10" ||
        /^(?:no such (?:table|column): |table \S+ has no column named |ON CONFLICT clause does not match any PRIMARY KEY)/
          .test(message))
    ) return message
    cause = (cause as { readonly cause?: unknown }).cause
  }
  return undefined
}

/**
 * The sync's tables are not as its migrations made them: a table, view, column or primary key of theirs is missing,
 * dropped or renamed by hand (the migrations that ran made every one). A run checks the resource's view, its tables and
 * the columns it writes before its scroll opens, so that such a run fails without holding Intercom's one scroll of the
 * workspace for a minute; a primary key dropped is met at the first write, after the scroll opened.
 *
 * @since 0.1.0
 * @category errors
 */
export class TablesAltered extends Schema.TaggedError<TablesAltered>()("TablesAltered", {
  /** The workspace whose sync met it; none when met outside a sync (reading the runs, say). */
  workspace: Schema.optional(Schema.String),
  /** The database's words: what it could not find. */
  detail: Schema.String
}) {
  /**
   * `TablesAltered` for an error whose causes say the database could not find a table or column (an `SqlError` of a
   * statement on the sync's tables), naming `workspace` if given; undefined for any other error.
   *
   * @since 0.1.0
   * @category constructors
   */
  static fromError(error: unknown, workspace?: string): TablesAltered | undefined {
    const detail = missingInSchema(error)
    if (detail === undefined) return undefined
    return new TablesAltered(workspace === undefined ? { detail } : { workspace, detail })
  }
  /** What happened. */
  get problem(): string {
    const whose = this.workspace === undefined ? "" : ` of workspace ${JSON.stringify(this.workspace)}`
    return `The sync${whose} met a table, view, column or key of its own missing: ${this.detail}.`
  }
  /** What to do. */
  get advice(): string {
    return "The sync's tables are not as its migrations made them (a table, view, column or key dropped or renamed by hand). One renamed: give it its name back. A view dropped: create it again as a new database's first sync makes it (its definition: sqlite3 NEW '.schema NAME', or pg_dump --schema-only --table NAME NEW). A table or column dropped, what it held is gone: sync into a new database (or, in PostgreSQL, a schema of its own), where the first sync copies every record again (a table made again empty is not enough: in PostgreSQL the sync would take the records it lost for unchanged). A primary key dropped: add it back (in PostgreSQL, ALTER TABLE NAME ADD PRIMARY KEY (workspace, id))."
  }
  override get message(): string {
    return `${this.problem} ${this.advice}`
  }
}

/**
 * Everything `Sync.run` can fail with: the scroll's errors, the workspace's (another's token), the lock's, the schema's
 * and the database's.
 *
 * @since 0.1.0
 * @category models
 */
export type SyncError =
  | ScrollError.ScrollError
  | WorkspaceMismatch
  | WorkspaceUnchecked
  | LockTimeout
  | LockLost
  | TableLocked
  | SessionPooled
  | SchemaTooNew
  | UnsupportedDialect
  | InvalidOptions
  | TablesAltered
  | MigrationError
  | SqlError
