/**
 * One sync per workspace, across processes, held in the database itself.
 *
 * - PostgreSQL: a session-level advisory lock on a connection of the pool, kept from the try that took it to the run's
 *   end (a try that finds it busy gives its connection back). A process that dies closes its connection, and the
 *   server releases the lock with it. A watchdog asks the connection for a sign of life, since a lock whose session
 *   ended is gone.
 * - SQLite: a lease row (holder, host, pid, expiry) that a heartbeat renews. A lease past its expiry may be taken over;
 *   one held on this host (its hostname and PID namespace) by a process that no longer exists may be taken over at once.
 *
 * The fence: every write of a run goes through `Held.transaction`, which commits only while the lock is held, so a
 * holder that lost its lock (frozen while its session was cut, or stalled past its lease) cannot write once another
 * has taken over, even between two of the watchdog's checks. In PostgreSQL the transaction runs on the lock's own
 * session: a session that ended holds no lock and runs no statement, and a session that commits still holds it. In
 * SQLite the lease is renewed first thing in the transaction, which takes the database's write lock until it ends.
 *
 * Waiting polls on the Effect `Clock`, so a wait is interruptible, reported, and testable under the TestClock.
 */
import { SqlClient, type SqlConnection } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Progress, type Resource } from "@intercom-scroll/core"
import { Cause, Clock, Data, Duration, Effect, Exit, Fiber, Option, Predicate, Schedule, Scope } from "effect"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import { Blocker, explain, LockLost, LockTimeout, SessionPooled, TableLocked } from "../SyncError.js"
import { type Dialect, time } from "./dialect.js"

export interface Held {
  /**
   * Fails once the lock is found lost; never succeeds. Race the run against it: it stops a holder that lost its lock
   * while it does not write (waiting out another scroll, say), and so frees Intercom's one scroll sooner.
   */
  readonly lost: Effect.Effect<never, LockLost | SessionPooled>
  /**
   * Runs `effect` (its statements through the `SqlClient`) in one transaction that commits only while the lock is
   * held, and fails with `LockLost` when it is not: the fence every write of a run goes through.
   */
  readonly transaction: <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | LockLost | SessionPooled | TableLocked | SqlError, R>
  /**
   * Runs `effect` (its statements through the `SqlClient`) on another connection than the lock's, as the run's record
   * once the lock is lost: in PostgreSQL on a connection of the pool that is closed, not given back, when it does not
   * answer within `silenceCheckEvery` (`Unanswered`), since the path that silenced the lock's may silence it too.
   */
  readonly aside: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | Unanswered | SqlError, R>
  /**
   * The run is stopping (interrupted): in PostgreSQL a statement of the lock's that waits while the server answers
   * nothing is cut now rather than after `unansweredLimit`, since its answer is of no use and the run's end waits
   * behind it.
   */
  readonly stop: Effect.Effect<void>
}

export interface Options {
  readonly workspace: string
  /** Reported while waiting. */
  readonly resource: Resource.Resource
  /** Give up after this long; undefined waits as long as it takes. */
  readonly timeout: Duration.Duration | undefined
  /**
   * PostgreSQL: the `lock_timeout` of the run's transactions, in milliseconds (0: none), so that a statement blocked by
   * another session's lock on the tables fails with `TableLocked` instead of waiting without end. Default 0.
   */
  readonly tableLockTimeoutMillis?: number | undefined
}

/** How often a waiting sync tries again. */
export const pollInterval = Duration.seconds(1)
/** How long a SQLite lease lasts without renewal, and how often it is renewed. */
export const leaseDuration = Duration.seconds(30)
export const heartbeatInterval = Duration.seconds(10)

/**
 * PostgreSQL: how long a statement on the lock's connection goes unanswered before the server is asked, on another
 * connection, what that session is doing; and how long apart two answers saying it sits idle must be to cut it.
 */
export const silenceCheckEvery = Duration.seconds(10)

/**
 * PostgreSQL: how long no connection to the server may be answered at all (new ones time out connecting, statements on
 * the pool's go unanswered), while a statement on the lock's connection waits for its answer, before the run gives up:
 * the server's host is gone from the network, or its address moved (a failover) and the path to the old one drops
 * everything. Longer than a blip of the network that TCP rides out (a switch restarting, a route flapping) and than a
 * managed database's failover, after which its run could not go on anyway; short enough that a job run from cron ends
 * in minutes, not after the kernel's ~15 minutes of retransmissions. A server that answers anything (a refusal, an
 * error, a session `active` on a long statement) is waited for.
 */
export const unansweredLimit = Duration.minutes(2)

/** A statement on another connection of the pool that brought no answer in time (`Held.aside`). */
export class Unanswered extends Data.TaggedError("Unanswered")<{ readonly message: string }> {}

/** The lock is held by someone else right now. */
class Busy extends Data.TaggedError("Busy") {}

/**
 * A statement's failure, by its tag and not its class: the driver's `SqlError` may come from another copy of
 * `@effect/sql` than this module's (the CLI's bundle loads `@effect/sql-sqlite-node` from node_modules, beside the
 * copy bundled in), and `instanceof` is then false for every error it raises.
 */
const isSqlError = (error: unknown): error is SqlError => Predicate.isTagged(error, "SqlError")

/**
 * SQLite's answer while another connection holds its write lock past the driver's own wait (better-sqlite3: 5 s): a
 * backup, a `VACUUM`, an operator's open transaction. Not a lost lease: the statement is asked again.
 */
const isBusy = (error: unknown): boolean => {
  const code = isSqlError(error) && error.cause instanceof Error
    ? (error.cause as Error & { readonly code?: unknown }).code
    : undefined
  return typeof code === "string" && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"))
}

const busyRetries = Schedule.spaced("500 millis").pipe(Schedule.upTo("1 minute"))

/** Asks again every half second while SQLite is busy, for up to a minute; then fails with SQLite's own error. */
export const whileBusy = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.retry(effect, { schedule: busyRetries, while: isBusy })

/**
 * Takes the workspace's lock for the life of the scope, waiting while another sync holds it (reported to `Progress`
 * as a `workspace-lock` wait), and failing with `LockTimeout` once `timeout` has passed.
 */
export const acquire = (
  sql: SqlClient.SqlClient,
  dialect: Dialect,
  options: Options
): Effect.Effect<Held, LockTimeout | LockLost | SessionPooled | SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const lock = dialect === "pg"
      ? yield* advisory(sql, workspaceKey(options.workspace), options.workspace, options.tableLockTimeoutMillis ?? 0)
      : lease(sql, options.workspace)
    const lost = (reason: string) => new LockLost({ workspace: options.workspace, reason })
    // Before the first try, not after the last: a try interrupted while its statement was on its way may have taken
    // the lock (PostgreSQL grants it whether or not anyone reads the answer), and the connection would go back to the
    // pool holding it. Releasing a lock not held does nothing.
    yield* Effect.addFinalizer(() => Effect.ignore(lock.release))
    const first = yield* Effect.either(lock.tryTake)
    if (first._tag === "Left") {
      if (first.left._tag !== "Busy") return yield* first.left
      const progress = yield* Progress.Progress
      const startedAt = yield* Clock.currentTimeMillis
      const untilMillis = options.timeout === undefined ? undefined : startedAt + Duration.toMillis(options.timeout)
      const schedule = options.timeout === undefined
        ? Schedule.spaced(pollInterval)
        : Schedule.spaced(pollInterval).pipe(Schedule.upTo(options.timeout))
      yield* progress.report(Progress.ProgressEvent.Waiting({ resource: options.resource, reason: "workspace-lock", untilMillis }))
      yield* lock.tryTake.pipe(
        Effect.retry({ schedule, while: (error) => error._tag === "Busy" }),
        Effect.catchTag("Busy", () =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            new LockTimeout({ workspace: options.workspace, waitedMillis: now - startedAt }))),
        Effect.ensuring(progress.report(Progress.ProgressEvent.Resumed({ resource: options.resource })))
      )
    }
    // A statement that failed because its session ended (PostgreSQL) failed because the lock is gone.
    const failedBecause = (error: SqlError): Effect.Effect<never, SqlError | LockLost | SessionPooled> =>
      Effect.flatMap(
        Effect.either(lock.stillHeld),
        (held): Effect.Effect<never, SqlError | LockLost | SessionPooled> =>
          held._tag === "Left" && held.left._tag === "SessionPooled"
            ? Effect.fail(held.left)
            : (held._tag === "Right" && held.right) || (held._tag === "Left" && isBusy(held.left))
            ? Effect.fail(error)
            : Effect.fail(lost(`${lock.lostReason}: ${explain(error)}`))
      )
    return {
      // Checked first after `checkEvery`: the lock was just taken, and writes are fenced meanwhile. Uninterruptible,
      // so that a run that ends mid-check never has the check cancelled on a session that its next statement uses.
      lost: Effect.flatMap(
        Effect.repeat(Effect.delay(Effect.uninterruptible(lock.stillHeld), lock.checkEvery), { while: (held) => held }),
        () => Effect.fail(lost(lock.lostReason))
      ).pipe(Effect.catchTag("SqlError", (error) => {
        // Still busy after a minute of asking, longer than a lease lasts: another sync may have taken it over by now.
        const reason = isBusy(error) ? "SQLite stayed busy for a minute, longer than a lease lasts" : lock.lostReason
        return Effect.fail(lost(`${reason}: ${explain(error)}`))
      })),
      transaction: <A, E, R>(
        effect: Effect.Effect<A, E, R>
      ): Effect.Effect<A, E | LockLost | SessionPooled | TableLocked | SqlError, R> =>
        Effect.catchIf(lock.transaction(effect), isSqlError, failedBecause),
      aside: lock.aside,
      stop: lock.stop
    } satisfies Held
  })

interface Lock {
  readonly tryTake: Effect.Effect<void, Busy | LockLost | SessionPooled | SqlError>
  /** Whether the lock is still ours; in SQLite, renews the lease. */
  readonly stillHeld: Effect.Effect<boolean, SessionPooled | SqlError>
  readonly checkEvery: Duration.Duration
  readonly lostReason: string
  readonly release: Effect.Effect<void, SqlError>
  /** A transaction that commits only while the lock is held (see the module's comment). */
  readonly transaction: <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | LockLost | SessionPooled | TableLocked | SqlError, R>
  readonly aside: Held["aside"]
  readonly stop: Held["stop"]
}

/**
 * PostgreSQL's `lock_not_available`: a statement that waited out `lock_timeout` (or a `NOWAIT`), in a failure or down
 * its causes (the Migrator's `MigrationError` holds the statement's `SqlError`).
 */
const lockNotAvailable = (cause: Cause.Cause<unknown>): boolean => {
  const failure = Cause.failureOption(cause)
  let error: unknown = failure._tag === "Some" ? failure.value : undefined
  for (let depth = 0; depth < 3 && error instanceof Error; depth++) {
    if (isSqlError(error)) {
      return error.cause instanceof Error && (error.cause as Error & { readonly code?: unknown }).code === "55P03"
    }
    error = error.cause
  }
  return false
}

/**
 * The sessions that hold or await a lock on the sync's tables, but a plain read's, in a transaction open at least
 * `millis`: once a statement gave up, its own wait (and so `pg_blocking_pids`) is gone, and these are what it waited
 * behind. Another workspace's sync writes the same tables, but in transactions of a page, far shorter.
 */
const blockersQuery = `SELECT DISTINCT ON (a.pid) a.pid, a.application_name, a.usename, a.state,
    l.mode || CASE WHEN l.granted THEN '' ELSE ' (awaited)' END || ' on ' || c.relname AS lock,
    extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS seconds, left(coalesce(a.query, ''), 200) AS query
  FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_stat_activity a ON a.pid = l.pid
  WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND c.relkind = 'r' AND c.relname LIKE 'intercom\\_%' AND l.mode <> 'AccessShareLock' AND l.pid <> pg_backend_pid()
    AND a.xact_start <= clock_timestamp() - make_interval(secs => $1::float8 / 1000)
  ORDER BY a.pid, CASE l.mode WHEN 'AccessExclusiveLock' THEN 0 WHEN 'ExclusiveLock' THEN 1
    WHEN 'ShareRowExclusiveLock' THEN 2 WHEN 'ShareLock' THEN 3 ELSE 4 END`

interface BlockerRow {
  readonly pid: number
  readonly application_name: string | null
  readonly usename: string | null
  readonly state: string | null
  readonly lock: string
  readonly seconds: number | null
  readonly query: string
}

/** `TableLocked`, naming the sessions `blockersQuery` finds through `query` (none when that look fails too). */
const tableLocked = (
  query: (statement: string, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<BlockerRow>, SqlError>,
  details: { readonly workspace: string | undefined; readonly waitedMillis: number; readonly migrating: boolean }
): Effect.Effect<never, TableLocked> =>
  Effect.flatMap(
    Effect.orElseSucceed(query(blockersQuery, [details.waitedMillis]), () => []),
    (found) =>
      new TableLocked({
        ...details,
        blockers: found.map((row) =>
          new Blocker({
            pid: row.pid,
            applicationName: row.application_name ?? "",
            user: row.usename,
            state: row.state,
            lock: row.lock,
            transactionSeconds: row.seconds ?? 0,
            query: row.query
          })
        )
      })
  )

/**
 * The advisory lock's key: a namespace of ours and a 32-bit FNV-1a hash of the workspace's name. Two names that hash
 * alike only take turns; the two-key form keeps clear of an application's own single-key advisory locks.
 */
export const advisoryNamespace = 0x1c5c_0a11
export const migrationsKey = [advisoryNamespace + 1, 0] as const

export const workspaceKey = (workspace: string): readonly [number, number] => {
  let hash = 0x811c9dc5
  for (const byte of new TextEncoder().encode(workspace)) {
    hash ^= byte
    hash = Math.imul(hash, 0x01000193)
  }
  return [advisoryNamespace, hash | 0]
}

/**
 * A connection of the pool, given back when `scope` closes. @effect/sql-pg's `reserve` cannot be interrupted while it
 * waits for the pool: a connection handed over after the interruption would never go back to it. So the wait runs on a
 * fiber of its own, and a waiter interrupted leaves it to give back the connection once it comes.
 */
const reserveIn = (
  sql: SqlClient.SqlClient,
  scope: Scope.CloseableScope
): Effect.Effect<SqlConnection.Connection, SqlError> =>
  // Only the join may be interrupted, whatever the caller's region: a caller that restored its interruptibility around
  // this would be interrupted as this returned, the connection in hand and lost.
  Effect.uninterruptible(
    Effect.flatMap(Effect.forkDaemon(Scope.extend(sql.reserve, scope)), (reserving) =>
      Effect.interruptible(Fiber.join(reserving)).pipe(
        Effect.onInterrupt(() => Effect.forkDaemon(Effect.zipRight(Fiber.await(reserving), Scope.close(scope, Exit.void))))
      ))
  )

/** node-postgres's client under a connection of @effect/sql-pg, which keeps it as `pg`; read structurally. */
const clientOf = (connection: SqlConnection.Connection) =>
  (connection as {
    readonly pg?: { readonly processID?: unknown; readonly connection?: { readonly stream?: unknown } }
  }).pg

/**
 * The socket under a connection of @effect/sql-pg, to close without a word to a server that does not answer:
 * node-postgres's `end` waits for the server's goodbye. Undefined for another driver's connection.
 */
interface Socket {
  readonly destroy: () => void
}

const socketOf = (connection: SqlConnection.Connection): Socket | undefined => {
  const stream = clientOf(connection)?.connection?.stream
  return typeof stream === "object" && stream !== null && typeof (stream as { readonly destroy?: unknown }).destroy === "function"
    ? stream as Socket
    : undefined
}

/**
 * The server process of a connection's session as the server named it on connecting (its cancel key, which
 * node-postgres's own cancel sends), known before any statement: asking `pg_backend_pid()` would be a statement that
 * may be lost on the way too. Undefined for another driver's connection.
 */
const serverProcessOf = (connection: SqlConnection.Connection): number | undefined => {
  const pid = clientOf(connection)?.processID
  return typeof pid === "number" ? pid : undefined
}

/**
 * A session's start as text, to the microsecond, whatever the session's TimeZone, DateStyle or extra_float_digits (an
 * epoch is a float before PostgreSQL 14, whose text follows the last).
 */
const sessionStart = "to_char(backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"

/**
 * The sessions that tries' answers named, by the node-postgres client they came over (a connection of the pool lives
 * on across the runs of a process): a later try on that connection knows its session before it answers.
 */
const answeredSessions = new WeakMap<object, { readonly pid: number; readonly started: string }>()

/** The session of a try about to run on `connection`, as well as it is known, and the mark its statement carries. */
const tryIdentity = (connection: SqlConnection.Connection, mark: string): Identity | undefined => {
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
interface SessionRow {
  readonly state: string | null
  readonly changed: number | null
  readonly started: string | null
  readonly marked: boolean
}

/**
 * Who the watched connection's server session is. `Known`: its pid and start, as a statement on it answered them. A
 * try's before its answer: the pid the connection was given as it opened (a pooler's made up), and the mark in a
 * comment of the try's statement, which the session shows in `pg_stat_activity` once the statement reached it.
 */
type Identity =
  | { readonly _tag: "Known"; readonly pid: number; readonly started: string }
  | { readonly _tag: "Unanswered"; readonly pid: number; readonly mark: string }

/**
 * What one look at `pg_stat_activity` tells of the watched session. `Ours`/`Stranger` with a state: a session by that
 * pid that is ours, or not known to be (another server's after a failover, or ours before our statement reached it).
 * `Gone`: no session of ours by that pid on the server the pool reaches. `Unknown`: nothing to act on.
 */
type Sight =
  | {
    readonly _tag: "Ours" | "Stranger"
    readonly state: string | null
    readonly idle: boolean
    readonly started: string
    readonly changed: number | null
  }
  | { readonly _tag: "Gone" }
  | { readonly _tag: "Unknown" }

const sight = (identity: Identity, row: SessionRow | undefined): Sight => {
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
 * pool came free in time, which says nothing of the server).
 */
type Look =
  | { readonly _tag: "Rows"; readonly rows: ReadonlyArray<SessionRow> }
  | { readonly _tag: "Answered" | "Silent" | "Pending" }

/** node-postgres's words for a new connection whose server did not answer in time, and pg-pool's for a full pool. */
const connectTimedOut = /^Connection terminated due to connection timeout$|^timeout expired$/
const poolFull = /^timeout exceeded when trying to connect$/
const unreachable: ReadonlySet<string> = new Set(["ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"])

const look = (error: unknown): Look => {
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
const keepalivesStatement = `SELECT set_config(ours.name, ours.setting, false) FROM (VALUES
    ('tcp_keepalives_idle', '5'), ('tcp_keepalives_interval', '2'), ('tcp_keepalives_count', '3'), ('tcp_user_timeout', '11000')
  ) AS ours (name, setting) JOIN pg_settings USING (name) WHERE pg_settings.source <> 'client'`

/**
 * An advisory lock on a connection of the pool, kept from the try that took the lock until the scope ends; the run's
 * transactions run on that connection too, one statement at a time with the watchdog's checks. Each try reserves a
 * connection of its own and gives it back when the lock is busy: a sync waiting for the lock holds none between its
 * tries, so the syncs waiting for a workspace do not take the connections that the holders' other work needs.
 */
export const advisory = (
  sql: SqlClient.SqlClient,
  key: readonly [number, number],
  workspace: string,
  tableLockTimeoutMillis: number
): Effect.Effect<Lock, never, Scope.Scope> =>
  Effect.gen(function*() {
    // Whether the server session that runs the statement holds the lock (pg_locks names the two keys as unsigned
    // oids, objsubid 2 for the two-key form), its keys at parameters $first and $first + 1. A pooler that hands out
    // sessions per transaction (PgBouncer's transaction or statement mode) gives a client's statements to whichever
    // session is free: the lock taken stays on one, which other clients then use.
    const heldHere = (first: number) =>
      `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
        AND classid = $${first}::bigint::oid AND objid = $${first + 1}::bigint::oid AND objsubid = 2`
    const unsigned = [key[0] >>> 0, key[1] >>> 0] as const
    const pooled = (evidence: string) => new SessionPooled({ workspace, evidence })
    // The connection the lock was taken on (or may have been), the scope that gives it back to the pool, and the server
    // process of the session that took it (undefined when the try failed: `acquire` then fails, and nothing runs on it).
    let held:
      | {
        readonly connection: SqlConnection.Connection
        readonly scope: Scope.CloseableScope
        readonly pid: number | undefined
      }
      | undefined
    // The connection the watch on silence looks after: a try's from before its statement (a try whose statement or
    // answer is lost would otherwise wait without end, holding the lock perhaps), then the held one; and who its
    // session is (undefined: not known at all, another driver's connection).
    let watched: { readonly identity: Identity | undefined; readonly socket: Socket | undefined } | undefined
    // The statements under way on the watched connection (how many, since when, how many begun in all), for the watch
    // on its silence; and what that watch found, once it cut the connection.
    const inFlight = { count: 0, since: 0, begun: 0 }
    let silence: string | undefined
    // Since when no look at the server on another connection has been answered, while the statement `begun` of the
    // watched connection waited; and whether the run is stopping (`stop`).
    let unanswered: { readonly begun: number; readonly since: number } | undefined
    let stopping = false
    const track = <A, E, R>(statement: Effect.Effect<A, E, R>) =>
      Effect.acquireUseRelease(
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.sync(() => {
            if (inFlight.count++ === 0) inFlight.since = now
            inFlight.begun++
          })),
        () => statement,
        () => Effect.sync(() => inFlight.count--)
      )
    const tracked = (connection: SqlConnection.Connection): SqlConnection.Connection => ({
      execute: (statement, params, transformRows) => track(connection.execute(statement, params, transformRows)),
      executeRaw: (statement, params) => track(connection.executeRaw(statement, params)),
      executeStream: (statement, params, transformRows) => connection.executeStream(statement, params, transformRows),
      executeValues: (statement, params) => track(connection.executeValues(statement, params)),
      executeUnprepared: (statement, params, transformRows) =>
        track(connection.executeUnprepared(statement, params, transformRows))
    })
    // Registered before any try, so that it runs after the release that `acquire` registers (the last finalizer
    // added runs first): the connection goes back to the pool only once the lock is released on it.
    yield* Effect.addFinalizer(() => held === undefined ? Effect.void : Scope.close(held.scope, Exit.void))
    // A check never lands inside a transaction, where a failed statement would make it fail too.
    const turn = yield* Effect.makeSemaphore(1)
    const execute = <A extends object>(
      connection: SqlConnection.Connection,
      statement: string,
      params: ReadonlyArray<unknown>
    ) => connection.execute(statement, params, undefined) as Effect.Effect<ReadonlyArray<A>, SqlError>
    const heldConnection = Effect.suspend(() =>
      held === undefined
        ? Effect.dieMessage("The advisory lock's connection was asked for before a try took it")
        : Effect.succeed(held.connection)
    )
    const ask = <A extends object>(statement: string, params: ReadonlyArray<unknown>) =>
      Effect.flatMap(heldConnection, (connection) => execute<A>(connection, statement, params))
    const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          // In the transaction, on the session that will commit it: a transaction given a session without the lock
          // (a pooler's) would otherwise write as if it held it. The session's server process, not pg_locks: this runs
          // for every page, and reading pg_locks takes every partition of the server's lock table. One round trip for
          // both (a query without parameters goes as one simple query, and answers each statement's rows).
          // Its lock_timeout too, local to it: a statement blocked by another session's lock fails (TableLocked)
          // rather than holding the run, silent, without end. Waits for locks only, never a long pass's own time.
          const [, , [here] = []] = yield* ask<ReadonlyArray<{ pid: number }>>(
            `BEGIN; SET LOCAL lock_timeout = ${Math.round(tableLockTimeoutMillis)}; SELECT pg_backend_pid() AS pid`,
            []
          )
          if (here?.pid === undefined || here.pid !== held?.pid) {
            yield* Effect.ignore(ask("ROLLBACK", []))
            return yield* pooled("a transaction of the run was given a server session that does not hold the workspace's lock")
          }
          const exit = yield* Effect.exit(restore(
            // The statements the effect makes through the SqlClient run on this connection, in this transaction.
            Effect.flatMap(
              heldConnection,
              (connection) => Effect.provideService(effect, SqlClient.TransactionConnection, [connection, 0])
            )
          ))
          if (Exit.isSuccess(exit)) {
            yield* ask("COMMIT", [])
            return exit.value
          }
          // Interrupted with its statement unanswered by a server that answers nothing, the ROLLBACK would wait behind it.
          if (Exit.isInterrupted(exit)) yield* stop
          // A session that ended has rolled back already, and its ROLLBACK fails: the failure to report is the first.
          yield* Effect.ignore(ask("ROLLBACK", []))
          if (tableLockTimeoutMillis > 0 && lockNotAvailable(exit.cause)) {
            return yield* tableLocked(ask, { workspace, waitedMillis: tableLockTimeoutMillis, migrating: false })
          }
          return yield* exit
        })
      ).pipe(turn.withPermits(1))
    // Uninterruptible once the connection is in hand (the statement answers at once, or the watch on silence cuts it):
    // an interrupted statement is cancelled by a `pg_cancel_backend` sent on another connection, which may land on the
    // next statement of this one instead, the release of the lock. The wait for the connection may be interrupted.
    const tryTake = Effect.uninterruptible(
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const connection = yield* reserveIn(sql, scope).pipe(
          Effect.tapErrorCause((cause) => Cause.isInterruptedOnly(cause) ? Effect.void : Scope.close(scope, Exit.void))
        )
        // The mark leads the statement: pg_stat_activity keeps a statement's first 1 kB only.
        const mark = `intercom-scroll lock try ${randomUUID()}`
        watched = { identity: tryIdentity(connection, mark), socket: socketOf(connection) }
        // A session that holds the lock already, as this connection's never does, is another client's too: taken
        // again (advisory locks stack in a session), the lock would be held twice, by two syncs. One statement, so
        // that the look and the try run on one session whatever a pooler does; its session's start with it (by the
        // view's function for this one backend: the view reads every backend, +0.9 ms a try against +0.1 ms measured).
        const answer = yield* Effect.exit(track(
          execute<{ locked: boolean | null; pid: number; started: string | null }>(
            connection,
            `/* ${mark} */ SELECT CASE WHEN EXISTS (${heldHere(3)}) THEN NULL ELSE pg_try_advisory_lock($1, $2) END AS locked,
              pg_backend_pid() AS pid,
              (SELECT ${sessionStart} FROM pg_stat_get_activity(pg_backend_pid())) AS started`,
            [...key, ...unsigned]
          )
        ))
        const client = clientOf(connection)
        const [row] = Exit.isSuccess(answer) ? answer.value : []
        if (client !== undefined && row !== undefined && row.started !== null) answeredSessions.set(client, { pid: row.pid, started: row.started })
        if (row?.locked === null) {
          yield* Scope.close(scope, Exit.void)
          return yield* pooled("the server session it was given already held the workspace's lock, for another client")
        }
        if (Exit.isSuccess(answer) && row?.locked !== true) {
          yield* Scope.close(scope, Exit.void)
          return yield* new Busy()
        }
        // Taken, or perhaps: a failure may have come after the server granted it. Kept for the release either way.
        held = { connection: tracked(connection), scope, pid: row?.pid }
        // Watched as the session the answer named (as the try's while none came, for the release).
        if (row !== undefined && row.started !== null) {
          watched = { identity: { _tag: "Known", pid: row.pid, started: row.started }, socket: watched.socket }
        }
        // Cut by the watch: its session ended on the server, and the lock with it if the try had taken it.
        if (Exit.isFailure(answer) && silence !== undefined) return yield* new LockLost({ workspace, reason: silence })
        // Taken: the session's keepalives, on which the lock's life hangs once this process is gone without a word. A
        // lock left without them is no reason to fail the run.
        if (Exit.isSuccess(answer)) yield* Effect.ignore(track(execute(connection, keepalivesStatement, [])))
        return yield* Effect.asVoid(answer)
      })
    )
    // Runs `effect` on another connection of the pool, given at most `silenceCheckEvery` to answer once in hand; a
    // connection that does not is closed rather than given back to the pool (its statement would hold up the next
    // one). Reserved as a try is (`reserveIn`): the run may end, and this be interrupted, while it waits for one.
    const aside = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | Unanswered | SqlError, R> =>
      Effect.flatMap(Scope.make(), (scope) => {
        let inHand: Socket | undefined | false = false
        return Effect.gen(function*() {
          const connection = yield* reserveIn(sql, scope)
          inHand = socketOf(connection)
          const answer = yield* Effect.timeoutOption(
            Effect.provideService(effect, SqlClient.TransactionConnection, [connection, 0]),
            silenceCheckEvery
          )
          if (Option.isSome(answer)) return answer.value
          socketOf(connection)?.destroy()
          return yield* new Unanswered({
            message: `the server did not answer within ${Duration.format(silenceCheckEvery)} on another connection either`
          })
        }).pipe(
          // A wait for the pool interrupted leaves the connection's return to `reserveIn`, once it comes; one
          // interrupted in hand, its statement perhaps unanswered, is closed.
          Effect.onExit((exit) => {
            if (!Exit.isInterrupted(exit)) return Scope.close(scope, Exit.void)
            if (inHand === false) return Effect.void
            inHand?.destroy()
            return Scope.close(scope, Exit.void)
          })
        )
      })
    // What the server says of the session by `pid`, asked on another connection of the pool, and whether it answered
    // at all (`look`).
    const sessionOf = (identity: Identity): Effect.Effect<Look> =>
      aside(
        sql.unsafe<SessionRow>(
          `SELECT state, extract(epoch FROM state_change)::float8 AS changed,
            ${sessionStart} AS started, coalesce(strpos(query, $2::text) > 0, false) AS marked
            FROM pg_stat_activity WHERE pid = $1`,
          [identity.pid, identity._tag === "Unanswered" ? identity.mark : null]
        )
      ).pipe(
        Effect.map((rows): Look => ({ _tag: "Rows", rows })),
        Effect.catchAll((error) => Effect.succeed(look(error)))
      )
    // Closes the watched connection for what `reason` says: its statement under way fails at once, and so does every
    // one after it, the run's end included (recorded on the pool). A session known ours (by its pid and start) is ended
    // on the server first, which lets the workspace's lock go now rather than once the server notices (a try's too,
    // which may have taken it); by its pid alone the server the pool reaches may end another's (after a failover).
    const cut = (
      on: { readonly socket: Socket | undefined },
      ours: { readonly pid: number; readonly started: string } | undefined,
      reason: string
    ) =>
      Effect.gen(function*() {
        silence = reason
        if (ours !== undefined) {
          yield* Effect.ignore(Effect.timeoutOption(
            sql.unsafe(
              `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE pid = $1 AND ${sessionStart} = $2`,
              [ours.pid, ours.started]
            ),
            silenceCheckEvery
          ))
        }
        on.socket?.destroy()
      })
    // A statement left unanswered while the server, asked on another connection, says the session is gone or sits idle:
    // its answer (or the statement) was lost on the way, as where a firewall, a NAT or a load balancer dropped the
    // connection without a reset. No keepalive tells that while something on the way still acknowledges, nor the
    // kernel before its retransmissions end (~15 minutes). Only an answer counts: a session `active` runs a statement,
    // however long (a large workspace's deletion pass), or is stopped, and is waited for. Idle twice,
    // `silenceCheckEvery` apart, unchanged, with the same statement under way all along: a statement's answer takes no
    // such time to come. A session by the pid that is not known ours (`sight`) is never ended: idle so, only the local
    // connection is closed (a try's statement that never reached its session holds nothing there; a session by that
    // pid on another server is another's). A server that answers nothing at all, no look answered for
    // `unansweredLimit` while the same statement waited all along: the socket is closed, and nothing ended on the
    // server, which nothing reaches (its keepalives end the session).
    const seconds = (millis: number) => Math.round(millis / 1000)
    const stoppedAnswering = (now: number, since: number) =>
      `its PostgreSQL server stopped answering: a statement waited ${seconds(now - inFlight.since)} s for an answer, and no connection to the server was answered for ${seconds(now - since)} s (connect timeouts, statements unanswered)`
    // Cut at once where the watch found the server answering nothing for the statement under way; else at its next
    // look that finds so.
    const stop = Effect.suspend(() => {
      stopping = true
      const on = watched
      const since = unanswered?.since
      return on === undefined || since === undefined || inFlight.count === 0 || unanswered?.begun !== inFlight.begun
        ? Effect.void
        : Effect.flatMap(Clock.currentTimeMillis, (now) => cut(on, undefined, stoppedAnswering(now, since)))
    })
    const watchSilence = Effect.gen(function*() {
      let idleSeen: { readonly begun: number; readonly started: string; readonly changed: number } | undefined
      for (;;) {
        yield* Effect.sleep(silenceCheckEvery)
        const now = yield* Clock.currentTimeMillis
        // Read once: a try that ends meanwhile gives its connection back, and the next try watches another.
        const on = watched
        const identity = on?.identity
        if (on === undefined || identity === undefined || inFlight.count === 0 || now - inFlight.since < Duration.toMillis(silenceCheckEvery)) {
          idleSeen = undefined
          unanswered = undefined
          continue
        }
        const begun = inFlight.begun
        const answer = yield* sessionOf(identity)
        if (answer._tag !== "Rows") {
          idleSeen = undefined
          if (answer._tag === "Answered") unanswered = undefined
          if (answer._tag !== "Silent") continue
          if (unanswered?.begun !== begun) unanswered = { begun, since: now }
          const after = yield* Clock.currentTimeMillis
          if (inFlight.begun !== begun || (!stopping && after - unanswered.since < Duration.toMillis(unansweredLimit))) continue
          return yield* cut(on, undefined, stoppedAnswering(after, unanswered.since))
        }
        unanswered = undefined
        const seen = sight(identity, answer.rows[0])
        const { pid } = identity
        const waited = `its PostgreSQL connection went silent: a statement waited ${seconds(now - inFlight.since)} s for an answer`
        if (seen._tag === "Gone") {
          return yield* cut(
            on,
            undefined,
            `${waited} from its server session (pid ${pid}), which the server the pool reaches no longer has: it ended without a word reaching it, or that server is another (a failover)`
          )
        }
        if (seen._tag === "Unknown" || !seen.idle || seen.changed === null) {
          idleSeen = undefined
          continue
        }
        if (idleSeen === undefined || idleSeen.begun !== begun || idleSeen.started !== seen.started || idleSeen.changed !== seen.changed) {
          idleSeen = { begun, started: seen.started, changed: seen.changed }
          continue
        }
        return yield* seen._tag === "Ours"
          ? cut(
            on,
            { pid, started: seen.started },
            `${waited} while its server session (pid ${pid}) sat ${seen.state}: the answer, or the statement, was lost on the way`
          )
          : cut(
            on,
            undefined,
            `${waited} while the session by its pid (${pid}) sat ${seen.state} without the statement: the statement was lost on the way, or that session is another server's (a failover)`
          )
      }
    })
    yield* Effect.forkScoped(watchSilence)
    return {
      tryTake,
      // A session lock lives as long as its session: a connection that answers still holds it, unless a pooler gave
      // the question to another session.
      stillHeld: ask<{ held: boolean }>(`SELECT EXISTS (${heldHere(1)}) AS held`, unsigned).pipe(
        Effect.flatMap(([here]) =>
          here?.held === true
            ? Effect.succeed(true)
            : Effect.fail(pooled("its session answered without the workspace's lock"))
        ),
        turn.withPermits(1)
      ),
      checkEvery: Duration.seconds(10),
      get lostReason() {
        return silence ?? "its PostgreSQL session ended"
      },
      // Before the connection goes back to the pool, which would otherwise keep the lock alive. Releasing a lock not
      // held does nothing; no try that may have taken it, nothing to release.
      release: Effect.suspend(() =>
        held === undefined ? Effect.void : Effect.asVoid(ask("SELECT pg_advisory_unlock($1, $2)", key))
      ).pipe(turn.withPermits(1)),
      transaction,
      aside,
      stop
    } satisfies Lock
  })

/**
 * This process's host as a lease names it: its hostname and, on Linux, its PID namespace. Processes in two containers
 * may share a hostname (`--uts=host`, a fixed `--hostname`) and a database file while each sees only its own pids: a
 * holder's pid not found here is gone only if it was in this namespace to be found.
 */
export const hostIdentity = (): string => {
  try {
    return `${os.hostname()} ${fs.readlinkSync("/proc/self/ns/pid")}`
  } catch {
    return os.hostname()
  }
}

/** Whether a process of this host with this pid exists (a signal 0 probes without sending anything). */
const processExists = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const table = "intercom_sync_locks"

/** A lease row in `intercom_sync_locks`, renewed by `stillHeld`. */
const lease = (sql: SqlClient.SqlClient, workspace: string): Lock => {
  const holder = randomUUID()
  const host = hostIdentity()
  const pid = process.pid
  const t = sql(table)
  const expiry = (now: number) => time("sqlite", now + Duration.toMillis(leaseDuration))

  // Takes the lease when there is none or it has expired: one statement, so two takers cannot both win.
  const takeFree = Effect.flatMap(Clock.currentTimeMillis, (now) =>
    sql<{ holder: string }>`INSERT INTO ${t} ${
      sql.insert({ workspace, holder, host, pid, acquired_at: time("sqlite", now), expires_at: expiry(now) })
    }
      ON CONFLICT (workspace) DO UPDATE SET holder = excluded.holder, host = excluded.host, pid = excluded.pid,
        acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
      WHERE ${t}.expires_at <= excluded.acquired_at
      RETURNING holder`)

  // Takes over from a holder on this host whose process is gone, if it still holds the lease.
  const takeOverDead = Effect.gen(function*() {
    const [current] = yield* sql<{ holder: string; host: string; pid: number }>`
      SELECT holder, host, pid FROM ${t} WHERE workspace = ${workspace}`
    if (current === undefined || current.host !== host || current.pid === pid || processExists(current.pid)) {
      return false
    }
    const now = yield* Clock.currentTimeMillis
    const taken = yield* sql`UPDATE ${t} SET holder = ${holder}, pid = ${pid}, acquired_at = ${time("sqlite", now)},
      expires_at = ${expiry(now)} WHERE workspace = ${workspace} AND holder = ${current.holder} RETURNING holder`
    return taken.length > 0
  })

  const renew = Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.map(
      sql`UPDATE ${t} SET expires_at = ${expiry(now)} WHERE workspace = ${workspace} AND holder = ${holder}
        RETURNING holder`,
      (rows) => rows.length > 0
    ))
  const lostReason = "its SQLite lease expired and another sync took it over"

  // Each statement, and each transaction whole (rolled back), is asked again while another connection holds SQLite's
  // write lock.
  return {
    tryTake: whileBusy(Effect.flatMap(takeFree, (rows) =>
      rows.length > 0
        ? Effect.void
        : Effect.flatMap(takeOverDead, (taken) => taken ? Effect.void : Effect.fail(new Busy())))),
    stillHeld: whileBusy(renew),
    checkEvery: heartbeatInterval,
    lostReason,
    release: whileBusy(Effect.asVoid(sql`DELETE FROM ${t} WHERE workspace = ${workspace} AND holder = ${holder}`)),
    // One connection: the file answers, or fails, by itself.
    aside: (effect) => effect,
    stop: Effect.void,
    // Renewing the lease first thing in the transaction takes SQLite's write lock: no takeover until it ends.
    transaction: (effect) =>
      whileBusy(sql.withTransaction(Effect.zipRight(
        Effect.filterOrFail(renew, (held) => held, () => new LockLost({ workspace, reason: lostReason })),
        effect
      )))
  }
}

/**
 * Whether the client's connections have sessions of their own, as the workspace lock needs, before any sync relies on
 * it: a pooler in transaction or statement mode gives a connection's next statement to whichever session is free, and
 * a second connection the session the first just used (PgBouncer hands out the one used last). A setting of the first
 * connection's session, read back on it and then on a second connection held at the same time, tells either. Not
 * proof of the contrary (a busy pooler may happen to give each the same session as before): the lock's own checks stay.
 */
export const checkSessions = (sql: SqlClient.SqlClient): Effect.Effect<void, SessionPooled | SqlError> =>
  Effect.scoped(Effect.gen(function*() {
    const setting = "intercom_scroll.session_probe"
    const token = randomUUID()
    const read = (connection: SqlConnection.Connection) =>
      Effect.map(
        connection.execute("SELECT current_setting($1, true) AS seen", [setting], undefined) as Effect.Effect<
          ReadonlyArray<{ readonly seen: string | null }>,
          SqlError
        >,
        ([row]) => row?.seen
      )
    const first = yield* sql.reserve
    yield* first.execute("SELECT set_config($1, $2, false)", [setting, token], undefined)
    const again = yield* read(first)
    const second = yield* sql.reserve
    const other = yield* read(second)
    // The setting means nothing to anyone else; left empty on whichever session takes it.
    yield* Effect.ignore(first.execute("SELECT set_config($1, '', false)", [setting], undefined))
    if (again !== token) {
      return yield* new SessionPooled({ evidence: "a connection's second statement ran on another session than its first" })
    }
    if (other === token) {
      return yield* new SessionPooled({ evidence: "a second connection was given the session the first one was using" })
    }
  }))

/**
 * Runs `effect` while holding the migrations' advisory lock (PostgreSQL). Migrations take a moment, so the server
 * itself makes a second process wait (`pg_advisory_xact_lock`), with no polling; an interrupt cancels the wait.
 *
 * One transaction on one connection: the lock is the transaction's, released at its end whatever happens, and the
 * Migrator's own transaction becomes a savepoint in it. A lock held on a connection of its own, with the Migrator's
 * transaction on a second, needed two connections a sync: a pool's worth of syncs migrating at once each held one and
 * waited for another.
 *
 * Once the lock is held, its statements wait at most `lockTimeoutMillis` (0: no limit) for another session's lock on
 * the tables (an operator's `LOCK TABLE` left open, a transaction of an older version's sync): the transaction is then
 * rolled back whole, nothing migrated, and it fails with `TableLocked` naming those sessions.
 */
export const withMigrationsLock = <A, E, R>(
  sql: SqlClient.SqlClient,
  effect: Effect.Effect<A, E, R>,
  bound: { readonly lockTimeoutMillis: number; readonly workspace: string | undefined }
): Effect.Effect<A, E | TableLocked | SqlError, R> => {
  const [namespace, key] = migrationsKey
  return sql.withTransaction(Effect.gen(function*() {
    // An operator's lock_timeout or statement_timeout (ALTER ROLE … SET) would cancel the wait for another process's
    // migrations, and fail a sync that starts beside it: lifted for the wait alone, in this transaction only. The
    // lock_timeout after it is the run's own, as in its other transactions.
    const [saved] = yield* sql<{ readonly statement: string }>`SELECT current_setting('statement_timeout') AS statement`
    yield* sql`SELECT set_config('lock_timeout', '0', true), set_config('statement_timeout', '0', true)`
    yield* sql`SELECT pg_advisory_xact_lock(${namespace}, ${key})`
    yield* sql`SELECT set_config('lock_timeout', ${`${Math.round(bound.lockTimeoutMillis)}ms`}, true),
      set_config('statement_timeout', ${saved.statement}, true)`
    return yield* effect
  })).pipe(
    // Looked for once the transaction is rolled back, on any session of the pool: the wait is over by then.
    Effect.catchAllCause((cause): Effect.Effect<never, E | TableLocked | SqlError> =>
      bound.lockTimeoutMillis > 0 && lockNotAvailable(cause)
        ? tableLocked((statement, params) => sql.unsafe<BlockerRow>(statement, params), {
          workspace: bound.workspace,
          waitedMillis: bound.lockTimeoutMillis,
          migrating: true
        })
        : Effect.failCause(cause)
    )
  )
}
