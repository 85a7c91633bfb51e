/**
 * A runner's cluster storage on a real PostgreSQL whose path goes silent without closing (a NAT or a firewall that
 * dropped the connections' state, something on the way still acknowledging): its message storage reads again on a new
 * connection, where the cluster's storage read loop waited without end (packages/bench/NOTES.md, "A fleet runner cut
 * off by a silent path").
 */
import { MessageStorage, ShardId } from "@effect/cluster"
import { SqlClient, type SqlConnection } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, it } from "@effect/vitest"
import { Sync, SyncDatabase } from "@intercom-scroll/sync"
import { BlackHole, ClockSteps, PostgresDatabase, Standby } from "@intercom-scroll/testing"
import {
  Cause,
  Chunk,
  Clock,
  Context,
  DateTime,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Logger,
  Option,
  Redacted,
  Scope,
  Stream,
  TestClock,
  TestServices
} from "effect"
import { Fleet, FleetStatus, WorkspaceSync } from "../src/index.js"
import * as ShardLocks from "../src/internal/shardLocks.js"
import * as SilentSession from "../src/internal/silentSession.js"
import { atWork } from "./support/bystander.js"

const steps = { step: "1 second", maxSteps: 60, realPause: "30 millis" } as const
/**
 * Real time only, the clock still, up to the pool's `connectTimeout` (10 s): for work that needs no clock, as a new
 * connection's opening, which a moving clock would race against a bound of its own.
 */
const clockStill = { step: 0, maxSteps: 340, realPause: "30 millis" } as const

/**
 * `operation` on a path just silenced: still waiting at 29 s, `DatabaseSilent` at 30 s naming the database, and the
 * session by `pid` (its connection's) then ended on the server, which `direct` reaches past the silence.
 */
const silentUntilDeadline = <A, E, R>(operation: Effect.Effect<A, E, R>, pid: number, direct: SqlClient.SqlClient) =>
  Effect.gen(function*() {
    const silent = yield* Effect.fork(Effect.either(operation))
    for (let second = 0; second < 29; second++) {
      yield* TestClock.adjust("1 second")
      yield* TestServices.provideLive(Effect.sleep("30 millis"))
    }
    expect(Option.isNone(yield* Fiber.poll(silent))).toBe(true)
    // At the deadline itself, not once its session is ended, which waits for another connection.
    const failed = yield* ClockSteps.runToEnd({ ...steps, maxSteps: 2 })(silent)
    if (Either.isRight(failed)) return expect.fail("answered on a silent path")
    if (!(failed.left instanceof FleetStatus.DatabaseSilent)) return expect.fail(`failed otherwise: ${String(failed.left)}`)
    expect(failed.left.message).toMatch(
      /^The database postgres:\/\/.*127\.0\.0\.1:\d+\/\S+ did not answer within 30s: /
    )
    // And its session is ended on the server, which the path's silence would otherwise leave open: by `end`, on a new
    // connection of the pool, whose wait is bounded by 30 s of the clock. Moved 1 s every 30 ms, the clock ended that
    // wait before a loaded machine had the connection open, and the session was left.
    yield* ClockSteps.until("the silent session ended", clockStill)(Effect.map(
      Effect.orDie(direct<{ readonly pid: number }>`SELECT pid FROM pg_stat_activity WHERE pid = ${pid}`),
      (rows) => rows.length === 0
    ))
  })

/**
 * `operation` on a path just silenced, failed (live clock, a deadline of seconds), then its `pool` closed, as a command
 * ends: the session by `pid` (its connection's) ended on the server by then, which `direct` reaches past the silence,
 * where the path's silence (a middlebox that acknowledges) would keep it without end.
 */
const endedByExit = <A, E, R>(
  operation: Effect.Effect<A, E, R>,
  { direct, hole, pid, pool }: {
    readonly direct: SqlClient.SqlClient
    readonly hole: BlackHole.BlackHole
    readonly pid: number
    readonly pool: Scope.CloseableScope
  }
) =>
  Effect.gen(function*() {
    yield* hole.silence
    expect(Either.isLeft(yield* Effect.either(operation))).toBe(true)
    yield* Scope.close(pool, Exit.void)
    expect(yield* Effect.orDie(direct`SELECT pid FROM pg_stat_activity WHERE pid = ${pid}`)).toEqual([])
    yield* hole.reset
  })

/**
 * `fleet prune`'s statements through a proxy's hole, each given `deadline` (`FleetStatus.eachAnsweredWithin`), on a
 * pool of `SyncDatabase.layer` in `pool` (closed by the caller), after one prune answered, which leaves its connection
 * idle in the pool: its session's `pid`. `direct` reaches the server past the hole. The cluster's tables and the sync's
 * made first, as a runner leaves them.
 */
const pruneThroughHole = (deadline: Duration.DurationInput, pool: Scope.Scope) =>
  Effect.gen(function*() {
    const url = yield* Effect.orDie(PostgresDatabase.make)
    const hole = yield* BlackHole.make(url)
    const direct = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(url))), SqlClient.SqlClient)
    // On the live clock: the client's stop waits on it.
    yield* TestServices.provideLive(Effect.scoped(Layer.build(Fleet.layerClient({ database: SyncDatabase.Database.Postgres({ url }) }))).pipe(
      // On a fiber of its own: the layer sets the database's clock on the fiber that builds it.
      Effect.fork,
      Effect.flatMap(Fiber.join),
      Effect.orDie
    ))
    yield* Effect.orDie(Effect.provideService(Sync.migrate, SqlClient.SqlClient, direct))
    const database = SyncDatabase.Database.Postgres({ url: hole.url })
    const sql = Context.get(yield* Scope.extend(Layer.build(Layer.orDie(SyncDatabase.layer(database))), pool), SqlClient.SqlClient)
    const prune = WorkspaceSync.prune(DateTime.unsafeMake(Date.now())).pipe(
      FleetStatus.eachAnsweredWithin(database, deadline),
      Effect.provideService(SqlClient.SqlClient, sql)
    )
    // Answered, its connection left idle in the pool.
    expect(yield* Effect.either(prune)).toEqual(Either.right({ runs: 0, requests: 0, ticks: 0 }))
    const [{ pid }] = (yield* Effect.orDie(sql<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid`)) as [{ readonly pid: number }]
    return { direct, hole, pid, prune }
  })

describe("A runner's storage on a silent path", () => {
  it.scoped("a storage read left unanswered fails at its deadline, and the next reads on a new connection what was sent meanwhile", () => {
    const warnings: Array<string> = []
    return Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const hole = yield* BlackHole.make(url)
      const runner = yield* Scope.make()
      // The runner's storage as `Fleet.layerRunner` builds it, through the proxy.
      const context = yield* Scope.extend(
        Layer.build(ShardLocks.layerStorage(Fleet.shardingConfig).pipe(
          Layer.provide(Fleet.layerSql(SyncDatabase.Database.Postgres({ url: hole.url })))
        )).pipe(Effect.orDie),
        runner
      )
      const storage = Context.get(context, MessageStorage.MessageStorage)
      const shard = ShardId.make("default", 1)
      // Reads at once, as the cluster's loops and entities make them: the pool keeps their connections, idle.
      yield* Effect.all(Array.from({ length: 3 }, () => Effect.orDie(storage.unprocessedMessages([shard]))), { concurrency: 3 })

      const direct = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(url))), SqlClient.SqlClient)
      yield* hole.silence
      // A `Sync` sent meanwhile by a process whose own path works.
      yield* Effect.orDie(direct`INSERT INTO cluster_messages (id, shard_id, entity_type, entity_id, kind, tag, payload, headers, processed, request_id)
        VALUES (1, ${shard.toString()}, 'WorkspaceSync', 'acme', 0, 'Sync', '{}', '{}', FALSE, 1)`)

      // The storage read loop's next read takes an idle connection, silent now: it fails at the deadline. Before, it
      // waited without end, and the runner read nothing more.
      const first = yield* Effect.fork(Effect.either(storage.unprocessedMessages([shard])))
      expect(Either.isLeft(yield* ClockSteps.runToEnd(steps)(first))).toBe(true)
      // The loop reads again at each poll, until a read is answered: on a new connection, the silent ones ended.
      let read: ReadonlyArray<string> | undefined
      for (let attempt = 0; attempt < 6 && read === undefined; attempt++) {
        const fiber = yield* Effect.fork(Effect.option(storage.unprocessedMessages([shard])))
        const answer = yield* ClockSteps.runToEnd(steps)(fiber)
        if (answer._tag === "Some") read = answer.value.map((message) => message.envelope.address.entityId)
      }
      expect(read).toEqual(["acme"])
      // Each session it gave up on, said in a warning, is ended on the server too, which would otherwise keep it (the
      // path acknowledges), and with it whatever it held: the row locks of an answer's transaction cut there.
      const given = /^The cluster's message storage \(unprocessedMessages\) has waited 10s for PostgreSQL: ending its session \(pid (\d+)\)/
      const ended = warnings.flatMap((line) => given.exec(line)?.[1] ?? []).map(Number)
      expect(ended.length).toBeGreaterThanOrEqual(1)
      yield* ClockSteps.until("the sessions given up on ended", steps)(Effect.map(
        Effect.orDie(direct<{ readonly pid: number }>`SELECT pid FROM pg_stat_activity WHERE pid IN ${direct.in(ended)}`),
        (rows) => rows.length === 0
      ))

      yield* hole.reset
      yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(Scope.close(runner, Exit.void)))
    }).pipe(Effect.provide(Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") warnings.push(String(message))
      })
    )))
  }, { timeout: 120_000 })
  it.scoped("a transaction whose path goes silent after it began fails at the deadline, as the storage's own failure, not a defect", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const hole = yield* BlackHole.make(url)
      const runner = yield* Scope.make()
      const sql = Context.get(
        yield* Scope.extend(Layer.build(Fleet.layerSql(SyncDatabase.Database.Postgres({ url: hole.url }))).pipe(Effect.orDie), runner),
        SqlClient.SqlClient
      )
      // As the storage writes an answer: a transaction of two statements, the path silent between them.
      const begun = yield* Deferred.make<void>()
      const silenced = yield* Deferred.make<void>()
      const transaction = sql.withTransaction(Effect.gen(function*() {
        yield* sql`SELECT 1`
        yield* Deferred.succeed(begun, undefined)
        yield* Deferred.await(silenced)
        yield* sql`SELECT 2`
      }))
      const watched = SilentSession.withDeadline(sql, Duration.seconds(10), { scope: runner })(transaction)
      const fiber = yield* Effect.fork(Effect.exit(watched))
      yield* Deferred.await(begun)
      yield* hole.silence
      yield* Deferred.succeed(silenced, undefined)
      // Its rollback fails on the session ended (@effect/sql dies of that): the cluster tries a failure again, not a defect.
      const exit = yield* ClockSteps.runToEnd(steps)(fiber)
      if (Exit.isSuccess(exit)) return expect.fail("the transaction was answered")
      expect(Cause.dieOption(exit.cause)).toEqual(Option.none())
      expect(Option.map(Cause.failureOption(exit.cause), (error) => error._tag)).toEqual(Option.some("SqlError"))

      yield* hole.reset
      yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(Scope.close(runner, Exit.void)))
    }), { timeout: 120_000 })

  it.scoped("a session ended is one of this runner's own: another application's session by that pid is left alone", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const sql = Context.get(yield* Layer.build(Layer.orDie(Fleet.layerSql(SyncDatabase.Database.Postgres({ url })))), SqlClient.SqlClient)
      const other = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(url))), SqlClient.SqlClient)
      const pidOf = (connection: SqlConnection.Connection) =>
        Effect.orDie(connection.execute("SELECT pg_backend_pid() AS pid", [], undefined)).pipe(
          Effect.map((rows) => (rows as ReadonlyArray<{ readonly pid: number }>)[0]!.pid)
        )
      const alive = (pid: number) =>
        Effect.orDie(other<{ readonly n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ${pid}`).pipe(
          Effect.map(([row]) => row!.n === 1)
        )
      // Where a silent path is a failover's, the pool's new connections reach another server, on which the silent
      // session's pid may be another application's: that one stands in for it here.
      const bystander = yield* other.reserve
      const theirs = yield* pidOf(bystander)
      let destroyed = 0
      const socket = { destroy: () => void destroyed++, once: () => undefined }
      yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(SilentSession.end(sql, { pid: theirs, socket }, Duration.seconds(5))))
      expect(yield* alive(theirs)).toBe(true)
      expect(yield* Effect.orDie(bystander.execute("SELECT 1 AS one", [], undefined))).toEqual([{ one: 1 }])
      // Our own socket is closed all the same: its path is silent.
      expect(destroyed).toBe(1)

      // One of the runner's own sessions by its pid is ended, as before.
      const ours = yield* pidOf(yield* sql.reserve)
      // Waited for until it is gone (the server's end of a session is not done when it is asked), its locks with it.
      yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(SilentSession.end(sql, { pid: ours, socket }, Duration.seconds(5))))
      expect(yield* alive(ours)).toBe(false)
    }), { timeout: 60_000 })

  it.scoped("a session given up on is ended though the pool has no connection free: the wait for one is bounded as an answer is, its socket closed then, and the connection had later goes back to the pool", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      // One connection, its wait unbounded by the pool (@effect/sql-pg's default; the fleet's pools give up at 10 s of
      // real time, on no clock of the runner's).
      // Closed at the end, not on a failure: a pool ends once its connections are given back, and a wait that never
      // ended would hold the test's end with it.
      const pool = yield* Scope.make()
      const sql = Context.get(
        yield* Scope.extend(Layer.build(Layer.orDie(PgClient.layer({ url, maxConnections: 1, applicationName: "intercom-scroll-fleet" }))), pool),
        SqlClient.SqlClient
      )
      // The session given up on holds it, as `withDeadline`'s statement holds its own until its socket is closed.
      const held = yield* Scope.make()
      const given = yield* Effect.orDie(Scope.extend(sql.reserve, held))
      const session = SilentSession.pgSession(given)!
      // Before, `end` waited for a connection without end, and its socket was never closed. Uninterruptible, as the
      // address lock's check waits for it (`answerWithin`) and the shard locks' finalizer forks it; a daemon, so that
      // one that never ends does not hold the test's end.
      const ending = yield* Effect.forkDaemon(Effect.uninterruptible(SilentSession.end(sql, session, Duration.seconds(5))))
      yield* ClockSteps.runToEnd(steps)(ending)
      expect(yield* Clock.currentTimeMillis).toBeGreaterThanOrEqual(5_000)
      expect(session.socket.closed).toBe(true)
      // The session's connection given back (dropped, its socket closed): the pool's next goes to `end`'s wait, which
      // gives it back, unused, to the statement after it.
      yield* Scope.close(held, Exit.void)
      expect(yield* Effect.orDie(sql<{ readonly one: number }>`SELECT 1 AS one`)).toEqual([{ one: 1 }])
      yield* Scope.close(pool, Exit.void)
    }), { timeout: 60_000 })

  it.scoped("a scope's close waits for the session ends still under way 1 s of the clock in all, not 1 s each", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const hole = yield* BlackHole.make(url)
      // Closed at the end with the clock moving: its close waits for the connections the ends give back.
      const pool = yield* Scope.make()
      const sql = Context.get(
        yield* Scope.extend(Layer.build(Layer.orDie(PgClient.layer({ url: hole.url, maxConnections: 2, applicationName: "intercom-scroll-fleet" }))), pool),
        SqlClient.SqlClient
      )
      // Two connections open, then a host gone: each end waits for a connection of the full pool, 5 s of the clock.
      yield* Effect.orDie(Effect.all([sql`SELECT pg_sleep(0.1)`, sql`SELECT pg_sleep(0.1)`], { concurrency: 2 }))
      yield* hole.vanish
      const callers = yield* Scope.make()
      const given = yield* Effect.forkDaemon(Effect.all(
        [1, 2].map(() => Effect.either(SilentSession.withDeadline(sql, Duration.seconds(5), { scope: callers })(sql`SELECT 1`))),
        { concurrency: 2 }
      ))
      yield* ClockSteps.until("two calls waiting for their answers", clockStill)(Effect.map(TestClock.sleeps(), (sleeps) => sleeps.length >= 2))
      yield* TestClock.adjust("5 seconds")
      yield* TestServices.provideLive(Effect.sleep("200 millis"))
      const closing = yield* Clock.currentTimeMillis
      yield* ClockSteps.runToEnd({ ...steps, step: "100 millis" })(yield* Effect.fork(Scope.close(callers, Exit.void)))
      expect((yield* Clock.currentTimeMillis) - closing).toBe(1_000)
      // The ends then give up on the pool (5 s of the clock), closing the sockets: the calls fail, the pool closes.
      expect((yield* ClockSteps.runToEnd(steps)(given)).every(Either.isLeft)).toBe(true)
      yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(Scope.close(pool, Exit.void)))
      yield* hole.reset
    }), { timeout: 60_000 })

  it.scoped("a termination the server refuses is its answer, not silence: the connection that asked is kept, and not asked again", () => {
    const warnings: Array<string> = []
    return Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const other = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(url))), SqlClient.SqlClient)
      // A runner whose role may not end the session asked about: a superuser's (the test's), named as the runner's.
      const role = `r_${Math.random().toString(16).slice(2, 10)}`
      yield* Effect.acquireRelease(
        Effect.orDie(other.unsafe(`CREATE ROLE ${role} LOGIN PASSWORD 'refused'`)),
        () => Effect.ignore(other.unsafe(`DROP ROLE ${role}`))
      )
      const asRole = new URL(Redacted.value(url))
      asRole.username = role
      asRole.password = "refused"
      // One connection, to tell it from another.
      const sql = Context.get(
        yield* Layer.build(Layer.orDie(PgClient.layer({ url: Redacted.make(asRole.href), maxConnections: 1, applicationName: "intercom-scroll-fleet" }))),
        SqlClient.SqlClient
      )
      const superuser = yield* Effect.orDie(other.reserve)
      yield* Effect.orDie(superuser.execute("SET application_name = 'intercom-scroll-fleet'", [], undefined))
      const [row] = (yield* Effect.orDie(superuser.execute("SELECT pg_backend_pid() AS pid", [], undefined))) as ReadonlyArray<{ readonly pid: number }>
      const poolPid = Effect.map(Effect.orDie(sql<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid`), ([row]) => row!.pid)
      const before = yield* poolPid

      let destroyed = 0
      const socket = { destroy: () => void destroyed++, once: () => undefined }
      yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(SilentSession.end(sql, { pid: row!.pid, socket }, Duration.seconds(5))))
      // Said once; the pool's one connection kept, its session the same. Before, an error was taken for no answer: each
      // connection that answered it was closed and the next one asked, thirty in all.
      expect(yield* poolPid).toBe(before)
      expect(warnings).toEqual([expect.stringMatching(new RegExp(`^Could not end the PostgreSQL session \\(pid ${row!.pid}\\) whose path went silent: .*permission denied`, "s"))])
      expect(yield* Effect.orDie(superuser.execute("SELECT 1 AS one", [], undefined))).toEqual([{ one: 1 }])
      expect(destroyed).toBe(1)
    }).pipe(Effect.provide(Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") warnings.push(String(message))
      })
    )))
  }, { timeout: 60_000 })

  it.scoped.skipIf(!Standby.supported())("a termination unanswered after a failover is not cancelled: another application's statement with the asking connection's pid on the new server runs on", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const hole = yield* BlackHole.make(url)
      const standby = yield* Standby.make(url)
      const sql = Context.get(
        yield* Layer.build(Layer.orDie(Fleet.layerSql(SyncDatabase.Database.Postgres({ url: hole.url }), { connections: 4 }))),
        SqlClient.SqlClient
      )
      const pidOf = (rows: ReadonlyArray<unknown>) => (rows as ReadonlyArray<{ readonly pid: number }>)[0]!.pid
      // The session given up on, and the pool's one idle connection, which `end` asks first: both silent after the failover.
      const given = yield* Effect.orDie(sql.reserve)
      const session = SilentSession.pgSession(given)!
      const asking = pidOf(yield* Effect.orDie(sql`SELECT pg_backend_pid() AS pid`))
      expect(asking).not.toBe(session.pid)

      const onStandby = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(standby.url))), SqlClient.SqlClient)
      const gate = yield* Effect.orDie(onStandby.reserve)
      yield* Effect.orDie(gate.execute("SELECT pg_advisory_lock(1)", [], undefined))
      const bystander = yield* standby.bystander(asking)
      const working = yield* Effect.fork(Effect.exit(bystander.execute("SELECT pg_advisory_lock(1)")))

      yield* hole.failover(standby.url)
      yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(SilentSession.end(sql, session, Duration.seconds(5))))
      // Before, the termination's timeout interrupted it, and @effect/sql-pg cancelled it by the asking connection's pid
      // on a new connection, which reached the new server: "canceling statement due to user request".
      expect(yield* Fiber.poll(working)).toEqual(Option.none())
      yield* Effect.orDie(gate.execute("SELECT pg_advisory_unlock(1)", [], undefined))
      const done = yield* Fiber.join(working)
      expect(Exit.isSuccess(done) ? "answered" : Cause.pretty(done.cause)).toEqual("answered")
      expect(session.socket.closed).toBe(true)
    }), { timeout: 120_000 })
})

describe("A client-only process on a silent path", () => {
  it.scoped("a Sync whose answer is stored while the client's connections are silent is answered, read on a new connection", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const hole = yield* BlackHole.make(url)
      const direct = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(url))), SqlClient.SqlClient)
      const client = yield* Scope.make()
      // `fleet sync`'s process, through the proxy.
      // Built on a fiber of its own: the layer sets the database's clock on the fiber that builds it, in place of the test's.
      const context = yield* Effect.flatten(Fiber.await(yield* Effect.fork(Scope.extend(
        Layer.build(Fleet.layerClient({ database: SyncDatabase.Database.Postgres({ url: hole.url }) })).pipe(Effect.orDie),
        client
      ))))
      const sync = yield* Effect.fork(Effect.provide(
        WorkspaceSync.sync({ workspace: "acme", tokenEnv: "ACME_TOKEN" }, { resources: ["users"], run: "nightly" }),
        context
      ))
      const request = direct<{ readonly id: string }>`SELECT CAST(request_id AS TEXT) AS id FROM cluster_messages
        WHERE entity_id = 'acme' AND tag = 'Sync'`
      yield* ClockSteps.until("the Sync stored", steps)(Effect.map(Effect.orDie(request), (rows) => rows.length === 1))
      // The client reads for its answer every 200 ms meanwhile, on the pool's connections.
      yield* ClockSteps.until("a few reads for the answer", steps)(Effect.succeed(true))
      yield* TestServices.provideLive(Effect.sleep("300 millis"))

      yield* hole.silence
      // A runner, whose own path works, answers it: its summaries, none here.
      const [{ id }] = (yield* Effect.orDie(request)) as [{ readonly id: string }]
      yield* Effect.orDie(direct`INSERT INTO cluster_replies (id, kind, request_id, payload, sequence)
        VALUES (1, 0, CAST(${id} AS BIGINT), '{"_tag":"Success","value":[]}', NULL)`)

      // Before, the client's read of the answers waited on a silent connection without end.
      expect(yield* ClockSteps.runToEnd(steps)(sync)).toEqual([])

      yield* hole.reset
      yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(Scope.close(client, Exit.void)))
    }), { timeout: 120_000 })

  it.scoped("fleet status's reads on a silent path fail with DatabaseSilent at their deadline, naming the database", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const hole = yield* BlackHole.make(url)
      const database = SyncDatabase.Database.Postgres({ url: hole.url })
      const sql = Context.get(yield* Layer.build(Layer.orDie(SyncDatabase.layer(database))), SqlClient.SqlClient)
      // The reads' scope, closed at the end with the clock moving: its close waits for their session's end a moment.
      const reads = yield* Scope.make()
      const read = FleetStatus.read({ since: DateTime.unsafeMake(0) }).pipe(
        FleetStatus.answeredWithin(database, "30 seconds"),
        Effect.provideService(SqlClient.SqlClient, sql),
        Scope.extend(reads)
      )
      // Answered, its connection left idle in the pool.
      expect(Either.isRight(yield* Effect.either(read))).toBe(true)
      const [{ pid }] = (yield* Effect.orDie(sql<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid`)) as [{ readonly pid: number }]
      const direct = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(url))), SqlClient.SqlClient)

      yield* hole.silence
      yield* silentUntilDeadline(read, pid, direct)
      yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(Scope.close(reads, Exit.void)))

      yield* hole.reset
    }), { timeout: 120_000 })

  it.scopedLive("fleet status's reads cut by a silent path, their scope closed as the command exits: their session is ended on the server by the time the pool has closed", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const hole = yield* BlackHole.make(url)
      const direct = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(url))), SqlClient.SqlClient)
      const database = SyncDatabase.Database.Postgres({ url: hole.url })
      const pool = yield* Scope.make()
      const sql = Context.get(yield* Scope.extend(Layer.build(Layer.orDie(SyncDatabase.layer(database))), pool), SqlClient.SqlClient)
      // In a scope of their own, closed as they fail, as `fleet status`'s is as it exits.
      const read = Effect.scoped(FleetStatus.read({ since: DateTime.unsafeMake(0) }).pipe(
        FleetStatus.answeredWithin(database, "2 seconds"),
        Effect.provideService(SqlClient.SqlClient, sql)
      ))
      expect(Either.isRight(yield* Effect.either(read))).toBe(true)
      const [{ pid }] = (yield* Effect.orDie(sql<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid`)) as [{ readonly pid: number }]
      // Before, the scope's close interrupted the session's end before the server had ended it: left open, 3 of 3.
      yield* endedByExit(read, { direct, hole, pid, pool })
    }), { timeout: 60_000 })

  it.scoped.skipIf(!Standby.supported())("fleet status's reads given up on after a failover are not cancelled: another application's statement with their connection's pid on the new server runs on", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const hole = yield* BlackHole.make(url)
      const standby = yield* Standby.make(url)
      const database = SyncDatabase.Database.Postgres({ url: hole.url })
      const sql = Context.get(yield* Layer.build(Layer.orDie(SyncDatabase.layer(database))), SqlClient.SqlClient)
      // Reads of two statements, the path failed over between them: the second waits on the old server's silence.
      const first = yield* Deferred.make<{ readonly pid: number; readonly session: SilentSession.Session }>()
      const failedOver = yield* Deferred.make<void>()
      const reads = Effect.gen(function*() {
        // The connection `answeredWithin` reserved for them, which it provides as their transaction's.
        const [connection] = Option.getOrThrow(yield* Effect.serviceOption(SqlClient.TransactionConnection))
        const [{ pid }] = (yield* sql<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid`) as [{ readonly pid: number }]
        yield* Deferred.succeed(first, { pid, session: SilentSession.pgSession(connection)! })
        yield* Deferred.await(failedOver)
        return yield* sql`SELECT 1`
      })
      const silent = yield* Effect.fork(Effect.either(reads.pipe(
        FleetStatus.answeredWithin(database, "30 seconds"),
        Effect.provideService(SqlClient.SqlClient, sql)
      )))
      const { pid, session } = yield* Deferred.await(first)

      const bystander = yield* atWork(standby, pid)

      yield* hole.failover(standby.url)
      yield* Deferred.succeed(failedOver, undefined)
      const failed = yield* ClockSteps.runToEnd(steps)(silent)
      if (Either.isRight(failed)) return expect.fail("the reads were answered")
      expect(failed.left).toBeInstanceOf(FleetStatus.DatabaseSilent)
      // Their session given up on, its socket closed once the termination was asked on the new server.
      yield* ClockSteps.until("the silent connection closed", steps)(Effect.sync(() => session.socket.closed === true))
      // Before, losing the race to the deadline interrupted the reads, and @effect/sql-pg cancelled their statement by
      // pid on a new connection, which reached the new server: "canceling statement due to user request".
      yield* bystander.finish
      yield* hole.reset
    }), { timeout: 120_000 })

  it.scoped("fleet prune's statements on a silent path fail with DatabaseSilent at a statement's deadline, and its session is ended", () =>
    Effect.gen(function*() {
      // Closed at the end, the clock moving (below); not on a failure, where a connection never given back would hold
      // the test's end.
      const pool = yield* Scope.make()
      const { direct, hole, pid, prune } = yield* pruneThroughHole("30 seconds", pool)

      yield* hole.silence
      // Before, its deletes waited on the silent connection without end.
      yield* silentUntilDeadline(prune, pid, direct)
      // The session's `end` (a daemon of `eachWithin`'s) may still hold its connection, in a pause on the clock between
      // two looks at the session's exit, which the server had already made as the test looked: the pool's close waits
      // for that connection (bounded by 1 s of the clock), and with the clock still, the test waited out its 120 s.
      yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(Scope.close(pool, Exit.void)))
      yield* hole.reset
    }), { timeout: 120_000 })

  it.scoped("each statement of a run given its own deadline is sent on the one connection reserved for it, a stream's too", () =>
    Effect.gen(function*() {
      const url = yield* PostgresDatabase.make.pipe(Effect.orDie)
      const sql = Context.get(
        yield* Layer.build(Layer.orDie(SyncDatabase.layer(SyncDatabase.Database.Postgres({ url })))),
        SqlClient.SqlClient
      )
      const pid = sql<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid`
      const pids = yield* Effect.all([
        pid,
        Effect.map(Stream.runCollect(pid.stream), Chunk.toReadonlyArray)
      ]).pipe(
        SilentSession.eachWithin(sql, Duration.seconds(30), () => Effect.void),
        Effect.orDie
      )
      // Before, the stream's was a method taken off its connection: called on the watched one, which holds no client,
      // @effect/sql-pg reserved it another of the pool, outside the run's transaction.
      expect(pids[1]).toEqual(pids[0])
    }), { timeout: 60_000 })

  it.scopedLive("fleet prune cut by a silent path has its session ended on the server by the time its pool has closed: the end runs on past the prune's failure, and the pool's close waits for its connection", () =>
    Effect.gen(function*() {
      const pool = yield* Scope.make()
      const { direct, hole, pid, prune } = yield* pruneThroughHole("2 seconds", pool)
      // Its session's end, detached (`eachWithin`): tied to the prune's scope, or to its caller's, it was cut as the
      // prune failed, the session left open on the server with its transaction.
      yield* endedByExit(prune, { direct, hole, pid, pool })
    }), { timeout: 60_000 })
})
