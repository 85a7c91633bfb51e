/**
 * PostgreSQL sessions of a runner whose path went silent: a firewall or a NAT that dropped the connection's state while
 * something on the way still acknowledges, so that neither side's keepalives end it, and a statement sent on it waits
 * for an answer without end. Such a connection handed back to the pool is handed out again, to the next statement that
 * waits without end (packages/bench/NOTES.md, "A fleet runner whose shard lock session goes silent", "A fleet runner
 * cut off by a silent path").
 *
 * @internal
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import { SyncError } from "@intercom-scroll/sync"
import { Cause, Clock, Duration, Effect, Exit, Fiber, identity, Option, Schedule, Scope } from "effect"

/** A session of the server, and the socket that reaches it. */
export interface Session {
  readonly pid: number
  readonly socket: Socket
}

interface Socket {
  readonly destroy: () => void
  readonly closed?: boolean
  readonly once: (event: "close", listener: () => void) => unknown
}

/**
 * A connection of @effect/sql-pg: node-postgres's client (kept as `pg`), its server process and its socket, read
 * structurally. Undefined for another driver's.
 */
export const pgSession = (connection: SqlConnection.Connection): Session | undefined => {
  const pg = (connection as {
    readonly pg?: { readonly processID?: unknown; readonly connection?: { readonly stream?: unknown } }
  }).pg
  const stream = pg?.connection?.stream
  return typeof pg?.processID === "number" && typeof stream === "object" && stream !== null &&
      typeof (stream as { readonly destroy?: unknown }).destroy === "function" &&
      typeof (stream as { readonly once?: unknown }).once === "function"
    ? { pid: pg.processID, socket: stream as Socket }
    : undefined
}

/**
 * The socket destroyed, once it has closed: node-postgres then knows its client unusable, and the pool drops it as it
 * is given back rather than hand it out again.
 */
const destroyed = (socket: Socket): Effect.Effect<void> =>
  Effect.async((resume) => {
    if (socket.closed === true) return resume(Effect.void)
    socket.once("close", () => resume(Effect.void))
    socket.destroy()
  })

/**
 * `statement`'s answer, waited for `within` at most: unanswered by then, `giveUp` runs (it must close the statement's
 * socket, which fails the statement) and the answer is `None`, however the statement ends. The statement is never
 * interrupted, nor is this: @effect/sql-pg cancels an interrupted statement by `pg_cancel_backend(<its pid>)` on
 * another connection of the pool, by pid alone, which after a failover reaches another server, where that pid is
 * someone else's session (packages/bench/NOTES.md, "The code read as Effect's maintainers would read it").
 */
export const answerWithin = <A, E>(
  statement: Effect.Effect<A, E>,
  within: Duration.Duration,
  giveUp: Effect.Effect<void>
): Effect.Effect<Option.Option<Exit.Exit<A, E>>> =>
  Effect.uninterruptible(Effect.gen(function*() {
    const answering = yield* Effect.fork(statement)
    // Only the wait is cut at `within`, never the statement.
    const answered = yield* Effect.timeoutOption(Effect.interruptible(Fiber.await(answering)), within)
    if (Option.isSome(answered)) return answered
    yield* giveUp
    // Its socket closed, the statement fails: waited for, so that nothing of it is left running.
    yield* Fiber.await(answering)
    return Option.none()
  }))

/**
 * How long a termination waits for the session to be gone, its locks with it, so that one taken again at once on a new
 * session is not refused by the old: asked every `goneEvery`, `goneTries` times at most (about a second).
 */
const goneEvery = Duration.millis(10)
const goneTries = 100

/** Connections `end` asks at most: the pool's own, and a few it makes anew. */
const maxTries = 30

/** The terminations `end` sent, of the pids asked about (PostgreSQL 12 and later: the one-argument form). */
const terminate = `SELECT pid, pg_terminate_backend(pid) AS signaled FROM pg_stat_activity
  WHERE pid = ANY($1::int[]) AND application_name = current_setting('application_name')`
const remaining = `SELECT count(*)::int AS remaining FROM pg_stat_activity
  WHERE pid = ANY($1::int[]) AND application_name = current_setting('application_name')`

/**
 * A connection of the pool, given back as the scope closes, waited for `within` at most: `None` once that has passed.
 * The wait itself runs on, on a fiber of its own: @effect/sql-pg's `reserve` interrupted never gives back the connection
 * it gets later. One had after the scope has closed goes back to the pool at once.
 */
export const reservedWithin = (
  sql: SqlClient.SqlClient,
  within: Duration.Duration
): Effect.Effect<Option.Option<SqlConnection.Connection>, SqlError, Scope.Scope> =>
  Effect.flatMap(Effect.scope, (scope) =>
    Effect.flatMap(
      Effect.forkDaemon(Scope.extend(sql.reserve, scope)),
      // Interruptible, whatever the caller's region (`answerWithin`'s, a finalizer's fork): else the timeout waits for it.
      (reserving) => Effect.timeoutOption(Effect.interruptible(Fiber.join(reserving)), within)
    ))

/**
 * Ends a session given up on: on the server first (`pg_terminate_backend` on another connection of the same pool, of
 * a session by that pid with the pool's `application_name` only; which lets its locks go now rather than when the
 * server notices, if ever: a middlebox that acknowledges keeps it), then its socket, so that its statements fail at
 * once and the pool drops it. A connection that does not answer within `within` went silent too (the pool's idle ones
 * did, with the session): it is closed, not given back, its session ended with the first, and the next one asked
 * (`maxTries` at most); one that answers with an error is a server that refuses (a permission), said in a warning and
 * not asked again, its connection given back; a connection that cannot be had, or not within `within`, ends the attempt.
 * That wait is bounded too: a pool with none free (its one connection the session's own, or every one held by
 * statements that wait, as on a silent path) gave none without end, and the socket was never closed
 * (packages/bench/NOTES.md, "The cluster's storages built in turn").
 */
export const end = (sql: SqlClient.SqlClient, session: Session, within: Duration.Duration): Effect.Effect<void> => {
  const silent = [session.pid]
  return Effect.scoped(Effect.gen(function*() {
    const reserved = yield* reservedWithin(sql, within)
    if (Option.isNone(reserved)) return true
    const connection = reserved.value
    const helper = pgSession(connection)
    // Never so: the pool that made the session makes its helpers.
    if (helper === undefined) return true
    const ask = (statement: string, pids: ReadonlyArray<number>) =>
      answerWithin(connection.execute(statement, [pids], undefined), within, destroyed(helper.socket))
    const answer = yield* ask(terminate, silent)
    if (Option.isNone(answer)) {
      silent.push(helper.pid)
      return false
    }
    // The server answered: not silence, and the next connection would be told the same.
    if (Exit.isFailure(answer.value)) {
      const { cause } = answer.value
      yield* Effect.logWarning(
        `Could not end the PostgreSQL session (pid ${session.pid}) whose path went silent: ${
          Option.match(Cause.failureOption(cause), { onNone: () => Cause.pretty(cause), onSome: SyncError.explain })
        }`
      )
      return true
    }
    const ended = (answer.value.value as ReadonlyArray<{ readonly pid: number; readonly signaled: boolean }>)
      .flatMap((row) => row.signaled ? [row.pid] : [])
    if (ended.length > 0) {
      yield* ask(remaining, ended).pipe(
        Effect.repeat({
          until: (answer) =>
            Option.isNone(answer) || Exit.isFailure(answer.value) ||
            (answer.value.value as ReadonlyArray<{ readonly remaining: number }>)[0]?.remaining === 0,
          schedule: Schedule.spaced(goneEvery),
          times: goneTries - 1
        })
      )
    }
    return true
  })).pipe(
    Effect.repeat({ until: (answered) => answered, times: maxTries - 1 }),
    Effect.ignore,
    Effect.ensuring(Effect.sync(() => session.socket.destroy()))
  )
}

/**
 * How long a scope's close waits for a given-up session's `end` still under way: as long as @effect/sql-pg's pool
 * close waits for its connections, which it then leaves (the fleet's pools destroy their sockets then).
 */
const endGrace = Duration.seconds(1)

/**
 * `end` of a session given up on, started on a fiber of its own and never interrupted: an `end` cut by the close of
 * its caller's scope left the session open on the server, where a middlebox that acknowledges keeps it without end
 * (`fleet status` failed on a silent path, its scope closed: 3 of 3 sessions left; detached, 3 of 3 ended by the time
 * its pool had closed, 13-25 ms; packages/bench/NOTES.md, "The fleet's silent-session ends"). Given a `scope`, its
 * close waits for the ends still under way `endGrace` at most, together: a runner's stop or a command's exit gives them
 * the time its pool's close would, not a second each.
 */
const endDetached = (ending: Effect.Effect<void>, scope: Scope.Scope | undefined): Effect.Effect<void> =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkDaemon(ending)
    if (scope === undefined) return
    let ends = endsUnderWay.get(scope)
    if (ends === undefined) {
      const made = new Set<Fiber.RuntimeFiber<void>>()
      endsUnderWay.set(scope, ends = made)
      yield* Scope.addFinalizer(scope, Effect.asVoid(Effect.timeoutOption(Effect.suspend(() => Fiber.awaitAll([...made])), endGrace)))
    }
    const under = ends
    under.add(fiber)
    fiber.addObserver(() => under.delete(fiber))
  })

/** The ends under way in each scope given to `endDetached`: a runner's storage gives up on many in its life. */
const endsUnderWay = new WeakMap<Scope.Scope, Set<Fiber.RuntimeFiber<void>>>()

/**
 * `use` run on a connection of its own, reserved for it, every statement of it there (its transactions too, begun
 * there). Unanswered after `deadline`, that connection's session is ended (`end`, after `onSilent`), so that `use` fails
 * rather than wait without end and the connection is not handed out again. `use` must be made of short statements: a
 * long one, however healthy, is cut there.
 *
 * Detached from its caller: a caller interrupted (a timeout of its own, a race it lost) stops waiting, and `use` goes
 * on, on a fiber of its own, to its answer or to its deadline. Its statements are never interrupted, since
 * @effect/sql-pg cancels an interrupted statement by pid alone (`answerWithin`), and nor is the reservation, whose
 * connection, had later, would never be given back. `end` runs on a fiber of its own, which `scope`'s close (the
 * layer's, the caller's) waits for a moment (`endDetached`).
 */
export const withDeadline = (
  sql: SqlClient.SqlClient,
  deadline: Duration.Duration,
  options: {
    readonly scope?: Scope.Scope | undefined
    readonly onSilent?: ((session: Session) => Effect.Effect<void>) | undefined
    /**
     * The clock's time the deadline counts from (`Clock.currentTimeMillis`), the wait for a connection in it; by default
     * the connection's arrival. A connection had only once it has passed is given back unused, and `use` not run.
     */
    readonly since?: number | undefined
  } = {}
) =>
<A, E, R>(use: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
  Effect.scoped(Effect.gen(function*() {
    const connection = yield* sql.reserve
    const left = options.since === undefined
      ? deadline
      : Duration.millis(Math.max(0, options.since + Duration.toMillis(deadline) - (yield* Clock.currentTimeMillis)))
    if (Duration.isZero(left)) return yield* new SqlError({ message: `No connection within ${Duration.format(deadline)}` })
    const session = pgSession(connection)
    // -1: no transaction open on it yet, so that one begun inside `use` is begun here, not a savepoint.
    const running = Effect.provideService(use, SqlClient.TransactionConnection, [connection, -1])
    if (session === undefined) return yield* running
    const answering = yield* Effect.fork(running)
    const answered = yield* Effect.timeoutOption(Fiber.await(answering), left)
    if (Option.isSome(answered)) return yield* answered.value
    if (options.onSilent !== undefined) yield* options.onSilent(session)
    yield* endDetached(end(sql, session, deadline), options.scope)
    // It fails once its session is ended. A transaction's rollback on that session fails too, and @effect/sql dies of
    // that: it is the statement's failure, which the caller tries again, not a defect.
    return yield* Fiber.join(answering).pipe(
      Effect.catchSomeDefect((defect) => defect instanceof SqlError ? Option.some(Effect.fail(defect)) : Option.none())
    )
  })).pipe(
    // Interruptible inside, whatever its caller is (a transaction's finalizer): the wait above is cut at the deadline.
    Effect.interruptible,
    Effect.forkDaemon,
    Effect.flatMap(Fiber.join)
  )

/**
 * `use`'s answer within `within` of the call, the wait for a pool connection counted in it; `None` once that has
 * passed. One bound at one instant: the caller stops waiting then, and `use` (run by `withDeadline`, detached) has its
 * session ended if it is still waiting for its answer then, or, when no connection had come by then, is not run on the
 * one that comes later, which goes back to the pool unused. For a probe of short statements (a `SELECT 1`).
 */
export const answeredWithin = (sql: SqlClient.SqlClient, within: Duration.Duration) =>
<A, E, R>(use: Effect.Effect<A, E, R>): Effect.Effect<Option.Option<A>, E | SqlError, R> =>
  Effect.flatMap(
    Clock.currentTimeMillis,
    (since) => Effect.timeoutOption(withDeadline(sql, within, { since })(use), within)
  )

/**
 * `use` run on a connection of its own, reserved for it, every statement of it there (its transactions too), each
 * statement answered within `deadline`: one unanswered by then fails, its session ended (`onSilent` first; its socket
 * closed at once, the session ended on the server in the background), and so does each statement after it. For a
 * long run of short statements (a prune's batches), which a deadline on the whole would cut however healthy. Its
 * statements are never interrupted (`answerWithin`); a stream's are not bounded (its pace is its consumer's).
 */
export const eachWithin = (
  sql: SqlClient.SqlClient,
  deadline: Duration.Duration,
  onSilent: (session: Session) => Effect.Effect<void>
) =>
<A, E, R>(use: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
  Effect.scoped(Effect.gen(function*() {
    const connection = yield* sql.reserve
    const session = pgSession(connection)
    if (session === undefined) return yield* Effect.provideService(use, SqlClient.TransactionConnection, [connection, -1])
    let givenUp = false
    // Not in this scope, which closes as `use` fails: `end` would be cut there. Its one pool connection is waited for
    // by the pool's close (1 s at most), which `fleet prune` comes to next.
    const giveUp = Effect.suspend(() => {
      givenUp = true
      return onSilent(session).pipe(
        Effect.zipRight(endDetached(end(sql, session, deadline), undefined)),
        Effect.zipRight(destroyed(session.socket))
      )
    })
    const bounded = <B>(statement: Effect.Effect<B, SqlError>): Effect.Effect<B, SqlError> =>
      Effect.suspend(() =>
        givenUp
          ? new SqlError({ message: `Not sent: an earlier statement had no answer within ${Duration.format(deadline)}` })
          : Effect.flatMap(
            answerWithin(statement, deadline, giveUp),
            Option.match({
              onNone: () => new SqlError({ message: `No answer within ${Duration.format(deadline)}: the session was ended` }),
              onSome: identity
            })
          )
      )
    const watched: SqlConnection.Connection = {
      execute: (statement, params, transformRows) => bounded(connection.execute(statement, params, transformRows)),
      executeRaw: (statement, params) => bounded(connection.executeRaw(statement, params)),
      // Called on its connection: @effect/sql-pg's reads the client off `this`, and reserves another without one.
      executeStream: (statement, params, transformRows) => connection.executeStream(statement, params, transformRows),
      executeValues: (statement, params) => bounded(connection.executeValues(statement, params)),
      executeUnprepared: (statement, params, transformRows) =>
        bounded(connection.executeUnprepared(statement, params, transformRows))
    }
    // -1: no transaction open on it yet, so that one begun inside `use` is begun here, not a savepoint.
    return yield* Effect.provideService(use, SqlClient.TransactionConnection, [watched, -1]).pipe(
      // A transaction's rollback after the silence fails, and @effect/sql dies of that: it is the statement's failure.
      Effect.catchSomeDefect((defect) =>
        givenUp && defect instanceof SqlError ? Option.some(Effect.fail(defect)) : Option.none()
      )
    )
  }))
