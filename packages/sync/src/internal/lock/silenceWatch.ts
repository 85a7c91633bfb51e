/**
 * PostgreSQL: the watch on the silence of the lock's connection. A statement left unanswered while the server, asked on
 * another connection, says the session is gone or sits idle: its answer (or the statement) was lost on the way, as
 * where a firewall, a NAT or a load balancer dropped the connection without a reset. No keepalive tells that while
 * something on the way still acknowledges, nor the kernel before its retransmissions end (~15 minutes). Only an answer
 * counts: a session `active` runs a statement, however long (a large workspace's deletion pass), or is stopped, and is
 * waited for. Idle twice, `silenceCheckEvery` apart, unchanged, with the same statement under way all along: a
 * statement's answer takes no such time to come. A session by the pid that is not known ours (`sight`) is never ended:
 * idle so, only the local connection is closed (a try's statement that never reached its session holds nothing there; a
 * session by that pid on another server is another's). A server that answers nothing at all, no look answered for
 * `unansweredLimit` while the same statement waited all along: the socket is closed, and nothing ended on the server,
 * which nothing reaches (its keepalives end the session).
 */
import type { SqlClient, SqlConnection } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Duration, Effect, Ref, Schema } from "effect"
import { silenceCheckEvery } from "./aside.js"
import type { Socket } from "./connection.js"
import type { LostReason, Unanswered } from "./kind.js"
import type { Outside } from "./outside.js"
import { type Identity, look, type Look, sessionStart, SessionRow, sight } from "./session.js"

/**
 * PostgreSQL: how long no connection to the server may be answered at all (new ones time out connecting, statements on
 * the pool's go unanswered), while a statement on the lock's connection waits for its answer, before the run gives up:
 * the server's host is gone from the network, or its address moved (a failover) and the path to the old one drops
 * everything. Longer than a blip of the network that TCP rides out (a switch restarting, a route flapping) and than a
 * managed database's failover, after which its run could not go on anyway; short enough that a job run from cron ends
 * in minutes, not after the kernel's ~15 minutes of retransmissions. A server that answers anything (a refusal, an
 * error, a session `active` on a long statement) is waited for. The default of `Sync.Options.unansweredTimeout`.
 */
export const unansweredLimit = Duration.minutes(2)

/**
 * The connection the watch looks after: a try's from before its statement (a try whose statement or answer is lost
 * would otherwise wait without end, holding the lock perhaps), then the held one; and who its session is (undefined:
 * not known at all, another driver's connection).
 */
export interface Watched {
  readonly identity: Identity | undefined
  readonly socket: Socket | undefined
  /** Looks on a connection of their own, for when the pool has none free (undefined: another driver's). */
  readonly outside: Outside | undefined
}

/** The statements under way on the watched connection: how many, since when, how many begun in all. */
interface InFlight {
  readonly count: number
  readonly since: number
  readonly begun: number
}

/** What the watch and `stop` share, in one `Ref` so that each reads it whole at once. */
interface State {
  readonly watched: Watched | undefined
  readonly inFlight: InFlight
  /**
   * Since when no look at the server on another connection has been answered, while the statement `begun` of the
   * watched connection waited.
   */
  readonly unanswered: { readonly begun: number; readonly since: number } | undefined
  /** The run is stopping (`stop`). */
  readonly stopping: boolean
  /** What the watch found, once it cut the connection. */
  readonly silence: LostReason | undefined
}

/** A session seen idle, the look before: unchanged at the next look, with the same statement under way, it is cut. */
interface IdleSeen {
  readonly begun: number
  readonly started: string
  readonly changed: number
}

/** Where the watch is after a look: still watching (with what it saw idle, if anything), or done (it cut). */
type Next =
  | { readonly _tag: "Watching"; readonly idleSeen: IdleSeen | undefined }
  | { readonly _tag: "Cut" }

const watching = (idleSeen: IdleSeen | undefined): Next => ({ _tag: "Watching", idleSeen })
const cutDone: Next = { _tag: "Cut" }

export interface SilenceWatch {
  /** Counts `statement` as under way on the watched connection while it runs. */
  readonly track: <A, E, R>(statement: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** The watched connection's statements, each tracked. */
  readonly tracked: (connection: SqlConnection.Connection) => SqlConnection.Connection
  /** Watch this connection from now on. */
  readonly watch: (watched: Watched) => Effect.Effect<void>
  /** Who the watched connection's session is, as its answer named it. */
  readonly identify: (identity: Identity) => Effect.Effect<void>
  /** What the watch found once it cut the connection; undefined while it has not. */
  readonly silence: Effect.Effect<LostReason | undefined>
  /**
   * The run is stopping: cut at once where the watch found the server answering nothing for the statement under way;
   * else at its next look that finds so.
   */
  readonly stop: Effect.Effect<void>
  /** The watch itself, a look every `silenceCheckEvery` until it cuts: run on a fiber of the lock's scope. */
  readonly run: Effect.Effect<void>
}

const SessionRows = Schema.Array(SessionRow)

const seconds = (millis: number) => Math.round(millis / 1000)

/**
 * The watch on the connection the lock's statements run on. `aside` runs its looks on another connection of the pool;
 * `sql` ends a session known ours.
 */
export const make = (
  sql: SqlClient.SqlClient,
  aside: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | Unanswered | SqlError, R>,
  options: { readonly unansweredLimit: Duration.Duration }
): Effect.Effect<SilenceWatch> =>
  Effect.gen(function*() {
    const state = yield* Ref.make<State>({
      watched: undefined,
      inFlight: { count: 0, since: 0, begun: 0 },
      unanswered: undefined,
      stopping: false,
      silence: undefined
    })
    const unansweredMillis = Duration.toMillis(options.unansweredLimit)

    const track = <A, E, R>(statement: Effect.Effect<A, E, R>) =>
      Effect.acquireUseRelease(
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Ref.update(state, (s) => ({
            ...s,
            inFlight: {
              count: s.inFlight.count + 1,
              since: s.inFlight.count === 0 ? now : s.inFlight.since,
              begun: s.inFlight.begun + 1
            }
          }))),
        () => statement,
        () => Ref.update(state, (s) => ({ ...s, inFlight: { ...s.inFlight, count: s.inFlight.count - 1 } }))
      )
    const tracked = (connection: SqlConnection.Connection): SqlConnection.Connection => ({
      execute: (statement, params, transformRows) => track(connection.execute(statement, params, transformRows)),
      executeRaw: (statement, params) => track(connection.executeRaw(statement, params)),
      executeStream: (statement, params, transformRows) => connection.executeStream(statement, params, transformRows),
      executeValues: (statement, params) => track(connection.executeValues(statement, params)),
      executeUnprepared: (statement, params, transformRows) =>
        track(connection.executeUnprepared(statement, params, transformRows))
    })

    // What the server says of the session by `pid`, asked on another connection of the pool, and whether it answered
    // at all (`look`): rows it answered that are not a session's are an answer. No connection of the pool free in time
    // tells nothing (the pool may be full of waits on a server that answers nothing): asked again on one of its own.
    const sessionOf = (identity: Identity, outside: Outside | undefined): Effect.Effect<Look> => {
      const statement = `SELECT state, extract(epoch FROM state_change)::float8 AS changed,
            ${sessionStart} AS started, coalesce(strpos(query, $2::text) > 0, false) AS marked
            FROM pg_stat_activity WHERE pid = $1`
      const params = [identity.pid, identity._tag === "Unanswered" ? identity.mark : null]
      const seen = <E>(answer: Effect.Effect<unknown, E>): Effect.Effect<Look> =>
        answer.pipe(
          Effect.flatMap(Schema.decodeUnknown(SessionRows)),
          Effect.map((rows): Look => ({ _tag: "Rows", rows })),
          Effect.catchAll((error) => Effect.succeed(look(error)))
        )
      return Effect.flatMap(
        seen(aside(sql.unsafe(statement, params))),
        (first) => first._tag === "Pending" && outside !== undefined ? seen(outside(statement, params)) : Effect.succeed(first)
      )
    }

    // Closes the watched connection for what `reason` says: its statement under way fails at once, and so does every
    // one after it, the run's end included (recorded on the pool). A session known ours (by its pid and start) is ended
    // on the server first, which lets the workspace's lock go now rather than once the server notices (a try's too,
    // which may have taken it); by its pid alone the server the pool reaches may end another's (after a failover).
    const cut = (
      on: Watched,
      ours: { readonly pid: number; readonly started: string } | undefined,
      reason: string,
      unanswered = false
    ) =>
      Effect.gen(function*() {
        yield* Ref.update(state, (s) => ({ ...s, silence: { reason, unanswered } }))
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

    const stoppedAnswering = (inFlight: InFlight, now: number, since: number) =>
      `its PostgreSQL server stopped answering: a statement waited ${
        seconds(now - inFlight.since)
      } s for an answer, and no connection to the server was answered for ${
        seconds(now - since)
      } s (connect timeouts, statements unanswered)`

    const stop = Effect.gen(function*() {
      const { inFlight, unanswered, watched } = yield* Ref.updateAndGet(state, (s) => ({ ...s, stopping: true }))
      if (watched === undefined || unanswered === undefined || inFlight.count === 0 || unanswered.begun !== inFlight.begun) {
        return
      }
      const now = yield* Clock.currentTimeMillis
      const still = yield* Ref.get(state)
      yield* cut(watched, undefined, stoppedAnswering(still.inFlight, now, unanswered.since), true)
    })

    // A look that found no answer at all: counted from the first such look for this statement, and the connection cut
    // once none came for `unansweredLimit` (at once when the run is stopping).
    const unansweredLook = (on: Watched, begun: number, now: number) =>
      Effect.gen(function*() {
        const since = yield* Ref.modify(state, (s) => {
          const unanswered = s.unanswered?.begun === begun ? s.unanswered : { begun, since: now }
          return [unanswered.since, { ...s, unanswered }]
        })
        const after = yield* Clock.currentTimeMillis
        const { inFlight, stopping } = yield* Ref.get(state)
        if (inFlight.begun !== begun || (!stopping && after - since < unansweredMillis)) return watching(undefined)
        yield* cut(on, undefined, stoppedAnswering(inFlight, after, since), true)
        return cutDone
      })

    // A look whose answer had the session's row (or none): gone, cut; idle twice alike, cut; otherwise watched on.
    const answeredLook = (
      on: Watched,
      identity: Identity,
      row: SessionRow | undefined,
      begun: number,
      now: number,
      idleSeen: IdleSeen | undefined
    ) =>
      Effect.gen(function*() {
        const { inFlight } = yield* Ref.updateAndGet(state, (s) => ({ ...s, unanswered: undefined }))
        const seen = sight(identity, row)
        const { pid } = identity
        const waited = `its PostgreSQL connection went silent: a statement waited ${seconds(now - inFlight.since)} s for an answer`
        if (seen._tag === "Gone") {
          yield* cut(
            on,
            undefined,
            `${waited} from its server session (pid ${pid}), which the server the pool reaches no longer has: it ended without a word reaching it, or that server is another (a failover)`
          )
          return cutDone
        }
        if (seen._tag === "Unknown" || !seen.idle || seen.changed === null) return watching(undefined)
        if (
          idleSeen === undefined || idleSeen.begun !== begun || idleSeen.started !== seen.started ||
          idleSeen.changed !== seen.changed
        ) {
          return watching({ begun, started: seen.started, changed: seen.changed })
        }
        yield* seen._tag === "Ours"
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
        return cutDone
      })

    // One look, `silenceCheckEvery` after the last: only while a statement has waited that long on a watched session.
    const lookOnce = (idleSeen: IdleSeen | undefined): Effect.Effect<Next> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        // Read once: a try that ends meanwhile gives its connection back, and the next try watches another.
        const { inFlight, watched: on } = yield* Ref.get(state)
        const identity = on?.identity
        if (
          on === undefined || identity === undefined || inFlight.count === 0 ||
          now - inFlight.since < Duration.toMillis(silenceCheckEvery)
        ) {
          yield* Ref.update(state, (s) => ({ ...s, unanswered: undefined }))
          return watching(undefined)
        }
        const begun = inFlight.begun
        const answer = yield* sessionOf(identity, on.outside)
        switch (answer._tag) {
          case "Rows":
            return yield* answeredLook(on, identity, answer.rows[0], begun, now, idleSeen)
          case "Answered":
            yield* Ref.update(state, (s) => ({ ...s, unanswered: undefined }))
            return watching(undefined)
          case "Pending":
            return watching(undefined)
          case "Silent":
            return yield* unansweredLook(on, begun, now)
        }
      })

    return {
      track,
      tracked,
      watch: (watched) => Ref.update(state, (s) => ({ ...s, watched })),
      identify: (identity) =>
        Ref.update(state, (s) => ({ ...s, watched: { identity, socket: s.watched?.socket, outside: s.watched?.outside } })),
      silence: Effect.map(Ref.get(state), (s) => s.silence),
      stop,
      run: Effect.asVoid(Effect.iterate(watching(undefined), {
        while: (next): next is Extract<Next, { _tag: "Watching" }> => next._tag === "Watching",
        body: (next) => Effect.delay(lookOnce(next.idleSeen), silenceCheckEvery)
      }))
    }
  })
