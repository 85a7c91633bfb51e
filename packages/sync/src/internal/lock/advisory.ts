/**
 * PostgreSQL: the workspace's lock as a session-level advisory lock on a connection of the pool, and the run's
 * transactions on that connection, watched for silence (`silenceWatch.ts`).
 */
import { SqlClient, type SqlConnection } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Cause, Duration, Effect, Exit, Option, Ref, Schema, Scope } from "effect"
import { randomUUID } from "node:crypto"
import { LockLost, SessionPooled } from "../../SyncError.js"
import { aside as asideOf } from "./aside.js"
import { clientOf, reserveIn, socketOf } from "./connection.js"
import { Busy, type Lock } from "./kind.js"
import { outsideOf } from "./outside.js"
import { answeredSessions, keepalivesStatement, sessionStart, tryIdentity } from "./session.js"
import * as SilenceWatch from "./silenceWatch.js"
import { lockNotAvailable, tableLocked } from "./tableLocked.js"

/**
 * Whether the server session that runs the statement holds the lock (pg_locks names the two keys as unsigned oids,
 * objsubid 2 for the two-key form), its keys at parameters $first and $first + 1. A pooler that hands out sessions per
 * transaction (PgBouncer's transaction or statement mode) gives a client's statements to whichever session is free:
 * the lock taken stays on one, which other clients then use.
 */
const heldHere = (first: number) =>
  `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
    AND classid = $${first}::bigint::oid AND objid = $${first + 1}::bigint::oid AND objsubid = 2`

/** A try's answer: the lock taken or not (NULL: the session held it already), and its session's pid and start. */
const TryRows = Schema.Array(Schema.Struct({
  locked: Schema.NullOr(Schema.Boolean),
  pid: Schema.Number,
  started: Schema.NullOr(Schema.String)
}))

/** A transaction's first round trip: `BEGIN`, `SET LOCAL` (no rows), and the session's server process. */
const transactionSession = Schema.decodeUnknownOption(
  Schema.Tuple([Schema.Unknown, Schema.Unknown, Schema.Tuple([Schema.Struct({ pid: Schema.Number })], Schema.Unknown)], Schema.Unknown)
)

/** `stillHeld`'s answer, that the session holds the lock. */
const isHeldHere = Schema.is(Schema.Tuple([Schema.Struct({ held: Schema.Literal(true) })], Schema.Unknown))

/**
 * The connection the lock was taken on (or may have been), the scope that gives it back to the pool, and the server
 * process of the session that took it (undefined when the try failed: `acquire` then fails, and nothing runs on it).
 */
interface HeldConnection {
  readonly connection: SqlConnection.Connection
  readonly scope: Scope.CloseableScope
  readonly pid: number | undefined
}

/**
 * An advisory lock on a connection of the pool, kept from the try that took the lock until the scope ends; the run's
 * transactions run on that connection too, one statement at a time with the watchdog's checks. Each try reserves a
 * connection of its own and gives it back when the lock is busy: a sync waiting for the lock holds none between its
 * tries, so the syncs waiting for a workspace do not take the connections that the holders' other work needs.
 * `unansweredLimit`: how long the server may answer nothing at all, while a statement of the lock's waits, before the
 * watch gives it up (`LockLost`).
 */
export const advisory = (
  sql: SqlClient.SqlClient,
  key: readonly [number, number],
  workspace: string,
  tableLockTimeoutMillis: number,
  unansweredLimit: Duration.Duration = SilenceWatch.unansweredLimit
): Effect.Effect<Lock, never, Scope.Scope> =>
  Effect.gen(function*() {
    const unsigned = [key[0] >>> 0, key[1] >>> 0] as const
    const pooled = (evidence: string) => new SessionPooled({ workspace, evidence })
    const held = yield* Ref.make<HeldConnection | undefined>(undefined)
    const aside = asideOf(sql)
    const watch = yield* SilenceWatch.make(sql, aside, { unansweredLimit })
    // Registered before any try, so that it runs after the release that `acquire` registers (the last finalizer
    // added runs first): the connection goes back to the pool only once the lock is released on it.
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Ref.get(held), (taken) => taken === undefined ? Effect.void : Scope.close(taken.scope, Exit.void))
    )
    // A check never lands inside a transaction, where a failed statement would make it fail too.
    const turn = yield* Effect.makeSemaphore(1)
    const heldConnection = Effect.flatMap(Ref.get(held), (taken) =>
      taken === undefined
        ? Effect.dieMessage("The advisory lock's connection was asked for before a try took it")
        : Effect.succeed(taken.connection))
    const ask = (statement: string, params: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<unknown>, SqlError> =>
      Effect.flatMap(heldConnection, (connection) => connection.execute(statement, params, undefined))

    const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>, committed?: (value: A) => Effect.Effect<void>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          // In the transaction, on the session that will commit it: a transaction given a session without the lock
          // (a pooler's) would otherwise write as if it held it. The session's server process, not pg_locks: this runs
          // for every page, and reading pg_locks takes every partition of the server's lock table. One round trip for
          // both (a query without parameters goes as one simple query, and answers each statement's rows).
          // Its lock_timeout too, local to it: a statement blocked by another session's lock fails (TableLocked)
          // rather than holding the run, silent, without end. Waits for locks only, never a long pass's own time.
          const session = transactionSession(
            yield* ask(`BEGIN; SET LOCAL lock_timeout = ${Math.round(tableLockTimeoutMillis)}; SELECT pg_backend_pid() AS pid`, [])
          )
          const taken = yield* Ref.get(held)
          if (Option.isNone(session) || session.value[2][0].pid !== taken?.pid) {
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
            if (committed !== undefined) yield* committed(exit.value)
            return exit.value
          }
          // Interrupted with its statement unanswered by a server that answers nothing, the ROLLBACK would wait behind it.
          if (Exit.isInterrupted(exit)) yield* watch.stop
          // A session that ended has rolled back already, and its ROLLBACK fails: the failure to report is the first.
          yield* Effect.ignore(ask("ROLLBACK", []))
          if (tableLockTimeoutMillis > 0 && lockNotAvailable(exit.cause)) {
            return yield* tableLocked(ask, { workspace, waitedMillis: tableLockTimeoutMillis, migrating: false })
          }
          return yield* exit
        })
      ).pipe(turn.withPermits(1))

    // A session that holds the lock already, as this connection's never does, is another client's too: taken again
    // (advisory locks stack in a session), the lock would be held twice, by two syncs. One statement, so that the look
    // and the try run on one session whatever a pooler does; its session's start with it (by the view's function for
    // this one backend: the view reads every backend, +0.9 ms a try against +0.1 ms measured). The mark leads the
    // statement: pg_stat_activity keeps a statement's first 1 kB only.
    const tryStatement = (connection: SqlConnection.Connection, mark: string) =>
      watch.track(connection.execute(
        `/* ${mark} */ SELECT CASE WHEN EXISTS (${heldHere(3)}) THEN NULL ELSE pg_try_advisory_lock($1, $2) END AS locked,
          pg_backend_pid() AS pid,
          (SELECT ${sessionStart} FROM pg_stat_get_activity(pg_backend_pid())) AS started`,
        [...key, ...unsigned],
        undefined
      )).pipe(
        Effect.flatMap(Schema.decodeUnknown(TryRows)),
        Effect.catchTag("ParseError", (error) => Effect.die(error))
      )

    // Uninterruptible once the connection is in hand (the statement answers at once, or the watch on silence cuts it):
    // an interrupted statement is cancelled by a `pg_cancel_backend` sent on another connection, which may land on the
    // next statement of this one instead, the release of the lock. The wait for the connection may be interrupted.
    const tryTake = Effect.uninterruptible(
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const connection = yield* reserveIn(sql, scope).pipe(
          Effect.tapErrorCause((cause) => Cause.isInterruptedOnly(cause) ? Effect.void : Scope.close(scope, Exit.void))
        )
        const mark = `intercom-scroll lock try ${randomUUID()}`
        yield* watch.watch({
          identity: tryIdentity(connection, mark),
          socket: socketOf(connection),
          outside: outsideOf(sql, connection)
        })
        const answer = yield* Effect.exit(tryStatement(connection, mark))
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
        yield* Ref.set(held, { connection: watch.tracked(connection), scope, pid: row?.pid })
        // Watched as the session the answer named (as the try's while none came, for the release).
        if (row !== undefined && row.started !== null) {
          yield* watch.identify({ _tag: "Known", pid: row.pid, started: row.started })
        }
        // Cut by the watch: its session ended on the server, and the lock with it if the try had taken it.
        const silence = yield* watch.silence
        if (Exit.isFailure(answer) && silence !== undefined) return yield* new LockLost({ workspace, ...silence })
        // Taken: the session's keepalives, on which the lock's life hangs once this process is gone without a word. A
        // lock left without them is no reason to fail the run.
        if (Exit.isSuccess(answer)) yield* Effect.ignore(watch.track(connection.execute(keepalivesStatement, [], undefined)))
        return yield* Effect.asVoid(answer)
      })
    )

    yield* Effect.forkScoped(watch.run)
    return {
      tryTake,
      // A session lock lives as long as its session: a connection that answers still holds it, unless a pooler gave
      // the question to another session.
      stillHeld: ask(`SELECT EXISTS (${heldHere(1)}) AS held`, unsigned).pipe(
        Effect.flatMap((rows) =>
          isHeldHere(rows)
            ? Effect.succeed(true)
            : Effect.fail(pooled("its session answered without the workspace's lock"))
        ),
        turn.withPermits(1)
      ),
      checkEvery: Duration.seconds(10),
      lostReason: Effect.map(watch.silence, (silence) => silence ?? { reason: "its PostgreSQL session ended", unanswered: false }),
      // Before the connection goes back to the pool, which would otherwise keep the lock alive. Releasing a lock not
      // held does nothing; no try that may have taken it, nothing to release.
      release: Effect.flatMap(Ref.get(held), (taken) =>
        taken === undefined ? Effect.void : Effect.asVoid(ask("SELECT pg_advisory_unlock($1, $2)", key))).pipe(
          turn.withPermits(1)
        ),
      transaction,
      aside,
      stop: watch.stop
    } satisfies Lock
  })
