/**
 * A runner's shard locks on a real PostgreSQL while it hands shards to a runner that joins: the refresh of the locks it
 * keeps must not wait behind the whole handover on the lock session (packages/bench/NOTES.md, "A runner joining cut
 * every sync"). And a lock session that goes silent: the runner gets its shards back on a new one. And the sessions
 * the cluster's storages take as they are built.
 */
import { RunnerAddress, RunnerStorage, ShardId, ShardingConfig } from "@effect/cluster"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { SyncDatabase } from "@intercom-scroll/sync"
import { BlackHole, ClockSteps, PostgresDatabase, Settle } from "@intercom-scroll/testing"
import { Cause, Context, Deferred, Effect, Either, Exit, Fiber, Layer, Option, Redacted, Scope } from "effect"
import { Fleet } from "../src/index.js"
import * as ShardLocks from "../src/internal/shardLocks.js"
import { databases } from "./support/inProcess.js"

const address = RunnerAddress.make("127.0.0.1", 1)

/** A runner's storage of its shard locks, as `Fleet.layerRunner` builds it, on a session of its own. */
const runnerStorage = (database: SyncDatabase.Database, options?: ShardLocks.Options) =>
  Effect.flatMap(
    Layer.build(ShardLocks.layerRunnerStorage(options).pipe(
      Layer.provide(ShardingConfig.layer(Fleet.shardingConfig)),
      Layer.provide(Fleet.layerSql(database))
    )).pipe(Effect.orDie),
    (context) => Effect.provide(RunnerStorage.RunnerStorage, context)
  )

/**
 * `sql`, counting the statements sent on the connections it reserves (the storage's lock session is the one): each of
 * a connection's `execute…` calls is one round trip.
 */
const countingReserved = (sql: SqlClient.SqlClient, counted: { statements: number }): SqlClient.SqlClient =>
  new Proxy(sql, {
    get: (target, key, receiver) =>
      key === "reserve"
        ? Effect.map(target.reserve, (connection) =>
          new Proxy(connection, {
            get: (connection, member, receiver) => {
              const value = Reflect.get(connection, member, receiver)
              return typeof member === "string" && member.startsWith("execute") && typeof value === "function"
                ? (...args: ReadonlyArray<unknown>) => {
                  counted.statements++
                  return Reflect.apply(value, connection, args)
                }
                : value
            }
          }))
        : Reflect.get(target, key, receiver)
  })

describe("ShardLocks", () => {
  it.scopedLive("a refresh waits behind one shard's release at most, not the whole handover", () =>
    Effect.gen(function*() {
      const database = yield* databases.postgres
      const storage = yield* runnerStorage(database)
      // A runner of a fleet of two holds half of each group's shards; a third runner joining takes 100 of its 300.
      const groups = Fleet.shardingConfig.availableShardGroups ?? []
      const shards = groups.flatMap((group) =>
        Array.from({ length: 150 }, (_, i) => ShardId.make(group, 2 * i + 1))
      )
      expect(yield* Effect.orDie(storage.acquire(address, shards))).toHaveLength(300)
      const away = shards.filter((_, i) => i % 3 === 0)
      const kept = shards.filter((_, i) => i % 3 !== 0)

      // As `Sharding` hands them over: a fiber per shard, all at once.
      let released = 0
      const first = yield* Deferred.make<void>()
      const releases = yield* Effect.forEach(away, (shard) =>
        Effect.fork(Effect.orDie(storage.release(address, shard)).pipe(
          Effect.tap(() => released++),
          Effect.zipRight(Deferred.succeed(first, undefined))
        )))
      // The handover under way, as the refresh finds it: the cluster refreshes on its own schedule, not as it forks.
      yield* Deferred.await(first)
      const before = released
      // It names the shards being given away too, as the cluster does: none of them may be locked again.
      const refreshed = yield* Effect.orDie(storage.refresh(address, shards))
      const during = released - before
      yield* Fiber.joinAll(releases)

      // The session's locks, those not released yet among them: every one kept is still held.
      expect(kept.map(String).filter((shard) => !refreshed.map(String).includes(shard))).toEqual([])
      // Two statements of the refresh, each behind one of a release's at most. All at once, the refresh waited behind
      // every release's first statement and most of their second: 100 releases, a 2–5 s wait at load 7–8 on 2 cores.
      expect(during).toBeLessThanOrEqual(3)
      expect(released).toBe(away.length)
      // The runner that joins gets what was given away, and nothing that was kept.
      const joining = yield* runnerStorage(database)
      const taken = yield* Effect.orDie(joining.acquire(RunnerAddress.make("127.0.0.1", 2), shards))
      expect(taken.map(String).sort()).toEqual(away.map(String).sort())
    }), { timeout: 60_000 })

  it.scoped("on PostgreSQL, where the address's lock session writes the runner's heartbeat, a refresh is one round trip on the lock session: the look at its locks", () =>
    Effect.gen(function*() {
      const database = yield* databases.postgres
      const sql = Context.get(yield* Layer.build(Fleet.layerSql(database)).pipe(Effect.orDie), SqlClient.SqlClient)
      const refreshOnce = (options: ShardLocks.Options) =>
        Effect.gen(function*() {
          const counted = { statements: 0 }
          const storage = yield* Layer.build(ShardLocks.layerRunnerStorage(options).pipe(
            Layer.provide(ShardingConfig.layer(Fleet.shardingConfig)),
            Layer.provide(Layer.succeed(SqlClient.SqlClient, countingReserved(sql, counted)))
          )).pipe(Effect.orDie, Effect.map(Context.get(RunnerStorage.RunnerStorage)))
          const shards = Array.from({ length: 10 }, (_, i) => ShardId.make("default", i + 1))
          expect(yield* Effect.orDie(storage.acquire(address, shards))).toHaveLength(10)
          const before = counted.statements
          const refreshed = yield* Effect.orDie(storage.refresh(address, shards))
          // Every lock still held, and said so.
          expect(refreshed.map(String).sort()).toEqual(shards.map(String).sort())
          return counted.statements - before
        }).pipe(Effect.scoped)
      // The cluster's own refresh: its heartbeat, then the look. With the heartbeat written elsewhere, the look alone:
      // on a machine short of CPU, where a round trip took 1–1.6 s, the one saved kept a refresh behind a release's
      // rest within the 5 s after which the runner drops every shard.
      expect(yield* refreshOnce({})).toBe(2)
      expect(yield* refreshOnce({ heartbeatElsewhere: true })).toBe(1)
    }), { timeout: 60_000 })

  it.scoped.each([
    ["its own", {}],
    ["the look alone (the heartbeat written elsewhere)", { heartbeatElsewhere: true }]
  ] as const)("a refresh (%s) that names a shard whose release ended meanwhile does not lock it again; a shard acquired again is refreshed again", ([, options]) =>
    Effect.gen(function*() {
      const database = yield* databases.postgres
      const storage = yield* runnerStorage(database, options)
      const kept = ShardId.make("default", 1)
      const given = ShardId.make("default", 2)
      expect(yield* Effect.orDie(storage.acquire(address, [kept, given]))).toHaveLength(2)
      yield* Effect.orDie(storage.release(address, given))

      // The cluster's refresh names the shards being given away as they were when it began: `given` among them, its
      // release since ended. Before, it found `given` unlocked and took it again (pg_try_advisory_lock), a lock the
      // runner no longer knew it held, and the runner it was given to never got it.
      const refreshed = yield* Effect.orDie(storage.refresh(address, [kept, given]))
      expect(refreshed.map(String)).toEqual([String(kept)])
      const other = RunnerAddress.make("127.0.0.1", 2)
      const joining = yield* runnerStorage(database)
      expect((yield* Effect.orDie(joining.acquire(other, [kept, given]))).map(String)).toEqual([String(given)])

      // Given back and acquired again, it is refreshed with the others.
      yield* Effect.orDie(joining.release(other, given))
      // (What an acquire answers is every lock the session holds, `kept` too.)
      expect((yield* Effect.orDie(storage.acquire(address, [given]))).map(String)).toContain(String(given))
      expect((yield* Effect.orDie(storage.refresh(address, [kept, given]))).map(String).sort()).toEqual(
        [String(kept), String(given)].sort()
      )
    }), { timeout: 60_000 })

  it.scoped("a lock session gone silent is ended at the cluster's deadline, and the runner's shards come back on a new one", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      // Between the runner and its database, a path that goes silent without closing (a NAT or a firewall that dropped
      // its state, something on the way still acknowledging): neither side's keepalives end its sessions.
      const hole = yield* BlackHole.make(url)
      const runner = yield* Scope.make()
      const storage = yield* Scope.extend(runnerStorage(SyncDatabase.Database.Postgres({ url: hole.url })), runner)
      const groups = Fleet.shardingConfig.availableShardGroups ?? []
      const shards = groups.flatMap((group) => Array.from({ length: 300 }, (_, i) => ShardId.make(group, i + 1)))
      expect(yield* Effect.orDie(storage.acquire(address, shards))).toHaveLength(shards.length)

      yield* hole.silence
      // The cluster's refresh: unanswered, it fails at the deadline, and the runner calls its lock storage unhealthy.
      const steps = { step: "1 second", maxSteps: 60, realPause: "30 millis" } as const
      const refresh = yield* Effect.fork(Effect.either(storage.refresh(address, shards)))
      expect(Either.isLeft(yield* ClockSteps.runToEnd(steps)(refresh))).toBe(true)

      // Then the shard acquisition loop tries again, each try within the deadline, until the shards are its own again:
      // on a new session, the silent one ended on the server and its locks gone with it. Before, the cluster's rebuild
      // gave the silent connection back to the pool, got it back, and every try timed out.
      let taken: ReadonlyArray<ShardId.ShardId> = []
      for (let attempt = 0; attempt < 10 && taken.length < shards.length; attempt++) {
        const fiber = yield* Effect.fork(Effect.orElseSucceed(storage.acquire(address, shards), () => []))
        taken = yield* ClockSteps.runToEnd(steps)(fiber)
      }
      expect(taken).toHaveLength(shards.length)
      expect(Either.isRight(yield* Effect.either(storage.refresh(address, shards)))).toBe(true)

      // One session holds them, a live one: the fence of the shards holds (no other runner can take one).
      const direct = SyncDatabase.Database.Postgres({ url })
      const other = yield* runnerStorage(direct)
      expect(yield* Effect.orDie(other.acquire(RunnerAddress.make("127.0.0.1", 2), shards))).toEqual([])

      // The runner stops, once the path resets the connections still silent (its pool's idle ones): node-postgres
      // ends each with a goodbye it waits for.
      yield* hole.reset
      yield* ClockSteps.runToEnd(steps)(yield* Effect.fork(Scope.close(runner, Exit.void)))
    }), { timeout: 120_000 })

  it.scoped("a client's storage on a path gone silent closes without waiting: its lock session holds nothing to unlock", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const hole = yield* BlackHole.make(url)
      const sql = yield* Layer.build(Fleet.layerSql(SyncDatabase.Database.Postgres({ url: hole.url }))).pipe(Effect.orDie)
      // Before the pool ends: its connections still silent, reset, so that it ends at once, whatever the test found.
      yield* Effect.addFinalizer(() => hole.reset)
      // As `Fleet.layerClient` builds it: no runner address, so no shard lock; the cluster reserves a lock session all the same.
      const client = yield* Scope.make()
      const context = yield* Scope.extend(
        Layer.build(ShardLocks.layerRunnerStorage().pipe(
          Layer.provide(ShardingConfig.layer({ ...Fleet.shardingConfig, runnerAddress: Option.none() })),
          Layer.provide(Layer.succeedContext(sql))
        )).pipe(Effect.orDie),
        client
      )
      const storage = yield* Effect.provide(RunnerStorage.RunnerStorage, context)
      expect(yield* Effect.orDie(storage.getRunners)).toEqual([])

      yield* hole.silence
      // The clock stands still: the cluster's `pg_advisory_unlock_all()` on the lock session, given 5 s, then
      // @effect/sql-pg's cancel of it, 5 s more, kept a finished `fleet sync` from exiting for up to 11 s.
      const closing = yield* Effect.fork(Scope.close(client, Exit.void))
      yield* Settle.until("the client's storage closed", Effect.map(Fiber.poll(closing), Option.isSome), "30 seconds")
    }), { timeout: 120_000 })

  it.scopedLive("the cluster's two storages are built one after the other: on a role of the two sessions they hold, they start while another process's migration holds their migrations' table", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(PostgresDatabase.make)
      const direct = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(url))), SqlClient.SqlClient)
      const storages = (database: SyncDatabase.Database, applicationName: string) =>
        Layer.build(ShardLocks.layerStorage(Fleet.shardingConfig).pipe(
          Layer.provide(Fleet.layerSql(database, { applicationName }))
        ))
      // The tables made, as a first runner makes them.
      yield* Effect.orDie(Effect.scoped(storages(SyncDatabase.Database.Postgres({ url }), "first-runner")))
      // A role that may hold two sessions: the shard locks' and one of the pool's.
      const role = `two_${Math.random().toString(36).slice(2, 10)}`
      yield* Effect.orDie(Effect.all([
        direct.unsafe(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT 2 PASSWORD 'two-sessions'`),
        direct.unsafe(`GRANT ALL ON SCHEMA public TO ${role}`),
        direct.unsafe(`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${role}`),
        direct.unsafe(`GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO ${role}`)
      ]))
      const asRole = new URL(Redacted.value(url))
      asRole.username = role
      asRole.password = "two-sessions"
      // Another process's migration under way (a runner starting beside this one): its transaction holds the table.
      const other = yield* Effect.orDie(direct.reserve)
      yield* Effect.orDie(other.executeRaw("BEGIN", []))
      yield* Effect.orDie(other.executeRaw(`LOCK TABLE cluster_migrations IN ACCESS EXCLUSIVE MODE`, []))

      const building = yield* Effect.fork(
        storages(SyncDatabase.Database.Postgres({ url: Redacted.make(asRole.href) }), "second-runner")
      )
      const sessions = Effect.orDie(direct<{ readonly waiting: boolean }>`
        SELECT wait_event_type = 'Lock' AS waiting FROM pg_stat_activity WHERE application_name = 'second-runner'`)
      // Until the messages' migration waits for the table, its transaction begun on a session of the pool; or the
      // build ends first.
      let seen: ReadonlyArray<{ readonly waiting: boolean }> = []
      for (let look = 0; look < 3_000; look++) {
        seen = yield* sessions
        if (seen.some((session) => session.waiting) || Option.isSome(yield* Fiber.poll(building))) break
        yield* Effect.sleep("10 millis")
      }
      // Built at once, the runners' storage reserved its lock session meanwhile and asked for a connection besides:
      // the role's third session, refused (53300), and the cluster's layer died of it.
      const early = yield* Fiber.poll(building)
      expect(Option.map(early, (exit) => Exit.isSuccess(exit) ? "built" : Cause.pretty(exit.cause))).toEqual(Option.none())
      // The migration's session alone, waiting: the lock session comes once it is done.
      expect(seen).toEqual([{ waiting: true }])

      yield* Effect.orDie(other.executeRaw("COMMIT", []))
      const exit = yield* Fiber.await(building)
      expect(Exit.isSuccess(exit) ? "built" : Cause.pretty(exit.cause)).toBe("built")
      // The lock session and the pool's one.
      expect((yield* sessions).length).toBe(2)
    }), { timeout: 60_000 })
})
