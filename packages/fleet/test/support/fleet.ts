/**
 * A fleet as real processes, for the process tests: a fresh database on the test run's PostgreSQL (the testing
 * package's, started by the project's globalSetup), the simulator on a loopback port, runner processes that have
 * split the shards, and a client-only process that sends `Sync` to every workspace: the CLI's `fleet runner` and `fleet
 * sync`. The tests read the runners' log lines and the client's line per workspace; the sync tables from the database.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { expect } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { Sync } from "@intercom-scroll/sync"
import { PostgresDatabase } from "@intercom-scroll/testing"
import { Context, Data, Duration, Effect, Layer, Redacted, type Scope } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { type bundle, eventually, node, type Process, startRunner, tempDir } from "./processes.js"

export class Scripts extends Context.Tag("test/Scripts")<Scripts, Effect.Effect.Success<typeof bundle>>() {}

export const names = ["acme", "globex", "initech", "umbrella", "hooli", "stark"]
/**
 * 40 pages of 50 users, 30 ms each: a sync takes a few seconds, long enough to be caught in the middle. What the
 * tests catch is counted in pages; each user more is only CPU for the runners and the simulator.
 */
export const users = 2_000
const pageSize = 50

export interface Served {
  readonly baseUrl: string
  readonly stats: Effect.Effect<Simulator.Stats>
  readonly ids: (token: string) => Effect.Effect<ReadonlyArray<string>>
  /** The users the simulator's mutations added to and removed from a workspace. */
  readonly changes: (token: string) => Effect.Effect<Simulator.Changes>
}

/** The simulator on a loopback port, in this process, for as long as the scope lives. */
export const serve = (options: Simulator.SimulatorOptions): Effect.Effect<Served, never, Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(Simulator.layerServer(options)).pipe(Effect.orDie)
    const simulator = Context.get(context, Simulator.Simulator)
    const baseUrl = yield* Effect.provide(Simulator.baseUrl, context)
    return {
      baseUrl,
      stats: simulator.stats,
      ids: (token) => Effect.orDie(simulator.ids(token, "users")),
      changes: (token) => Effect.orDie(simulator.changes(token, "users"))
    }
  })

/** What each process printed last, for a failure's message. */
export const said = (processes: ReadonlyArray<Process>): string =>
  processes.map((process) =>
    `${process.name} said:\n  ${process.lines.slice(-20).map((line) => line.text.slice(0, 600)).join("\n  ")}`
  ).join("\n")

/**
 * An attempt of a process case in which a runner's shard-lock storage went unhealthy: a refresh of its locks got no
 * answer within the cluster's deadline (5 s), which a machine short of CPU brings about at the start of a full run
 * (three test files' fleets, PostgreSQL and simulators on two cores; bench NOTES, "A fleet runner that drops all its
 * shards under load"). The cluster then gives up every shard of that runner and cuts every sync it runs, as it must:
 * what a case of syncs that move or finish checks cannot hold then, and says nothing of the code under test.
 */
export class LockStorageUnhealthy extends Data.TaggedError("LockStorageUnhealthy")<{ readonly said: string }> {}

/** Fails with `LockStorageUnhealthy` when one of `runners` has said that its shard-lock storage is unhealthy. */
export const shardLocksStayedHealthy = (runners: ReadonlyArray<Process>): Effect.Effect<void, LockStorageUnhealthy> =>
  Effect.suspend(() => {
    const unhealthy = runners.flatMap((runner) =>
      runner.lines.filter(({ text }) => text.includes("Shard lock storage is unhealthy"))
        .map(({ text }) => `${runner.name}: ${text.slice(0, 400)}`)
    )
    return unhealthy.length > 0 ? Effect.fail(new LockStorageUnhealthy({ said: unhealthy.join("\n") })) : Effect.void
  })

/**
 * `process`'s end within `within`. Past it, `LockStorageUnhealthy` where one of `runners` said its shard-lock storage
 * was unhealthy (the cluster cut that runner's syncs, which began again and outlast any bound set for them: an attempt
 * that checks nothing, as `shardLocksStayedHealthy` after the end); else a defect saying what the processes said.
 */
export const endedWithin = (
  process: Process,
  within: Duration.DurationInput,
  runners: ReadonlyArray<Process>,
  others: ReadonlyArray<Process> = []
) =>
  process.exit.pipe(
    Effect.timeout(within),
    Effect.catchAll(() =>
      Effect.zipRight(
        shardLocksStayedHealthy(runners),
        Effect.dieMessage(
          `${process.name} did not end within ${Duration.format(Duration.decode(within))}\n${said([...runners, ...others])}`
        )
      )
    )
  )

/**
 * `attempt` again, on a fleet of its own, while a runner's shard-lock storage went unhealthy in it, `attempts` in all:
 * such an attempt checks nothing (`LockStorageUnhealthy`). Any other failure fails at once. Each attempt's scope (its
 * fleet, its processes) is closed before the next begins.
 */
export const whileShardLocksFail = (attempts: number) =>
<A, E, R>(attempt: Effect.Effect<A, E | LockStorageUnhealthy, R>): Effect.Effect<A, Exclude<E, LockStorageUnhealthy>, Exclude<R, Scope.Scope>> =>
  Effect.scoped(attempt).pipe(
    Effect.tapError((error) =>
      error instanceof LockStorageUnhealthy
        ? Effect.logWarning(`An attempt that checks nothing: a runner's shard-lock storage went unhealthy\n${error.said}`)
        : Effect.void
    ),
    Effect.retry({ times: attempts - 1, while: (error) => error instanceof LockStorageUnhealthy }),
    Effect.catchIf(
      (error): error is LockStorageUnhealthy => error instanceof LockStorageUnhealthy,
      (error) =>
        Effect.dieMessage(
          `In each of ${attempts} attempts a runner's shard-lock storage went unhealthy (a refresh unanswered within 5 s: a machine this loaded cannot run the case)\n${error.said}`
        )
    )
  )

export interface Fleet {
  /** The fleet's database URL, password included: what the runners are given. */
  readonly database: string
  /** The workspaces the simulator serves and the client syncs. */
  readonly workspaces: ReadonlyArray<string>
  readonly simulator: Served
  readonly runners: ReadonlyArray<Process>
  readonly sync: Effect.Effect<Process, never, Scope.Scope>
  /** One more runner, started as the others were, once it listens. */
  readonly addRunner: (name: string) => Effect.Effect<Process, never, Scope.Scope>
}

/**
 * A fresh database, the simulator serving the first `workspaces` of `names` (all of them by default; or the names
 * given) at `latency` a page (30 ms by default), and `runners` runners (each given `runnerFlags` too, and `cron`) that
 * have split the shards between them.
 */
export const startFleet = (options: {
  readonly runners: number
  readonly maxSyncs: number
  readonly workspaces?: number | ReadonlyArray<string>
  readonly latency?: Duration.Duration
  readonly runnerFlags?: ReadonlyArray<string>
  /** A `--cron` every runner is given, with the workspaces' file as `--workspaces`: they sync its rounds too. */
  readonly cron?: string
}) =>
  Effect.gen(function*() {
    const scripts = yield* Scripts
    const workspaces = typeof options.workspaces === "object"
      ? options.workspaces
      : names.slice(0, options.workspaces ?? names.length)
    const database = Redacted.value(yield* Effect.orDie(PostgresDatabase.make))
    const simulator = yield* serve({
      pageSize,
      workspaces: workspaces.map((token) => ({ token, users, faults: { latency: options.latency ?? Duration.millis(30) } })),
      // A dead runner's scroll stays open at Intercom until it expires: a minute there, 10 seconds here, so that the
      // new owner waits less (through core's concurrentScroll schedule), while a loaded machine's pauses between pages
      // stay well under it.
      expiry: Duration.seconds(10)
    })
    const dir = yield* tempDir("fleet-test-")
    const file = join(dir, "workspaces.json")
    writeFileSync(file, JSON.stringify(workspaces.map((workspace) => ({
      workspace,
      baseUrl: simulator.baseUrl,
      tokenEnv: `${workspace.toUpperCase()}_TOKEN`
    }))))
    const env = Object.fromEntries(workspaces.map((name) => [`${name.toUpperCase()}_TOKEN`, name]))
    const startedAt = Date.now()
    const addRunner = (name: string) =>
      startRunner(name, scripts.runner, (port) => [
        "--database", database, "--port", String(port), "--max-syncs", String(options.maxSyncs), ...options.runnerFlags ?? [],
        ...options.cron === undefined ? [] : ["--cron", options.cron, "--workspaces", file]
      ], env)
    const runners = yield* Effect.forEach(
      Array.from({ length: options.runners }, (_, i) => i + 1),
      (i) => addRunner(`runner${i}`),
      { concurrency: "unbounded" }
    )
    // A runner that exits before the shards are split never splits them: the first exit ends the wait at once.
    const anExit = Effect.raceAll(runners.map((runner) => Effect.map(runner.exit, (exit) => ({ runner, exit })))).pipe(
      Effect.flatMap(({ exit, runner }) =>
        Effect.dieMessage(`${runner.name} exited (code ${exit.code}, signal ${exit.signal})`)
      )
    )
    // No runner, no shards to split: a fleet whose client waits for one.
    // Runners with --cron hold the schedules' shard group too.
    const groups = options.cron === undefined ? 1 : 2
    if (options.runners > 0) yield* Effect.raceFirst(shardsSplit(database, options.runners, groups), anExit).pipe(
      Effect.catchAllDefect((defect) =>
        Effect.dieMessage(`${String(defect)}\n${said(runners)}`)
      )
    )
    yield* Effect.logInfo(`${options.runners} runners ready in ${Date.now() - startedAt} ms`)
    const sync = node("client", scripts.client, ["--database", database, "--workspaces", file, "--run", "r1"], env)
    return { database, workspaces, simulator, runners, sync, addRunner } satisfies Fleet
  })

/** A client on the fleet's database, for what the tests read and do there themselves. */
export const withDatabase = (fleet: Pick<Fleet, "database">) =>
  Effect.provide(PostgresDatabase.layerAt(Redacted.make(fleet.database)).pipe(Layer.orDie))

/**
 * Every shard of `groups` shard groups locked, by `runners` sessions, each holding its whole share: the cluster gives
 * each runner of equal weight ⌊300 / runners⌋ shards of a group (`HashRing.getShards`), so that no shard moves after.
 * Two holders and every shard locked was not enough: a shard whose sync had just ended on the first runner, released
 * last, was still its own while the second held the rest, and a look at once found no workspace moved. The cluster's
 * shard locks are advisory locks of one key (`objsubid` 1); a runner's address lock and the workspaces' have two.
 */
export const shardsSplit = (database: string, runners: number, groups = 1) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    let last = "nothing yet"
    const split = Effect.gen(function*() {
      const holders = yield* sql<{ shards: string }>`
        SELECT count(*) AS shards FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 1
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        GROUP BY pid`
      const healthy = yield* sql<{ address: string; healthy: boolean }>`SELECT address, healthy FROM cluster_runners`.pipe(
        Effect.orElseSucceed(() => [])
      )
      const shards = holders.map((holder) => Number(holder.shards))
      last = `shards per session ${JSON.stringify(shards)}, runners ${JSON.stringify(healthy)}`
      return shards.length === runners && shards.reduce((a, b) => a + b, 0) === 300 * groups &&
          shards.every((count) => count >= Math.floor(300 / runners) * groups)
        ? true
        : undefined
    })
    yield* eventually("the runners to split the shards", 120, split.pipe(Effect.orDie)).pipe(
      Effect.catchAllDefect((defect) => Effect.dieMessage(`${String(defect)}; last seen: ${last}`))
    )
  }).pipe(withDatabase({ database }), Effect.scoped)

/** The runner's log lines of one kind: `{ workspace, at }`. */
export const logged = (runner: Process, message: string) =>
  runner.json.filter(({ value }) => value.message === message).map(({ at, value }) => ({
    workspace: (value.annotations as Record<string, string>).workspace,
    at
  }))

/** A runner in the middle of a sync: it has started one, which has gone `pages` pages and not ended. */
export const midSync = (fleet: Fleet, pages: number, also: (runner: Process) => boolean = () => true) => {
  // What the last look saw, said if none finds one: each runner's syncs received, started and done, and the pages served.
  let last = "nothing yet"
  return eventually("a runner in the middle of a sync", 60, Effect.gen(function*() {
    const stats = yield* fleet.simulator.stats
    const seen: Array<string> = []
    for (const runner of fleet.runners) {
      const done = new Set(logged(runner, "Sync done").map(({ workspace }) => workspace))
      const started = logged(runner, "Sync started").map(({ workspace }) => workspace)
      seen.push(`${runner.name}: received ${logged(runner, "Sync received").map(({ workspace }) => workspace).join(",")}; ${
        started.map((workspace) => `${workspace} ${stats.workspaces[workspace].pagesServed} pages${done.has(workspace) ? " done" : ""}`).join(", ")
      }`)
      const running = started.find((workspace) => !done.has(workspace) && stats.workspaces[workspace].pagesServed >= pages)
      if (running !== undefined && also(runner)) return { runner, workspace: running }
    }
    last = seen.join("; ")
    return undefined
  })).pipe(Effect.catchAllDefect((defect) => Effect.dieMessage(`${String(defect)}; last seen: ${last}`)))
}

/** How many times a workspace's sync began, on any runner. */
export const starts = (fleet: Fleet, workspace: string) =>
  fleet.runners.flatMap((runner) => logged(runner, "Sync started")).filter((line) => line.workspace === workspace).length

/**
 * The scrolls `workspace`'s syncs started over from their first page (their summaries' `restarts`, as the runners' "Sync
 * done" lines say them), and those lines: each restart opens one more scroll on the simulator, one after the other.
 */
export const restarts = (runners: ReadonlyArray<Process>, workspace: string) => {
  const done = runners.flatMap((runner) => runner.json).filter(({ value }) =>
    value.message === "Sync done" && (value.annotations as Record<string, unknown>).workspace === workspace
  )
  const count = done.reduce((sum, { value }) => {
    const summaries = JSON.parse(String((value.annotations as Record<string, unknown>).summaries)) as ReadonlyArray<{ readonly restarts: number }>
    return sum + summaries.reduce((each, summary) => each + summary.restarts, 0)
  }, 0)
  return { count, said: done.map(({ value }) => JSON.stringify(value)).join("\n") }
}

export interface Result {
  readonly workspace: string
  readonly ok: boolean
  readonly summaries?: ReadonlyArray<{ readonly inserted: number; readonly updated: number; readonly unchanged: number }>
}

// A resource's part, with what it says of runs cut before the one it counts (`, 2 runs cut before this one, …`) inside
// its parentheses.
const summaryPart = /(\w+) [\d,]+ seen \(([\d,]+) inserted, ([\d,]+) updated, ([\d,]+) unchanged, ([\d,]+) deleted(?:, [^)]*)?\)/g
const number = (text: string) => Number(text.replaceAll(",", ""))

/** The client's line per workspace: `acme: complete in 3.2 s: users 2,000 seen (…)` or `acme: failed: …`. */
export const results = (client: Process): ReadonlyArray<Result> =>
  client.lines.flatMap(({ text }): Array<Result> => {
    const complete = /^(.+?): complete in [^:]+: (.*)$/.exec(text)
    if (complete !== null) {
      const summaries = [...complete[2].matchAll(summaryPart)].map(([, , inserted, updated, unchanged]) => ({
        inserted: number(inserted),
        updated: number(updated),
        unchanged: number(unchanged)
      }))
      expect(summaries, `the parts of ${JSON.stringify(text)}`).not.toEqual([])
      return [{ workspace: complete[1], ok: true, summaries }]
    }
    const failed = /^(.+?): failed: /.exec(text)
    return failed === null ? [] : [{ workspace: failed[1], ok: false }]
  })

/** Each workspace answered, with a summary that accounts for all of its users once. */
export const everyWorkspaceCompleted = (client: Process, workspaces: ReadonlyArray<string> = names, count = users) => {
  expect(results(client).map(({ workspace }) => workspace).sort()).toEqual([...workspaces].sort())
  for (const result of results(client)) {
    expect(result).toMatchObject({ ok: true })
    const [summary] = result.summaries ?? []
    expect({ workspace: result.workspace, seen: summary.inserted + summary.updated + summary.unchanged })
      .toEqual({ workspace: result.workspace, seen: count })
  }
}

export interface Run {
  readonly id: number
  readonly workspace: string
  readonly status: string
  readonly records: number | null
  readonly error: string | null
}

/** The sync's runs, oldest first. */
export const syncRuns = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.map(
    sql<{ id: number; workspace: string; status: string; inserted: number | null; updated: number | null; unchanged: number | null; error: string | null }>`
      SELECT id, workspace, status, inserted, updated, unchanged, error FROM ${sql(Sync.runsTable)} ORDER BY id`,
    (rows) =>
      rows.map(({ error, id, inserted, unchanged, updated, status, workspace }): Run => ({
        id,
        workspace,
        status,
        records: inserted === null ? null : inserted + (updated ?? 0) + (unchanged ?? 0),
        error
      }))
  )).pipe(Effect.orDie)

/** How many users' rows the run stored first (`first_seen_run`) and wrote last (`last_seen_run`). */
export const rowsOfRun = (run: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ first: string; last: string }>`SELECT
          count(*) FILTER (WHERE first_seen_run = ${run}) AS first,
          count(*) FILTER (WHERE last_seen_run = ${run}) AS last
        FROM ${sql(Sync.tables.users)}`,
      ([row]) => ({ first: Number(row.first), last: Number(row.last) })
    )).pipe(Effect.orDie)

/**
 * Every workspace ends complete in the tables: one `complete` run of its users, no run left `running`, and its live
 * rows exactly the simulator's users, each last seen by that complete run. Gives every workspace's runs.
 */
export const everyWorkspaceSynced = (fleet: Fleet) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const runs = yield* syncRuns
    const byWorkspace: Record<string, ReadonlyArray<Run>> = {}
    for (const name of fleet.workspaces) {
      const own = runs.filter((run) => run.workspace === name)
      byWorkspace[name] = own
      const complete = own.filter((run) => run.status === "complete")
      expect({ name, complete: complete.length, running: own.filter((run) => run.status === "running").length })
        .toEqual({ name, complete: 1, running: 0 })
      const live = yield* sql<{ id: string; last_seen_run: number }>`
        SELECT id, last_seen_run FROM ${sql(Sync.tables.users)} WHERE workspace = ${name} AND deleted_at IS NULL`
      expect(live.map(({ id }) => id).sort()).toEqual([...yield* fleet.simulator.ids(name)].sort())
      expect(new Set(live.map((row) => row.last_seen_run))).toEqual(new Set([complete[0].id]))
    }
    return byWorkspace
  }).pipe(Effect.orDie, withDatabase(fleet))

/** No workspace was ever asked for a scroll while another client was using its open one. */
export const neverTwoLiveScrolls = (fleet: Fleet) =>
  Effect.gen(function*() {
    const stats = yield* fleet.simulator.stats
    expect(Object.fromEntries(fleet.workspaces.map((name) => [name, stats.workspaces[name].scrollExistsWhileLive])))
      .toEqual(Object.fromEntries(fleet.workspaces.map((name) => [name, 0])))
  })

/** No process printed the database's password (which the runners and the client are given in its URL). */
export const passwordNeverShown = (fleet: Fleet, processes: ReadonlyArray<Process>) => {
  const password = new URL(fleet.database).password
  expect(password.length).toBeGreaterThan(0)
  for (const process of processes) {
    expect(process.lines.filter((line) => line.text.includes(password)).map((line) => `${process.name}: ${line.text}`)).toEqual([])
  }
}
