/**
 * A runner's address lock (`AddressLock.hold`) on a real PostgreSQL whose session holding it ends under the runner, as
 * a restart of the server ends it (here `pg_terminate_backend`, on the one shared test server): the lock is taken
 * again, and the log says so. Its checks are timed on the TestClock; the database's side is real time.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, it } from "@effect/vitest"
import { SyncDatabase } from "@intercom-scroll/sync"
import { BlackHole, ClockSteps, PostgresDatabase, Standby } from "@intercom-scroll/testing"
import { Cause, Clock, Context, Effect, Exit, Fiber, Layer, Logger, Option, Redacted, Scope, TestServices } from "effect"
import { Fleet } from "../src/index.js"
import * as AddressLock from "../src/internal/addressLock.js"
import { type Proxy, tcpProxy } from "./support/proxy.js"

if (!Standby.supported()) console.warn("AddressLock.test.ts: no PID namespaces here (unshare --pid refused): the failover case is skipped")

const address = "127.0.0.1:47199"
const key = [AddressLock.namespace, AddressLock.keyText(address)]

/** The backend that holds the address's lock, if one does. */
const holder = (sql: SqlClient.SqlClient) =>
  Effect.orDie(Effect.map(
    sql<{ readonly pid: number }>`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
      AND classid = ${AddressLock.namespace} AND objid = hashtext(${AddressLock.keyText(address)})::oid
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    (rows) => rows[0]?.pid
  ))

/**
 * A fresh database, a runner holding the address on it (its log kept in `lines`), and the test's own session, as
 * another process's: the runner's sessions are the ones the test ends. The runner reaches it through `path`, if given.
 */
const runnerHolding = (path?: (url: Redacted.Redacted<string>) => Effect.Effect<Redacted.Redacted<string>, never, Scope.Scope>) => Effect.gen(function*() {
  const url = yield* Effect.orDie(PostgresDatabase.make)
  const runnerSql = yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(path === undefined ? url : yield* path(url))))
  const other = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(url))), SqlClient.SqlClient)
  const lines: Array<string> = []
  // Each line's cause, as the CLI's logfmt prints it.
  const causes: Array<string> = []
  const logger = Logger.make(({ cause, logLevel, message }) => {
    lines.push(`${logLevel.label} ${String(message)}`)
    causes.push(Cause.pretty(cause, { renderErrorCause: true }))
  })
  const taken = yield* AddressLock.hold(address).pipe(
    Effect.orDie,
    Effect.provide(runnerSql),
    Effect.provide(Logger.replace(Logger.defaultLogger, logger))
  )
  return { causes, lines, other, taken, url }
})

const steps = { step: "1 second", maxSteps: 30, realPause: "50 millis" } as const

/**
 * A pool of one connection, held by the test (as statements that wait hold a full pool's on a vanished database), its
 * wait for a connection unbounded (@effect/sql-pg's default, no `connectTimeout`): only the lock's own bound ends it.
 */
const poolOfOneHeld = Effect.gen(function*() {
  const url = yield* Effect.orDie(PostgresDatabase.make)
  // Closed with the clock moving: its close waits for its connections, one never given back included, 1 s of the clock.
  const pool = yield* Effect.acquireRelease(
    Scope.make(),
    (pool) => Effect.flatMap(Effect.fork(Scope.close(pool, Exit.void)), ClockSteps.runToEnd(steps))
  )
  const sql = Context.get(
    yield* Scope.extend(Layer.build(Layer.orDie(PgClient.layer({ url, maxConnections: 1, applicationName: "intercom-scroll-fleet" }))), pool),
    SqlClient.SqlClient
  )
  // Given back before the pool closes.
  const held = yield* Effect.acquireRelease(Scope.make(), (held) => Scope.close(held, Exit.void))
  yield* Effect.orDie(Scope.extend(sql.reserve, held))
  return { held, sql }
})

describe("AddressLock", () => {
  it.scoped("a lock whose session ended (a database restart) is taken again on a new session, and the log says so", () =>
    Effect.gen(function*() {
      const { lines, other, taken } = yield* runnerHolding()
      expect(taken).toBe(true)
      const first = yield* holder(other)
      expect(first).toBeTypeOf("number")

      // The server ends the session, as a restart ends every session.
      yield* Effect.orDie(other`SELECT pg_terminate_backend(${first!})`)
      yield* ClockSteps.until("the address's lock held by another session of the runner", steps)(
        Effect.map(holder(other), (pid) => pid !== undefined && pid !== first)
      )
      // The server grants the lock before the runner has its answer, and says so.
      yield* ClockSteps.until("the runner's line that it holds the address again", steps)(Effect.sync(() => lines.length >= 2))
      expect(lines).toEqual([
        `WARN The session that held this runner's address, ${address}, ended (the database restarted, or the session was terminated): taking its lock again, so that no other runner starts at this address`,
        `INFO This runner holds its address, ${address}, again`
      ])
      // Held, not merely taken once: another process cannot take it.
      const session = yield* Effect.orDie(other.reserve)
      const [row] = yield* Effect.orDie(session.execute("SELECT pg_try_advisory_lock($1, hashtext($2)) AS taken", key, undefined))
      expect(row).toEqual({ taken: false })
    }), 60_000)

  it.scoped("through an outage (its session ended, the database refusing new ones a while): the line that says the lock is held again says the database is back, and after how long", () =>
    Effect.gen(function*() {
      // The runner reaches the database through a proxy that the test cuts (the server away: connections refused, the
      // open one ended) and opens again.
      let proxy: Proxy | undefined
      const { lines, other } = yield* runnerHolding((url) =>
        Effect.gen(function*() {
          proxy = yield* tcpProxy(new URL(Redacted.value(url)))
          yield* proxy.open
          const through = new URL(Redacted.value(url))
          through.port = String(proxy.port)
          return Redacted.make(through.href)
        })
      )
      const first = yield* holder(other)
      yield* proxy!.cut
      const cutAt = yield* Clock.currentTimeMillis
      yield* ClockSteps.until("the runner's warning", steps)(Effect.sync(() => lines.length >= 1))
      // Away for a few of its checks (5 s each), then back.
      yield* ClockSteps.until("12 s of the clock", steps)(Effect.map(Clock.currentTimeMillis, (now) => now - cutAt >= 12_000))
      yield* proxy!.open
      yield* ClockSteps.until("the address's lock held by another session of the runner", steps)(
        Effect.map(holder(other), (pid) => pid !== undefined && pid !== first)
      )
      // The server grants the lock before the runner has its answer, and says so.
      yield* ClockSteps.until("the runner's line that it holds the address again", steps)(Effect.sync(() => lines.length >= 2))
      expect(lines).toEqual([
        expect.stringMatching(/^WARN The session that held this runner's address, 127\.0\.0\.1:47199, (ended|did not answer)/),
        expect.stringMatching(/^INFO This runner holds its address, 127\.0\.0\.1:47199, again: its database answers again, \d+s after this runner lost its session$/)
      ])
    }), 60_000)

  it.scoped("a lock another process took while its session was gone is warned of, and taken back once freed", () =>
    Effect.gen(function*() {
      const { lines, other } = yield* runnerHolding()
      const first = yield* holder(other)
      // Another process at this address takes the lock the moment the runner's session is gone.
      const session = yield* Effect.orDie(other.reserve)
      yield* Effect.orDie(other`SELECT pg_terminate_backend(${first!})`)
      yield* ClockSteps.until("the other process holds the address", steps)(
        Effect.map(
          Effect.orDie(session.execute("SELECT pg_try_advisory_lock($1, hashtext($2)) AS taken", key, undefined)),
          (rows) => (rows as ReadonlyArray<{ readonly taken: boolean }>)[0]?.taken === true
        )
      )
      yield* ClockSteps.until("the runner's warning", steps)(Effect.sync(() => lines.length >= 2))
      expect(lines.slice(0, 2)).toEqual([
        expect.stringMatching(/^WARN The session that held this runner's address/),
        `WARN Another process took this runner's address, ${address}, while this runner's session was gone: two runners at one address are one to the cluster. This runner takes it back once it is free`
      ])
      // Freed (that process stops), the runner takes it back.
      yield* Effect.orDie(session.execute("SELECT pg_advisory_unlock($1, hashtext($2))", key, undefined))
      yield* ClockSteps.until("the address held by the runner again", steps)(
        Effect.map(holder(other), (pid) => pid !== undefined && pid !== first)
      )
      // The server grants the lock before the runner has its answer, and says so.
      yield* ClockSteps.until("the runner's line that it holds the address again", steps)(Effect.sync(() => lines.length >= 3))
      expect(lines.slice(2)).toEqual([`INFO This runner holds its address, ${address}, again`])
    }), 60_000)
  it.scoped("a lock whose session's path went silent is ended, and taken again on a new session", () =>
    Effect.gen(function*() {
      // Between the runner and its database, a path that goes silent without closing, something on the way still
      // acknowledging: the proxy's hole, through which new connections pass.
      let hole: BlackHole.BlackHole | undefined
      const runner = yield* Scope.make()
      const { lines, other, url } = yield* Scope.extend(
        runnerHolding((url) => Effect.map(BlackHole.make(url), (made) => (hole = made).url)),
        runner
      )
      const first = yield* holder(other)
      expect(first).toBeTypeOf("number")

      yield* hole!.silence
      // Its check unanswered, the session is ended on the server (its lock with it) and the lock taken on a new one.
      // Before, the check waited without end: the silent session kept the lock, and the runner's stop waited on it.
      yield* ClockSteps.until("the address's lock held by another session of the runner", steps)(
        Effect.map(holder(other), (pid) => pid !== undefined && pid !== first)
      )
      const [gone] = yield* Effect.orDie(other<{ readonly count: number }>`SELECT count(*)::int AS count FROM pg_stat_activity WHERE pid = ${first!}`)
      expect(gone).toEqual({ count: 0 })
      // The server grants the lock before the runner has its answer, and says so.
      yield* ClockSteps.until("the runner's line that it holds the address again", steps)(Effect.sync(() => lines.length >= 2))
      expect(lines).toEqual([
        `WARN The session that held this runner's address, ${address}, did not answer within 5s (its path to the database may have gone silent): it was ended, and this runner takes its lock again, so that no other runner starts at this address`,
        `INFO This runner holds its address, ${address}, again`
      ])
      // Silent again, the runner stops: the lock's release is not answered either, and its session is ended. Before,
      // the stop waited for that answer without end (the CLI exited 60 s after SIGTERM, the lock still held).
      yield* hole!.silence
      yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(Scope.close(runner, Exit.void)))
      const after = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(url))), SqlClient.SqlClient)
      expect(yield* holder(after)).toBeUndefined()
    }), 60_000)

  it.scoped("a heartbeat left unanswered is the session's silence: ended, said so, and the lock taken again", () =>
    Effect.gen(function*() {
      let hole: BlackHole.BlackHole | undefined
      const { lines, other } = yield* runnerHolding((url) => Effect.map(BlackHole.make(url), (made) => (hole = made).url))
      const first = yield* holder(other)
      expect(first).toBeTypeOf("number")
      // The path goes silent between a check's `SELECT 1`, answered, and the beat after it.
      yield* hole!.loseAnswersTo("UPDATE cluster_runners")
      yield* ClockSteps.until("the address's lock held by another session of the runner", steps)(
        Effect.map(holder(other), (pid) => pid !== undefined && pid !== first)
      )
      yield* ClockSteps.until("the runner's line that it holds the address again", steps)(Effect.sync(() => lines.length >= 2))
      // Before, the beat's silence ended the session unsaid, and the next check, 5 s on, found it ended and said so as a
      // database restart's.
      expect(lines).toEqual([
        `WARN The session that held this runner's address, ${address}, did not answer within 5s (its path to the database may have gone silent): it was ended, and this runner takes its lock again, so that no other runner starts at this address`,
        `INFO This runner holds its address, ${address}, again`
      ])
    }), 60_000)

  it.scoped("a heartbeat refused on a session that answers is said, with why, at each beat; the lock kept; none said before the cluster's tables exist", () =>
    Effect.gen(function*() {
      const { causes, lines, other } = yield* runnerHolding()
      const first = yield* holder(other)
      expect(first).toBeTypeOf("number")
      // The session's last statement, and when it started, seen from the server: a check is `SELECT 1`, then the beat.
      const last = Effect.orDie(Effect.map(
        other<{ readonly query: string; readonly started: string }>`SELECT query, CAST(query_start AS TEXT) AS started
          FROM pg_stat_activity WHERE pid = ${first!}`,
        (rows) => rows[0] ?? { query: "", started: "" }
      ))
      // Or a line said, which the test then shows.
      const beat = (after: string) =>
        Effect.map(last, ({ query, started }) => (query.startsWith("UPDATE cluster_runners") && started !== after) || lines.length > 0)
      // A fresh database's first start may beat before the cluster has created its tables: nothing to say. The next
      // check's beat comes after the first check's lines, if any.
      yield* ClockSteps.until("a beat without the cluster's tables", steps)(beat(""))
      const { started } = yield* last
      yield* ClockSteps.until("the next check's beat", steps)(beat(started))
      expect(lines).toEqual([])
      // A fault of the beat's own on a session that answers, as SQLite's missing `NOW()` was on the other path.
      yield* Effect.orDie(other.unsafe("CREATE TABLE cluster_runners (address TEXT PRIMARY KEY, last_heartbeat TIMESTAMPTZ)"))
      yield* Effect.orDie(other.unsafe("CREATE FUNCTION beat_refused() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the beat refused'; END $$"))
      yield* Effect.orDie(other.unsafe("CREATE TRIGGER beat_refused BEFORE UPDATE ON cluster_runners FOR EACH STATEMENT EXECUTE FUNCTION beat_refused()"))
      // Before, ignored: nothing said. Said at each beat here, where no `LogRepeats.layer` counts the repeats.
      yield* ClockSteps.until("two beats refused, said", steps)(Effect.sync(() => lines.length >= 2))
      const said = `WARN This runner's heartbeat (its row in cluster_runners, ${address}) was not written: a runner not heard from for 30s reads as stopped to fleet status and fleet sync. Trying again every 5s`
      expect(lines).toEqual([said, said])
      expect(causes[0]).toContain("the beat refused")
      // Its session's fault, not the session's end: kept, and its lock.
      expect(yield* holder(other)).toBe(first)
    }), 60_000)

  it.scoped("a session wanted from a pool with none free is waited for 5 s of the clock: the runner's start fails then, where it waited for the pool's connect timeout (none here: without end)", () =>
    Effect.gen(function*() {
      const { sql } = yield* poolOfOneHeld
      const starting = yield* Effect.fork(Effect.scoped(Effect.provideService(AddressLock.hold(address), SqlClient.SqlClient, sql)))
      const started = yield* ClockSteps.runToEnd(steps)(starting).pipe(Effect.flip)
      expect(started.message).toBe("No connection within 5s")
      expect(yield* Clock.currentTimeMillis).toBe(5_000)
    }), 60_000)

  it.scoped("a runner stopped while it waits for a session from a full pool gives back the connection it gets later", () =>
    Effect.gen(function*() {
      const { held, sql } = yield* poolOfOneHeld
      const runner = yield* Scope.make()
      const starting = yield* Effect.fork(Scope.extend(Effect.provideService(AddressLock.hold(address), SqlClient.SqlClient, sql), runner))
      // Waiting for the pool (real time: the clock still), then stopped.
      yield* TestServices.provideLive(Effect.sleep("200 millis"))
      expect(Option.isNone(yield* Fiber.poll(starting))).toBe(true)
      yield* Fiber.interrupt(starting)
      yield* Scope.close(runner, Exit.void)
      // The pool's one connection free again: it goes to the stopped wait, which must give it back. Before, it kept it
      // (@effect/sql-pg's `reserve` interrupted never gives back what it gets later), and the pool answered no more.
      yield* Scope.close(held, Exit.void)
      const answer = yield* Effect.fork(Effect.orDie(sql<{ readonly one: number }>`SELECT 1 AS one`))
      expect(yield* ClockSteps.runToEnd({ step: 0, maxSteps: 100, realPause: "50 millis" })(answer)).toEqual([{ one: 1 }])
    }), 60_000)

  it.scoped.skipIf(!Standby.supported())("a check unanswered after a failover ends the runner's own session only: another application's statement with its pid on the new server runs on", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const hole = yield* BlackHole.make(url)
      const standby = yield* Standby.make(url)
      // The runner's pool as `Fleet.layerRunner` makes it, its sessions named after its address.
      const runnerSql = Context.get(
        yield* Layer.build(Layer.orDie(Fleet.layerSql(SyncDatabase.Database.Postgres({ url: hole.url }), {
          connections: 4,
          applicationName: `intercom-scroll-fleet runner ${address}`
        }))),
        SqlClient.SqlClient
      )
      expect(yield* AddressLock.hold(address).pipe(Effect.provideService(SqlClient.SqlClient, runnerSql), Effect.orDie)).toBe(true)
      const primary = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(url))), SqlClient.SqlClient)
      const pid = yield* holder(primary)
      expect(pid).toBeTypeOf("number")

      // On the server the address moves to, another application's session by that pid, at work: waiting for a lock
      // the test holds, until the test lets it go.
      const onStandby = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(standby.url))), SqlClient.SqlClient)
      const gate = yield* Effect.orDie(onStandby.reserve)
      yield* Effect.orDie(gate.execute("SELECT pg_advisory_lock(1)", [], undefined))
      const bystander = yield* standby.bystander(pid!)
      const working = yield* Effect.fork(Effect.exit(bystander.execute("SELECT pg_advisory_lock(1)")))

      yield* hole.failover(standby.url)
      // The check is unanswered: the silent session is given up on and the lock taken on the new server.
      yield* ClockSteps.until("the address's lock held on the new server", steps)(
        Effect.map(holder(onStandby), (holding) => holding !== undefined)
      )
      const [taker] = yield* Effect.orDie(onStandby<{ readonly application_name: string }>`SELECT application_name FROM pg_stat_activity
        WHERE pid = ${(yield* holder(onStandby))!}`)
      expect(taker).toEqual({ application_name: `intercom-scroll-fleet runner ${address}` })
      // The other application's statement was neither cancelled nor its session ended: let go, it is answered. Before,
      // the check's timeout interrupted its statement, which @effect/sql-pg cancels by pid on a new connection, there:
      // "canceling statement due to user request".
      expect(yield* Fiber.poll(working)).toEqual(Option.none())
      yield* Effect.orDie(gate.execute("SELECT pg_advisory_unlock(1)", [], undefined))
      const done = yield* Fiber.join(working)
      expect(Exit.isSuccess(done) ? "answered" : Cause.pretty(done.cause)).toEqual("answered")
      expect(yield* bystander.alive).toBe(true)
    }), 120_000)
})
