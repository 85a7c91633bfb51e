/**
 * PostgreSQL: a run whose connection goes silent without closing (a firewall, a NAT or a load balancer that dropped its
 * state: bytes vanish, no reset comes, and something on the way still acknowledges them) fails with `LockLost` once the
 * server, asked on another connection, says the run's session sits idle, instead of waiting for an answer that never
 * comes. The watch runs on the TestClock; the proxy of `BlackHole` (testing) makes the silence.
 */
import { expect, it } from "@effect/vitest"
import { Progress } from "@intercom-scroll/core"
import { BlackHole, ClockSteps, PostgresDatabase } from "@intercom-scroll/testing"
import { SqlClient, type SqlConnection } from "@effect/sql"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer, Logger, Option, Redacted, Ref, Schedule, Scope, TestClock, TestServices } from "effect"
import { Sync, SyncDatabase, type SyncError } from "../src/index.js"
import * as Lock from "../src/internal/lock.js"
import { freshToken, intercom, rows, runs } from "./support/world.js"

const users = (token: string) => intercom(token, { pageSize: 5, workspace: { seed: 12, users: 20 } })

/** A reporter that runs `effect` as the `page`th page comes in. */
const atPage = (page: number, effect: Effect.Effect<void>): Progress.Reporter => {
  let pages = 0
  return { report: (event) => event._tag === "Page" && ++pages === page ? effect : Effect.void }
}

const steps = { step: "1 second", maxSteps: 150, realPause: "30 millis" } as const

/** A connection of a pool of its own on `url`, for the test's own statements beside a run's. */
const operatorAt = (url: Redacted.Redacted<string>) =>
  Effect.flatMap(
    Layer.build(PostgresDatabase.layerAt(url, { maxConnections: 1 })).pipe(Effect.map(Context.get(SqlClient.SqlClient))),
    (sql) => sql.reserve
  )

/**
 * Whether a lock's try waits for a lock on the server, asked on `observer`: not the operator's connection, in whose
 * transaction pg_stat_activity would answer its first look again.
 */
const tryWaitsOn = (observer: SqlConnection.Connection) =>
  observer.execute(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE state = 'active' AND wait_event_type = 'Lock' AND query LIKE '%pg_try_advisory_lock%'`,
    [],
    undefined
  ).pipe(Effect.map(([row]) => (row as { n: number }).n === 1), Effect.orDie)

/** Whether a Waiting event for the workspace's lock reached the reporter, and the reporter. */
const lockWaits = Effect.map(Ref.make(0), (waits) => ({
  waits,
  reporter: {
    report: (event) => event._tag === "Waiting" && event.reason === "workspace-lock" ? Ref.update(waits, (n) => n + 1) : Effect.void
  } satisfies Progress.Reporter
}))

// On TLS, node-postgres's stream is a TLSSocket over the socket: destroying it must close the connection as well.
for (const sslmode of ["disable", "require"] as const) {
  it.scoped(`a run whose connection goes silent fails with LockLost saying so, recorded failed, its session ended, nothing deleted (sslmode=${sslmode})`, () =>
    Effect.gen(function*() {
      const url = yield* PostgresDatabase.make
      const hole = yield* BlackHole.make(url)
      const through = new URL(Redacted.value(hole.url))
      through.searchParams.set("sslmode", sslmode)
      const proxied = SyncDatabase.layer(SyncDatabase.Database.Postgres({ url: Redacted.make(through.href) }))
      const direct = PostgresDatabase.layerAt(url)
      const workspace = freshToken("silent")
      const first = yield* Effect.provide(Sync.run("users", { workspace }), Layer.merge(users(freshToken()), proxied))
      expect(first.inserted).toBe(20)
      const [{ ssl }] = yield* Effect.provide(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ ssl: boolean }>`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`),
        proxied
      )
      expect(ssl).toBe(sslmode === "require")

      const fiber = yield* Effect.fork(
        Effect.provide(
          Sync.run("users", { workspace }).pipe(Effect.provideService(Progress.Progress, atPage(2, hole.silence))),
          Layer.merge(users(freshToken()), proxied)
        )
      )
      const exit = yield* Effect.exit(ClockSteps.runToEnd(steps)(fiber))
      const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
      expect(error?._tag).toBe("LockLost")
      // A session seen idle is an answer: no flag of the unanswered timeout to give.
      expect((error as SyncError.LockLost).unanswered).toBe(false)
      expect((error as SyncError.LockLost).reason).toMatch(
        /^its PostgreSQL connection went silent: a statement waited \d+ s for an answer while its server session \(pid \d+\) sat (idle|idle in transaction): the answer, or the statement, was lost on the way/
      )

      yield* Effect.gen(function*() {
        // Recorded failed, on another connection; every row still live.
        const [, silent] = yield* runs(workspace)
        expect(silent).toMatchObject({ status: "failed", deleted: 0 })
        expect(silent.error).toMatch(/^LockLost: .*went silent/)
        expect([...(yield* rows(workspace, "users")).values()].filter((row) => row.deleted_at !== null)).toEqual([])
      }).pipe(Effect.provide(direct))

      // Its session was ended on the server, and with it the workspace's lock: the next run takes it at once.
      const next = yield* Effect.fork(
        Effect.provide(Sync.run("users", { workspace, lockTimeout: "5 seconds" }), Layer.merge(users(freshToken()), proxied))
      )
      expect(yield* ClockSteps.runToEnd(steps)(next)).toMatchObject({ unchanged: 20, deleted: 0 })
    }), { timeout: 60_000 })
}

it.scoped("a statement that waits long on a server that answers is waited for, however long the watch's clock runs", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const database = SyncDatabase.layer(SyncDatabase.Database.Postgres({ url }))
    const workspace = freshToken("long")
    yield* Effect.provide(Sync.run("users", { workspace }), Layer.merge(users(freshToken()), database))
    // From its second page on, the run's statements wait behind an operator's lock (its session `active` all along),
    // for a few seconds of real time, while the watch's clock runs two minutes on.
    const operator = yield* (yield* Layer.build(PostgresDatabase.layerAt(url, { maxConnections: 1 })).pipe(
      Effect.map(Context.get(SqlClient.SqlClient))
    )).reserve
    const locked = yield* Deferred.make<void>()
    const lock = Effect.zipRight(
      Effect.orDie(operator.executeRaw("BEGIN; LOCK TABLE intercom_users_records IN ACCESS EXCLUSIVE MODE", [])),
      Deferred.succeed(locked, undefined)
    )
    const fiber = yield* Effect.fork(
      Effect.provide(
        Sync.run("users", { workspace }).pipe(Effect.provideService(Progress.Progress, atPage(2, Effect.asVoid(lock)))),
        Layer.merge(users(freshToken()), database)
      )
    )
    yield* Deferred.await(locked)
    for (let step = 0; step < 120; step++) {
      yield* TestClock.adjust("1 second")
      yield* TestServices.provideLive(Effect.sleep("25 millis"))
    }
    expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
    yield* Effect.orDie(operator.executeRaw("ROLLBACK", []))
    expect(yield* ClockSteps.runToEnd(steps)(fiber)).toMatchObject({ unchanged: 20, deleted: 0 })
  }), { timeout: 60_000 })

it.scoped("a lock's try whose statement is lost on the way fails with LockLost saying so, its session ended, and the next run takes the lock at once", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const hole = yield* BlackHole.make(url)
    const proxied = SyncDatabase.layer(SyncDatabase.Database.Postgres({ url: hole.url }))
    const workspace = freshToken("silent-try")
    yield* Effect.provide(Sync.run("users", { workspace }), Layer.merge(users(freshToken()), proxied))
    // Another holder of the workspace's lock. As the run starts to wait for it, the path goes silent and the lock comes
    // free: the run's next try goes out on the connection of its pool that its first try used, which the silence holds.
    const key = Lock.workspaceKey(workspace)
    const operator = yield* operatorAt(url)
    yield* operator.execute("SELECT pg_advisory_lock($1, $2)", key, undefined)
    const freed: Progress.Reporter = {
      report: (event) =>
        event._tag === "Waiting"
          ? Effect.zipRight(hole.silence, Effect.orDie(operator.execute("SELECT pg_advisory_unlock($1, $2)", key, undefined)))
          : Effect.void
    }
    const fiber = yield* Effect.fork(
      Effect.provide(
        Sync.run("users", { workspace }).pipe(Effect.provideService(Progress.Progress, freed)),
        Layer.merge(users(freshToken()), proxied)
      )
    )
    const exit = yield* Effect.exit(ClockSteps.runToEnd(steps)(fiber))
    const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
    expect(error?._tag).toBe("LockLost")
    const reason = (error as SyncError.LockLost).reason
    const [, waited, pid] = reason.match(
      /^its PostgreSQL connection went silent: a statement waited (\d+) s for an answer while its server session \(pid (\d+)\) sat idle: the answer, or the statement, was lost on the way$/
    ) ?? []
    expect(Number(waited)).toBeGreaterThanOrEqual(20)
    expect(Number(waited)).toBeLessThan(60)

    // Its session was ended on the server, holding nothing; no run was recorded, since none began without the lock.
    const gone = operator.execute("SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1", [Number(pid)], undefined).pipe(
      Effect.flatMap(([row]) => (row as { n: number }).n === 0 ? Effect.void : Effect.fail("still there")),
      Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("5 seconds"))),
      TestServices.provideLive
    )
    yield* Effect.orDie(gone)
    const [{ held }] = (yield* operator.execute(
      "SELECT count(*)::int AS held FROM pg_locks WHERE locktype = 'advisory' AND objid = $1::bigint::oid",
      [key[1] >>> 0],
      undefined
    )) as ReadonlyArray<{ held: number }>
    expect(held).toBe(0)
    expect(yield* Effect.provide(runs(workspace), PostgresDatabase.layerAt(url))).toHaveLength(1)

    const { reporter, waits } = yield* lockWaits
    const next = yield* Effect.fork(
      Effect.provide(
        Sync.run("users", { workspace }).pipe(Effect.provideService(Progress.Progress, reporter)),
        Layer.merge(users(freshToken()), proxied)
      )
    )
    expect(yield* ClockSteps.runToEnd(steps)(next)).toMatchObject({ unchanged: 20, deleted: 0 })
    expect(yield* Ref.get(waits)).toBe(0)
  }), { timeout: 60_000 })

it.scoped("a lock's try that waits on a server that answers is waited for, however long the watch's clock runs", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const database = SyncDatabase.layer(SyncDatabase.Database.Postgres({ url }))
    const workspace = freshToken("long-try")
    yield* Effect.provide(Sync.run("users", { workspace }), Layer.merge(users(freshToken()), database))
    // The try reads pg_locks: behind an operator's lock on that view, its session is `active`, waiting for a lock, for
    // a few seconds of real time while the watch's clock runs two minutes on.
    const operator = yield* operatorAt(url)
    yield* operator.executeRaw("BEGIN; LOCK TABLE pg_catalog.pg_locks IN ACCESS EXCLUSIVE MODE", [])
    const fiber = yield* Effect.fork(
      Effect.provide(Sync.run("users", { workspace }), Layer.merge(users(freshToken()), database))
    )
    const tryWaits = tryWaitsOn(yield* operatorAt(url))
    yield* ClockSteps.until("the try waits for the operator's lock", { step: "0 millis", maxSteps: 200, realPause: "25 millis" })(tryWaits)
    for (let step = 0; step < 120; step++) {
      yield* TestClock.adjust("1 second")
      yield* TestServices.provideLive(Effect.sleep("25 millis"))
    }
    expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
    expect(yield* tryWaits).toBe(true)
    yield* Effect.orDie(operator.executeRaw("ROLLBACK", []))
    expect(yield* ClockSteps.runToEnd(steps)(fiber)).toMatchObject({ unchanged: 20, deleted: 0 })
  }), { timeout: 60_000 })

it.scoped("a lock's try whose connection was given a pid that names no session, as a pooler's, is not cut for it", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const sql = yield* Layer.build(PostgresDatabase.layerAt(url, { maxConnections: 2 })).pipe(
      Effect.map(Context.get(SqlClient.SqlClient))
    )
    // Both connections of the pool carry the key a pooler makes up as a client connects, a pid no session has.
    yield* Effect.scoped(Effect.forEach([1, 2], (n) =>
      Effect.map(sql.reserve, (connection) => {
        ;(connection as unknown as { pg: { processID: number } }).pg.processID = 2_000_000_000 + n
      })))
    const operator = yield* operatorAt(url)
    yield* operator.executeRaw("BEGIN; LOCK TABLE pg_catalog.pg_locks IN ACCESS EXCLUSIVE MODE", [])
    const fiber = yield* Effect.fork(
      Effect.scoped(Lock.acquire(sql, "pg", { workspace: freshToken("pooled-pid"), resource: "users", timeout: undefined }))
    )
    yield* ClockSteps.until("the try waits for the operator's lock", { step: "0 millis", maxSteps: 200, realPause: "25 millis" })(
      tryWaitsOn(yield* operatorAt(url))
    )
    for (let step = 0; step < 60; step++) {
      yield* TestClock.adjust("1 second")
      yield* TestServices.provideLive(Effect.sleep("25 millis"))
    }
    expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
    yield* Effect.orDie(operator.executeRaw("ROLLBACK", []))
    expect(Exit.isSuccess(yield* Fiber.await(fiber))).toBe(true)
  }), { timeout: 60_000 })

it.scoped("a run whose server stops answering altogether, new connections too, fails with LockLost once none has answered for a while, and the next run takes the lock at once after the path comes back", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const hole = yield* BlackHole.make(url)
    // The pool's connect timeout is real time: short, and the clock's steps slow, so that each look of the watch gets
    // its answer (a connect timeout) within a few of the clock's seconds.
    const proxied = SyncDatabase.layer(SyncDatabase.Database.Postgres({ url: hole.url }), { connectTimeout: "3 seconds" })
    const workspace = freshToken("vanished")
    yield* Effect.provide(Sync.run("users", { workspace }), Layer.merge(users(freshToken()), proxied))

    const fiber = yield* Effect.fork(
      Effect.provide(
        Sync.run("users", { workspace }).pipe(Effect.provideService(Progress.Progress, atPage(2, hole.vanish))),
        Layer.merge(users(freshToken()), proxied)
      )
    )
    const exit = yield* Effect.exit(ClockSteps.runToEnd({ step: "1 second", maxSteps: 400, realPause: "100 millis" })(fiber))
    const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
    expect(error?._tag).toBe("LockLost")
    // Said as such, so that the CLI can name --unanswered-timeout.
    expect((error as SyncError.LockLost).unanswered).toBe(true)
    const reason = (error as SyncError.LockLost).reason
    const [, waited, unanswered] = reason.match(
      /^its PostgreSQL server stopped answering: a statement waited (\d+) s for an answer, and no connection to the server was answered for (\d+) s \(connect timeouts, statements unanswered\)(?:: [^;]+)?; the run could not be recorded: it stays `running` until a later sync of the workspace marks it `abandoned`$/
    ) ?? []
    expect(Number(unanswered)).toBeGreaterThanOrEqual(120)
    expect(Number(waited)).toBeGreaterThan(Number(unanswered))
    expect(Number(waited)).toBeLessThan(240)

    // The path comes back (with resets: the server ends the cut session, and the lock with it).
    yield* hole.reset
    yield* Effect.gen(function*() {
      const [, cut] = yield* runs(workspace)
      expect(cut).toMatchObject({ status: "running" })
      expect([...(yield* rows(workspace, "users")).values()].filter((row) => row.deleted_at !== null)).toEqual([])
    }).pipe(Effect.provide(PostgresDatabase.layerAt(url)))
    const next = yield* Effect.fork(
      Effect.provide(Sync.run("users", { workspace, lockTimeout: "5 seconds" }), Layer.merge(users(freshToken()), proxied))
    )
    expect(yield* ClockSteps.runToEnd(steps)(next)).toMatchObject({ unchanged: 20, deleted: 0 })
    const [, cut] = yield* Effect.provide(runs(workspace), PostgresDatabase.layerAt(url))
    expect(cut).toMatchObject({ status: "abandoned", deleted: 0 })
  }), { timeout: 90_000 })

it.scoped("a run given a shorter unansweredTimeout fails with LockLost once none has answered for that long, not the default 2 minutes", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const hole = yield* BlackHole.make(url)
    const proxied = SyncDatabase.layer(SyncDatabase.Database.Postgres({ url: hole.url }), { connectTimeout: "3 seconds" })
    const workspace = freshToken("vanished-sooner")
    yield* Effect.provide(Sync.run("users", { workspace }), Layer.merge(users(freshToken()), proxied))
    const fiber = yield* Effect.fork(
      Effect.provide(
        Sync.run("users", { workspace, unansweredTimeout: "30 seconds" }).pipe(
          Effect.provideService(Progress.Progress, atPage(2, hole.vanish))
        ),
        Layer.merge(users(freshToken()), proxied)
      )
    )
    const exit = yield* Effect.exit(ClockSteps.runToEnd({ step: "1 second", maxSteps: 400, realPause: "100 millis" })(fiber))
    const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
    expect(error?._tag).toBe("LockLost")
    const [, waited, unanswered] = (error as SyncError.LockLost).reason.match(
      /^its PostgreSQL server stopped answering: a statement waited (\d+) s for an answer, and no connection to the server was answered for (\d+) s /
    ) ?? []
    // The first silent look starts the count, the first 30 s or more on from it ends the run: looks come 10 s apart
    // plus the connect timeout's real seconds, tens of the clock's here, but never as late as the default's 120 s.
    expect(Number(unanswered)).toBeGreaterThanOrEqual(30)
    expect(Number(unanswered)).toBeLessThan(120)
    expect(Number(waited)).toBeGreaterThan(Number(unanswered))
    yield* hole.reset
  }), { timeout: 90_000 })

it.scoped("a statement that waits long while the pool has no connection free for the watch's looks is waited for: a full pool is no silence of the server", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    // One pool for the run and the test: the lock's connection and one more, which the test takes.
    const context = yield* Layer.build(
      Layer.merge(users(freshToken()), SyncDatabase.layer(SyncDatabase.Database.Postgres({ url }), { maxConnections: 2, connectTimeout: "1 second" }))
    )
    const sql = Context.get(context, SqlClient.SqlClient)
    const workspace = freshToken("full-pool")
    yield* Effect.provide(Sync.run("users", { workspace }), context)
    const operator = yield* operatorAt(url)
    const scope = yield* Effect.scope
    const locked = yield* Deferred.make<void>()
    // At the second page: the tables locked by an operator (the run's write waits, `active`), and the pool's other
    // connection taken, so that each look of the watch waits for the pool until it gives up.
    const hold = Effect.gen(function*() {
      yield* Effect.orDie(operator.executeRaw("BEGIN; LOCK TABLE intercom_users_records IN ACCESS EXCLUSIVE MODE", []))
      yield* Effect.orDie(Scope.extend(sql.reserve, scope))
      yield* Deferred.succeed(locked, undefined)
    })
    const fiber = yield* Effect.fork(
      Sync.run("users", { workspace }).pipe(Effect.provideService(Progress.Progress, atPage(2, hold)), Effect.provide(context))
    )
    yield* Deferred.await(locked)
    for (let step = 0; step < 180; step++) {
      yield* TestClock.adjust("1 second")
      yield* TestServices.provideLive(Effect.sleep("25 millis"))
    }
    expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
    yield* Effect.orDie(operator.executeRaw("ROLLBACK", []))
    expect(yield* ClockSteps.runToEnd(steps)(fiber)).toMatchObject({ unchanged: 20, deleted: 0 })
  }), { timeout: 90_000 })

it.scoped("a run whose server stops answering while its pool has no connection free for the watch's looks fails with LockLost all the same: a look asks on a connection of its own", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const hole = yield* BlackHole.make(url)
    // The lock's connection and one more, which the test takes: each look of the watch finds the pool full (its wait
    // for it a real second), as a fleet runner's looks find theirs full of the cluster's waits.
    const context = yield* Layer.build(Layer.merge(
      users(freshToken()),
      SyncDatabase.layer(SyncDatabase.Database.Postgres({ url: hole.url }), { maxConnections: 2, connectTimeout: "1 second" })
    ))
    const sql = Context.get(context, SqlClient.SqlClient)
    const workspace = freshToken("full-pool-vanished")
    yield* Effect.provide(Sync.run("users", { workspace }), context)
    const scope = yield* Effect.scope
    const fullThenVanished = Effect.zipRight(Effect.orDie(Scope.extend(sql.reserve, scope)), hole.vanish)
    const fiber = yield* Effect.fork(
      Sync.run("users", { workspace, unansweredTimeout: "30 seconds" }).pipe(
        Effect.provideService(Progress.Progress, atPage(2, fullThenVanished)),
        Effect.provide(context)
      )
    )
    const exit = yield* Effect.exit(ClockSteps.runToEnd({ step: "1 second", maxSteps: 400, realPause: "100 millis" })(fiber))
    const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
    expect(error?._tag).toBe("LockLost")
    expect((error as SyncError.LockLost).unanswered).toBe(true)
    const [, unanswered] = (error as SyncError.LockLost).reason.match(/no connection to the server was answered for (\d+) s /) ?? []
    expect(Number(unanswered)).toBeGreaterThanOrEqual(30)
    expect(Number(unanswered)).toBeLessThan(120)
    yield* hole.reset
  }), { timeout: 90_000 })

it.scoped("a run interrupted while its server answers nothing ends without waiting out the bound", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const hole = yield* BlackHole.make(url)
    const proxied = SyncDatabase.layer(SyncDatabase.Database.Postgres({ url: hole.url }), { connectTimeout: "3 seconds" })
    const workspace = freshToken("vanished-stop")
    yield* Effect.provide(Sync.run("users", { workspace }), Layer.merge(users(freshToken()), proxied))
    const fiber = yield* Effect.fork(
      Effect.provide(
        Sync.run("users", { workspace }).pipe(Effect.provideService(Progress.Progress, atPage(2, hole.vanish))),
        Layer.merge(users(freshToken()), proxied)
      )
    )
    // A minute of silence, slowly enough that the watch's looks have their connect timeouts: then a Ctrl-C.
    for (let step = 0; step < 60; step++) {
      yield* TestClock.adjust("1 second")
      yield* TestServices.provideLive(Effect.sleep("200 millis"))
    }
    expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
    yield* Fiber.interruptFork(fiber)
    // Within the bound's minute still to run: its real waits (a cancel, the record's connect timeout) at 300 ms a step.
    const exit = yield* Effect.exit(ClockSteps.runToEnd({ step: "1 second", maxSteps: 45, realPause: "300 millis" })(fiber))
    expect(Exit.isInterrupted(exit)).toBe(true)
  }), { timeout: 90_000 })

it.scoped("a run whose last COMMIT's answer is lost, the run committed, is complete and says so, not LockLost", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const hole = yield* BlackHole.make(url)
    const proxied = SyncDatabase.layer(SyncDatabase.Database.Postgres({ url: hole.url }))
    const workspace = freshToken("lost-commit")
    yield* Effect.provide(Sync.run("users", { workspace }), Layer.merge(users(freshToken()), proxied))
    // The answer to the COMMIT after the run's row is set `complete` (a parameter of that statement) never comes.
    yield* hole.loseAnswersTo("complete", "COMMIT")
    const warnings: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning") warnings.push(String(message))
    })
    const fiber = yield* Effect.fork(
      Effect.provide(Sync.run("users", { workspace }), Layer.mergeAll(users(freshToken()), proxied, Logger.replace(Logger.defaultLogger, logger)))
    )
    const summary = yield* ClockSteps.runToEnd(steps)(fiber)
    expect(summary).toMatchObject({ unchanged: 20, deleted: 0 })
    expect(warnings).toEqual(["The sync run committed, but the answer to its last transaction was lost on the way"])
    const [, second] = yield* Effect.provide(runs(workspace), PostgresDatabase.layerAt(url))
    expect(second).toMatchObject({ id: summary.runId, status: "complete", unchanged: 20 })
  }), { timeout: 60_000 })

it.scoped("a pool closed after its connections went silent closes every one of them, the one a given-up statement's cancel still holds too", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const hole = yield* BlackHole.make(url)
    const scope = yield* Scope.make()
    const sql = yield* Layer.buildWithScope(
      SyncDatabase.layer(SyncDatabase.Database.Postgres({ url: hole.url }), { maxConnections: 2 }),
      scope
    ).pipe(Effect.map(Context.get(SqlClient.SqlClient)))
    // Two connections open, both idle in the pool, then silent.
    yield* Effect.all([sql`SELECT pg_sleep(0.05)`, sql`SELECT pg_sleep(0.05)`], { concurrency: 2 })
    expect(yield* hole.open).toBe(2)
    yield* hole.silence
    // A statement given up on (a deadline's interruption): @effect/sql-pg cancels it with a `pg_cancel_backend` on the
    // pool's other connection, silent too, which it gives up on after 5 seconds and which pg-pool never gets back.
    const statement = yield* Effect.fork(sql`SELECT 1`)
    yield* TestServices.provideLive(Effect.sleep("100 millis"))
    const interrupted = yield* Fiber.interruptFork(statement).pipe(Effect.zipRight(Fiber.await(statement)), Effect.fork)
    yield* ClockSteps.runToEnd({ step: "1 second", maxSteps: 10, realPause: "30 millis" })(interrupted)
    // The process done with its database: nothing of the pool may keep it alive.
    const closed = yield* Effect.fork(Scope.close(scope, Exit.void))
    yield* ClockSteps.runToEnd({ step: "1 second", maxSteps: 5, realPause: "30 millis" })(closed)
    yield* ClockSteps.until("every connection closed", { step: "1 second", maxSteps: 10, realPause: "100 millis" })(
      Effect.map(hole.open, (open) => open === 0)
    )
  }))
