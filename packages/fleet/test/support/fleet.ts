/**
 * A fleet as real processes, for the process tests: a fresh database on the test run's PostgreSQL, the simulator on a
 * loopback port, runner processes that have split the shards, and a client-only process that sends `Sync` to every
 * workspace. Runners and the client log one JSON object a line, which the tests read.
 */
import { PgClient } from "@effect/sql-pg"
import { expect } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Redacted, type Scope } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import type * as Postgres from "./postgres.js"
import { type bundle, eventually, freePort, node, type Process, tempDir } from "./processes.js"
import { serve, type Served } from "./simulator.js"

export class Server extends Context.Tag("test/Postgres")<Server, Postgres.PostgresServer>() {}
export class Scripts extends Context.Tag("test/Scripts")<Scripts, Effect.Effect.Success<typeof bundle>>() {}

export const names = ["acme", "globex", "initech", "umbrella", "hooli", "stark"]
/** 40 pages of 100 users, 30 ms each: a sync takes a few seconds, long enough to be caught in the middle. */
export const users = 4_000

export interface Fleet {
  readonly database: string
  readonly simulator: Served
  readonly runners: ReadonlyArray<Process>
  readonly sync: Effect.Effect<Process, never, Scope.Scope>
}

/** A fresh database, the simulator, and `count` runners that have split the shards between them. */
export const startFleet = (options: {
  readonly runners: number
  readonly maxSyncs: number
  /** How long an unused scroll lives at the simulator. Default 10 seconds (see below). */
  readonly expiry?: Duration.Duration
}) =>
  Effect.gen(function*() {
    const server = yield* Server
    const scripts = yield* Scripts
    const database = yield* server.createDatabase
    const simulator = yield* serve({
      workspaces: names.map((token) => ({ token, users, faults: { latency: Duration.millis(30) } })),
      // A dead runner's scroll stays open at Intercom until it expires: a minute there, 10 seconds here, so that the
      // new owner waits less (through core's concurrentScroll schedule), while a loaded machine's pauses between pages
      // stay well under it.
      expiry: options.expiry ?? Duration.seconds(10)
    })
    const dir = yield* tempDir("fleet-test-")
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
    yield* shardsSplit(database, options.runners).pipe(
      Effect.catchAllDefect((defect) =>
        Effect.dieMessage(`${String(defect)}\n${runners.map((runner) => `${runner.name} said:\n  ${runner.lines.slice(-8).map((line) => line.text.slice(0, 300)).join("\n  ")}`).join("\n")}`)
      )
    )
    yield* Effect.logInfo(`${options.runners} runners ready in ${Date.now() - startedAt} ms`)
    const sync = node("client", scripts.client, ["--database", database, "--workspaces", file, "--run", "r1"], env)
    return { database, simulator, runners, sync } satisfies Fleet
  })

/** Every shard locked, by `runners` sessions: each runner holds its share, so no shard moves during the test. */
export const shardsSplit = (database: string, runners: number) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    let last = "nothing yet"
    const split = Effect.gen(function*() {
      const holders = yield* sql<{ shards: string }>`
        SELECT count(*) AS shards FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        GROUP BY pid`
      const healthy = yield* sql<{ address: string; healthy: boolean }>`SELECT address, healthy FROM cluster_runners`.pipe(
        Effect.orElseSucceed(() => [])
      )
      const shards = holders.map((holder) => Number(holder.shards))
      last = `shards per session ${JSON.stringify(shards)}, runners ${JSON.stringify(healthy)}`
      return shards.length === runners && shards.reduce((a, b) => a + b, 0) === 300 ? true : undefined
    })
    yield* eventually("the runners to split the shards", 120, split.pipe(Effect.orDie)).pipe(
      Effect.catchAllDefect((defect) => Effect.dieMessage(`${String(defect)}; last seen: ${last}`))
    )
  }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(database) }).pipe(Layer.orDie)), Effect.scoped)

/** The runner's log lines of one kind: `{ workspace, at }`. */
export const logged = (runner: Process, message: string) =>
  runner.json.filter(({ value }) => value.message === message).map(({ at, value }) => ({
    workspace: (value.annotations as Record<string, string>).workspace,
    at
  }))

/** A runner in the middle of a sync: it has started one, which has gone `pages` pages and not ended. */
export const midSync = (fleet: Fleet, pages: number, also: (runner: Process) => boolean = () => true) =>
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
export const starts = (fleet: Fleet, workspace: string) =>
  fleet.runners.flatMap((runner) => logged(runner, "Sync started")).filter((line) => line.workspace === workspace).length

export const results = (client: Process) =>
  client.json.map(({ value }) => value as { workspace: string; ok: boolean; summaries?: Array<{ records: number }> })

export const everyWorkspaceCompleted = (client: Process) => {
  expect(results(client).map(({ workspace }) => workspace).sort()).toEqual([...names].sort())
  for (const result of results(client)) {
    expect(result).toMatchObject({ ok: true })
    expect(result.summaries?.[0].records).toBe(users)
  }
}

