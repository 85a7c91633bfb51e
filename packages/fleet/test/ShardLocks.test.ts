/**
 * A runner's shard locks on a real PostgreSQL while it hands shards to a runner that joins: the refresh of the locks it
 * keeps must not wait behind the whole handover on the lock session (packages/bench/NOTES.md, "A runner joining cut
 * every sync").
 */
import { RunnerAddress, RunnerStorage, ShardId, ShardingConfig } from "@effect/cluster"
import { describe, expect, it } from "@effect/vitest"
import type { SyncDatabase } from "@intercom-scroll/sync"
import { Deferred, Effect, Fiber, Layer } from "effect"
import { Fleet } from "../src/index.js"
import * as ShardLocks from "../src/internal/shardLocks.js"
import { databases } from "./support/inProcess.js"

const address = RunnerAddress.make("127.0.0.1", 1)

/** A runner's storage of its shard locks, as `Fleet.layerRunner` builds it, on a session of its own. */
const runnerStorage = (database: SyncDatabase.Database) =>
  Effect.flatMap(
    Layer.build(ShardLocks.layerRunnerStorage.pipe(
      Layer.provide(ShardingConfig.layer(Fleet.shardingConfig)),
      Layer.provide(Fleet.layerSql(database))
    )).pipe(Effect.orDie),
    (context) => Effect.provide(RunnerStorage.RunnerStorage, context)
  )

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
      const refreshed = yield* Effect.orDie(storage.refresh(address, kept))
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
})
