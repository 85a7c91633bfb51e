/**
 * PostgreSQL: who the server session of the lock's connection is, and what a look at it in `pg_stat_activity`, asked on
 * another connection, tells (the silence watch's evidence); and the keepalives the lock's session is given.
 */
import type { SqlConnection } from "@effect/sql"
import { Predicate, Schema } from "effect"
import { clientOf, serverProcessOf } from "./connection.js"

/**
 * A session's start as text, to the microsecond, whatever the session's TimeZone, DateStyle or extra_float_digits (an
 * epoch is a float before PostgreSQL 14, whose text follows the last).
 */
export const sessionStart = "to_char(backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"

/**
 * The sessions that tries' answers named, by the node-postgres client they came over (a connection of the pool lives
 * on across the runs of a process): a later try on that connection knows its session before it answers.
 */
export const answeredSessions = new WeakMap<object, { readonly pid: number; readonly started: string }>()

/** The session of a try about to run on `connection`, as well as it is known, and the mark its statement carries. */
export const tryIdentity = (connection: SqlConnection.Connection, mark: string): Identity | undefined => {
  const pid = serverProcessOf(connection)
  const client = clientOf(connection)
  const known = client === undefined ? undefined : answeredSessions.get(client)
  // Only where the session answered with the pid the connection opened with: a pooler's key names no session, and its
  // next statement may run on another one.
  if (known !== undefined && known.pid === pid) return { _tag: "Known", ...known }
  return pid === undefined ? undefined : { _tag: "Unanswered", pid, mark }
}

/**
 * What `pg_stat_activity` says of the session with a pid: its state (NULL where the role may not see it) and since
 * when, its start (`started`: a pid and its start name one session on any server), and
 * whether its statement, under way or last, carries a try's mark.
 */
export const SessionRow = Schema.Struct({
  state: Schema.NullOr(Schema.String),
  changed: Schema.NullOr(Schema.Number),
  started: Schema.NullOr(Schema.String),
  marked: Schema.Boolean
})
export type SessionRow = typeof SessionRow.Type

/**
 * Who the watched connection's server session is. `Known`: its pid and start, as a statement on it answered them. A
 * try's before its answer: the pid the connection was given as it opened (a pooler's made up), and the mark in a
 * comment of the try's statement, which the session shows in `pg_stat_activity` once the statement reached it.
 */
export type Identity =
  | { readonly _tag: "Known"; readonly pid: number; readonly started: string }
  | { readonly _tag: "Unanswered"; readonly pid: number; readonly mark: string }

/**
 * What one look at `pg_stat_activity` tells of the watched session. `Ours`/`Stranger` with a state: a session by that
 * pid that is ours, or not known to be (another server's after a failover, or ours before our statement reached it).
 * `Gone`: no session of ours by that pid on the server the pool reaches. `Unknown`: nothing to act on.
 */
export type Sight =
  | {
    readonly _tag: "Ours" | "Stranger"
    readonly state: string | null
    readonly idle: boolean
    readonly started: string
    readonly changed: number | null
  }
  | { readonly _tag: "Gone" }
  | { readonly _tag: "Unknown" }

export const sight = (identity: Identity, row: SessionRow | undefined): Sight => {
  const seen = (tag: "Ours" | "Stranger", row: SessionRow & { readonly started: string }): Sight => ({
    _tag: tag,
    state: row.state,
    idle: row.state !== null && row.state.startsWith("idle"),
    started: row.started,
    changed: row.changed
  })
  if (identity._tag === "Known") {
    // Another session by that pid (another server's, after a failover) is as good as none.
    return row !== undefined && row.started === identity.started ? seen("Ours", { ...row, started: row.started }) : { _tag: "Gone" }
  }
  // No session by a pid given as the connection opened is no evidence: a pooler's names none.
  if (row === undefined || row.started === null) return { _tag: "Unknown" }
  return seen(row.marked ? "Ours" : "Stranger", { ...row, started: row.started })
}

/**
 * What a look at the server on another connection of the pool brought: its rows; an answer without them (a refusal, a
 * reset, the server's error: it is there to answer); none (`Silent`: the connection did not answer in time, or a new
 * one timed out connecting or found no route to the host); or nothing to tell by (`Pending`: no connection of the
 * pool came free in time, which says nothing of the server; the watch then asks on a connection of its own, `outside.ts`).
 */
export type Look =
  | { readonly _tag: "Rows"; readonly rows: ReadonlyArray<SessionRow> }
  | { readonly _tag: "Answered" | "Silent" | "Pending" }

/** node-postgres's words for a new connection whose server did not answer in time, and pg-pool's for a full pool. */
const connectTimedOut = /^Connection terminated due to connection timeout$|^timeout expired$/
const poolFull = /^timeout exceeded when trying to connect$/
const unreachable: ReadonlySet<string> = new Set(["ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"])

export const look = (error: unknown): Look => {
  if (Predicate.isTagged(error, "Unanswered")) return { _tag: "Silent" }
  // Down a few causes: the SqlError's, then the driver's own (pg-pool wraps the socket's error in its timeout's).
  let cause = error
  for (let depth = 0; depth < 4 && cause instanceof Error; depth++) {
    const { code } = cause as Error & { readonly code?: unknown }
    if (poolFull.test(cause.message)) return { _tag: "Pending" }
    if (connectTimedOut.test(cause.message) || (typeof code === "string" && unreachable.has(code))) return { _tag: "Silent" }
    cause = cause.cause
  }
  return { _tag: "Answered" }
}

/**
 * The server's TCP keepalives for the lock's session (the fleet's values): a client host gone without a word (powered
 * off, cut off by a firewall) leaves its session, and the workspace's lock with it, ~11 s (idle 5 s, then 3 probes 2 s
 * apart; and data unacknowledged for 11 s), not the system's ~2 hours and 11 minutes. Set on the session with
 * `set_config`, which a pooler passes on, where a URL's `options` (a startup parameter some poolers refuse) would do; a
 * setting the connection's URL gave (`source` `client`) is left as it says, and one the server does not know (no
 * `tcp_user_timeout` before PostgreSQL 12) is skipped. On a Unix socket they mean nothing and do nothing.
 */
export const keepalivesStatement = `SELECT set_config(ours.name, ours.setting, false) FROM (VALUES
    ('tcp_keepalives_idle', '5'), ('tcp_keepalives_interval', '2'), ('tcp_keepalives_count', '3'), ('tcp_user_timeout', '11000')
  ) AS ours (name, setting) JOIN pg_settings USING (name) WHERE pg_settings.source <> 'client'`
