/**
 * `intercom-scroll sync` as a user runs it: the bin in processes of its own, against a simulator on a port of this
 * process (whose stats and ids the tests read), into a real SQLite file and a real PostgreSQL server.
 */
import { type CommandExecutor, FileSystem, type HttpServer, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { SyncDatabase } from "@intercom-scroll/sync"
import { PostgresDatabase } from "@intercom-scroll/testing"
import { Context, Duration, Effect, Fiber, Layer, Redacted, type Scope } from "effect"
import { cli, eventually, type Finished, startCli } from "./support/processes.js"

const TOKEN = "sync-test-token-3a9d"
const USERS = 1_200

/** The simulator on a loopback port; the bins reach it over HTTP, the test reads its stats and ids in process. */
const served = (faults: Simulator.WorkspaceOptions["faults"] = {}, options: Partial<Simulator.SimulatorOptions> = {}) =>
  Simulator.layerServer({ workspaces: [{ token: TOKEN, seed: 11, users: USERS, faults }], pageSize: 50, ...options })

type Served = Simulator.Simulator | HttpServer.HttpServer

const env = Effect.map(Simulator.baseUrl, (baseUrl) => ({ INTERCOM_ACCESS_TOKEN: TOKEN, INTERCOM_BASE_URL: baseUrl }))

const sync = (args: ReadonlyArray<string>) =>
  Effect.flatMap(env, (environment) => cli(["sync", ...args], { env: environment }))

const sqliteFile = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  // In a directory yet to be made: the sync creates it.
  return `sqlite:${path.join(yield* fs.makeTempDirectoryScoped({ prefix: "sync-e2e-" }), "data", "intercom.sqlite")}`
})

/** A fresh database on the test run's PostgreSQL server (the project's global setup starts it). */
const postgresDatabase = Effect.map(Effect.orDie(PostgresDatabase.make), Redacted.value)

interface Row {
  readonly id: string
  readonly deleted: number
}

interface Run {
  readonly status: string
  readonly started_at: string | Date
  readonly finished_at: string | Date | null
  readonly inserted: number
  readonly unchanged: number
  readonly deleted: number
  readonly error: string | null
}

/** What the database holds, read as any client of it would. */
const contents = (database: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<Row>`SELECT id, CASE WHEN deleted_at IS NULL THEN 0 ELSE 1 END AS deleted FROM intercom_users WHERE workspace = ${"default"} ORDER BY id`
    const runs = yield* sql<Run>`SELECT status, started_at, finished_at, inserted, unchanged, deleted, error FROM intercom_sync_runs ORDER BY id`
    return {
      live: rows.filter((row) => Number(row.deleted) === 0).map((row) => row.id),
      deleted: rows.filter((row) => Number(row.deleted) === 1).map((row) => row.id),
      total: rows.length,
      runs: runs.map((run) => ({ ...run, inserted: Number(run.inserted), unchanged: Number(run.unchanged), deleted: Number(run.deleted) }))
    }
  }).pipe(Effect.provide(SyncDatabase.layerFromUrl(database)))

const idsNow = Effect.flatMap(Simulator.Simulator, (simulator) => simulator.ids(TOKEN, "users")).pipe(
  Effect.map((ids) => [...ids].sort())
)

/** A sync of the users started, then sent `signal` once it has received 8 pages. */
const syncStopped = (database: string, signal: "SIGKILL" | "SIGINT") =>
  Effect.gen(function*() {
    const simulator = yield* Simulator.Simulator
    const started = yield* startCli(["sync", "users", "--database", database], { env: yield* env })
    yield* eventually(Effect.map(simulator.stats, (stats) => (stats.workspaces[TOKEN]?.pagesServed ?? 0) >= 8))
    yield* started.kill(signal)
    return started
  })

const succeeded = (result: Finished) => {
  expect(result.stderr).toMatch(/^Synced /m)
  expect(result.exitCode).toBe(0)
}

const test = (
  name: string,
  body: () => Effect.Effect<void, unknown, Served | FileSystem.FileSystem | Path.Path | CommandExecutor.CommandExecutor | Scope.Scope>,
  simulator: Layer.Layer<Served, unknown>
) =>
  it.scopedLive(name, () => body().pipe(Effect.provide(Layer.merge(simulator, NodeContext.layer))), 90_000)

// The cases run concurrently: each has its own simulator, files and database, and most of their time is waiting on
// the bin's processes.
describe.concurrent("intercom-scroll sync, as a process", () => {
  test(
    "fills the table from the bin; the next sync, after Intercom removed some users, marks them deleted",
    () =>
      Effect.gen(function*() {
        const database = yield* sqliteFile
        const first = yield* sync(["users", "--database", database])
        succeeded(first)
        expect(first.stderr).toMatch(/Synced 1,200 users into sqlite:.*intercom\.sqlite \(workspace default\) in .*: 1,200 inserted, 0 updated, 0 unchanged, 0 deleted, 0 restarts\.\n$/)
        const before = yield* idsNow
        expect((yield* contents(database)).live).toEqual(before)

        // The second scroll's first request removes 30 users: that scroll never sees them.
        const second = yield* sync(["users", "--database", database])
        succeeded(second)
        const after = yield* idsNow
        expect(after).toHaveLength(USERS - 30)
        expect(second.stderr).toMatch(/: 0 inserted, 0 updated, 1,170 unchanged, 30 deleted, 0 restarts\.\n$/)
        const stored = yield* contents(database)
        expect(stored.live).toEqual(after)
        expect(stored.deleted).toEqual(before.filter((id) => !after.includes(id)))
        expect(stored.runs.map((run) => run.status)).toEqual(["complete", "complete"])
      }),
    served({ mutations: [{ atPage: 26, resource: "users", remove: 30 }] })
  )

  test(
    "kill -9 mid-run: the next sync records the run abandoned, and the table holds every user once",
    () =>
      Effect.gen(function*() {
        const database = yield* sqliteFile
        const killed = yield* syncStopped(database, "SIGKILL")
        expect(yield* killed.exitCode.pipe(Effect.orElseSucceed(() => -1))).not.toBe(0)
        const partial = yield* contents(database)
        expect(partial.total).toBeGreaterThan(0)
        expect(partial.total).toBeLessThan(USERS)
        expect(partial.runs.map((run) => run.status)).toEqual(["running"])

        // The killed scroll stays open on the server until it expires (2 s here): the next sync waits it out.
        const next = yield* sync(["users", "--database", database])
        succeeded(next)
        const stored = yield* contents(database)
        expect(stored.runs.map((run) => run.status)).toEqual(["abandoned", "complete"])
        expect(stored.total).toBe(USERS)
        expect(stored.live).toEqual(yield* idsNow)
        expect(stored.deleted).toEqual([])
        expect(stored.runs[1]).toMatchObject({ inserted: USERS - partial.total, unchanged: partial.total, deleted: 0 })
      }),
    served({ latency: Duration.millis(100) }, { expiry: "2 seconds" })
  )

  test(
    "Ctrl-C mid-run: exit 130, the run recorded interrupted, not failed, nothing marked deleted",
    () =>
      Effect.gen(function*() {
        const database = yield* sqliteFile
        const interrupted = yield* syncStopped(database, "SIGINT")
        expect(yield* interrupted.exitCode).toBe(130)
        const stored = yield* contents(database)
        expect(stored.runs.map((run) => [run.status, run.error])).toEqual([["interrupted", "Interrupted before the scroll reached its end"]])
        expect(stored.total).toBeGreaterThan(0)
        expect(stored.deleted).toEqual([])
      }),
    served({ latency: Duration.millis(100) })
  )

  test(
    "after a Ctrl-C mid-run, the next sync says that the scroll it waits for is its own, and how long it stays",
    () =>
      Effect.gen(function*() {
        const database = yield* sqliteFile
        const interrupted = yield* syncStopped(database, "SIGINT")
        expect(yield* interrupted.exitCode).toBe(130)
        // Intercom keeps the scroll cut short (25 s here): the next sync meets it, and knows it from the note left. At
        // 8 s, on a loaded CI machine, the interrupted process's exit and the next one's start took longer (it never met it).
        const next = yield* sync(["users", "--database", database])
        succeeded(next)
        expect(next.stderr).toMatch(
          /^users: the scroll is this tool's own: an earlier export or sync of this workspace cut it short \d+ s ago \(interrupted, stopped by a failure, or its reader closed the pipe\)/m
        )
        expect(next.stderr).not.toContain("another scroll of this workspace is open")
        expect((yield* contents(database)).live).toEqual(yield* idsNow)
      }),
    served({ latency: Duration.millis(100) }, { expiry: "25 seconds" })
  )

  test(
    "--lock-timeout takes a duration: a second sync of the workspace gives up after it while the first runs; a third, without it, waits, and its line says how long",
    () =>
      Effect.gen(function*() {
        const database = yield* sqliteFile
        const simulator = yield* Simulator.Simulator
        const first = yield* startCli(["sync", "users", "--database", database], { env: yield* env })
        // The first holds the lock from before its first page to after its last: 25 pages at 500 ms leave the second
        // ~12 s to start its process and wait its second, on a machine 3–4 times slower too (at 100 ms, CI's first had
        // finished; at 300 ms, ~7 s, the margin was the second's start and its wait of 1 s, each 3–4 times longer).
        yield* eventually(Effect.map(simulator.stats, (stats) => (stats.workspaces[TOKEN]?.pagesServed ?? 0) >= 1))
        const third = yield* Effect.fork(sync(["users", "--database", database]))
        const second = yield* sync(["users", "--database", database, "--lock-timeout", "1s"])
        expect(second.stderr).toMatch(/^LockTimeout: Another sync of workspace "default" still held its lock after 1 s/m)
        expect(second.exitCode).toBe(1)
        expect(yield* first.exitCode).toBe(0)
        // The run's time starts once it holds the lock: the wait before it is said apart.
        const waited = (yield* Fiber.join(third)).stderr.match(
          /^Synced 1,200 users into .* in \d+\.\d s, after (\d+\.\d) s waiting for another sync of the workspace: 0 inserted, 0 updated, 1,200 unchanged/m
        )
        expect(Number(waited?.[1])).toBeGreaterThanOrEqual(1)
      }),
    served({ latency: Duration.millis(500) })
  )

  test(
    "--pages-per-transaction N: the sync as any other, every record stored once; 0 refused before the database is opened",
    () =>
      Effect.gen(function*() {
        const database = yield* sqliteFile
        const refused = yield* sync(["users", "--database", database, "--pages-per-transaction", "0"])
        expect(refused.exitCode).toBe(1)
        expect(refused.stderr).toContain("--pages-per-transaction must be a whole number, 1 or more")
        expect(yield* (yield* FileSystem.FileSystem).exists(database.slice("sqlite:".length))).toBe(false)
        const result = yield* sync(["users", "--database", database, "--pages-per-transaction", "4"])
        succeeded(result)
        expect(result.stderr).toMatch(/: 1,200 inserted, 0 updated, 0 unchanged, 0 deleted, 0 restarts/)
        expect((yield* contents(database)).live).toEqual(yield* idsNow)
      }),
    served()
  )

  test(
    "a sync held back by Intercom's rate limit says how many times it waited, as an export does",
    () =>
      Effect.gen(function*() {
        const result = yield* sync(["users", "--database", yield* sqliteFile])
        succeeded(result)
        expect(result.stderr).toMatch(/: 1,200 inserted, 0 updated, 0 unchanged, 0 deleted, 0 restarts, \d+ rate-limit waits?\.\n$/)
      }),
    // `/me` and 7 pages, 3 requests a window of 3 s: it waits, unless the machine is so slow that a request takes 1 s
    // (25 pages at 10 a window went through without a wait on a loaded machine, at 400 ms a page).
    served({ rateLimit: { limit: 3, windowSeconds: 3 } }, { pageSize: 200 })
  )

  test(
    "without a token (a blank one too), or with an empty or invalid workspace name: refused, exit 1, the database neither created nor written",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const database = yield* sqliteFile
        for (const env of [{}, { INTERCOM_ACCESS_TOKEN: " " }]) {
          const result = yield* cli(["sync", "users", "--database", database, "--workspace", "acme"], { env })
          expect(result.stderr).toMatch(/^InvalidConfig: INTERCOM_ACCESS_TOKEN /)
          expect(result.exitCode).toBe(1)
          expect(yield* fs.exists(database.slice("sqlite:".length))).toBe(false)
        }
        // An empty workspace name is refused as a usage error, before the database is created too.
        const unnamed = yield* cli(["sync", "users", "--database", database, "--workspace", ""], {
          env: { INTERCOM_ACCESS_TOKEN: "tok" }
        })
        expect(unnamed.stderr).toContain("--workspace must name the workspace: it is empty")
        expect(unnamed.exitCode).toBe(1)
        expect(yield* fs.exists(database.slice("sqlite:".length))).toBe(false)
        // So is one Sync.run would refuse (a space at its start), in its words.
        const spaced = yield* cli(["sync", "users", "--database", database, "--workspace", " acme"], {
          env: { INTERCOM_ACCESS_TOKEN: "tok" }
        })
        expect(spaced.stderr).toMatch(/^InvalidOptions: Invalid sync options: --workspace " acme" must be 1 to 200 characters, without control characters/)
        expect(spaced.exitCode).toBe(1)
        expect(yield* fs.exists(database.slice("sqlite:".length))).toBe(false)
      }),
    served()
  )

  test(
    "--help: the subcommand's usage and flags, in plain text",
    () =>
      Effect.gen(function*() {
        const help = yield* cli(["sync", "--help"])
        expect(help.exitCode).toBe(0)
        expect(help.stdout).toContain("intercom-scroll sync --database URL [--workspace NAME]")
        expect(help.stdout).toContain("--max-restarts N")
        expect(help.stdout).not.toContain("\x1b[")
        expect(help.stdout).not.toContain("A user-defined piece of text")
      }),
    served()
  )

  test(
    "another process holding SQLite's write lock for 7 s, past the driver's 5 s wait: the sync asks again, and ends with every user",
    () =>
      Effect.gen(function*() {
        const database = yield* sqliteFile
        const simulator = yield* Simulator.Simulator
        const pagesServed = Effect.map(simulator.stats, (stats) => stats.workspaces[TOKEN]?.pagesServed ?? 0)
        const syncing = yield* Effect.fork(sync(["users", "--database", database]))
        // The lock taken while the sync has pages to go: 20 pages at 300 ms leave the test ~6 s to open the file and
        // begin its write, on a loaded machine too (at 100 ms, 2 s, shared with the cases running beside it).
        yield* eventually(Effect.map(pagesServed, (served) => served >= 4))
        // A write in a transaction held open, as a backup, a VACUUM or an operator's session holds SQLite's write lock.
        yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql.withTransaction(Effect.zipRight(sql`CREATE TABLE held_by_another_process (x)`, Effect.sleep("7 seconds")))).pipe(
            Effect.provide(SyncDatabase.layerFromUrl(database))
          )
        // The sync was still under way when the lock came back: its writes had waited for it.
        expect(yield* pagesServed).toBeLessThan(USERS / 50)
        const result = yield* Fiber.join(syncing)
        succeeded(result)
        const stored = yield* contents(database)
        expect(stored.runs.map((run) => run.status)).toEqual(["complete"])
        expect(stored.live).toEqual(yield* idsNow)
      }),
    served({ latency: Duration.millis(300) })
  )

  test(
    "sslmode=require against a server whose certificate is self-signed connects as psql does, and so does PGSSLMODE; verify-full refuses the certificate",
    () =>
      Effect.gen(function*() {
        const database = yield* postgresDatabase
        const required = yield* sync(["users", "--database", `${database}?sslmode=require`])
        succeeded(required)
        expect(required.stderr).not.toContain("SECURITY WARNING")
        const fromEnvironment = yield* cli(["sync", "users", "--database", database], { env: { ...(yield* env), PGSSLMODE: "require" } })
        succeeded(fromEnvironment)
        // The server does speak TLS, with a certificate no authority signed.
        const verified = yield* sync(["users", "--database", `${database}?sslmode=verify-full`])
        expect(verified.stderr).toMatch(/^DatabaseUnavailable: .*self-signed certificate \(its certificate is signed by no authority this machine trusts: name the one that signed it with sslrootcert=FILE \(or PGSSLROOTCERT\)/m)
        expect(verified.exitCode).toBe(1)
        const stored = yield* contents(database)
        expect(stored.runs.map((run) => run.status)).toEqual(["complete", "complete"])
        expect(stored.live).toEqual(yield* idsNow)
      }),
    served()
  )

  const together = (database: Effect.Effect<string, unknown, FileSystem.FileSystem | Path.Path | Scope.Scope>) => () =>
    Effect.gen(function*() {
      const url = yield* database
      const simulator = yield* Simulator.Simulator
      const environment = yield* env
      const [a, b] = yield* Effect.all([
        cli(["sync", "users", "--database", url], { env: environment }),
        cli(["sync", "users", "--database", url], { env: environment })
      ], { concurrency: 2 })
      succeeded(a)
      succeeded(b)
      const stats = (yield* simulator.stats).workspaces[TOKEN]
      expect(stats?.scrollExistsWhileLive).toBe(0)
      expect(stats?.scrollsOpened).toBe(2)
      const stored = yield* contents(url)
      const [first, second] = stored.runs
      expect(stored.runs.map((run) => run.status)).toEqual(["complete", "complete"])
      // One after the other: the second started once the first had finished.
      expect(new Date(second!.started_at).getTime()).toBeGreaterThanOrEqual(new Date(first!.finished_at!).getTime())
      expect([first!.inserted, second!.unchanged]).toEqual([USERS, USERS])
      expect(stored.live).toEqual(yield* idsNow)
    })

  test("two syncs of one workspace into SQLite, started together, scroll one after the other", together(sqliteFile), served({ latency: Duration.millis(20) }))

  test("two syncs of one workspace into PostgreSQL, started together, scroll one after the other", together(postgresDatabase), served({ latency: Duration.millis(20) }))

  test(
    "another workspace's token into the same workspace name: refused in one line that names --workspace, the rows untouched",
    () =>
      Effect.gen(function*() {
        const database = yield* sqliteFile
        const baseUrl = yield* Simulator.baseUrl
        const withToken = (token: string, ...args: ReadonlyArray<string>) =>
          cli(["sync", "users", "--database", database, ...args], { env: { INTERCOM_ACCESS_TOKEN: token, INTERCOM_BASE_URL: baseUrl } })
        succeeded(yield* withToken(TOKEN))
        const before = yield* contents(database)

        const other = yield* withToken("sync-test-other-workspace")
        expect(other.exitCode).toBe(1)
        expect(other.stderr).toMatch(
          /^WorkspaceMismatch: The access token belongs to Intercom workspace [0-9a-f]{8} \("Simulated workspace [0-9a-f]{8}"\), but the rows of workspace "default" hold the records of [0-9a-f]{8} \("Simulated workspace [0-9a-f]{8}"\): .* Nothing was written\. Sync this token under a name of its own \(--workspace NAME\)/
        )
        // Ending with the statement that moves the name to the token's workspace (run as it is in the sync's tests).
        expect(other.stderr.trimEnd()).toMatch(
          /bind it to that workspace: INSERT INTO intercom_sync_workspaces \(workspace, app_id, bound_at\) VALUES \('default', '[0-9a-f]{8}', CURRENT_TIMESTAMP\) ON CONFLICT .*$/
        )
        const after = yield* contents(database)
        expect({ live: after.live, deleted: after.deleted }).toEqual({ live: before.live, deleted: before.deleted })

        const ownName = yield* withToken("sync-test-other-workspace", "--workspace", "other")
        succeeded(ownName)
        expect(ownName.stderr).toMatch(/Synced 40 users .*\(workspace other\)/)
        expect(ownName.stderr).not.toContain("Not checked")

        // A token that may not read admins: refused where the rows are bound to a workspace; elsewhere synced, and told
        // once (of three resources) that nothing was checked.
        const unchecked = yield* withToken("sync-test-no-admins")
        expect(unchecked.exitCode).toBe(1)
        expect(unchecked.stderr).toMatch(/^WorkspaceUnchecked: The rows of workspace "default" hold the records of Intercom workspace [0-9a-f]{8}, and Intercom would not say .*"Read admins"/)
        expect(yield* contents(database)).toMatchObject({ live: before.live, deleted: before.deleted })
        const all = yield* cli(["sync", "all", "--database", database, "--workspace", "unchecked"], {
          env: { INTERCOM_ACCESS_TOKEN: "sync-test-no-admins", INTERCOM_BASE_URL: baseUrl }
        })
        expect(all.exitCode).toBe(0)
        expect(all.stderr.match(/^Synced /gm)).toHaveLength(3)
        expect(all.stderr.match(/^Not checked: Intercom did not say which workspace the token belongs to \(GET \/me\)/gm)).toHaveLength(1)
        // After the three summaries, not between them.
        expect(all.stderr.trimEnd().split("\n").at(-1)).toMatch(/^Not checked: /)
      }),
    Simulator.layerServer({
      workspaces: [
        { token: TOKEN, seed: 11, users: USERS },
        { token: "sync-test-other-workspace", seed: 12, users: 40 },
        { token: "sync-test-no-admins", seed: 13, users: 10, leads: 5, companies: 5, readAdmins: false }
      ],
      pageSize: 50
    })
  )

  test(
    "--table-lock-timeout bounds a PostgreSQL sync held by another session's lock on its tables: TableLocked naming that session",
    () =>
      Effect.gen(function*() {
        const database = yield* postgresDatabase
        succeeded(yield* sync(["users", "--database", database]))
        // An operator's psql: the records table locked, the transaction left open until the test's scope ends.
        const sql = Context.get(yield* Layer.build(SyncDatabase.layerFromUrl(database)), SqlClient.SqlClient)
        const operator = yield* sql.reserve
        yield* Effect.addFinalizer(() => Effect.ignore(operator.executeRaw("ROLLBACK", [])))
        yield* operator.executeRaw("BEGIN; LOCK TABLE intercom_users_records IN ACCESS EXCLUSIVE MODE", [])
        // Given the flag's 2 s, not the library's minute.
        const locked = yield* sync(["users", "--database", database, "--table-lock-timeout", "2s"])
        expect(locked.exitCode).toBe(1)
        expect(locked.stderr).toMatch(
          /^TableLocked: A statement of the sync of workspace "default" waited 2 s for a lock on its tables held by pid \d+ \(.*AccessExclusiveLock on intercom_users_records: BEGIN; LOCK TABLE/m
        )
      }),
    served()
  )

  test(
    "fails in one line that names an unreachable database without its password",
    () =>
      Effect.gen(function*() {
        const result = yield* sync(["users", "--database", "postgres://sync:hunter2@127.0.0.1:1/intercom"])
        expect(result.exitCode).toBe(1)
        expect(result.stderr).toMatch(/^DatabaseUnavailable: Could not open the database postgres:\/\/sync@127\.0\.0\.1:1\/intercom: .*ECONNREFUSED.*\n$/)
        expect(result.stderr).not.toContain("hunter2")
      }),
    served()
  )
})
