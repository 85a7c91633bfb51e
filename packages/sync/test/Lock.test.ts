/**
 * One sync per workspace: in one process and across processes (two SqlClients on one SQLite file or PostgreSQL
 * database), waiting or failing after the timeout, and going on after a holder that died.
 */
import { SqlClient, type SqlConnection } from "@effect/sql"
import { describe, expect, it, layer } from "@effect/vitest"
import { IntercomClient, Progress, ScrollError } from "@intercom-scroll/core"
import { ClockSteps, PostgresDatabase } from "@intercom-scroll/testing"
import { Cause, Chunk, Clock, Context, Deferred, Duration, Effect, Exit, Fiber, Layer, Option, Redacted, Scope, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as Lock from "../src/internal/lock.js"
import { Sync, SyncDatabase } from "../src/index.js"
import * as Databases from "./support/databases.js"
import { driveClock, freshToken, intercom as simulated, rows, runs } from "./support/world.js"

/**
 * Intercom for one of a test's tokens. The tokens differ, so that only the database's lock keeps two syncs of a
 * workspace apart (core's own lock is per token), but belong to one app (one seed), as a workspace's rotated tokens do.
 */
const intercom = (token: string, options: Parameters<typeof simulated>[1] = {}) =>
  simulated(token, { ...options, workspace: { seed: 7, ...options.workspace } })

const failureOf = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

/** A sync whose pages each take an hour on the clock: it holds its lock until the test lets it go. */
const slowSync = (workspace: string) =>
  Effect.provide(
    Sync.run("users", { workspace }),
    intercom(freshToken("slow"), { pageSize: 5, workspace: { users: 20, faults: { latency: Duration.hours(1) } } })
  )

/** Until `check` holds, pausing for real between looks, since the database's answers need the event loop. */
const until = <E, R>(check: Effect.Effect<boolean, E, R>) =>
  Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10))).pipe(
    Effect.zipRight(check),
    Effect.repeat({ until: (done) => done })
  )

/**
 * The TestClock on a second at a time, with real time between steps, until `check` holds: a look at the lock or a
 * write that answers after one move of the clock (a database's answer takes real time, and a loaded machine's more)
 * would wait on a clock that no longer moves.
 */
const clockUntil = <E, R>(what: string, check: Effect.Effect<boolean, E, R>) =>
  ClockSteps.until(what, { step: "1 second", maxSteps: 120, realPause: "20 millis" })(check)

/** The TestClock on until `fiber` has ended (see `clockUntil`). */
const clockUntilDone = <A, E>(what: string, fiber: Fiber.Fiber<A, E>) =>
  Effect.zipRight(clockUntil(what, Effect.map(Fiber.poll(fiber), Option.isSome)), Fiber.await(fiber))

/** Until the holder's run is recorded, so it holds the lock. */
const holdingLock = (workspace: string) =>
  // Before the holder has migrated a fresh database, there is no runs table yet.
  until(Effect.map(Effect.orElseSucceed(runs(workspace), () => []), (found) => found.length > 0))

/** The PostgreSQL session holding the workspace's advisory lock. */
const lockSession = (workspace: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [key1, key2] = Lock.workspaceKey(workspace)
    return yield* sql<{ pid: number }>`SELECT pid FROM pg_locks
      WHERE locktype = 'advisory' AND granted AND classid = ${key1 >>> 0} AND objid = ${key2 >>> 0} AND objsubid = 2`
  })

/**
 * The holder loses its lock while it lives on: in PostgreSQL its session ends (as when the database drops it while the
 * holder is frozen), in SQLite another process takes its lease over (as it may once a stalled holder's lease expired).
 */
const loseLock = (dialect: "sqlite" | "pg", workspace: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    if (dialect === "sqlite") {
      yield* sql`UPDATE intercom_sync_locks SET holder = 'someone-else' WHERE workspace = ${workspace}`
      return
    }
    const [session] = yield* lockSession(workspace)
    yield* sql`SELECT pg_terminate_backend(${session.pid})`
    yield* until(Effect.map(sql`SELECT 1 FROM pg_stat_activity WHERE pid = ${session.pid}`, (found) => found.length === 0))
  })

/** Resolves once the program reports that it waits for the workspace lock. */
const reportingLockWait = Effect.map(Deferred.make<void>(), (waiting) => ({
  waiting,
  reporter: {
    report: (event: Progress.ProgressEvent) =>
      event._tag === "Waiting" && event.reason === "workspace-lock" ? Deferred.succeed(waiting, undefined) : Effect.void
  } satisfies Progress.Reporter
}))

/** A client of the test's database as another process would have, for the test's scope. */
const anotherProcess = Effect.flatMap(Databases.TestDatabase, ({ client }) =>
  Layer.build(client).pipe(Effect.map((context) => Context.get(context, SqlClient.SqlClient))))

/**
 * The tables made, and the driver's own wait for SQLite's write lock short (5 s by default), so that a test meets its
 * "database is locked" soon.
 */
const migratedWithShortBusyWait = Effect.zipRight(
  Sync.migrate,
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe("PRAGMA busy_timeout = 50"))
)

describe.each(Databases.both)("the workspace lock on %s", (_name, database) => {
  layer(database, { timeout: "60 seconds" })((it) => {
    for (const where of ["in one process", "across processes"] as const) {
      it.effect(`two syncs of one workspace never scroll at the same time (${where})`, () =>
        Effect.gen(function*() {
          const { client } = yield* Databases.TestDatabase
          const workspace = freshToken("shared")
          // Two Intercom tokens, so that only the database lock keeps them apart, not core's lock per token.
          const events: Array<string> = []
          const sync = (name: string) => {
            const run = Effect.provide(Sync.run("users", { workspace }), intercom(freshToken(name), { pageSize: 10, workspace: { users: 50 } }))
            return where === "across processes" ? Effect.provide(run, client) : run
          }
          const results = yield* driveClock((progress) =>
            Effect.all(["a", "b"].map((name) =>
              sync(name).pipe(Effect.provideService(Progress.Progress, {
                report: (event) => Effect.zipRight(Effect.sync(() => event._tag === "Page" && events.push(name)), progress.report(event))
              }))
            ), { concurrency: "unbounded" })
          ).pipe(Effect.flatten)
          expect(results.map((summary) => summary.inserted + summary.unchanged)).toEqual([50, 50])
          // All five pages of one, then all five of the other.
          expect(events.join("")).toMatch(/^(a{5}b{5}|b{5}a{5})$/)
        }))
    }

    it.effect("the second sync fails with LockTimeout once its timeout has passed, and records no run", () =>
      Effect.gen(function*() {
        const { client } = yield* Databases.TestDatabase
        const workspace = freshToken("busy")
        // The tables first, as in the fenced case below: on a fresh SQLite file (this case run alone, `vitest -t`), the
        // holder's migration met this test's polling reads and backed off on the clock, which stands still here.
        yield* Sync.migrate
        const holder = yield* Effect.fork(slowSync(workspace))
        // Let the holder take the lock and open its scroll.
        yield* holdingLock(workspace)
        const { reporter, waiting } = yield* reportingLockWait
        const second = yield* Effect.fork(
          Effect.provide(
            Sync.run("users", { workspace, lockTimeout: "30 seconds" }),
            Layer.merge(intercom(freshToken()), client)
          ).pipe(Effect.provideService(Progress.Progress, reporter))
        )
        yield* Deferred.await(waiting)
        // 29 s of the wait, then on until the second gives up: by steps, each look at the lock answered in real time.
        const waitedFrom = yield* Clock.currentTimeMillis
        yield* clockUntil("29 s of the wait", Effect.map(Clock.currentTimeMillis, (now) => now - waitedFrom >= 29_000))
        expect(Option.isNone(yield* Fiber.poll(second))).toBe(true)
        const exit = yield* clockUntilDone("the second sync's end", second)
        const error = failureOf(exit)
        expect(error?._tag).toBe("LockTimeout")
        expect(error?.message).toMatch(/^Another sync of workspace ".*" still held its lock after 3\d s, so this one gave up: Intercom allows one scroll per workspace\. Wait for the other to finish, or give a longer lockTimeout\.$/)
        expect((yield* runs(workspace)).map((run) => run.status)).toEqual(["running"])
        yield* Fiber.interrupt(holder)
        expect((yield* runs(workspace)).map((run) => run.status)).toEqual(["interrupted"])
      }))

    it.effect("a lockTimeout of zero tries once and fails with LockTimeout at once; Duration.infinity waits as the default does, its wait reported without an end", () =>
      Effect.gen(function*() {
        const workspace = freshToken("zero-or-infinity")
        yield* Sync.migrate
        const holder = yield* Effect.fork(slowSync(workspace))
        yield* holdingLock(workspace)
        const impatient = yield* Effect.exit(Effect.provide(Sync.run("users", { workspace, lockTimeout: 0 }), intercom(freshToken())))
        const error = failureOf(impatient)
        expect(error?._tag).toBe("LockTimeout")
        expect(error?._tag === "LockTimeout" && error.waitedMillis).toBe(0)
        const waits: Array<number | undefined> = []
        const patient = yield* Effect.fork(
          Effect.provide(Sync.run("users", { workspace, lockTimeout: Duration.infinity }), intercom(freshToken())).pipe(
            Effect.provideService(Progress.Progress, {
              report: (event) => Effect.sync(() => event._tag === "Waiting" && event.reason === "workspace-lock" && waits.push(event.untilMillis))
            })
          )
        )
        yield* clockUntil("the wait reported", Effect.sync(() => waits.length > 0))
        expect(waits).toEqual([undefined])
        yield* Fiber.interrupt(patient)
        yield* Fiber.interrupt(holder)
      }))

    it.effect("a waiting sync goes on as soon as the holder finishes, and an interrupted wait leaves no trace", () =>
      Effect.gen(function*() {
        const workspace = freshToken("turns")
        const holder = yield* Effect.fork(slowSync(workspace))
        yield* holdingLock(workspace)
        const { reporter, waiting } = yield* reportingLockWait
        const impatient = yield* Effect.fork(
          Effect.provide(Sync.run("users", { workspace }), intercom(freshToken())).pipe(
            Effect.provideService(Progress.Progress, reporter)
          )
        )
        yield* Deferred.await(waiting)
        yield* Fiber.interrupt(impatient)
        yield* Fiber.interrupt(holder)
        // The lock is free again: a new sync takes it without waiting.
        const summary = yield* Effect.provide(Sync.run("users", { workspace }), intercom(freshToken(), { workspace: { users: 3 } }))
        expect(summary.inserted).toBe(3)
        expect((yield* runs(workspace)).map((run) => run.status)).toEqual(["interrupted", "complete"])
      }))

    it.effect("a holder that lost its lock writes no further page: the next page's write fails with LockLost", () =>
      Effect.gen(function*() {
        const { dialect } = yield* Databases.TestDatabase
        const workspace = freshToken("fenced")
        // The tables first: on a fresh SQLite file, the holder's migration may meet this test's polling reads and back
        // off on the clock, which stands still here.
        yield* Sync.migrate
        const startedAt = yield* Clock.currentTimeMillis
        // A page a second on the clock: the first comes long before the watchdog's first look, at 10 seconds.
        const holder = yield* Effect.fork(Effect.provide(
          Sync.run("users", { workspace }),
          intercom(freshToken("fenced"), { pageSize: 5, workspace: { users: 20, faults: { latency: Duration.seconds(1) } } })
        ))
        yield* holdingLock(workspace)
        // The first page is on its way (the simulator's latency is a sleep of 1 s).
        yield* until(Effect.map(TestClock.sleeps(), Chunk.some((at) => at === startedAt + 1_000)))
        yield* loseLock(dialect, workspace)
        yield* TestClock.adjust("1 second")
        // The page has come: the holder writes it, or fails.
        const written = Effect.map(rows(workspace, "users"), (table) => table.size > 0)
        yield* until(Effect.zipWith(Fiber.poll(holder), written, (done, some) => Option.isSome(done) || some))
        expect((yield* rows(workspace, "users")).size).toBe(0)
        const error = failureOf(yield* Fiber.await(holder))
        expect(error?._tag).toBe("LockLost")
        const [run] = yield* runs(workspace)
        expect(run).toMatchObject({ status: "failed", inserted: 0, updated: 0, unchanged: 0, deleted: 0 })
        expect(run.error).toMatch(/^LockLost: .*(its PostgreSQL session ended|its SQLite lease expired)/)
      }))
  })
})

describe("the SQLite lease", () => {
  layer(Databases.sqlite, { timeout: "60 seconds" })((it) => {
    const leave = (workspace: string, lease: { readonly host: string; readonly pid: number; readonly expiresIn: number }) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const now = yield* Clock.currentTimeMillis
        yield* Sync.migrate
        yield* sql`INSERT INTO intercom_sync_locks ${sql.insert({
          workspace,
          holder: "a-process-that-died",
          host: lease.host,
          pid: lease.pid,
          acquired_at: new Date(now).toISOString(),
          expires_at: new Date(now + lease.expiresIn).toISOString()
        })}`
        // And its run, left running.
        yield* sql`INSERT INTO intercom_sync_runs ${sql.insert({ workspace, resource: "users", status: "running", started_at: new Date(now).toISOString() })}`
      })

    it.effect("a lease of this host whose process is gone is taken over at once, and its run marked abandoned", () =>
      Effect.gen(function*() {
        const workspace = freshToken("dead")
        // Far above any pid Linux hands out (pid_max is at most 2^22).
        yield* leave(workspace, { host: Lock.hostIdentity(), pid: 2 ** 30, expiresIn: 30_000 })
        const { reporter, waiting } = yield* reportingLockWait
        const summary = yield* Effect.provide(Sync.run("users", { workspace }), intercom(freshToken(), { workspace: { users: 4 } })).pipe(
          Effect.provideService(Progress.Progress, reporter)
        )
        expect(summary.inserted).toBe(4)
        expect(yield* Deferred.isDone(waiting)).toBe(false)
        expect((yield* runs(workspace)).map((run) => run.status)).toEqual(["abandoned", "complete"])
      }))

    // Linux names its PID namespaces in /proc; elsewhere a lease's host is the hostname alone.
    it.effect.skipIf(process.platform !== "linux")("a lease names its host with its PID namespace: pids of another namespace of the same hostname are not looked for here", () =>
      Effect.gen(function*() {
        const workspace = freshToken("namespaced")
        const other = yield* anotherProcess
        const run = yield* Effect.fork(slowSync(workspace))
        yield* holdingLock(workspace)
        const [lease] = yield* other<{ host: string }>`SELECT host FROM intercom_sync_locks WHERE workspace = ${workspace}`
        expect(lease.host).toBe(`${os.hostname()} ${fs.readlinkSync("/proc/self/ns/pid")}`)
        yield* Fiber.interrupt(run)
      }).pipe(Effect.scoped))

    for (const [where, host] of [["another host", "another-host"], ["this hostname in another PID namespace", `${os.hostname()} pid:[1]`]] as const) {
      it.effect(`a lease of ${where} is waited out until it expires`, () =>
        Effect.gen(function*() {
          const workspace = freshToken("remote")
          // Its pid is not one of this namespace's: not looked for here, where it would not be found.
          yield* leave(workspace, { host, pid: 2 ** 30, expiresIn: 30_000 })
          const started = yield* Clock.currentTimeMillis
          const summary = yield* driveClock((progress) =>
            Effect.provide(Sync.run("users", { workspace }), intercom(freshToken(), { workspace: { users: 4 } })).pipe(
              Effect.provideService(Progress.Progress, progress)
            )
          ).pipe(Effect.flatten)
          expect(summary.inserted).toBe(4)
          const [abandoned, complete] = yield* runs(workspace)
          expect(abandoned.status).toBe("abandoned")
          expect(complete.started_at - started).toBeGreaterThanOrEqual(30_000)
          expect(complete.started_at - started).toBeLessThan(32_000)
        }))
    }

    it.effect("a sync whose writes meet another connection's write lock asks again until it is free, and ends complete", () =>
      Effect.gen(function*() {
        const workspace = freshToken("busy")
        yield* migratedWithShortBusyWait
        // Another process (an operator's sqlite3, a backup) holds the write lock before the sync begins.
        const other = yield* anotherProcess
        yield* other.unsafe("BEGIN IMMEDIATE")
        const run = yield* Effect.fork(
          Effect.provide(Sync.run("users", { workspace }), intercom(freshToken(), { pageSize: 5, workspace: { users: 20 } }))
        )
        // The sync has met the lock, and waits to ask again (on the clock).
        yield* until(Effect.map(TestClock.sleeps(), (sleeps) => !Chunk.isEmpty(sleeps)))
        yield* TestClock.adjust("10 seconds")
        expect(yield* Fiber.poll(run)).toEqual(Option.none())
        yield* other.unsafe("COMMIT")
        const summary = yield* Effect.flatten(clockUntilDone("the sync's end", run))
        expect(summary).toMatchObject({ inserted: 20, deleted: 0 })
        expect((yield* runs(workspace)).map((run) => run.status)).toEqual(["complete"])
      }).pipe(Effect.scoped))

    it.effect("a sync that fails while another connection holds the write lock is recorded failed once it is free, not left running", () =>
      Effect.gen(function*() {
        const workspace = freshToken("busy-failure")
        yield* migratedWithShortBusyWait
        // Intercom refuses the token once the test says so, after the run has begun.
        const refuse = yield* Deferred.make<void>()
        const refusing = Layer.succeed(IntercomClient.IntercomClient, {
          baseUrl: "https://api.intercom.io",
          scrollPage: () =>
            Effect.zipRight(
              Deferred.await(refuse),
              new ScrollError.Unauthorized({ resource: "users", status: 401, code: "unauthorized", detail: "Access Token Invalid" })
            )
        })
        const run = yield* Effect.fork(Effect.provide(Sync.run("users", { workspace }), refusing))
        yield* until(Effect.map(runs(workspace), (found) => found.length > 0))
        // Another process takes the write lock; then the scroll fails.
        const other = yield* anotherProcess
        yield* other.unsafe("BEGIN IMMEDIATE")
        yield* Deferred.succeed(refuse, undefined)
        // The failure's record has met the lock and waits to ask again half a second on (the run's own checks are 10 s
        // on); or, unmended, the run has ended without it.
        const now = yield* Clock.currentTimeMillis
        yield* until(Effect.zipWith(
          TestClock.sleeps(),
          Fiber.poll(run),
          (sleeps, ended) => Chunk.some(sleeps, (at) => at < now + 10_000) || Option.isSome(ended)
        ))
        yield* TestClock.adjust("5 seconds")
        expect(yield* Fiber.poll(run)).toEqual(Option.none())
        yield* other.unsafe("COMMIT")
        expect(failureOf(yield* clockUntilDone("the sync's end", run))?._tag).toBe("Unauthorized")
        const [recorded] = yield* runs(workspace)
        expect(recorded.status).toBe("failed")
        expect(recorded.error).toMatch(/^Unauthorized: /)
      }).pipe(Effect.scoped))

    it.effect("a sync whose lease was taken over stops with LockLost and marks nothing deleted", () =>
      Effect.gen(function*() {
        const workspace = freshToken("stolen")
        const holder = yield* Effect.fork(slowSync(workspace))
        yield* holdingLock(workspace)
        yield* loseLock("sqlite", workspace)
        const error = failureOf(yield* clockUntilDone("the holder's end", holder))
        expect(error?._tag).toBe("LockLost")
        expect(error?.message).toMatch(/lost its lock \(its SQLite lease expired and another sync took it over\)/)
        const [run] = yield* runs(workspace)
        expect(run).toMatchObject({ status: "failed", deleted: 0 })
        expect(run.error).toMatch(/^LockLost: /)
      }))
  })
})

describe("the PostgreSQL advisory lock", () => {
  layer(Databases.postgres, { timeout: "60 seconds" })((it) => {
    it.effect("a sync interrupted while it takes its lock leaves no lock behind on a pooled connection", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const workspaces = Array.from({ length: 60 }, () => freshToken("interrupted"))
        for (const [index, workspace] of workspaces.entries()) {
          const taking = yield* Effect.fork(
            Effect.scoped(Lock.acquire(sql, "pg", { workspace, resource: "users", timeout: undefined }))
          )
          // Interrupted at once, or 1–3 ms later: while its statement is on its way, or as its answer comes.
          const millis = index % 4
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, millis)))
          yield* Fiber.interrupt(taking)
        }
        // Every connection back in the pool holds none of them (each was released before it went back).
        const held = yield* Effect.forEach(workspaces, lockSession)
        expect(held.flat()).toEqual([])
      }))

    it.effect("a holder whose session died loses the lock (LockLost), and the waiting sync goes on", () =>
      Effect.gen(function*() {
        const { client } = yield* Databases.TestDatabase
        const sql = yield* SqlClient.SqlClient
        const workspace = freshToken("session")
        const holder = yield* Effect.fork(Effect.provide(slowSync(workspace), client))
        yield* holdingLock(workspace)
        const { reporter, waiting } = yield* reportingLockWait
        const next = yield* Effect.fork(
          Effect.provide(Sync.run("users", { workspace }), intercom(freshToken(), { workspace: { users: 6 } })).pipe(
            Effect.provideService(Progress.Progress, reporter)
          )
        )
        yield* Deferred.await(waiting)
        // The holder's session ends, as it does when its process dies.
        const killed = yield* lockSession(workspace)
        expect(killed).toHaveLength(1)
        yield* sql`SELECT pg_terminate_backend(${killed[0].pid})`
        // On until the next sync has ended, then the holder: by steps, since the session's end, each look at the lock
        // and the holder's check of its session answer in real time.
        const summary = yield* Effect.flatten(clockUntilDone("the next sync's end", next))
        expect(summary.inserted).toBe(6)
        const error = failureOf(yield* clockUntilDone("the holder's end", holder))
        expect(error?._tag).toBe("LockLost")
        // The next run marked the holder's run abandoned; the holder, alive after all, then said why it stopped.
        const [lost, complete] = yield* runs(workspace)
        expect(lost).toMatchObject({ status: "failed", deleted: 0 })
        expect(lost.error).toMatch(/^LockLost: .*its PostgreSQL session ended/)
        // With the driver's words for it, not only "Failed to execute statement".
        // ("Client has encountered a connection error and is not queryable", or the server's own words).
        expect(lost.error).toMatch(/its PostgreSQL session ended: Failed to execute statement: [^)]+\)/)
        expect(complete.status).toBe("complete")
      }))
  })
})

describe("the PostgreSQL advisory lock's tries", () => {
  it.live("a try interrupted just as the pool hands it a connection gives that connection back", () =>
    Effect.gen(function*() {
      // A pool of one connection, handed over once `gate` opens, that counts the connections not given back.
      let outstanding = 0
      const leakedAt: Array<number> = []
      const connection = { execute: () => Effect.succeed([{ locked: false }]) } as unknown as SqlConnection.Connection
      for (let attempt = 0; attempt < 200; attempt++) {
        const gate = yield* Deferred.make<void>()
        const reserve = Effect.gen(function*() {
          yield* Deferred.await(gate)
          outstanding++
          yield* Effect.addFinalizer(() => Effect.sync(() => void outstanding--))
          return connection
        })
        const sql = { reserve } as unknown as SqlClient.SqlClient
        const lockScope = yield* Scope.make()
        const lock = yield* Scope.extend(Lock.advisory(sql, [1, 2], "w", 0), lockScope)
        // Yielding every few steps, so that the interruption lands at every step of the handover in turn.
        const trying = yield* Effect.fork(lock.tryTake.pipe(Effect.withMaxOpsBeforeYield(16)))
        yield* Effect.sleep(1)
        yield* Deferred.succeed(gate, undefined)
        for (let turn = 0; turn < attempt % 100; turn++) yield* Effect.yieldNow()
        yield* Fiber.interrupt(trying)
        yield* Scope.close(lockScope, Exit.void)
        yield* Effect.sleep(2)
        if (outstanding !== 0) leakedAt.push(attempt)
        outstanding = 0
      }
      expect(leakedAt).toEqual([])
    }), 60_000)
})

describe("the PostgreSQL lock's session", () => {
  /** The keepalive settings of the session that holds the workspace's lock, read in a transaction of the lock's. */
  const keepalivesOfLock = (url: Redacted.Redacted<string>) =>
    Effect.gen(function*() {
      const sql = Context.get(yield* Layer.build(SyncDatabase.layer(SyncDatabase.Database.Postgres({ url }))), SqlClient.SqlClient)
      const held = yield* Lock.acquire(sql, "pg", { workspace: freshToken("keepalives"), resource: "users", timeout: undefined })
      const found = yield* held.transaction(sql<{ name: string; setting: string }>`SELECT name, setting FROM pg_settings
        WHERE name IN ('tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count', 'tcp_user_timeout')`)
      return Object.fromEntries(found.map((row) => [row.name, row.setting]))
    })

  it.scoped("has the server's TCP keepalives, so that a client gone without a word lets the lock go in seconds", () =>
    Effect.gen(function*() {
      const url = yield* PostgresDatabase.make
      expect(yield* keepalivesOfLock(url)).toEqual({
        tcp_keepalives_idle: "5",
        tcp_keepalives_interval: "2",
        tcp_keepalives_count: "3",
        tcp_user_timeout: "11000"
      })
    }), { timeout: 30_000 })

  it.scoped("keeps a keepalive setting the URL's options give", () =>
    Effect.gen(function*() {
      const url = new URL(Redacted.value(yield* PostgresDatabase.make))
      url.searchParams.set("options", "-c tcp_keepalives_idle=30")
      expect(yield* keepalivesOfLock(Redacted.make(url.href))).toEqual({
        tcp_keepalives_idle: "30",
        tcp_keepalives_interval: "2",
        tcp_keepalives_count: "3",
        tcp_user_timeout: "11000"
      })
    }), { timeout: 30_000 })
})
