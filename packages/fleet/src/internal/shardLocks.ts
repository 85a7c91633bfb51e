/**
 * A runner's cluster storage over SQL, its shard locks given away one at a time.
 *
 * @effect/cluster (0.60) keeps a runner's shard locks on one session, and gives each shard away with two statements
 * on it (`SqlRunnerStorage` `releaseShard`: `pg_advisory_unlock`, then a look at `pg_locks`). `Sharding` forks one
 * release per shard, all at once, and the session runs them in the order they came: a refresh of the runner's locks,
 * due every few seconds and given as long to finish, waits behind every statement of the handover. When a runner joins
 * a fleet of two, each gives it 100 shards (a third of its 300): on a loaded machine (load 7–8 on 2 cores) that queue
 * outlasted the refresh's 5 s deadline, and the runner, taking its lock storage for unhealthy, dropped every shard and
 * cut every sync it ran, not only those whose shards moved (packages/bench/NOTES.md, "A runner joining cut every
 * sync"). Given one at a time, the releases take as long in all, and a refresh waits behind one of them at most.
 *
 * A refresh names the shards being given away too, as they were when it began, and takes again with
 * `pg_try_advisory_lock` any it finds unlocked: a release that ended meanwhile had its shard locked again, one more
 * round trip for the refresh, and a lock the runner no longer knew it held, which kept the shard from the runner it was
 * given to. On a machine short of CPU, where a round trip took 1–1.6 s, that one and the statements of a release
 * between the refresh's own took it past its 5 s deadline (packages/bench/NOTES.md, "A fleet runner that drops all its
 * shards under load"). So the refresh and the releases take the session in turns, and a refresh leaves out the shards
 * whose release has begun.
 *
 * A refresh is two round trips on that session: the runner's heartbeat (`UPDATE cluster_runners`), then the look at
 * its locks. On PostgreSQL the session of the runner's address lock writes that heartbeat every 5 s already
 * (`AddressLock`), so the refresh is the look alone there: one round trip, where a machine short of CPU stretched each
 * to 1–1.6 s and a refresh behind a release's rest missed its 5 s (packages/bench/NOTES.md, "The shard-lock refresh
 * one round trip").
 *
 * A lock operation past the cluster's deadline makes it rebuild the session, and the rebuild gives the old one back to
 * the pool, which hands it out again: where the connection went silent (a firewall or a NAT that dropped its state, and
 * acknowledges still), the runner stayed on it, its shards lost for good (packages/bench/NOTES.md, "A fleet runner
 * whose shard lock session goes silent"). So that session is ended instead.
 *
 * @internal
 */
import { type MessageStorage, RunnerStorage, ShardingConfig, SqlRunnerStorage } from "@effect/cluster"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import { Clock, Duration, Effect, Exit, Layer, Option, type Scope } from "effect"
import type { ConfigError } from "effect/ConfigError"
import * as Messages from "./messageStorage.js"
import * as ShardLockTiming from "./shardLockTiming.js"
import * as SilentSession from "./silentSession.js"

/**
 * `storage`, its lock session taken in turns: its `release`s one at a time, and each of them, or a `refresh`, in its turn;
 * so a refresh waits behind one release at most, never between its statements. A refresh leaves out the shards whose
 * release has begun (the cluster names them until it has seen the release end), so that it does not lock them again;
 * a shard acquired again is refreshed again. `acquire` and `releaseAll` run as they come.
 *
 * With `heartbeatElsewhere` (another session writes the runner's heartbeat), a refresh that names shards is the look at
 * the locks alone: the storage's `acquire`, which on PostgreSQL is that look (and takes a lock it finds free, as the
 * refresh does); one naming none, the probe of a storage found unhealthy, stays the storage's own.
 */
export const inTurns = (storage: RunnerStorage.RunnerStorage["Type"], options: { readonly heartbeatElsewhere: boolean }) =>
  Effect.map(
    Effect.all([Effect.makeSemaphore(1), Effect.makeSemaphore(1)]),
    ([releases, session]): RunnerStorage.RunnerStorage["Type"] => {
      const givenAway = new Set<string>()
      return {
        ...storage,
        acquire: (address, shardIds) =>
          Effect.suspend(() => {
            const shards = Array.from(shardIds)
            for (const shard of shards) givenAway.delete(shard.toString())
            return storage.acquire(address, shards)
          }),
        refresh: (address, shardIds) =>
          session.withPermits(1)(Effect.suspend(() => {
            const kept = Array.from(shardIds).filter((shard) => !givenAway.has(shard.toString()))
            return options.heartbeatElsewhere && kept.length > 0
              ? storage.acquire(address, kept)
              : storage.refresh(address, kept)
          })),
        release: (address, shardId) =>
          releases.withPermits(1)(session.withPermits(1)(Effect.suspend(() => {
            givenAway.add(shardId.toString())
            return storage.release(address, shardId)
          })))
      }
    }
  )

/**
 * `storage`, its lock operations watched: one that ends unanswered past `deadline` (the cluster's, which then rebuilds
 * the lock session) has that session ended (`SilentSession.end`). Within the deadline the cluster takes no session for lost,
 * and past it the cluster drops every shard whatever is done here: on a server merely too loaded to answer, the old
 * session's locks went at its `pg_advisory_unlock_all` once the server came to it, and go now.
 */
const endingSessionsPastDeadline = (
  storage: RunnerStorage.RunnerStorage["Type"],
  sql: SqlClient.SqlClient,
  lockSession: () => SqlConnection.Connection | undefined,
  deadline: Duration.Duration,
  scope: Scope.Scope
): RunnerStorage.RunnerStorage["Type"] => {
  const watched = <A, E>(operation: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.suspend(() => {
      const connection = lockSession()
      const session = connection && SilentSession.pgSession(connection)
      if (session === undefined) return operation
      return Effect.flatMap(Clock.currentTimeMillis, (start) =>
        Effect.onExit(operation, (exit) =>
          Exit.isSuccess(exit) ? Effect.void : Effect.flatMap(Clock.currentTimeMillis, (now) =>
            now - start < Duration.toMillis(deadline)
              ? Effect.void
              // Forked: the cluster waits for no one here, and the termination may wait for a connection of the pool.
              : Effect.asVoid(Effect.forkIn(SilentSession.end(sql, session, deadline), scope)))))
    })
  return {
    ...storage,
    acquire: (address, shardIds) => watched(storage.acquire(address, shardIds)),
    refresh: (address, shardIds) => watched(storage.refresh(address, shardIds)),
    release: (address, shardId) => watched(storage.release(address, shardId)),
    releaseAll: (address) => watched(storage.releaseAll(address))
  }
}

/**
 * `sql`, telling `reserved` of each connection it reserves, the same in all else. A client is a tagged template with
 * members (`reserve`, `withoutTransforms`, `onDialectOrElse`, …): a `Proxy` forwards the calls and every member as
 * they are, typed, where a copy would need a callable rebuilt and a cast.
 */
const notingReserved = (
  sql: SqlClient.SqlClient,
  reserved: (connection: SqlConnection.Connection) => void
): SqlClient.SqlClient =>
  new Proxy(sql, {
    get: (target, key, receiver) =>
      key === "reserve"
        ? Effect.tap(target.reserve, (connection) => Effect.sync(() => reserved(connection)))
        : Reflect.get(target, key, receiver)
  })

/** How a runner's storage is kept: see `inTurns`. */
export interface Options {
  /** Another session writes the runner's heartbeat (`AddressLock`, on PostgreSQL), so a refresh need not. */
  readonly heartbeatElsewhere?: boolean | undefined
}

/**
 * `SqlRunnerStorage.layer`, its lock session taken in turns (`inTurns`), and a lock session that goes silent ended
 * (`endingSessionsPastDeadline`). The lock session is the one connection the storage reserves: its `SqlClient` tells
 * which it is.
 */
export const layerRunnerStorage = (options: Options = {}): Layer.Layer<
  RunnerStorage.RunnerStorage,
  never,
  SqlClient.SqlClient | ShardingConfig.ShardingConfig
> =>
  Layer.scoped(
    RunnerStorage.RunnerStorage,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const config = yield* ShardingConfig.ShardingConfig
      let lockSession: SqlConnection.Connection | undefined
      const storage = yield* Effect.orDie(SqlRunnerStorage.make({})).pipe(
        Effect.provideService(
          SqlClient.SqlClient,
          notingReserved(sql, (connection) => {
            lockSession = connection
          })
        )
      )
      if (Option.isNone(config.runnerAddress)) {
        // A client takes no shard lock, yet the storage keeps a lock session, and asks it for `pg_advisory_unlock_all()`
        // as it closes: on a path gone silent, 5 s unanswered, then @effect/sql-pg's cancel, up to 5 s more, so a
        // finished `fleet sync` took up to 11 s to exit. Its socket closed first (this runs before the storage's own
        // finalizers), that unlock fails at once, and the server ends a session that held nothing.
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            const session = lockSession && SilentSession.pgSession(lockSession)
            session?.socket.destroy()
          })
        )
      }
      return yield* inTurns(endingSessionsPastDeadline(
        storage,
        sql,
        () => lockSession,
        ShardLockTiming.operationInterval(config),
        yield* Effect.scope
      ), { heartbeatElsewhere: options.heartbeatElsewhere === true })
    })
  )

/**
 * The storage `NodeClusterSocket.layer({ storage: "sql" })` builds (and dies as it does on an `SqlError`), for one given
 * `"byo"`: messages in SQL, and the runner's shard locks as `layerRunnerStorage` keeps them, both on `shardingConfig` as
 * the cluster reads it.
 *
 * The messages' storage is built first, the shard locks' once it is done. Built at once, the first held a connection of
 * the pool in its migration's transaction (`LOCK TABLE cluster_migrations`, waited for while another process migrates)
 * while the second reserved its lock session and asked for a connection besides: a session more than the runner holds
 * once started, which a role of 3 sessions (the address's lock, the shard locks', one for the pool) refused (53300) at
 * every start of a runner 40 ms away (packages/bench/NOTES.md, "The cluster's storages built in turn").
 */
export const layerStorage = (
  shardingConfig: Partial<ShardingConfig.ShardingConfig["Type"]>,
  options: Options = {}
): Layer.Layer<
  MessageStorage.MessageStorage | RunnerStorage.RunnerStorage,
  ConfigError,
  SqlClient.SqlClient
> =>
  layerRunnerStorage(options).pipe(
    Layer.provideMerge(Layer.orDie(Messages.layer)),
    Layer.provide(ShardingConfig.layerFromEnv(shardingConfig))
  )
