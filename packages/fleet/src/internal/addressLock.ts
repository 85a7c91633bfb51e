/**
 * One runner an address. Two processes given one address (`--host` left at its default 127.0.0.1 on several machines,
 * one unit file copied to two) register one row in the cluster: one of them takes every shard while the other idles,
 * silently, or the other's pings find it unhealthy and interrupt its syncs. On PostgreSQL each runner holds a
 * session-level advisory lock keyed by its address, for its life: a process that dies ends its session and frees it at
 * once; a frozen one keeps it, as it keeps its shards. SQLite needs none: its runners share one machine, where the port
 * is the address's lock. A database that restarts under the runner (or an operator's `pg_terminate_backend`) ends the
 * session and frees the lock: the runner notices within `checkEvery` and takes it again on a new session, saying so.
 * So does a session whose path went silent (a firewall or a NAT that dropped its state, something on the way still
 * acknowledging): its check unanswered within `checkEvery`, it is ended (on the server, which frees the lock, then its
 * socket), where the runner waited without end, and its stop too, on the lock's release.
 *
 * The session also carries the runner's heartbeat, written at each check: the cluster writes `last_heartbeat` only as
 * it refreshes the shard locks, which a database far away has less often than every 5 s, and a beat on a pool
 * connection needed a session the runner's role may not have: on a role of 3 sessions (this one, the shard locks',
 * one for the pool), the first beat took the pool's while the cluster started, whose read was refused (53300), and the
 * runner, started again, beat again: it never started (packages/bench/NOTES.md, "The fleet's heartbeat and a role
 * with few sessions").
 *
 * @internal
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Cause, Clock, Duration, Effect, ExecutionStrategy, Exit, identity, Option, Predicate, Schedule, Scope } from "effect"
import * as Heartbeat from "./heartbeat.js"
import * as SilentSession from "./silentSession.js"

/** Beside the sync's advisory locks (0x1c5c0a11 for the workspaces, the next for its migrations). */
export const namespace = 0x1c5c_0a11 + 2

/** The text PostgreSQL's `hashtext` makes the lock's second key of. */
export const keyText = (address: string) => `runner ${address}`

/**
 * How long a runner waits for the address to come free: an earlier process at this address that is stopping (its
 * syncs have up to 15 s to finish, and it holds its sessions until then) frees it on its way out.
 */
export const waitForAddress = Duration.seconds(20)

/**
 * How often the session holding the lock is checked, and a lost lock tried again: the cluster's own shard lock refresh
 * nearby, so the address is free for about as long as the shards a restart frees.
 */
const checkEvery = Duration.seconds(5)

/**
 * Whether a beat failed for want of the cluster's tables (42P01): the lock is taken before the cluster creates them, and
 * a fresh database's first start may beat before it has. Nothing to say: there is no row to beat yet.
 */
const beforeClusterTables = (cause: Cause.Cause<SqlError>) =>
  Option.exists(Cause.failureOption(cause), (error) => Predicate.hasProperty(error.cause, "code") && error.cause.code === "42P01")

/** How often a runner tries the address again while another process holds it, as it starts. */
const tryEvery = Duration.seconds(1)

/** A session of the runner's, reserved in a scope of its own: closed once it is lost, it is given back (or dropped). */
interface Session {
  readonly scope: Scope.CloseableScope
  /** Tries the lock; once taken, its release is the first thing the session's scope does as it closes. */
  readonly take: Effect.Effect<boolean, SqlError>
  /**
   * Whether the session still answers: one that a restart ended has lost the lock with it. One that does not answer
   * within `checkEvery` is ended (`silent`) and has lost it too.
   */
  readonly alive: Effect.Effect<"alive" | "ended" | "silent">
  /**
   * Writes the runner's heartbeat to its row, if the cluster has one (an update, never an insert: a runner the cluster
   * let go is not brought back). No answer within `checkEvery` is the session's silence, as a check's (`silent`: it was
   * ended). A failure answered is the session's end if it no longer answers a check (`ended`, `silent`), said as a
   * check's; on a session that answers, the beat's own, said (`Heartbeat.failed`), and the next check beats again.
   */
  readonly beat: Effect.Effect<"alive" | "ended" | "silent">
}

/**
 * Takes the address's lock, on a connection kept until the scope closes, which releases the lock first. Succeeds
 * with whether it was taken: false once `waitForAddress` has passed with another process holding it. Once taken, it is
 * kept: a session that ends under it is replaced and the lock taken again (`checkEvery`), each step logged.
 */
export const hold = (address: string): Effect.Effect<boolean, SqlError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    if (!sql.onDialectOrElse({ pg: () => true, orElse: () => false })) return true
    const params = [namespace, keyText(address)]
    // Forked before the keeper below, so closed after it is interrupted: whatever session it holds then is released.
    const sessions = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const open: Effect.Effect<Session, SqlError> = Effect.gen(function*() {
      const scope = yield* Scope.fork(sessions, ExecutionStrategy.sequential)
      // Had within `checkEvery`, as its statements are answered: on a pool full of statements that wait (a database
      // vanished), one came only at the pool's connect timeout (10 s of real time in the fleet's pools, never in a
      // `PgClient` made without one), and the runner's start, its check, or its stop (its keeper interrupted) waited.
      const connection = yield* Scope.extend(SilentSession.reservedWithin(sql, checkEvery), scope).pipe(
        Effect.flatMap(Option.match({
          onNone: () => new SqlError({ message: `No connection within ${Duration.format(checkEvery)}` }),
          onSome: Effect.succeed
        })),
        Effect.tapError(() => Scope.close(scope, Exit.void))
      )
      const session = SilentSession.pgSession(connection)
      // Answered within `checkEvery`, or the session is ended (its lock with it), so that neither the runner nor its stop
      // waits on a silent path without end: `None`. Never interrupted (`SilentSession.answerWithin`), where a timeout
      // had @effect/sql-pg cancel it by pid, on whichever server the pool reaches: after a failover, someone else's.
      const answered = <A>(statement: Effect.Effect<A, SqlError>) =>
        session === undefined
          ? Effect.map(Effect.exit(statement), Option.some)
          : SilentSession.answerWithin(statement, checkEvery, SilentSession.end(sql, session, checkEvery))
      const alive = Effect.map(
        answered(connection.execute("SELECT 1", [], undefined)),
        Option.match({ onNone: () => "silent" as const, onSome: (exit) => Exit.isSuccess(exit) ? "alive" as const : "ended" as const })
      )
      const unlock = Effect.ignore(answered(connection.execute("SELECT pg_advisory_unlock($1, hashtext($2))", params, undefined)))
      return {
        scope,
        take: answered(connection.execute("SELECT pg_try_advisory_lock($1, hashtext($2)) AS taken", params, undefined)).pipe(
          Effect.flatMap(Option.match({
            onNone: () => new SqlError({ message: `No answer within ${Duration.format(checkEvery)}: the session was ended` }),
            onSome: identity
          })),
          Effect.map((rows) => (rows as ReadonlyArray<{ readonly taken: boolean }>)[0]?.taken === true),
          Effect.tap((taken) => taken ? Scope.addFinalizer(scope, unlock) : Effect.void)
        ),
        beat: Effect.flatMap(
          answered(connection.execute("UPDATE cluster_runners SET last_heartbeat = NOW() WHERE address = $1", [address], undefined)),
          Option.match({
            onNone: () => Effect.succeed("silent" as const),
            onSome: Exit.match({
              onSuccess: () => Effect.succeed("alive" as const),
              // No row to beat yet; else the session's end, or the statement's own fault (ignored before, as SQLite's
              // `NOW()` was on the other path).
              onFailure: (cause) =>
                beforeClusterTables(cause)
                  ? Effect.succeed("alive" as const)
                  : Effect.tap(alive, (state) => state === "alive" ? Heartbeat.failed(address, cause) : Effect.void)
            })
          })
        ),
        alive
      }
    })
    const first = yield* open
    let taken = yield* first.take
    if (!taken) {
      yield* Effect.logWarning(
        `Another process holds this runner's address, ${address}: waiting up to ${Duration.format(waitForAddress)} for it to free it (an earlier runner at this address, stopping)`
      )
      // Tried again every second, `waitForAddress` in all.
      taken = yield* first.take.pipe(
        Effect.delay(tryEvery),
        Effect.repeat({ until: (taken: boolean) => taken, times: Duration.toSeconds(waitForAddress) - 1 })
      )
    }
    if (!taken) {
      yield* Scope.close(first.scope, Exit.void)
      return false
    }
    // Until it holds the lock again on a new session, tried every `checkEvery`: the database away (a restart under way)
    // is tried again quietly, as the cluster says it is away; another process holding the address is said once.
    // Where a try found the database away (no session, or no answer), the line that says the lock is held again says
    // that the database is back, and after how long: what an operator reading the runner's log through an outage needs.
    const takeAgain = (lostAt: number) => Effect.suspend(() => {
      let warned = false
      let away = false
      const attempt: Effect.Effect<Option.Option<Session>> = Effect.option(open).pipe(Effect.flatMap(Option.match({
        onNone: () => Effect.sync((): Option.Option<Session> => (away = true, Option.none())),
        onSome: (next) =>
          Effect.gen(function*() {
            const again = yield* Effect.option(next.take)
            if (again._tag === "Some" && again.value) {
              const after = Duration.seconds(Math.round(((yield* Clock.currentTimeMillis) - lostAt) / 1000))
              yield* Effect.logInfo(`This runner holds its address, ${address}, again${
                away ? `: its database answers again, ${Duration.format(after)} after this runner lost its session` : ""
              }`)
              return Option.some(next)
            }
            if (again._tag === "None") away = true
            yield* Scope.close(next.scope, Exit.void)
            if (again._tag === "Some" && !warned) {
              warned = true
              yield* Effect.logWarning(
                `Another process took this runner's address, ${address}, while this runner's session was gone: two runners at one address are one to the cluster. This runner takes it back once it is free`
              )
            }
            return Option.none()
          })
      })))
      return attempt.pipe(
        Effect.repeat({ schedule: Schedule.addDelay(Schedule.identity<Option.Option<Session>>(), () => checkEvery), until: Option.isSome }),
        // Repeated until taken: never `None` here.
        Effect.flatMap(Option.match({ onNone: () => Effect.never, onSome: Effect.succeed }))
      )
    })
    let current = first
    const check = Effect.gen(function*() {
      // A beat unanswered ended the session as a check's silence does, and one refused may find it ended: said so now,
      // not found at the next check.
      const checked = yield* current.alive
      const alive = checked === "alive" ? yield* current.beat : checked
      if (alive === "alive") return
      const lostAt = yield* Clock.currentTimeMillis
      // Given back to the pool, which drops a connection that failed.
      yield* Scope.close(current.scope, Exit.void)
      yield* Effect.logWarning(
        alive === "ended"
          ? `The session that held this runner's address, ${address}, ended (the database restarted, or the session was terminated): taking its lock again, so that no other runner starts at this address`
          : `The session that held this runner's address, ${address}, did not answer within ${
            Duration.format(checkEvery)
          } (its path to the database may have gone silent): it was ended, and this runner takes its lock again, so that no other runner starts at this address`
      )
      current = yield* takeAgain(lostAt)
    })
    // Every `checkEvery`, the first `checkEvery` after the lock was taken, and the next after each check, however long.
    const keeper = Effect.schedule(check, Schedule.spaced(checkEvery))
    // One of the runner's background statements, which send no spans (as the cluster's own).
    yield* Effect.forkScoped(Effect.withTracerEnabled(keeper, false))
    return true
  })
