/**
 * A partition, as the cluster alone sees it: a runner frozen mid-sync (SIGSTOP) whose PostgreSQL sessions are cut
 * (pg_terminate_backend), as when a machine stalls while the database drops its connections. Its advisory locks go
 * with its sessions, so another runner takes its shards and runs its workspace's `Sync` again; when the frozen runner
 * wakes, it still believes it owns the workspace until it notices the lost locks.
 *
 * The test records what each side does and when. With the cluster alone, the woken runner goes on scrolling the
 * workspace the new owner has begun to scroll: the simulator answers the new owner `scroll_exists` while the old
 * owner's scroll is in use. The sync's own lock (stage 2) is the fence that must bring that to zero.
 *
 * Slow (Intercom's one-minute scroll expiry is kept, so that the old scroll is still alive when its owner wakes):
 * run it with FLEET_PARTITION=1.
 */
import { PgClient } from "@effect/sql-pg"
import { describe, expect, layer } from "@effect/vitest"
import { Duration, Effect, Layer, Redacted } from "effect"
import { logged, midSync, Scripts, Server, startFleet } from "./support/fleet.js"
import * as Postgres from "./support/postgres.js"
import { bundle, eventually, type Process } from "./support/processes.js"

const listeningOn = (runner: Process) =>
  runner.json.map(({ value }) => /^Listening on: (.*)$/.exec(String(value.message))?.[1]).find((address) => address !== undefined)!

const Live = Layer.scoped(Server, Postgres.start).pipe(Layer.merge(Layer.effect(Scripts, bundle)))

describe.skipIf(!process.env.FLEET_PARTITION)("a partition, with the cluster alone", () => {
  layer(Live, { timeout: "120 seconds", excludeTestServices: true })((it) => {
    it.scoped(
      "a frozen runner whose sessions are cut loses its workspace to another runner, and scrolls on for a while when it wakes",
      () =>
        Effect.gen(function*() {
          const fleet = yield* startFleet({ runners: 3, maxSyncs: 4, expiry: Duration.minutes(1) })
          const client = yield* fleet.sync
          const { runner: frozen, workspace } = yield* midSync(fleet, 10)
          // The workspace's pages served so far, sampled every 50 ms.
          const samples: Array<{ readonly at: number; readonly pages: number }> = []
          yield* Effect.forkScoped(Effect.forever(Effect.zipRight(
            Effect.flatMap(fleet.simulator.stats, (stats) =>
              Effect.sync(() => samples.push({ at: Date.now(), pages: stats.workspaces[workspace].pagesServed }))),
            Effect.sleep("50 millis")
          )))
          const pagesAt = (at: number) => samples.filter((sample) => sample.at <= at).at(-1)?.pages ?? 0

          const pagesAtFreeze = (yield* fleet.simulator.stats).workspaces[workspace].pagesServed
          const frozenAt = Date.now()
          frozen.signal("SIGSTOP")
          const sql = yield* PgClient.PgClient
          const sessions = yield* sql<{ pid: number }>`
            SELECT pid FROM pg_stat_activity WHERE application_name = ${`intercom-scroll-fleet runner ${listeningOn(frozen)}`}`
          for (const { pid } of sessions) yield* sql`SELECT pg_terminate_backend(${pid})`

          const others = fleet.runners.filter((runner) => runner !== frozen)
          const takenOver = yield* eventually("another runner to start the frozen runner's workspace", 90, Effect.sync(() =>
            others.flatMap((runner) => logged(runner, "Sync started")).find((line) => line.workspace === workspace)))
          frozen.signal("SIGCONT")
          const wokeAt = Date.now()
          // The woken runner finds out it lost its locks at its next lock refresh, and then stops its entities.
          const noticedAt = (yield* eventually("the woken runner to notice its lost shard locks", 60, Effect.sync(() =>
            frozen.json.find((line) => line.at >= wokeAt && line.value.message === "Shard lock storage is unhealthy")))).at

          const exit = yield* client.exit.pipe(Effect.timeout("150 seconds"), Effect.orDie)
          const stats = (yield* fleet.simulator.stats).workspaces[workspace]
          // Intercom (and the simulator) keep the frozen runner's scroll open, so the new owner cannot have been served a
          // page before it expires: the pages served between the wake and the notice are the stale owner's.
          const stalePages = pagesAt(noticedAt) - pagesAt(wokeAt)
          const seconds = (at: number) => `${((at - frozenAt) / 1000).toFixed(1)} s`
          yield* Effect.logInfo([
            `partition of the runner scrolling ${workspace}, with the cluster alone:`,
            `0.0 s SIGSTOP at page ${pagesAtFreeze}, and its ${sessions.length} PostgreSQL sessions terminated`,
            `${seconds(takenOver.at)} another runner starts ${workspace}`,
            `${seconds(wokeAt)} SIGCONT`,
            `${seconds(noticedAt)} the woken runner notices its lost shard locks and stops its entities`,
            `  meanwhile it was served ${stalePages} pages of ${workspace}, which another runner owned`,
            `${seconds(exit.at)} the client exits ${exit.code}; ${workspace}: ${stats.scrollsOpened} scrolls opened, ${
              stats.errorsByCode.scroll_exists ?? 0
            } scroll_exists, of which ${fleet.simulator.liveScrollClashes[workspace] ?? 0} while the open scroll was in use`
          ].join("\n"))

          // With the cluster alone, two runners ran the workspace's Sync at once, and the stale one went on scrolling.
          expect(takenOver.at).toBeLessThan(noticedAt)
          expect(stalePages).toBeGreaterThan(0)
          expect(exit.code).toBe(0)
        }).pipe(Effect.provide(Layer.unwrapEffect(Effect.map(Server, (server) =>
          PgClient.layer({ url: Redacted.make(server.url("postgres")) }))).pipe(Layer.orDie))),
      300_000
    )
  })
})
