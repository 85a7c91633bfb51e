/**
 * A `Sync` whose database goes away under it: the entity on the in-memory runner (its time on the TestClock), writing
 * to a real PostgreSQL through a TCP proxy that the test cuts and opens again. The database's side is real time (its
 * sockets, its locks): each step of the clock lets 20 ms of it pass, and every wait on it is bounded. One case runs a
 * real `Fleet.layerRunner` (its cluster's storage on the same database) in real time, said there why.
 */
import { TestRunner } from "@effect/cluster"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { Sync, SyncDatabase } from "@intercom-scroll/sync"
import { BlackHole, ClockSteps, PostgresDatabase } from "@intercom-scroll/testing"
import { Cause, Context, Duration, Effect, Exit, Fiber, Layer, Logger, Option, Redacted, Schedule, TestClock, TestServices } from "effect"
import { Fleet, WorkspaceSync } from "../src/index.js"
import { acme, tokens } from "./support/inProcess.js"
import { freePort } from "./support/processes.js"
import { tcpProxy } from "./support/proxy.js"

/** Users in 3 pages and the empty one, companies in 1 and the empty one, each request a second on the TestClock. */
const slow = { workspaces: [{ token: "acme", users: 300, companies: 50, faults: { latency: Duration.seconds(1) } }] }

/**
 * A fresh database, reached by the runner through a proxy the test cuts, and by the test straight (its own session,
 * which the cut leaves alone); the runner's warnings kept.
 */
const setUp = (simulator: Simulator.SimulatorOptions, options: { readonly maxConnections?: number } = {}) => Effect.gen(function*() {
  const url = new URL(Redacted.value(yield* Effect.orDie(PostgresDatabase.make)))
  const proxy = yield* tcpProxy(url)
  yield* proxy.open
  const viaProxy = new URL(url)
  viaProxy.port = String(proxy.port)
  const warnings: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (logLevel._tag === "Warning") warnings.push(String(message))
  })
  const runner = WorkspaceSync.layer({ maxSyncs: 1 }).pipe(
    Layer.provideMerge(TestRunner.layer),
    Layer.provide(tokens),
    Layer.provideMerge(Simulator.layerClient(simulator)),
    Layer.provideMerge(Layer.effectDiscard(Sync.migrate)),
    Layer.provideMerge(PostgresDatabase.layerAt(Redacted.make(viaProxy.href), options)),
    // Before the runner is built: its entities' fibers keep the logger they were forked with.
    Layer.provide(Logger.replace(Logger.defaultLogger, logger)),
    Layer.orDie
  )
  const direct = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(Redacted.make(url.href)))), SqlClient.SqlClient)
  return { proxy, warnings, runner, direct }
})

/** Real time for the runner's sockets, without moving the clock: up to 10 s. */
const settle = (what: string, done: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500; i++) {
      if (yield* done) return
      yield* TestServices.provideLive(Effect.sleep("20 millis"))
    }
    return yield* Effect.dieMessage(`never reached in 10 s: ${what}`)
  })

/** The clock on a second at a time, 20 ms of real time each, until `done`: up to a minute of the clock. */
const stepUntil = (what: string, done: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 60; i++) {
      if (yield* done) return
      yield* TestClock.adjust("1 second")
      yield* TestServices.provideLive(Effect.sleep("20 millis"))
    }
    return yield* Effect.dieMessage(`never reached in 60 steps: ${what}`)
  })

const runs = (sql: SqlClient.SqlClient) =>
  Effect.orDie(sql<{ resource: string; status: string; error: string | null }>`
    SELECT resource, status, error FROM ${sql(Sync.runsTable)} WHERE workspace = 'acme' ORDER BY id`)

const liveIds = (sql: SqlClient.SqlClient, resource: "users" | "companies") =>
  Effect.orDie(Effect.map(
    sql<{ id: string }>`SELECT id FROM ${sql(Sync.tables[resource])} WHERE workspace = 'acme' AND deleted_at IS NULL`,
    (rows) => rows.map(({ id }) => id).sort()
  ))

const simulated = (resource: "users" | "companies") =>
  Effect.flatMap(Simulator.Simulator, (s) => Effect.map(Effect.orDie(s.ids("acme", resource)), (ids) => [...ids].sort()))

/**
 * acme's users and companies sent; once the users are synced, the workspace's lock is taken by the test on a session of
 * its own (the users' run held it: an advisory lock, the only one in this database), so that the companies' run waits
 * for it, between two resources. The request's fiber, the lock's key and the test's session.
 */
const usersSyncedAndLockTaken = (direct: SqlClient.SqlClient) =>
  Effect.gen(function*() {
    yield* TestClock.adjust(1)
    const sent = yield* Effect.fork(WorkspaceSync.sync(acme, { resources: ["users", "companies"], run: "r1" }))
    yield* settle("the users' run under way", Effect.map(runs(direct), (rows) => rows.length === 1))
    const locks = yield* Effect.orDie(direct<{ a: string; b: string }>`SELECT classid::text AS a, objid::text AS b
      FROM pg_locks WHERE locktype = 'advisory' AND granted
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
    expect(locks).toHaveLength(1)
    // oids, the keys' int4 read unsigned.
    const key = [Number(locks[0].a) | 0, Number(locks[0].b) | 0]
    const session = yield* Effect.orDie(direct.reserve)
    const taken = yield* Effect.fork(Effect.orDie(session.execute("SELECT pg_advisory_lock($1, $2)", key, undefined)))
    yield* stepUntil("the users synced, and their lock taken by the test", Effect.map(Fiber.poll(taken), (done) => done._tag === "Some"))
    return { key, sent, session }
  })

describe("WorkspaceSync on a database that goes away", () => {
  it.scoped("a sync that failed because the database was away syncs again from that resource once it is back", () =>
    Effect.gen(function*() {
      const { direct, proxy, runner, warnings } = yield* setUp(slow)
      yield* Effect.gen(function*() {
        const { key, sent, session } = yield* usersSyncedAndLockTaken(direct)
        expect((yield* runs(direct)).map(({ resource, status }) => [resource, status])).toEqual([["users", "complete"]])
        // The database goes away while the companies' run waits for the lock, which comes free meanwhile: its next
        // try fails on its session, which the cut ended.
        yield* proxy.cut
        yield* Effect.orDie(session.execute("SELECT pg_advisory_unlock($1, $2)", key, undefined))
        yield* stepUntil("the runner to find the database away", Effect.sync(() => warnings.some((line) => line.includes("does not answer"))))
        // Away a few seconds more (the runner asks every second), then back.
        yield* TestClock.adjust("3 seconds")
        yield* proxy.open
        const answer = yield* Effect.either(ClockSteps.runToEnd({ step: "1 second", maxSteps: 60, realPause: "20 millis" })(sent))
        if (answer._tag === "Left") expect.fail(`answered ${answer.left._tag}: ${answer.left.message}`)
        const summaries = answer.right
        const counts = summaries.map(({ inserted, resource, unchanged }) => [resource, inserted, unchanged])
        expect(counts).toEqual([["users", 300, 0], ["companies", 50, 0]])
        // The users were not synced again: one scroll each, and one complete run each. The companies' run that failed
        // failed before its row (its lock not yet taken): a run that loses the database with the lock held is LockLost.
        expect((yield* runs(direct)).map(({ resource, status }) => [resource, status])).toEqual([["users", "complete"], ["companies", "complete"]])
        expect((yield* Effect.flatMap(Simulator.Simulator, (s) => s.stats)).workspaces.acme.scrollsOpened).toBe(2)
        expect(yield* liveIds(direct, "users")).toEqual(yield* simulated("users"))
        expect(yield* liveIds(direct, "companies")).toEqual(yield* simulated("companies"))
        expect(warnings.filter((line) => line.includes("syncs the workspace again"))).toEqual([
          expect.stringMatching(
            /^The sync of the companies failed \((SqlError|MigrationError): .+\) and the database does not answer: this runner syncs the workspace again from the companies once it does, if it still holds the workspace\.$/
          )
        ])
      }).pipe(Effect.provide(runner))
    }), 60_000)

  it.scoped("a sync whose session the server ended while the database answers syncs again, once it knows it still holds the workspace", () =>
    Effect.gen(function*() {
      // One connection: the one the server ends is the one the next try of the lock is given, and the ping after its
      // failure makes a new one, which the database answers.
      const { direct, proxy, runner, warnings } = yield* setUp(slow, { maxConnections: 1 })
      yield* Effect.gen(function*() {
        const { key, sent, session } = yield* usersSyncedAndLockTaken(direct)
        // The companies' run waits for the lock: its first try answered, and handed to it whole, so that its connection
        // (its only one) sits in the pool and nothing more is sent on it until the clock moves. The users' lock comes
        // free before that try is sent, and the users' run ends with statements of its own (the count in its summary;
        // the companies' run begins with its migrations): a session ended under one of those is met there, not at a
        // try of the lock (unanswered, the statement waited without end; failed, the count is left out in silence and
        // the pool replaces the connection, and the run meets no ended session at all).
        yield* settle("the companies' run waiting for the lock, its try answered", Effect.zipWith(
          Effect.orDie(direct<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND state = 'idle' AND query LIKE '%pg_try_advisory_lock%'`),
          proxy.quiet,
          ([row], quiet) => row?.n === 1 && quiet
        ))
        // Meanwhile the server ends the runner's session (as it does a frozen runner's), which the runner finds at its
        // next try; the database answers all along.
        yield* proxy.sever
        yield* settle("the runner's session ended", Effect.map(
          Effect.orDie(direct<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()`),
          ([row]) => row?.n === 2
        ))
        yield* Effect.orDie(session.execute("SELECT pg_advisory_unlock($1, $2)", key, undefined))
        const answer = yield* Effect.either(ClockSteps.runToEnd({ step: "1 second", maxSteps: 60, realPause: "20 millis" })(sent))
        if (answer._tag === "Left") expect.fail(`answered ${answer.left._tag}: ${answer.left.message}`)
        expect(answer.right.map(({ inserted, resource }) => [resource, inserted])).toEqual([["users", 300], ["companies", 50]])
        expect((yield* runs(direct)).map(({ resource, status }) => [resource, status])).toEqual([["users", "complete"], ["companies", "complete"]])
        expect(yield* liveIds(direct, "companies")).toEqual(yield* simulated("companies"))
        expect(warnings.filter((line) => line.includes("lost its session"))).toEqual([
          expect.stringMatching(
            /^The sync of the companies lost its session to the database \(SqlError: .+\), which answers\. This runner syncs it again if it still holds the workspace \d+s from now\.$/
          )
        ])
        expect(warnings.filter((line) => line.includes("does not answer"))).toEqual([])
      }).pipe(Effect.provide(runner))
    }), 60_000)

  it.scoped("a sync that fails while the database answers is answered SyncFailed at once, not synced again", () =>
    Effect.gen(function*() {
      // Intercom answers at once: the sync needs no move of the clock.
      const { direct, runner, warnings } = yield* setUp({ workspaces: [{ token: "acme", users: 300, companies: 50 }] })
      yield* Effect.gen(function*() {
        // A statement the database refuses, as a full disk's would be: the first page's write.
        yield* Effect.orDie(direct.unsafe(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'no room left'; END $$;
          CREATE TRIGGER refuse BEFORE INSERT ON intercom_users_records FOR EACH ROW EXECUTE FUNCTION refuse()`))
        yield* TestClock.adjust(1)
        const sent = yield* Effect.fork(Effect.flip(WorkspaceSync.sync(acme, { resources: ["users", "companies"], run: "r1" })))
        // On real time alone, bounded: the answer needs no move of the clock.
        yield* settle("the answer", Effect.map(Fiber.poll(sent), Option.isSome))
        const error = yield* Fiber.join(sent)
        expect(error).toMatchObject({ _tag: "SyncFailed", resource: "users", failure: "SqlError" })
        expect(error.message).toContain("no room left")
        expect((yield* runs(direct)).map(({ resource, status }) => [resource, status])).toEqual([["users", "failed"]])
        expect(warnings.filter((line) => line.includes("does not answer"))).toEqual([])
      }).pipe(Effect.provide(runner))
    }), 60_000)

  it.scoped("a runner's unansweredTimeout bounds its syncs' wait on a database that answers nothing: LockLost at 30 s, not the default 2 minutes", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const hole = yield* BlackHole.make(url)
      const warnings: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") warnings.push(String(message))
      })
      const runner = WorkspaceSync.layer({ maxSyncs: 1, unansweredTimeout: "30 seconds" }).pipe(
        Layer.provideMerge(TestRunner.layer),
        Layer.provide(tokens),
        Layer.provideMerge(Simulator.layerClient(slow)),
        Layer.provideMerge(Layer.effectDiscard(Sync.migrate)),
        Layer.provideMerge(SyncDatabase.layer(SyncDatabase.Database.Postgres({ url: hole.url }), { connectTimeout: "3 seconds" })),
        Layer.provide(Logger.replace(Logger.defaultLogger, logger)),
        Layer.orDie
      )
      const direct = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(url))), SqlClient.SqlClient)
      const silent = /no connection to the server was answered for (\d+) s/
      yield* Effect.gen(function*() {
        yield* TestClock.adjust(1)
        const sent = yield* Effect.fork(WorkspaceSync.sync(acme, { resources: ["users"], run: "r1" }))
        // Its run row written, its first page a second away on the clock: nothing of the sync's is in flight.
        yield* settle("the users' run under way", Effect.map(runs(direct), (rows) => rows.length === 1))
        yield* hole.vanish
        yield* ClockSteps.until("the sync's LockLost said", { step: "1 second", maxSteps: 400, realPause: "100 millis" })(
          Effect.sync(() => warnings.some((warning) => silent.test(warning)))
        )
        const [, unanswered] = warnings.find((warning) => silent.test(warning))?.match(silent) ?? []
        // Looks 10 s apart plus a connect timeout's real seconds: past 30 s, never as late as the default's 120 s.
        expect(Number(unanswered)).toBeGreaterThanOrEqual(30)
        expect(Number(unanswered)).toBeLessThan(120)
        yield* hole.reset
        yield* Fiber.interrupt(sent)
      }).pipe(Effect.provide(runner))
    }), { timeout: 90_000 })

  // Real time: the runner's pools wait 10 s of it for a connection (`Fleet.layerSql`'s connect timeout), and each look of
  // the sync's watch waits that out twice (the pool full, then a connection of its own to a host that answers nothing);
  // the cluster's shard locks and storage polls run on the same sockets. Every wait below is bounded.
  it.scopedLive("a runner's sync on a database that vanishes ends well within its termination timeout, though the cluster's waits fill the runner's pool", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const hole = yield* BlackHole.make(url)
      const lines: Array<string> = []
      const logger = Logger.make(({ message }) => void lines.push(String(message)))
      // 3,000 users at 500 ms a page of 100: a sync of 15 s and more, under way when the database vanishes.
      const slowPages = { workspaces: [{ token: "acme", users: 3_000, faults: { latency: Duration.millis(500) } }] }
      const runner = Fleet.layerRunner({
        database: SyncDatabase.Database.Postgres({ url: hole.url }),
        port: yield* freePort,
        maxSyncs: 1,
        unansweredTimeout: "5 seconds",
        terminationTimeout: "10 minutes",
        schedules: false
      }).pipe(Layer.provide([Simulator.layerClient(slowPages), tokens]), Layer.orDie)
      const direct = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(url))), SqlClient.SqlClient)
      const seen = Effect.orDie(Effect.map(
        direct<{ n: number }>`SELECT count(*)::int AS n FROM intercom_users_seen WHERE workspace = 'acme'`,
        ([row]) => row?.n ?? 0
      ))
      // The sync's end, as the runner logs it: interrupted (the cluster lost its shard locks and stopped it, which the
      // watch met at its first unanswered look), or its lock lost to a server that answered nothing.
      const ended = (line: string) => line === "Sync interrupted" || line.includes("its PostgreSQL server stopped answering")
      yield* Effect.gen(function*() {
        const sent = yield* Effect.fork(WorkspaceSync.sync(acme, { resources: ["users"], run: "vanish" }))
        yield* Effect.orDie(Effect.timeoutFail(
          Effect.repeat(seen, { until: (n) => n >= 100, schedule: Schedule.spaced("200 millis") }),
          { duration: "60 seconds", onTimeout: () => new Error("the sync never got under way in 60 s") }
        ))
        yield* hole.vanish
        const vanished = Date.now()
        let end: string | undefined
        while ((end = lines.find(ended)) === undefined && Date.now() - vanished < 150_000) yield* Effect.sleep("500 millis")
        const after = (Date.now() - vanished) / 1000
        expect(end, `no end of the sync ${after.toFixed(0)} s after the vanish; the runner said: ${lines.slice(-20).join(" | ")}`)
          .toBeDefined()
        // 40 s here (2026-12-07): the watch's first look waits out the full pool (10 s), then its own connect (10 s).
        expect(after).toBeLessThan(120)
        // Back, so that the runner's stop finds its database.
        yield* hole.reset
        yield* Fiber.interrupt(sent)
      }).pipe(Effect.provide(runner), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    }), 240_000)

  it.scoped("a runner's unansweredTimeout of zero, or past a timer's 2³¹−1 ms, is not built", () =>
    Effect.gen(function*() {
      const outOfRange = `must be longer than zero and at most 2147483647 ms (about 24.8 days)`
      for (
        const [unansweredTimeout, why] of [
          [0, outOfRange],
          [-1, "is not a duration"],
          ["0 seconds", outOfRange],
          [Duration.millis(2 ** 31), outOfRange],
          [Duration.infinity, outOfRange],
          ["soon", "is not a duration"]
        ] as ReadonlyArray<readonly [Duration.DurationInput, string]>
      ) {
        const refused = yield* Effect.exit(Layer.build(WorkspaceSync.layer({ maxSyncs: 1, unansweredTimeout }).pipe(
          Layer.provide(TestRunner.layer),
          Layer.provide(tokens),
          Layer.provide(Simulator.layerClient(slow)),
          Layer.provide(Layer.orDie(PostgresDatabase.layerAt(yield* Effect.orDie(PostgresDatabase.make))))
        )))
        expect(Exit.isFailure(refused) ? Cause.pretty(refused.cause) : "built").toContain(
          `WorkspaceSync.layer: unansweredTimeout ${String(unansweredTimeout)} ${why}`
        )
      }
    }))
})
