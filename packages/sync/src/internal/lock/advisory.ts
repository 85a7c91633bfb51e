/**
 * PostgreSQL: the workspace's lock as a session-level advisory lock on a connection of the pool, the run's
 * transactions on that connection, and the watch on its silence.
 */
import { SqlClient, type SqlConnection } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Cause, Clock, Duration, Effect, Exit, Option, Scope } from "effect"
import { randomUUID } from "node:crypto"
import { LockLost, SessionPooled } from "../../SyncError.js"
import { reserveIn, type Socket, socketOf, clientOf } from "./connection.js"
import { Busy, type Lock, Unanswered } from "./kind.js"
import {
  answeredSessions,
  type Identity,
  keepalivesStatement,
  look,
  type Look,
  sessionStart,
  type SessionRow,
  sight,
  tryIdentity
} from "./session.js"
import { lockNotAvailable, tableLocked } from "./tableLocked.js"

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
