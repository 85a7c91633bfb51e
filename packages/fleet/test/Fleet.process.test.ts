/**
 * The fleet as real processes: a real PostgreSQL, the simulator on a port serving six workspaces, three runner
 * processes and a client-only process that sends `Sync` to every workspace and waits. A runner is stopped mid-sync,
 * by `kill -9` or by SIGTERM, and every workspace must still complete, with no workspace scrolled by two runners at
 * once.
 */
import { PgClient } from "@effect/sql-pg"
import { expect, layer } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Redacted, type Scope } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Postgres from "./support/postgres.js"
import { bundle, eventually, freePort, node, type Process } from "./support/processes.js"
import { serve, type Served } from "./support/simulator.js"

class Server extends Context.Tag("test/Postgres")<Server, Postgres.PostgresServer>() {}
class Scripts extends Context.Tag("test/Scripts")<Scripts, Effect.Effect.Success<typeof bundle>>() {}

const names = ["acme", "globex", "initech", "umbrella", "hooli", "stark"]
/** 40 pages of 100 users, 30 ms each: a sync takes a few seconds, long enough to be caught in the middle. */
const users = 4_000

interface Fleet {
  readonly simulator: Served
  readonly runners: ReadonlyArray<Process>
  readonly sync: Effect.Effect<Process, never, Scope.Scope>
}

/** A fresh database, the simulator, and `count` runners that have split the shards between them. */
const startFleet = (options: { readonly runners: number; readonly maxSyncs: number }) =>
  Effect.gen(function*() {
    const server = yield* Server
    const scripts = yield* Scripts
    const database = yield* server.createDatabase
    const simulator = yield* serve({
      workspaces: names.map((token) => ({ token, users, faults: { latency: Duration.millis(30) } })),
      // A dead runner's scroll stays open at Intercom until it expires: a minute there, 10 seconds here, so that the
      // new owner waits less (through core's concurrentScroll schedule), while a loaded machine's pauses between pages
      // stay well under it.
      expiry: Duration.seconds(10)
    })
    const dir = mkdtempSync(join(tmpdir(), "fleet-test-"))
    const file = join(dir, "workspaces.json")
    writeFileSync(file, JSON.stringify(names.map((workspace) => ({
      workspace,
      baseUrl: simulator.baseUrl,
      tokenEnv: `${workspace.toUpperCase()}_TOKEN`
    }))))
    const env = Object.fromEntries(names.map((name) => [`${name.toUpperCase()}_TOKEN`, name]))
    const startedAt = Date.now()
    const runners = yield* Effect.forEach(Array.from({ length: options.runners }, (_, i) => i + 1), (i) =>
      Effect.flatMap(freePort, (port) =>
        node(`runner${i}`, scripts.runner, [
          "--database", database, "--port", String(port), "--max-syncs", String(options.maxSyncs)
        ], env)))
    yield* shardsSplit(database, options.runners)
    yield* Effect.logInfo(`${options.runners} runners ready in ${Date.now() - startedAt} ms`)
    const sync = node("client", scripts.client, ["--database", database, "--workspaces", file, "--run", "r1"], env)
    return { simulator, runners, sync } satisfies Fleet
  })

/** Every shard locked, by `runners` sessions: each runner holds its share, so no shard moves during the test. */
const shardsSplit = (database: string, runners: number) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    yield* eventually("the runners to split the shards", 90, Effect.gen(function*() {
      const [locks] = yield* sql<{ shards: string; holders: string }>`
        SELECT count(*) AS shards, count(DISTINCT pid) AS holders FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`
      if (process.env.FLEET_TEST_ECHO) console.log("locks", locks)
      return Number(locks.shards) === 300 && Number(locks.holders) === runners ? true : undefined
    }).pipe(Effect.orDie))
  }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(database) }).pipe(Layer.orDie)), Effect.scoped)

/** The runner's log lines of one kind: `{ workspace, at }`. */
const logged = (runner: Process, message: string) =>
  runner.json.filter(({ value }) => value.message === message).map(({ at, value }) => ({
    workspace: (value.annotations as Record<string, string>).workspace,
    at
  }))

/** A runner in the middle of a sync: it has started one, which has gone `pages` pages and not ended. */
const midSync = (fleet: Fleet, pages: number, also: (runner: Process) => boolean = () => true) =>
  eventually("a runner in the middle of a sync", 60, Effect.gen(function*() {
    const stats = yield* fleet.simulator.stats
    for (const runner of fleet.runners) {
      const done = new Set(logged(runner, "Sync done").map(({ workspace }) => workspace))
      const running = logged(runner, "Sync started").find(({ workspace }) =>
        !done.has(workspace) && stats.workspaces[workspace].pagesServed >= pages)
      if (running !== undefined && also(runner)) return { runner, workspace: running.workspace }
    }
    return undefined
  }))

/** How many times a workspace's sync began, on any runner. */
const starts = (fleet: Fleet, workspace: string) =>
  fleet.runners.flatMap((runner) => logged(runner, "Sync started")).filter((line) => line.workspace === workspace).length

const results = (client: Process) =>
  client.json.map(({ value }) => value as { workspace: string; ok: boolean; summaries?: Array<{ records: number }> })

const everyWorkspaceCompleted = (client: Process) => {
  expect(results(client).map(({ workspace }) => workspace).sort()).toEqual([...names].sort())
  for (const result of results(client)) {
    expect(result).toMatchObject({ ok: true })
    expect(result.summaries?.[0].records).toBe(users)
  }
}

const PostgresLive = Layer.scoped(Server, Postgres.start).pipe(Layer.merge(Layer.effect(Scripts, bundle)))

layer(PostgresLive, { timeout: "120 seconds", excludeTestServices: true })("a fleet of runner processes over PostgreSQL", (it) => {
  it.scoped("kill -9 of a runner mid-sync: its workspaces move to the others and every workspace completes", () =>
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

      // The workspaces the victim was scrolling were scrolled again, from the first page, by another runner. (So may
      // be a few others: when the ring loses a runner, survivors may trade shards too, and a moved sync starts over.)
      // Each start opened one scroll, and no workspace was scrolled by two runners at once.
      const stats = yield* fleet.simulator.stats
      for (const name of names) {
        expect({ name, scrolls: stats.workspaces[name].scrollsOpened }).toEqual({ name, scrolls: starts(fleet, name) })
        if (interrupted.has(name)) expect(starts(fleet, name)).toBeGreaterThanOrEqual(2)
      }
      expect(fleet.simulator.liveScrollClashes).toEqual({})

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
      // Every workspace started and scrolled exactly once: nothing lost, nothing twice.
      const stats = yield* fleet.simulator.stats
      for (const name of names) {
        expect({ name, starts: starts(fleet, name), scrolls: stats.workspaces[name].scrollsOpened }).toEqual({ name, starts: 1, scrolls: 1 })
      }
      expect(fleet.simulator.liveScrollClashes).toEqual({})

    }), 180_000)
})
