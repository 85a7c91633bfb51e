/**
 * A partition: a runner frozen mid-sync (SIGSTOP) whose PostgreSQL sessions are cut (pg_terminate_backend), as when a
 * machine stalls while the database drops its connections. Its advisory locks go with its sessions: the cluster's
 * shard locks, so another runner takes its shards and runs its workspace's `Sync` again, and the sync's workspace
 * lock, so the new owner's run takes it. The frozen runner, woken once the new owner is writing, still believes it
 * owns the workspace until it notices its lost shard locks (seconds later), and it wakes with a page in hand.
 *
 * The cluster alone does not fence this (stage 1 measured 16 pages scrolled by the woken runner). The sync's fence
 * must: the stale run writes no page once it has woken (its writes go through the session that ended), it stops
 * before it scrolls on, and the new owner's run ends complete. So the workspace never has two scrolls that both write.
 * And the stale entity, having lost its lock, runs nothing more: once the new owner's run is complete and frees the
 * lock, no second run of the workspace begins (it did when the entity retried its sync after `LockLost`).
 *
 * Two runners and two workspaces are the fewest that show it: the frozen runner's workspace moves to the other
 * runner, which has its own workspace to sync meanwhile.
 */
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import {
  everyWorkspaceCompleted,
  everyWorkspaceSynced,
  logged,
  midSync,
  neverTwoLiveScrolls,
  rowsOfRun,
  Scripts,
  startFleet,
  starts,
  syncRuns,
  withDatabase
} from "./support/fleet.js"
import { bundle, eventually, type Process } from "./support/processes.js"

const listeningOn = (runner: Process) =>
  runner.json.map(({ value }) => /^Listening on: (.*)$/.exec(String(value.message))?.[1]).find((address) => address !== undefined)!

layer(Layer.effect(Scripts, bundle), { timeout: "120 seconds", excludeTestServices: true })("a partition", (it) => {
  it.scoped(
    "a frozen runner whose sessions were cut wakes with a page in hand, and writes it nowhere: the new owner's run alone writes",
    () =>
      Effect.gen(function*() {
        const fleet = yield* startFleet({ runners: 2, maxSyncs: 4, workspaces: 2 })
        const client = yield* fleet.sync
        const { runner: frozen, workspace } = yield* midSync(fleet, 10)
        const inDatabase = withDatabase(fleet)

        const frozenAt = Date.now()
        frozen.signal("SIGSTOP")
        const pagesAtFreeze = (yield* fleet.simulator.stats).workspaces[workspace].pagesServed
        const sessions = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const application = `intercom-scroll-fleet runner ${listeningOn(frozen)}`
          const pids = yield* sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE application_name = ${application}`
          for (const { pid } of pids) yield* sql`SELECT pg_terminate_backend(${pid})`
          yield* eventually("the frozen runner's sessions to end", 30, Effect.map(
            Effect.orDie(sql`SELECT 1 FROM pg_stat_activity WHERE application_name = ${application}`),
            (left) => left.length === 0 ? true : undefined
          ))
          return pids.length
        }).pipe(Effect.orDie, inDatabase)
        // The frozen runner's run, the workspace's first: every row it writes is one it stores first. What it stored
        // before its sessions ended is all it may ever store.
        const runsAtFreeze = (yield* syncRuns.pipe(inDatabase)).filter((run) => run.workspace === workspace)
        expect(runsAtFreeze.map((run) => run.status)).toEqual(["running"])
        const stale = runsAtFreeze[0]
        const writtenBeforeFreeze = (yield* rowsOfRun(stale.id).pipe(inDatabase)).first

        // Another runner takes the workspace over, and its run begins to write.
        const others = fleet.runners.filter((runner) => runner !== frozen)
        const takenOver = yield* eventually("another runner to start the frozen runner's workspace", 90, Effect.sync(() =>
          others.flatMap((runner) => logged(runner, "Sync started")).find((line) => line.workspace === workspace)))
        const successor = yield* eventually("the new owner's run to write a page", 60, Effect.gen(function*() {
          const run = (yield* syncRuns).find((run) => run.workspace === workspace && run.id > stale.id)
          return run !== undefined && (yield* rowsOfRun(run.id)).last > 0 ? run : undefined
        }).pipe(inDatabase))
        frozen.signal("SIGCONT")
        const wokeAt = Date.now()
        // Its next write fails with LockLost; or, when the woken runner finds its shard locks gone first, the cluster
        // stops its entity before that write.
        const fenced = yield* eventually("the woken runner's sync to stop", 60, Effect.sync(() =>
          frozen.json.find(({ at, value }) =>
            at >= wokeAt && (value.annotations as Record<string, string>).workspace === workspace &&
            /lost its lock|^Sync interrupted$/.test(String(value.message))
          )))

        const exit = yield* client.exit.pipe(Effect.timeout("150 seconds"), Effect.orDie)
        const staleAfter = (yield* syncRuns.pipe(inDatabase)).find((run) => run.id === stale.id)!
        const storedByStale = (yield* rowsOfRun(stale.id).pipe(inDatabase)).first
        const stats = (yield* fleet.simulator.stats).workspaces[workspace]
        const runsAfter = (yield* syncRuns.pipe(inDatabase)).filter((run) => run.workspace === workspace)
        const staleAfterLockLost = frozen.json.filter(({ at, value }) =>
          at >= fenced.at && (value.annotations as Record<string, string>).workspace === workspace
        ).map(({ value }) => String(value.message))
        const seconds = (at: number) => `${((at - frozenAt) / 1000).toFixed(1)} s`
        yield* Effect.logInfo([
          `partition of the runner scrolling ${workspace}, with the sync's fence:`,
          `0.0 s SIGSTOP at page ${pagesAtFreeze}, ${writtenBeforeFreeze} users written by its run ${stale.id}; its ${sessions} PostgreSQL sessions terminated`,
          `${seconds(takenOver.at)} another runner starts ${workspace}; its run ${successor.id} is writing`,
          `${seconds(wokeAt)} SIGCONT`,
          `${seconds(fenced.at)} the woken runner's sync stops: ${String(fenced.value.message)}`,
          `${seconds(exit.at)} the client exits ${exit.code}; ${workspace}: ${stats.scrollsOpened} scrolls opened, ${
            stats.errorsByCode.scroll_exists ?? 0
          } scroll_exists, of which ${stats.scrollExistsWhileLive} while the open scroll was in use; run ${stale.id} stored ${storedByStale} users in all, and ended ${staleAfter.status} (${staleAfter.error})`,
          `runs of ${workspace}: ${runsAfter.map((run) => `${run.id} ${run.status}`).join(", ")}; its Sync started ${
            starts(fleet, workspace)
          } times`,
          `the frozen runner on ${workspace} after its LockLost: ${JSON.stringify(staleAfterLockLost)}`
        ].join("\n"))

        expect(exit.code).toBe(0)
        everyWorkspaceCompleted(client, fleet.workspaces)
        // One complete run per workspace, none left running.
        yield* everyWorkspaceSynced(fleet)
        // No run of the workspace began after its complete one: nothing ran again once the new owner's run was done.
        const complete = runsAfter.find((run) => run.status === "complete")!
        expect(runsAfter.filter((run) => run.id > complete.id)).toEqual([])
        // Nor did any entity start its sync over: each time a runner started the workspace's Sync (of users only; the
        // stale entity once, before the freeze), it began one run at most.
        expect(runsAfter.length).toBeLessThanOrEqual(starts(fleet, workspace))
        // The stale run wrote nothing once woken: it stored no more users than before the freeze. (It is marked
        // abandoned by the new owner's run, then failed with its counts if it records its own end.)
        expect(storedByStale).toBe(writtenBeforeFreeze)
        expect(staleAfter.status).not.toBe("complete")
        if (staleAfter.status === "failed") expect(staleAfter.records).toBe(writtenBeforeFreeze)
        yield* neverTwoLiveScrolls(fleet)
      }),
    300_000
  )
})
