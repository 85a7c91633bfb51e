/**
 * A fleet's process starting beside another on the same database: the cluster's storage creates its tables as its
 * layer is built, and the one that loses the race starts again rather than going on without them or dying.
 */
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { SyncDatabase } from "@intercom-scroll/sync"
import { ClockSteps, PostgresDatabase } from "@intercom-scroll/testing"
import { Cause, Clock, Context, Deferred, Duration, Effect, Exit, Fiber, Layer, Logger, LogLevel, Option, Redacted, Ref, Scope, TestClock, TestServices } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as AddressLock from "../src/internal/addressLock.js"
import * as ShardLockTiming from "../src/internal/shardLockTiming.js"
import { Fleet, FleetStatus, Secrets, WorkspaceSync } from "../src/index.js"
import { acme, simulated } from "./support/inProcess.js"
import { freePort, freePortBetween } from "./support/processes.js"
import { tcpProxy } from "./support/proxy.js"

/** A fresh SQLite file, and a connection of "another process" to it. */
const sqliteFile = Effect.gen(function*() {
  const directory = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "fleet-start-"))),
    (path) => Effect.sync(() => rmSync(path, { recursive: true, force: true }))
  )
  const filename = join(directory, "fleet.db")
  const other = Context.get(yield* Layer.build(SqliteClient.layer({ filename })), SqlClient.SqlClient)
  return { database: SyncDatabase.Database.Sqlite({ filename }), other }
})

/**
 * The cluster's migrator records its migrations before it runs them, and takes any failure to record them for another
 * process running them ("Migrations already running"): it then goes on without its tables. SQLite refuses that write
 * when another process wrote since the migrator read (a runner starting beside a client). Here a trigger refuses it,
 * for as long as the test keeps it.
 */
const migrationsCannotBeRecorded = (other: SqlClient.SqlClient) =>
  Effect.orDie(Effect.all([
    other.unsafe(`CREATE TABLE cluster_migrations (
      migration_id integer PRIMARY KEY NOT NULL,
      created_at datetime NOT NULL DEFAULT current_timestamp,
      name VARCHAR(255) NOT NULL
    )`),
    other.unsafe(`CREATE TRIGGER lost_write BEFORE INSERT ON cluster_migrations
      BEGIN SELECT RAISE(ABORT, 'database is locked'); END`)
  ]))

const tableExists = (sql: SqlClient.SqlClient, name: string) =>
  Effect.orDie(Effect.map(
    sql<{ readonly n: number }>`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ${name}`,
    ([row]) => row.n === 1
  ))

/** Starts a client-only process's layer in the background, its debug logs (the cluster's migrator's) kept. */
const startClient = (database: SyncDatabase.Database) =>
  Effect.gen(function*() {
    const logs = yield* Ref.make<ReadonlyArray<string>>([])
    const logger = Logger.make(({ message }) => Ref.update(logs, (all) => [...all, String(message)]).pipe(Effect.runSync))
    const fiber = yield* Layer.build(Fleet.layerClient({ database })).pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.Debug),
      Effect.fork
    )
    return { fiber, logs: Ref.get(logs) }
  })

/** The layer's build driven to its end under the TestClock, as an `Exit`. */
const buildExit = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  Effect.exit(ClockSteps.runToEnd({ step: "100 millis", maxSteps: 300, realPause: "2 millis" })(fiber))

/** Each warning logged, as said. */
const collectingWarnings = () => {
  const warnings: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (logLevel._tag === "Warning") warnings.push(String(message))
  })
  return { logger, warnings }
}

/** A role of a fresh database that may hold `sessions` sessions at once, and the URL that logs in as it. */
const limitedRole = (sessions: number) =>
  Effect.gen(function*() {
    const url = new URL(Redacted.value(yield* PostgresDatabase.make))
    const role = `limited_${Math.random().toString(36).slice(2, 10)}`
    yield* Effect.scoped(Effect.flatMap(Layer.build(PostgresDatabase.layerAt(Redacted.make(url.href))), (context) => {
      const sql = Context.get(context, SqlClient.SqlClient)
      return Effect.zipRight(
        sql.unsafe(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT ${sessions} PASSWORD 'limited-role-password'`),
        sql.unsafe(`GRANT ALL ON SCHEMA public TO ${role}`)
      )
    }))
    const asRole = new URL(url)
    asRole.username = role
    asRole.password = "limited-role-password"
    return { asRole, role, url }
  })

describe("Fleet.layerClient", () => {
  it.scoped("starts again when the cluster's migrator went on without its tables, and has them once the other process is done", () =>
    Effect.gen(function*() {
      const { database, other } = yield* sqliteFile
      yield* migrationsCannotBeRecorded(other)
      const client = yield* startClient(database)
      // The first start has taken the refusal for another process's migrations.
      yield* Effect.repeat(Effect.zipRight(TestServices.provideLive(Effect.sleep("2 millis")), client.logs), {
        until: (logs) => logs.includes("Migrations already running")
      }).pipe(
        // Real time: the first start runs on the file, which the TestClock does not move.
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the migrator never said it found its migrations running") }),
        TestServices.provideLive,
        Effect.orDie
      )
      // That other process done, the next start records and runs the migrations.
      yield* other.unsafe("DROP TRIGGER lost_write").pipe(Effect.orDie)
      const exit = yield* buildExit(client.fiber)
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(yield* tableExists(other, "cluster_messages")).toBe(true)
      expect(yield* tableExists(other, "cluster_replies")).toBe(true)
    }))

  it.scoped("fails with the missing table after a few starts, if the cluster's tables never come", () =>
    Effect.gen(function*() {
      const { database, other } = yield* sqliteFile
      yield* migrationsCannotBeRecorded(other)
      const exit = yield* buildExit((yield* startClient(database)).fiber)
      const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
      const error = Option.getOrThrow(failure)
      expect(error._tag === "SqlError" ? String(error.cause) : error._tag).toContain("no such table: cluster_messages")
      // Five starts again, a quarter of a second doubling each time (jittered): more than 6 seconds.
      expect(yield* Clock.currentTimeMillis).toBeGreaterThan(6_000)
    }))

  it.scoped("starts again when the cluster's storage dies creating its tables, and fails with that error, not a defect", () =>
    Effect.gen(function*() {
      const { database, other } = yield* sqliteFile
      // The messages' index cannot be created (a table has its name): the migration fails, and the cluster's layer
      // dies with it (as a statement that lost a race to another process's does).
      yield* other.unsafe("CREATE TABLE cluster_messages_shard_idx (x)").pipe(Effect.orDie)
      const exit = yield* buildExit((yield* startClient(database)).fiber)
      const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
      expect(Option.map(failure, (error) => error._tag)).toEqual(Option.some("MigrationError"))
      expect(yield* Clock.currentTimeMillis).toBeGreaterThan(6_000)
    }))

  it.scoped("a client, and fleet status's reader, whose role's sessions are all taken (53300) wait for one, saying so, and start once one is free", () =>
    Effect.gen(function*() {
      const { asRole, role } = yield* limitedRole(4)
      const database = SyncDatabase.Database.Postgres({ url: Redacted.make(asRole.href) })
      const { logger, warnings } = collectingWarnings()
      const steps = { step: "1 second", maxSteps: 120, realPause: "100 millis" } as const
      // Each in a scope of its own, which lets its sessions go before the next.
      const waitsForASession = <A, E>(opening: Layer.Layer<A, E>) =>
        Effect.scoped(Effect.gen(function*() {
          // Another process of the role holds its four sessions (a client opens up to four).
          const other = yield* Scope.make()
          const otherSql = Context.get(yield* Layer.buildWithScope(PostgresDatabase.layerAt(Redacted.make(asRole.href)), other), SqlClient.SqlClient)
          yield* Scope.extend(
            Effect.forEach([1, 2, 3, 4], () => Effect.flatMap(otherSql.reserve, (connection) => connection.executeRaw("SELECT 1", []))),
            other
          )
          warnings.length = 0
          const started = yield* Layer.build(opening).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Effect.fork)
          const refused = Effect.sync(() => warnings.filter((warning) => warning.includes(`too many connections for role "${role}"`)).length)
          yield* ClockSteps.until("three refusals", steps)(Effect.map(refused, (count) => count >= 3))
          expect(warnings.at(-1)).toMatch(/too many connections for role "limited_\w+".*\. Trying again in 2 s, for up to 1m$/)
          expect(yield* Fiber.poll(started)).toEqual(Option.none())
          yield* Scope.close(other, Exit.void)
          const exit = yield* Effect.exit(ClockSteps.runToEnd(steps)(started))
          expect(Exit.isSuccess(exit) ? "started" : Cause.pretty(exit.cause)).toBe("started")
        }))
      yield* waitsForASession(Layer.retry(SyncDatabase.layer(database), Fleet.whileSessionsAreTaken))
      yield* waitsForASession(Fleet.layerClient({ database }))
    }), 60_000)
})

describe("Fleet.layerRunner", () => {
  it.scoped("a runner started before its PostgreSQL waits for it, saying so, and starts once it answers", () =>
    Effect.gen(function*() {
      const url = new URL(Redacted.value(yield* PostgresDatabase.make))
      const late = yield* tcpProxy(url)
      const atLatePort = new URL(url)
      atLatePort.port = String(late.port)
      const { logger, warnings } = collectingWarnings()
      const runner = Fleet.layerRunner({ database: SyncDatabase.Database.Postgres({ url: Redacted.make(atLatePort.href) }), port: yield* freePort }).pipe(
        Layer.provide([Simulator.layerClient({ workspaces: [] }), Secrets.layerConfig])
      )
      const started = yield* Layer.build(runner).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Effect.fork)
      // It says each try, with why, and that it goes on trying.
      for (let wait = 0; wait < 500 && warnings.length === 0; wait++) {
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
      }
      expect(warnings[0]).toMatch(
        new RegExp(`^Could not open the database postgres://postgres@127\\.0\\.0\\.1:${late.port}/\\w+: connect ECONNREFUSED [^ ]+ \\(check that PostgreSQL runs there and listens on that host and port\\)\\. Trying again in 2 s, for up to 1m$`)
      )
      // Nothing more within the 2 s (on the TestClock); its next try finds the server.
      yield* late.open
      yield* TestClock.adjust("1 second")
      expect(warnings).toHaveLength(1)
      yield* TestClock.adjust("1 second")
      const context = yield* Fiber.join(started)
      // Up, through the late server: the cluster's tables and the sync's made.
      const sql = Context.get(context, SqlClient.SqlClient)
      const tables = yield* sql<{ table_name: string }>`SELECT table_name FROM information_schema.tables
        WHERE table_name IN ('cluster_messages', 'cluster_runners', 'intercom_sync_runs') ORDER BY table_name`
      expect(tables.map((row) => row.table_name)).toEqual(["cluster_messages", "cluster_runners", "intercom_sync_runs"])
      expect(warnings).toHaveLength(1)
    }), 60_000)

  it.scoped("a runner whose address another process holds waits for it, saying so, then does not join (AddressInUse); freed, the address is its own", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const port = yield* freePort
      const address = `127.0.0.1:${port}`
      // Another process given the same address (on another machine, --host left at 127.0.0.1): its session holds it.
      const other = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(url))), SqlClient.SqlClient)
      const session = yield* Effect.orDie(other.reserve)
      const key = [AddressLock.namespace, AddressLock.keyText(address)]
      yield* Effect.orDie(session.execute("SELECT pg_advisory_lock($1, hashtext($2))", key, undefined))
      const { logger, warnings } = collectingWarnings()
      const runner = Fleet.layerRunner({ database: SyncDatabase.Database.Postgres({ url }), port }).pipe(
        Layer.provide([Simulator.layerClient({ workspaces: [] }), Secrets.layerConfig])
      )
      const refused = yield* Layer.build(runner).pipe(Effect.flip, Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Effect.fork)
      for (let wait = 0; wait < 500 && warnings.length === 0; wait++) yield* TestServices.provideLive(Effect.sleep("20 millis"))
      expect(warnings).toEqual([
        `Another process holds this runner's address, ${address}: waiting up to 20s for it to free it (an earlier runner at this address, stopping)`
      ])
      const error = yield* ClockSteps.runToEnd({ step: "1 second", maxSteps: 30, realPause: "20 millis" })(refused)
      expect(error).toMatchObject({ _tag: "AddressInUse", address })
      expect(error.message).toContain("--host its machine's IP or name")
      // Freed, the runner takes it at once and holds it while it runs.
      yield* Effect.orDie(session.execute("SELECT pg_advisory_unlock($1, hashtext($2))", key, undefined))
      yield* Layer.build(runner).pipe(Effect.orDie)
      const [row] = yield* Effect.orDie(session.execute("SELECT pg_try_advisory_lock($1, hashtext($2)) AS taken", key, undefined))
      expect(row).toEqual({ taken: false })
    }), 60_000)

  /**
   * A runner on a role of 3 sessions, one held by another process (its first two open, the address's lock keeping one,
   * its third refused), which waits, and starts once that process is gone. `shardingConfig`: the caller's timings.
   */
  const startsOnceASessionIsFree = (shardingConfig?: Fleet.RunnerOptions["shardingConfig"]) =>
    Effect.gen(function*() {
      const { asRole, role } = yield* limitedRole(3)
      const other = yield* Scope.make()
      const otherSql = Context.get(yield* Layer.buildWithScope(PostgresDatabase.layerAt(Redacted.make(asRole.href)), other), SqlClient.SqlClient)
      yield* Scope.extend(Effect.flatMap(otherSql.reserve, (connection) => connection.executeRaw("SELECT 1", [])), other)
      const { logger, warnings } = collectingWarnings()
      // A long wait, so that a loaded machine, whose tries take more steps of the clock, cannot outlast it.
      const runner = Fleet.layerRunner({
        database: SyncDatabase.Database.Postgres({ url: Redacted.make(asRole.href) }),
        port: yield* freePort,
        waitForDatabase: "10 minutes",
        ...(shardingConfig === undefined ? {} : { shardingConfig })
      }).pipe(Layer.provide([Simulator.layerClient({ workspaces: [] }), Secrets.layerConfig]))
      const started = yield* Layer.build(runner).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Effect.fork)
      const steps = { step: "1 second", maxSteps: 300, realPause: "100 millis" } as const
      const refused = Effect.sync(() => warnings.filter((warning) => warning.includes(`too many connections for role "${role}"`)).length)
      // Refused, said, and tried again every 2 s, five times and well past the 8 s in which a lost race is tried again.
      yield* ClockSteps.until("five refusals over 20 s of the clock", steps)(
        Effect.zipWith(refused, Clock.currentTimeMillis, (count, now) => count >= 5 && now >= 20_000)
      )
      expect(warnings.at(-1)).toMatch(/too many connections for role "limited_\w+"\. Trying again in 2 s, for up to 10m$/)
      expect(yield* Fiber.poll(started)).toEqual(Option.none())
      // The other process gone, the runner's next try starts it.
      yield* Scope.close(other, Exit.void)
      const exit = yield* Effect.exit(ClockSteps.runToEnd(steps)(started))
      expect(Exit.isSuccess(exit)).toBe(true)
    })

  it.scoped(
    "a runner whose role's connections are all taken part-way through its start (53300) waits for one, saying so, and starts once one is free",
    () => startsOnceASessionIsFree(),
    60_000
  )

  // The shard locks refreshed less often than every 5 s, the runner's heartbeat is its own: on a connection of the
  // pool, its first beat took the role's last session as the cluster started, which was refused, and so at every try.
  it.scoped(
    "a runner on a role of 3 sessions starts when its shard locks are refreshed every 10 s (a database far away), its heartbeat on no session of its pool",
    () => startsOnceASessionIsFree({ shardLockRefreshInterval: "10 seconds", shardLockExpiration: "30 seconds" }),
    60_000
  )

  it.scoped(
    "a runner that PostgreSQL lets hold fewer sessions than it needs (maxSyncs + 4) says so once at its start, with the numbers and what to do; with enough, not",
    () =>
      Effect.gen(function*() {
        const steps = { step: "1 second", maxSteps: 300, realPause: "100 millis" } as const
        /** A runner of `maxSyncs` syncs on a role of `sessions` (-1: no limit), its database's own limit `databaseSessions`. */
        const runnerOn = (sessions: number, options: { readonly maxSyncs?: number; readonly databaseSessions?: number } = {}) =>
          Effect.gen(function*() {
            const { asRole, role, url } = yield* limitedRole(sessions)
            if (options.databaseSessions !== undefined) {
              yield* Effect.scoped(Effect.flatMap(Layer.build(PostgresDatabase.layerAt(Redacted.make(url.href))), (context) =>
                Context.get(context, SqlClient.SqlClient).unsafe(
                  `ALTER DATABASE ${url.pathname.slice(1)} CONNECTION LIMIT ${options.databaseSessions}`
                )))
            }
            const { logger, warnings } = collectingWarnings()
            const runner = Fleet.layerRunner({
              database: SyncDatabase.Database.Postgres({ url: Redacted.make(asRole.href) }),
              port: yield* freePort,
              maxSyncs: options.maxSyncs ?? 1,
              waitForDatabase: "10 minutes"
            }).pipe(Layer.provide([Simulator.layerClient({ workspaces: [] }), Secrets.layerConfig]))
            const scope = yield* Scope.make()
            const started = yield* Layer.buildWithScope(runner, scope).pipe(
              Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
              Effect.fork
            )
            const said = () => warnings.filter((warning) => warning.startsWith("PostgreSQL lets this runner"))
            const stop = Effect.zipRight(Fiber.interrupt(started), Effect.flatMap(Effect.fork(Scope.close(scope, Exit.void)), ClockSteps.runToEnd(steps)))
            return { role, database: url.pathname.slice(1), warnings, said, started, stop }
          })
        const startsSaying = (runner: Effect.Effect.Success<ReturnType<typeof runnerOn>>) =>
          Effect.gen(function*() {
            expect(Exit.isSuccess(yield* Effect.exit(ClockSteps.runToEnd(steps)(runner.started)))).toBe(true)
            const said = runner.said()
            yield* runner.stop
            return said
          })
        const needs5 = "and it needs 5: one for each sync it runs at once (--max-syncs 1) and 4 besides."

        expect(yield* startsSaying(yield* runnerOn(5))).toEqual([])

        const short = yield* runnerOn(4)
        expect(yield* startsSaying(short)).toEqual([
          `PostgreSQL lets this runner hold fewer sessions than it needs: the role "${short.role}" may hold 4 sessions at once (its CONNECTION LIMIT), ${needs5} With fewer it runs, slower: a sync refused a session runs again later. Raise the limit (ALTER ROLE "${short.role}" CONNECTION LIMIT 5, and more for each other process that logs in as the role) or lower --max-syncs.`
        ])

        // The least of the limits is the one said: the database's here.
        const database = yield* runnerOn(-1, { databaseSessions: 4 })
        expect(yield* startsSaying(database)).toEqual([
          `PostgreSQL lets this runner hold fewer sessions than it needs: the database "${database.database}" takes 4 sessions at once (its CONNECTION LIMIT), ${needs5} With fewer it runs, slower: a sync refused a session runs again later. Raise the limit (ALTER DATABASE "${database.database}" CONNECTION LIMIT 5, and more for each other process that uses it) or lower --max-syncs.`
        ])

        // The server's: the tests' PostgreSQL takes 300, 3 of them for superusers.
        expect(yield* startsSaying(yield* runnerOn(-1, { maxSyncs: 297 }))).toEqual([
          `PostgreSQL lets this runner hold fewer sessions than it needs: the server takes 297 sessions at once of roles that are not superusers (max_connections less those reserved), and it needs 301: one for each sync it runs at once (--max-syncs 297) and 4 besides. With fewer it runs, slower: a sync refused a session runs again later. Raise the limit (max_connections in postgresql.conf, 4 more at least, and a restart) or lower --max-syncs.`
        ])

        // Too few to start: tried again and again, said once.
        const tooFew = yield* runnerOn(2)
        yield* ClockSteps.until("three tries of the start", steps)(
          Effect.sync(() => tooFew.warnings.filter((warning) => warning.includes("Trying again in 2 s")).length >= 3)
        )
        expect(tooFew.said()).toEqual([
          `PostgreSQL lets this runner hold fewer sessions than it needs: the role "${tooFew.role}" may hold 2 sessions at once (its CONNECTION LIMIT), ${needs5} It cannot start on fewer than 3: each try is refused. Raise the limit (ALTER ROLE "${tooFew.role}" CONNECTION LIMIT 5, and more for each other process that logs in as the role) or lower --max-syncs.`
        ])
        yield* tooFew.stop
      }),
    120_000
  )

  it.scoped("a runner on SQLite whose shard locks are refreshed less often than every 5 s writes its own heartbeat every 5 s", () =>
    Effect.gen(function*() {
      const { database, other } = yield* sqliteFile
      const port = yield* freePortBetween(47100, 47200)
      const runner = Fleet.layerRunner({
        database,
        port,
        shardingConfig: { shardLockRefreshInterval: "30 seconds", shardLockExpiration: "90 seconds" }
      }).pipe(Layer.provide([Simulator.layerClient({ workspaces: [] }), Secrets.layerConfig]))
      const steps = { step: "1 second", maxSteps: 20, realPause: "50 millis" } as const
      yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(Layer.build(runner).pipe(Effect.orDie)))
      // A heartbeat a minute old, as a runner silent for a while leaves it (within the cluster's expiration, which would
      // otherwise have it register again): only a beat of the runner's own brings it back within the 30 s of the clock
      // before the cluster's next refresh writes it.
      const fresh = other<{ readonly fresh: number }>`SELECT last_heartbeat > datetime('now', '-30 seconds') AS fresh
        FROM cluster_runners WHERE address = ${`127.0.0.1:${port}`}`
      yield* Effect.orDie(other`UPDATE cluster_runners SET last_heartbeat = datetime('now', '-60 seconds')`)
      expect(yield* Effect.orDie(fresh)).toEqual([{ fresh: 0 }])
      // Before, its `NOW()`, which SQLite has not, failed at every beat, and the failure was ignored.
      yield* ClockSteps.until("the runner's heartbeat written within 5 s of the clock", { ...steps, maxSteps: 7 })(
        Effect.map(Effect.orDie(fresh), ([row]) => row?.fresh === 1)
      )
    }), 60_000)

  it.scoped("a runner on SQLite whose heartbeat is refused says so once, with why, and beats again", () =>
    Effect.gen(function*() {
      const { database, other } = yield* sqliteFile
      const port = yield* freePortBetween(47100, 47200)
      const said: Array<{ readonly level: string; readonly message: string; readonly cause: string }> = []
      const logger = Logger.make(({ cause, logLevel, message }) => {
        said.push({ level: logLevel.label, message: String(message), cause: Cause.pretty(cause, { renderErrorCause: true }) })
      })
      const runner = Fleet.layerRunner({
        database,
        port,
        shardingConfig: { shardLockRefreshInterval: "30 seconds", shardLockExpiration: "90 seconds" }
      }).pipe(
        Layer.provide([Simulator.layerClient({ workspaces: [] }), Secrets.layerConfig]),
        Layer.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      const steps = { step: "1 second", maxSteps: 20, realPause: "50 millis" } as const
      yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(Layer.build(runner).pipe(Effect.orDie)))
      // A fault that stays, as SQLite's missing `NOW()` was: every beat refused (the cluster's own refresh, 30 s on,
      // comes after the test).
      yield* Effect.orDie(other.unsafe(`CREATE TRIGGER beat_refused BEFORE UPDATE OF last_heartbeat ON cluster_runners
        BEGIN SELECT RAISE(ABORT, 'the beat refused'); END`))
      const beats = () => said.filter(({ message }) => message.startsWith("This runner's heartbeat"))
      // Before, the failure was ignored: nothing was said.
      yield* ClockSteps.until("the runner's warning that its heartbeat was not written", { ...steps, maxSteps: 7 })(
        Effect.sync(() => beats().length > 0)
      )
      const refusedAt = yield* Clock.currentTimeMillis
      // Two beats more, refused as well: counted (`LogRepeats`), not said again.
      yield* ClockSteps.until("11 s of the clock", steps)(Effect.map(Clock.currentTimeMillis, (now) => now - refusedAt >= 11_000))
      expect(beats().map(({ level, message }) => ({ level, message }))).toEqual([{
        level: "WARN",
        message:
          `This runner's heartbeat (its row in cluster_runners, 127.0.0.1:${port}) was not written: a runner not heard from for 30s reads as stopped to fleet status and fleet sync. Trying again every 5s`
      }])
      expect(beats()[0]!.cause).toContain("the beat refused")
      // The fault mended, the next beat writes it.
      yield* Effect.orDie(other.unsafe("DROP TRIGGER beat_refused"))
      yield* Effect.orDie(other`UPDATE cluster_runners SET last_heartbeat = datetime('now', '-60 seconds')`)
      yield* ClockSteps.until("the runner's heartbeat written within 5 s of the clock", { ...steps, maxSteps: 7 })(
        Effect.map(
          Effect.orDie(other<{ readonly fresh: number }>`SELECT last_heartbeat > datetime('now', '-30 seconds') AS fresh
            FROM cluster_runners WHERE address = ${`127.0.0.1:${port}`}`),
          ([row]) => row?.fresh === 1
        )
      )
    }), 60_000)

  it("a shard lock's interval grows with the database's distance: twice a handover of half the shards, at least 5 s", () => {
    const interval = (roundTrip: number, shards: number) =>
      Duration.toSeconds(ShardLockTiming.refreshInterval(Duration.millis(roundTrip), shards))
    expect([interval(0, 600), interval(2, 600), interval(4, 600), interval(10, 600), interval(40, 300), interval(40, 600)])
      .toEqual([5, 5, 5, 12, 24, 48])
  })

  it.scopedLive("a database's round trip is the least of several: a loaded machine, which finds answers late, does not read as a far database", () =>
    Effect.gen(function*() {
      const url = new URL(Redacted.value(yield* PostgresDatabase.make))
      // Three answers of each four 300 ms late: the median of five was one of them.
      const loaded = yield* tcpProxy(url, { lateAnswers: (answer) => answer % 4 === 0 ? 0 : 300 })
      yield* loaded.open
      const atLoadedPort = new URL(url)
      atLoadedPort.port = String(loaded.port)
      const sql = Context.get(yield* Layer.build(PostgresDatabase.layerAt(Redacted.make(atLoadedPort.href))), SqlClient.SqlClient)
      const roundTrip = yield* Effect.provideService(ShardLockTiming.roundTrip, SqlClient.SqlClient, sql)
      expect(Duration.toMillis(roundTrip)).toBeLessThan(300)
    }))

  it.scopedLive("a runner joins a fleet whose PostgreSQL is 40 ms away: the first hands it half its shards and keeps the rest", () =>
    Effect.gen(function*() {
      const url = new URL(Redacted.value(yield* PostgresDatabase.make))
      const far = yield* tcpProxy(url, { roundTrip: 40 })
      yield* far.open
      const atFarPort = new URL(url)
      atFarPort.port = String(far.port)
      const direct = Context.get(yield* Layer.build(PostgresDatabase.layerAt(Redacted.make(url.href))), SqlClient.SqlClient)
      const logs: Array<string> = []
      const logger = Logger.make(({ message }) => void logs.push(String(message)))
      const runner = (port: number) =>
        Fleet.layerRunner({ database: SyncDatabase.Database.Postgres({ url: Redacted.make(atFarPort.href) }), port, schedules: false }).pipe(
          Layer.provide([Simulator.layerClient({ workspaces: [] }), Secrets.layerConfig]),
          Layer.provide(Logger.replace(Logger.defaultLogger, logger))
        )
      /** The shard locks (the cluster's advisory locks, one key each) that each runner's session in this database holds. */
      const held: Effect.Effect<Map<string, number>> = Effect.orDie(Effect.map(
        direct<{ readonly application_name: string; readonly shards: number }>`
          SELECT a.application_name, CAST(count(*) AS INTEGER) AS shards FROM pg_locks l
          JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND a.datname = current_database()
          GROUP BY a.application_name`,
        (rows) => new Map(rows.map((row) => [row.application_name.replace("intercom-scroll-fleet runner ", ""), row.shards]))
      ))
      /** Looks every quarter of a second, for up to 90 seconds. */
      const until = (what: string, done: (shards: Map<string, number>) => boolean) =>
        Effect.gen(function*() {
          for (let look = 0; look < 360; look++) {
            if (done(yield* held)) return
            yield* Effect.sleep("250 millis")
          }
          return yield* Effect.dieMessage(`never in 90 s: ${what}`)
        })
      const first = `127.0.0.1:${yield* freePort}`
      yield* Layer.build(runner(Number(first.split(":")[1])))
      yield* until("the first runner holds the group's 300 shards", (shards) => shards.get(first) === 300)
      // The interval follows the distance: 300 shards 40 ms away.
      expect(logs.find((line) => line.startsWith("The database answers in"))).toMatch(
        /^The database answers in \d+\.\d ms: this runner refreshes its 300 shard locks every (2[4-9]|[3-9]\d)s \(5s nearby\)/
      )
      const second = `127.0.0.1:${yield* freePort}`
      yield* Layer.build(runner(Number(second.split(":")[1])))
      // Handed over, 150 each: at 5 s, the first runner's refresh waited behind 300 round trips of releases (12 s),
      // and it dropped every shard, for good.
      yield* until("150 shards each", (shards) => shards.get(first) === 150 && shards.get(second) === 150)
      // And they stay so: the first runner's refresh, after the handover, keeps its shards. Meanwhile both are heard
      // from every 5 s, though their locks are refreshed every 24 s or more (the cluster's heartbeat, alone, left them
      // silent up to that long: stopped or dead to `fleet status` and `OlderRunnersAlive` past 30 s).
      let longestSilence = 0
      for (let look = 0; look < 30; look++) {
        const runners = yield* Effect.orDie(Effect.provideService(FleetStatus.runners, SqlClient.SqlClient, direct))
        expect(runners.map((runner) => runner.address).sort()).toEqual([first, second].sort())
        longestSilence = Math.max(longestSilence, ...runners.map((runner) => runner.silentFor))
        yield* Effect.sleep("500 millis")
      }
      expect(longestSilence).toBeLessThanOrEqual(8)
      expect(yield* held).toEqual(new Map([[first, 150], [second, 150]]))
      expect(logs.filter((line) => line.includes("Shard lock storage is unhealthy"))).toEqual([])
    }), 180_000)

  it.scopedLive("a Sync answered while the database is away is answered once it is back, not dropped", () =>
    Effect.gen(function*() {
      const url = new URL(Redacted.value(yield* PostgresDatabase.make))
      const proxy = yield* tcpProxy(url)
      yield* proxy.open
      const viaProxy = new URL(url)
      viaProxy.port = String(proxy.port)
      // The answer (no token) comes once the test has cut the database off.
      const asked = yield* Deferred.make<void>()
      const answer = yield* Deferred.make<void>()
      let calls = 0
      const secrets = Secrets.layer((ref) =>
        Effect.sync(() => calls++).pipe(
          Effect.zipRight(Deferred.succeed(asked, undefined)),
          Effect.zipRight(Deferred.await(answer)),
          Effect.zipRight(new Secrets.MissingToken({ workspace: ref.workspace, tokenEnv: ref.tokenEnv }))
        ))
      const runner = Fleet.layerRunner({
        database: SyncDatabase.Database.Postgres({ url: Redacted.make(viaProxy.href) }),
        port: yield* freePort
      }).pipe(Layer.provide([Simulator.layerClient(simulated), secrets]), Layer.orDie)
      yield* Effect.gen(function*() {
        const sent = yield* Effect.fork(Effect.either(WorkspaceSync.sync(acme, { resources: ["users"], run: "away" })))
        yield* Deferred.await(asked)
        yield* proxy.cut
        yield* Deferred.succeed(answer, undefined)
        // Longer than the cluster tries to save an answer (about a second).
        yield* Effect.sleep("3 seconds")
        yield* proxy.open
        const answered = yield* Fiber.join(sent).pipe(Effect.timeoutOption("60 seconds"))
        expect(Option.map(answered, (either) => either._tag === "Left" && either.left._tag)).toEqual(Option.some("MissingToken"))
        expect(calls).toBe(1)
      }).pipe(Effect.provide(runner))
    }), 120_000)

  it.scoped("a runner newer than the sync tables, started while runners of the older version are alive, says so and migrates nothing", () =>
    Effect.gen(function*() {
      const database = SyncDatabase.Database.Postgres({ url: yield* PostgresDatabase.make })
      const runner = (port: number) =>
        Fleet.layerRunner({ database, port }).pipe(Layer.provide([Simulator.layerClient({ workspaces: [] }), Secrets.layerConfig]))
      const olderPort = yield* freePort
      const sql = Context.get(yield* Layer.build(runner(olderPort)), SqlClient.SqlClient)
      // The tables as the version before this one left them: at migration 9, without the `interrupted` status migration
      // 10 adds to the runs' CHECK (11 changes nothing in PostgreSQL). The runner started on them stands for a runner of
      // that version, still running.
      yield* sql`DELETE FROM intercom_sync_migrations WHERE migration_id IN (10, 11)`
      yield* sql`ALTER TABLE intercom_sync_runs DROP CONSTRAINT intercom_sync_runs_status_check`
      yield* sql`ALTER TABLE intercom_sync_runs ADD CONSTRAINT intercom_sync_runs_status_check
        CHECK (status IN ('running', 'complete', 'failed', 'abandoned'))`
      const exit = yield* Effect.exit(Layer.build(runner(yield* freePort)))
      const failure = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
      expect(failure).toMatchObject({ _tag: "OlderRunnersAlive", runners: [`127.0.0.1:${olderPort}`], migrations: [10, 11] })
      expect(failure?.message).toContain("Stop every runner of the older version")
      // The older runner's tables left as they were, and the newer runner never joined.
      const migrations = yield* sql<{ migration_id: number }>`SELECT migration_id FROM intercom_sync_migrations ORDER BY 1`
      expect(migrations.map((row) => row.migration_id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
      const runners = yield* sql<{ address: string }>`SELECT address FROM cluster_runners`
      expect(runners.map((row) => row.address)).toEqual([`127.0.0.1:${olderPort}`])
    }), 60_000)

  it.scoped("an option that is no duration is a defect of the layer's build, not a throw of the call", () =>
    Effect.gen(function*() {
      const options = {
        database: SyncDatabase.Database.Sqlite({ filename: join(tmpdir(), "never-opened.sqlite") }),
        port: 1,
        waitForDatabase: "soon" as Duration.DurationInput
      }
      const runner = Fleet.layerRunner(options).pipe(Layer.provide([Simulator.layerClient({ workspaces: [] }), Secrets.layerConfig]))
      const exit = yield* Effect.exit(Layer.build(runner))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause) && String(Cause.squash(exit.cause))).toMatch(/Invalid DurationInput/)
    }))

  it.scoped("a runner whose database refuses it for good (no such database) fails at once, without trying again", () =>
    Effect.gen(function*() {
      const url = new URL(Redacted.value(yield* PostgresDatabase.make))
      url.pathname = "/no_such_database_e3"
      const { logger, warnings } = collectingWarnings()
      const runner = Fleet.layerRunner({ database: SyncDatabase.Database.Postgres({ url: Redacted.make(url.href) }), port: yield* freePort }).pipe(
        Layer.provide([Simulator.layerClient({ workspaces: [] }), Secrets.layerConfig])
      )
      const error = yield* Effect.flip(Layer.build(runner).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger))))
      expect(error).toMatchObject({ _tag: "DatabaseUnavailable", transient: false })
      expect(warnings).toEqual([])
    }), 60_000)
})
