/**
 * A runner's word, at its start, when PostgreSQL lets it hold fewer sessions than it may need: a role's or a database's
 * `CONNECTION LIMIT`, or the server's `max_connections`. Past it PostgreSQL refuses a session (53300), which the runner
 * takes for a database away for a while, and a sync refused its session runs again only three shard-lock intervals
 * later: the runner works, slower, and nothing else would say why.
 *
 * @internal
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Ref } from "effect"

/**
 * The sessions a runner needs (README, "A role's sessions"): one for each sync, its address's lock, its shard locks',
 * and two of its pool for the cluster's statements. It starts on 3.
 */
const needed = (maxSyncs: number) => maxSyncs + 4

const toStart = 3

interface Limits {
  readonly role: string
  readonly role_limit: number
  readonly superuser: boolean
  readonly database: string
  readonly database_limit: number
  readonly server_room: number
}

/** What a limit is and how to raise it, in PostgreSQL's words. */
interface Limit {
  readonly sessions: number
  readonly what: string
  readonly raise: (sessions: number) => string
}

const quoted = (name: string) => `"${name.replaceAll("\"", "\"\"")}"`

/** The limits that apply to this session's role, -1 (none) left out; a superuser is held by none of them. */
const limitsOf = (limits: Limits): ReadonlyArray<Limit> =>
  limits.superuser ? [] : [
    ...(limits.role_limit >= 0
      ? [{
        sessions: limits.role_limit,
        what: `the role ${quoted(limits.role)} may hold ${limits.role_limit} sessions at once (its CONNECTION LIMIT)`,
        raise: (sessions: number) =>
          `ALTER ROLE ${quoted(limits.role)} CONNECTION LIMIT ${sessions}, and more for each other process that logs in as the role`
      }]
      : []),
    ...(limits.database_limit >= 0
      ? [{
        sessions: limits.database_limit,
        what: `the database ${quoted(limits.database)} takes ${limits.database_limit} sessions at once (its CONNECTION LIMIT)`,
        raise: (sessions: number) =>
          `ALTER DATABASE ${quoted(limits.database)} CONNECTION LIMIT ${sessions}, and more for each other process that uses it`
      }]
      : []),
    {
      sessions: limits.server_room,
      what: `the server takes ${limits.server_room} sessions at once of roles that are not superusers (max_connections less those reserved)`,
      raise: (sessions: number) => `max_connections in postgresql.conf, ${sessions - limits.server_room} more at least, and a restart`
    }
  ]

/**
 * Reads the limits and logs one warning when the least of them is below what a runner of `maxSyncs` syncs needs;
 * nothing otherwise, nor when they cannot be read (the start says why the database is away). `said` keeps the
 * warning to one a runner, however many times its start is tried.
 */
export const warnIfTooFew = (maxSyncs: number, said: Ref.Ref<boolean>) =>
  Effect.gen(function*() {
    if (yield* Ref.get(said)) return
    const sql = yield* SqlClient.SqlClient
    const [limits] = yield* sql<Limits>`
      SELECT current_user AS role, r.rolconnlimit AS role_limit, r.rolsuper AS superuser,
        current_database() AS database, d.datconnlimit AS database_limit,
        current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
          - COALESCE(current_setting('reserved_connections', true)::int, 0) AS server_room
      FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()`
    yield* Ref.set(said, true)
    if (limits === undefined) return
    const need = needed(maxSyncs)
    const least = limitsOf(limits).reduce<Limit | undefined>(
      (least, limit) => least === undefined || limit.sessions < least.sessions ? limit : least,
      undefined
    )
    if (least === undefined || least.sessions >= need) return
    const meanwhile = least.sessions < toStart
      ? `It cannot start on fewer than ${toStart}: each try is refused`
      : "With fewer it runs, slower: a sync refused a session runs again later"
    yield* Effect.logWarning(
      `PostgreSQL lets this runner hold fewer sessions than it needs: ${least.what}, and it needs ${need}: one for each sync it runs at once (--max-syncs ${maxSyncs}) and 4 besides. ${meanwhile}. Raise the limit (${
        least.raise(need)
      }) or lower --max-syncs.`
    )
  }).pipe(
    // Best effort: a read refused is the start's to report.
    Effect.ignore
  )
