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
 * @internal
 */
import { type MessageStorage, RunnerStorage, ShardingConfig, SqlMessageStorage, SqlRunnerStorage } from "@effect/cluster"
import type * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Layer } from "effect"
import type { ConfigError } from "effect/ConfigError"

/** `storage`, its `release`s run one at a time; the rest (`refresh` and `acquire` among them) as they come. */
export const releasingOneAtATime = (storage: RunnerStorage.RunnerStorage["Type"]) =>
  Effect.map(Effect.makeSemaphore(1), (one): RunnerStorage.RunnerStorage["Type"] => ({
    ...storage,
    release: (address, shardId) => one.withPermits(1)(storage.release(address, shardId))
  }))

/** `SqlRunnerStorage.layer`, its shards released one at a time. */
export const layerRunnerStorage: Layer.Layer<
  RunnerStorage.RunnerStorage,
  never,
  SqlClient.SqlClient | ShardingConfig.ShardingConfig
> = Layer.effect(
  RunnerStorage.RunnerStorage,
  Effect.flatMap(RunnerStorage.RunnerStorage, releasingOneAtATime)
).pipe(Layer.provide(Layer.orDie(SqlRunnerStorage.layer)))

/**
 * The storage `NodeClusterSocket.layer({ storage: "sql" })` builds (and dies as it does on an `SqlError`), for one given
 * `"byo"`: messages in SQL, and the runner's shard locks as `layerRunnerStorage` keeps them, both on `shardingConfig` as
 * the cluster reads it.
 */
export const layerStorage = (
  shardingConfig: Partial<ShardingConfig.ShardingConfig["Type"]>
): Layer.Layer<
  MessageStorage.MessageStorage | RunnerStorage.RunnerStorage,
  ConfigError,
  SqlClient.SqlClient
> =>
  Layer.merge(Layer.orDie(SqlMessageStorage.layer), layerRunnerStorage).pipe(
    Layer.provide(ShardingConfig.layerFromEnv(shardingConfig))
  )
