/**
 * The fleet as real processes: a real PostgreSQL, the simulator on a port serving six workspaces, three runner
 * processes and a client-only process that sends `Sync` to every workspace and waits. A runner is stopped mid-sync,
 * by `kill -9` or by SIGTERM, and every workspace must still end complete in the sync tables, with no workspace
 * scrolled by two runners at once. And a one-runner fleet over SQLite, with the same commands.
 */
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { expect, layer } from "@effect/vitest"
import { Sync, SyncDatabase } from "@intercom-scroll/sync"
import { PostgresDatabase } from "@intercom-scroll/testing"
import { Effect, Layer, Redacted } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { Fleet } from "../src/index.js"
import {
  everyWorkspaceCompleted,
  everyWorkspaceSynced,
  logged,
  midSync,
  names,
  neverTwoLiveScrolls,
  passwordNeverShown,
  results,
  Scripts,
  serve,
  startFleet,
  starts
} from "./support/fleet.js"
import { bundle, freePort, node, type Process, tempDir } from "./support/processes.js"

layer(Layer.effect(Scripts, bundle), { timeout: "120 seconds", excludeTestServices: true })("a fleet of runner processes over PostgreSQL", (it) => {
  it.scoped("the fleet's PostgreSQL sessions carry TCP keepalives, so a vanished runner's locks die in seconds", () =>
    Effect.gen(function*() {
      const database = yield* SyncDatabase.parse(Redacted.value(yield* Effect.orDie(PostgresDatabase.make)))
      const sql = yield* Effect.provide(SqlClient.SqlClient, yield* Layer.build(Fleet.layerSql(database)).pipe(Effect.orDie))
      const show = (setting: string) => Effect.map(sql.unsafe<Record<string, string>>(`SHOW ${setting}`), ([row]) => row[setting])
      expect(yield* Effect.all([
        show("tcp_keepalives_idle"),
        show("tcp_keepalives_interval"),
        show("tcp_keepalives_count"),
        show("tcp_user_timeout")
      ]).pipe(Effect.orDie)).toEqual(["5", "2", "3", "11000"])
    }))

  it.scoped("kill -9 of a runner mid-sync: its workspaces move to the others and every workspace ends complete in the tables", () =>
    Effect.gen(function*() {
      const fleet = yield* startFleet({ runners: 3, maxSyncs: 4 })
      const client = yield* fleet.sync
      const { runner: victim, workspace } = yield* midSync(fleet, 10)
      const interrupted = new Set(logged(victim, "Sync started").map(({ workspace }) => workspace))
      for (const { workspace } of logged(victim, "Sync done")) interrupted.delete(workspace)
      victim.signal("SIGKILL")
      const killedAt = Date.now()

      const exit = yield* client.exit.pipe(Effect.timeout("90 seconds"), Effect.orDie)
      const survivors = fleet.runners.filter((runner) => runner !== victim)
      const movedAt = survivors.flatMap((runner) => logged(runner, "Sync received")).find((line) => line.workspace === workspace)?.at ?? NaN
      const restartedElsewhere = names.filter((name) => !interrupted.has(name) && starts(fleet, name) > 1)
      yield* Effect.logInfo(`kill -9 mid-sync of ${workspace}: received by another runner ${movedAt - killedAt} ms later; all done ${exit.at - killedAt} ms after the kill; restarted by a move between survivors: ${restartedElsewhere.join(", ") || "none"}`)
      expect(exit.code).toBe(0)
      everyWorkspaceCompleted(client)

      // Every workspace is in the tables, whole, with one complete run. The run the victim left `running` was marked
      // abandoned by the run that took the lock after it.
      const runs = yield* everyWorkspaceSynced(fleet)
      const abandoned = runs[workspace].filter((run) => run.status === "abandoned")
      const complete = runs[workspace].find((run) => run.status === "complete")!
      expect(abandoned).toHaveLength(1)
      expect(abandoned[0].id).toBeLessThan(complete.id)

      // The workspaces the victim was scrolling were scrolled again, from the first page, by another runner. (So may
      // be a few others: when the ring loses a runner, survivors may trade shards too, and a moved sync starts over.)
      // Each start opened one scroll, and no workspace was scrolled by two runners at once.
      const stats = yield* fleet.simulator.stats
      for (const name of names) {
        expect({ name, scrolls: stats.workspaces[name].scrollsOpened }).toEqual({ name, scrolls: starts(fleet, name) })
        if (interrupted.has(name)) expect(starts(fleet, name)).toBeGreaterThanOrEqual(2)
      }
      yield* neverTwoLiveScrolls(fleet)
      passwordNeverShown(fleet, [...fleet.runners, client])
    }), 180_000)

  it.scoped("SIGTERM to a runner mid-sync: it finishes the sync it runs, hands back those it has not started, and nothing runs twice", () =>
    Effect.gen(function*() {
      // One sync at a time per runner, so that a runner owning two workspaces has one waiting when it is stopped.
      const fleet = yield* startFleet({ runners: 3, maxSyncs: 1 })
      const client = yield* fleet.sync
      const owns = (runner: Process) => logged(runner, "Sync received").length >= 2
      // Late in the sync, so that it ends within the cluster's termination timeout (15 s) on a loaded machine.
      const { runner: victim, workspace } = yield* midSync(fleet, 28, owns)
      const waiting = logged(victim, "Sync received").map(({ workspace }) => workspace)
        .filter((name) => !logged(victim, "Sync started").some((line) => line.workspace === name))
      victim.signal("SIGTERM")
      const stoppedAt = Date.now()

      const victimExit = yield* victim.exit.pipe(Effect.timeout("60 seconds"), Effect.orDie)
      const exit = yield* client.exit.pipe(Effect.timeout("90 seconds"), Effect.orDie)
      const survivors = fleet.runners.filter((runner) => runner !== victim)
      const handedBack = waiting.map((name) =>
        (survivors.flatMap((runner) => logged(runner, "Sync received")).find((line) => line.workspace === name)?.at ?? NaN) - stoppedAt)
      yield* Effect.logInfo(`SIGTERM mid-sync of ${workspace}: runner exited ${victimExit.at - stoppedAt} ms later (code ${victimExit.code}, signal ${victimExit.signal}); ${waiting.length} waiting sync(s) received elsewhere after ${handedBack.join(", ")} ms; all done ${exit.at - stoppedAt} ms after the SIGTERM`)
      expect(exit.code).toBe(0)
      everyWorkspaceCompleted(client)

      // The victim finished the sync it was running, and started none of those still waiting.
      expect(logged(victim, "Sync done").map((line) => line.workspace)).toContain(workspace)
      for (const name of waiting) expect(logged(victim, "Sync started").map((line) => line.workspace)).not.toContain(name)
      // Every workspace started, scrolled and ran exactly once, into the tables: nothing lost, nothing twice.
      const runs = yield* everyWorkspaceSynced(fleet)
      const stats = yield* fleet.simulator.stats
      for (const name of names) {
        expect({ name, starts: starts(fleet, name), scrolls: stats.workspaces[name].scrollsOpened, runs: runs[name].length })
          .toEqual({ name, starts: 1, scrolls: 1, runs: 1 })
      }
      yield* neverTwoLiveScrolls(fleet)
      passwordNeverShown(fleet, [...fleet.runners, client])
    }), 180_000)
})

layer(Layer.effect(Scripts, bundle), { excludeTestServices: true })("a one-runner fleet over SQLite", (it) => {
  it.scoped("one runner over SQLite: the same commands, with sqlite:PATH, into the same tables", () =>
    Effect.gen(function*() {
      const scripts = yield* Scripts
      const workspaces = names.slice(0, 2)
      const simulator = yield* serve({ workspaces: workspaces.map((token) => ({ token, users: 500 })) })
      const dir = yield* tempDir("fleet-sqlite-")
      const filename = join(dir, "fleet.db")
      const file = join(dir, "workspaces.json")
      writeFileSync(file, JSON.stringify(workspaces.map((workspace) => ({
        workspace,
        baseUrl: simulator.baseUrl,
        tokenEnv: `${workspace.toUpperCase()}_TOKEN`
      }))))
      const env = Object.fromEntries(names.map((name) => [`${name.toUpperCase()}_TOKEN`, name]))
      const port = yield* freePort
      yield* node("runner", scripts.runner, ["--database", `sqlite:${filename}`, "--port", String(port)], env)
      const client = yield* node("client", scripts.client, ["--database", `sqlite:${filename}`, "--workspaces", file, "--run", "r1"], env)
      const exit = yield* client.exit.pipe(Effect.timeout("90 seconds"), Effect.orDie)
      expect(exit.code).toBe(0)
      everyWorkspaceCompleted(client, workspaces, 500)
      expect(results(client).map(({ summaries }) => summaries?.[0].inserted)).toEqual([500, 500])
      expect(Object.values((yield* simulator.stats).workspaces).map((counters) => counters.scrollsOpened)).toEqual([1, 1])
      const live = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ workspace: string; live: number }>`SELECT workspace, count(*) AS live FROM ${sql(Sync.tables.users)}
          WHERE deleted_at IS NULL GROUP BY workspace ORDER BY workspace`).pipe(
          Effect.provide(SqliteClient.layer({ filename })),
          Effect.orDie
        )
      expect(live).toEqual([{ workspace: "acme", live: 500 }, { workspace: "globex", live: 500 }])
    }), 120_000)
})
