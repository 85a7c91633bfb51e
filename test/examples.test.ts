/**
 * Each example as a process of its own over real HTTP, its result checked against the simulated data: once with
 * its embedded simulator (no token), once against a standalone simulator through INTERCOM_BASE_URL. The processes
 * run the examples' source bundled (support/processes.ts says why); one case runs `pnpm -C examples export-users`
 * itself, tsx and all, to show where its file goes. The cases run concurrently: most of their time is waiting.
 */
import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { IntercomClient, Models, Scroll } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Sync } from "@intercom-scroll/sync"
import { Effect, Layer, Redacted, Stream } from "effect"
import * as NodePath from "node:path"
import { bundleExamples, eventually, example, exampleScript, root, start } from "./support/processes.js"
import { simulatorForAll } from "./support/suite.js"

const examples = [
  "export-users", "schedules", "compose", "sync-sqlite", "query-copy", "many-workspaces", "readme-library", "core-readme", "fleet"
]

beforeAll(() => bundleExamples(examples), 120_000)

/** A fresh working directory for the process, so that its out/ is its own. */
const temporaryDirectory = Effect.flatMap(FileSystem.FileSystem, (fs) =>
  Effect.flatMap(fs.makeTempDirectoryScoped({ prefix: "examples-e2e-" }), (directory) => fs.realPath(directory)))

/** The records an example's workspace holds, read in process. */
const simulated = (workspace: Simulator.WorkspaceOptions) =>
  IntercomClient.layer({ accessToken: Redacted.make(workspace.token) }).pipe(
    Layer.provide(Simulator.layerClient({ workspaces: [workspace] }))
  )

const lines = (text: string) => text.split("\n").filter((line) => line !== "")

const idsIn = (file: string) =>
  Effect.map(
    Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(file)),
    (text) => lines(text).map((line) => (JSON.parse(line) as { readonly id: string }).id)
  )

const userIds = (workspace: Simulator.WorkspaceOptions) =>
  Scroll.users().pipe(Stream.map((user) => user.id), Stream.runCollect, Effect.map((ids) => [...ids].sort()), Effect.provide(simulated(workspace)))

/** The ids of the copy's users in an example's SQLite file: those still in Intercom, and those marked deleted. */
const copiedUsers = (file: string, workspace = "example") =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ id: string; deleted: number }>`
      SELECT id, deleted_at IS NOT NULL AS deleted FROM ${sql(Sync.tables.users)} WHERE workspace = ${workspace}`
    return {
      live: rows.filter((row) => !row.deleted).map((row) => row.id).sort(),
      deleted: rows.filter((row) => row.deleted).map((row) => row.id).sort()
    }
  }).pipe(Effect.provide(SqliteClient.layer({ filename: file })), Effect.scoped, Effect.orDie)

/** How many people each company has and what it is called, computed with plain loops. */
const companyCounts = (workspace: Simulator.WorkspaceOptions) =>
  Effect.gen(function*() {
    const names = new Map<string, string>()
    yield* Stream.runForEach(Scroll.companies(), (company) => Effect.sync(() => names.set(company.id, company.name ?? company.id)))
    const counts = new Map<string, number>()
    yield* Stream.runForEach(Stream.concat(Scroll.users(), Scroll.leads()), (person) =>
      Effect.sync(() => {
        for (const company of person.companies?.companies ?? []) {
          if (company.id) counts.set(company.id, (counts.get(company.id) ?? 0) + 1)
        }
      }))
    return { names, counts }
  }).pipe(Effect.provide(simulated(workspace)))

/** compose's output: the headline, then the five largest companies, each count the company's. */
const expectCompose = (stdout: string, expected: Effect.Effect.Success<ReturnType<typeof companyCounts>>) => {
  const [headline, ...top] = lines(stdout)
  expect(headline).toBe(`companies: ${expected.names.size}, with people: ${expected.counts.size}`)
  expect(top).toHaveLength(5)
  for (const row of top) {
    const [, count, name] = /^\s*(\d+)\s{2}(.*)$/.exec(row) ?? []
    const ids = [...expected.names].filter(([, companyName]) => companyName === name).map(([id]) => id)
    expect(ids.map((id) => expected.counts.get(id))).toContain(Number(count))
  }
  expect(top[0]).toMatch(new RegExp(`^\\s*${Math.max(...expected.counts.values())}\\s`))
}

describe.concurrent("examples, each with its embedded simulator", () => {
  it.scopedLive("export-users writes every user once to out/users.ndjson of its directory and says where", () =>
    Effect.gen(function*() {
      const path = yield* Path.Path
      const cwd = yield* temporaryDirectory
      const result = yield* example("export-users", { cwd })
      expect(result.exitCode).toBe(0)
      const file = path.join(cwd, "out", "users.ndjson")
      expect(result.stdout).toBe(`Exported 2500 users to ${file}\n`)
      expect((yield* idsIn(file)).sort()).toEqual(yield* userIds({ token: "dG9rOmV4YW1wbGU6MTIzNA==", users: 2_500 }))
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("schedules waits out the foreign scroll, restarts once, then handles Unauthorized", () =>
    Effect.gen(function*() {
      const result = yield* example("schedules", { cwd: yield* temporaryDirectory })
      expect(result.exitCode).toBe(0)
      const output = lines(result.stdout)
      // A line a try: the foreign scroll holds the workspace 3 s, tried every second (its schedule's tapInput ran ~30
      // times a try while the library stepped it ahead to report its end).
      const waits = output.filter((line) => line === "another scroll holds the workspace; waiting")
      expect(waits.length).toBeGreaterThanOrEqual(1)
      expect(waits.length).toBeLessThanOrEqual(5)
      expect(output.filter((line) => line === "restarting from the first page after RestartRequired")).toHaveLength(1)
      // A restart of the open scroll (its 500 falls on a page after the refused tries), not a retry of its first page.
      expect(result.stdout).toContain("Restarting the users scroll from the first page")
      expect(result.stdout).not.toContain("did not open")
      expect(output).toContain("with the workspace's token: 1000 users")
      expect(output.at(-1)).toMatch(/^with a wrong token: the token was refused\. Unauthorized: /)
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("compose counts the people of each company, users then leads", () =>
    Effect.gen(function*() {
      const expected = yield* companyCounts({ token: "dG9rOmV4YW1wbGU6MTIzNA==", users: 2_000, leads: 500, companies: 40 })
      const result = yield* example("compose", { cwd: yield* temporaryDirectory })
      expect(result.exitCode).toBe(0)
      expectCompose(result.stdout, expected)
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("sync-sqlite keeps every user once in out/intercom.sqlite through a restart, then queries it", () =>
    Effect.gen(function*() {
      const path = yield* Path.Path
      const cwd = yield* temporaryDirectory
      const result = yield* example("sync-sqlite", { cwd })
      expect(result.exitCode).toBe(0)
      // The restart's log line comes first (Effect's logger writes to stdout), then the example's own output.
      const output = lines(result.stdout)
      const at = output.findIndex((line) => line.startsWith("synced "))
      const [summary, ...domains] = output.slice(at)
      const file = path.join(cwd, "out", "intercom.sqlite")
      expect(summary).toBe(`synced users of simulated into ${file}: 2000 inserted, 0 updated, 0 unchanged, 0 deleted, 1 restart`)
      expect(domains).toHaveLength(3)
      expect(output.slice(0, at).join("\n")).toContain("Restarting the users scroll from the first page")
      const copy = yield* copiedUsers(file, "simulated")
      expect(copy).toEqual({ live: yield* userIds({ token: "dG9rOmV4YW1wbGU6MTIzNA==", users: 2_000 }), deleted: [] })
      // Run again, it finds every user as it was.
      const again = yield* example("sync-sqlite", { cwd })
      expect(lines(again.stdout).find((line) => line.startsWith("synced "))).toBe(
        `synced users of simulated into ${file}: 0 inserted, 0 updated, 2000 unchanged, 0 deleted, 1 restart`
      )
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("query-copy lists what the second sync found new and what it found deleted", () =>
    Effect.gen(function*() {
      const path = yield* Path.Path
      const cwd = yield* temporaryDirectory
      const result = yield* example("query-copy", { cwd })
      expect(result.exitCode).toBe(0)
      const [first, second, changed, deletedLine, ...deletedRows] = lines(result.stdout)
      expect([first, second, changed, deletedLine]).toEqual([
        `first sync into ${path.join(cwd, "out", "query-copy.sqlite")}: 1000 inserted`,
        "second sync: 25 inserted, 0 updated, 10 deleted",
        "changed since the last sync: 25 (25 new)",
        "deleted: 10"
      ])
      const copy = yield* copiedUsers(path.join(cwd, "out", "query-copy.sqlite"))
      const listed = deletedRows.map((row) => row.trim().split(/\s+/)[0]).sort()
      expect(listed).toEqual(copy.deleted)
      // The deleted were among the workspace's first users, and are no longer among its live ones.
      const before = yield* userIds({ token: "dG9rOmV4YW1wbGU6MTIzNA==", users: 1_000 })
      expect(listed.every((id) => before.includes(id) && !copy.live.includes(id))).toBe(true)
      expect(copy.live).toHaveLength(1_015)
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("many-workspaces scrolls four workspaces, two at a time, and adds them up", () =>
    Effect.gen(function*() {
      const result = yield* example("many-workspaces", { cwd: yield* temporaryDirectory })
      expect(result.exitCode).toBe(0)
      expect(lines(result.stdout)).toEqual([
        "workspace 1: 1000 users",
        "workspace 2: 1500 users",
        "workspace 3: 2000 users",
        "workspace 4: 2500 users",
        "total: 7000 users"
      ])
      expect(lines(result.stderr).at(-1)).toBe("workspaces 4/4 · 7000 users · 70 pages · 0 restarts")
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("`pnpm -C examples export-users` writes to out/ of the directory it was run from", () =>
    Effect.gen(function*() {
      const path = yield* Path.Path
      const cwd = yield* temporaryDirectory
      const result = yield* exampleScript("export-users", { cwd })
      expect(result.exitCode).toBe(0)
      const file = path.join(cwd, "out", "users.ndjson")
      expect(result.stdout).toBe(`Exported 2500 users to ${file}\n`)
      expect(yield* idsIn(file)).toHaveLength(2_500)
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("fleet syncs six workspaces on a one-runner SQLite fleet, and a second run finds them unchanged", () =>
    Effect.gen(function*() {
      const path = yield* Path.Path
      const cwd = yield* temporaryDirectory
      const sizes = [1000, 1250, 1500, 1750, 2000, 2250]
      const names = ["acme", "globex", "initech", "umbrella", "hooli", "stark"]
      const first = yield* example("fleet", { cwd })
      expect(first.exitCode).toBe(0)
      expect(lines(first.stdout).sort()).toEqual([
        ...names.map((name, i) =>
          `${name.padEnd(9)} ${String(sizes[i]).padStart(5)} users: ${sizes[i]} inserted, 0 updated, 0 unchanged, 0 deleted`),
        `6 workspaces synced; 9750 users in ${path.join(cwd, "out", "fleet.sqlite")}`
      ].sort())
      const second = yield* example("fleet", { cwd })
      expect(second.exitCode).toBe(0)
      expect(lines(second.stdout)).toContain(`acme       1000 users: 0 inserted, 0 updated, 1000 unchanged, 0 deleted`)
    }).pipe(Effect.provide(NodeContext.layer)), 180_000)
})

describe.concurrent("examples against a standalone simulator (INTERCOM_BASE_URL)", () => {
  // One workspace per example, so that the examples run at once without waiting for each other's scroll. The
  // simulator gives its Nth workspace the seed N; the sizes are the same for all.
  const tokens = ["export-users", "schedules", "compose", "sync-sqlite", "many-1", "many-2", "readme-library", "core-readme"].map(
    (name) => Buffer.from(`tok:${name}:1234`).toString("base64")
  )
  const sizes = { users: 300, leads: 60, companies: 12 }
  const workspace = (token: string) => ({ token, seed: tokens.indexOf(token) + 1, ...sizes })

  // The standalone simulator (a process of its own, over real HTTP), one for every case.
  const baseUrl = simulatorForAll([
    "--users", String(sizes.users), "--leads", String(sizes.leads), "--companies", String(sizes.companies),
    ...tokens.flatMap((token) => ["--token", token])
  ])

  /** An example against the standalone simulator, in a directory of its own unless `directory` says. */
  const against = (name: string, accessToken: string, directory?: string) =>
    Effect.gen(function*() {
      const cwd = directory ?? (yield* temporaryDirectory)
      const result = yield* example(name, { cwd, env: { INTERCOM_BASE_URL: baseUrl(), INTERCOM_ACCESS_TOKEN: accessToken } })
      expect(result.exitCode).toBe(0)
      return { ...result, cwd }
    })

  it.scopedLive("export-users exports the standalone simulator's users", () =>
    Effect.gen(function*() {
      const path = yield* Path.Path
      const token = tokens[0]!
      const result = yield* against("export-users", token)
      const file = path.join(result.cwd, "out", "users.ndjson")
      expect(result.stdout).toBe(`Exported 300 users to ${file}\n`)
      expect((yield* idsIn(file)).sort()).toEqual(yield* userIds(workspace(token)))
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("schedules counts the workspace's users, then handles Unauthorized", () =>
    Effect.gen(function*() {
      const result = yield* against("schedules", tokens[1]!)
      const output = lines(result.stdout)
      expect(output[0]).toBe("with the workspace's token: 300 users")
      expect(output.at(-1)).toMatch(/^with a wrong token: the token was refused\. Unauthorized: /)
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("compose counts the people of the workspace's companies", () =>
    Effect.gen(function*() {
      const expected = yield* companyCounts(workspace(tokens[2]!))
      const result = yield* against("compose", tokens[2]!)
      expectCompose(result.stdout, expected)
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("sync-sqlite stores the workspace's users, beside what it synced from its embedded simulator first", () =>
    Effect.gen(function*() {
      const path = yield* Path.Path
      const cwd = yield* temporaryDirectory
      // Tried first without a token, as the examples' README runs it, then pointed at another workspace.
      expect((yield* example("sync-sqlite", { cwd })).exitCode).toBe(0)
      const result = yield* against("sync-sqlite", tokens[3]!, cwd)
      const file = path.join(cwd, "out", "intercom.sqlite")
      expect(lines(result.stdout)[0]).toBe(`synced users of example into ${file}: 300 inserted, 0 updated, 0 unchanged, 0 deleted, 0 restarts`)
      expect((yield* copiedUsers(file)).live).toEqual(yield* userIds(workspace(tokens[3]!)))
      expect((yield* copiedUsers(file, "simulated")).live).toHaveLength(2_000)
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("many-workspaces scrolls the workspaces of INTERCOM_ACCESS_TOKEN's comma-separated tokens", () =>
    Effect.gen(function*() {
      const result = yield* against("many-workspaces", `${tokens[4]},${tokens[5]}`)
      expect(lines(result.stdout)).toEqual(["workspace 1: 300 users", "workspace 2: 300 users", "total: 600 users"])
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("many-workspaces names a blank token among INTERCOM_ACCESS_TOKEN's, once, and scrolls no workspace", () =>
    Effect.gen(function*() {
      const cwd = yield* temporaryDirectory
      const result = yield* example("many-workspaces", {
        cwd,
        env: { INTERCOM_BASE_URL: baseUrl(), INTERCOM_ACCESS_TOKEN: `${tokens[4]}, ,${tokens[5]}` }
      })
      expect(result.exitCode).toBe(1)
      // runMain's logger writes to stdout
      expect(result.stdout.match(/token 2 of 3 is blank/g)).toHaveLength(1)
      expect(result.stdout).not.toMatch(/workspace \d|users/)
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("core-readme prints each user with an email, and the seats it decoded from a string", () =>
    Effect.gen(function*() {
      const token = tokens[7]!
      const users = yield* Scroll.users().pipe(
        Stream.filter(Models.hasValue("email")),
        Stream.runCollect,
        Effect.provide(simulated(workspace(token)))
      )
      // What console.log prints: a number for a decoded "12", undefined where the attribute is absent.
      const expected = [...users].map((user) => {
        const seats = user.custom_attributes?.seats
        return `${user.id} ${user.email.toLowerCase()} ${typeof seats === "string" ? Number(seats) : "undefined"}`
      }).sort()
      const result = yield* against("core-readme", token)
      expect(lines(result.stdout).sort()).toEqual(expected)
      expect(expected.filter((line) => /\d$/.test(line)).length).toBeGreaterThan(0)
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("readme-library prints each user with an email", () =>
    Effect.gen(function*() {
      const token = tokens[6]!
      const expected = yield* Scroll.users().pipe(
        Stream.filter(Models.hasValue("email")),
        Stream.map((user) => user.id),
        Stream.runCollect,
        Effect.map((ids) => [...ids].sort()),
        Effect.provide(simulated(workspace(token)))
      )
      const result = yield* against("readme-library", token)
      // Each user's line starts with its id; console.log may break a long custom_attributes over more lines.
      const printed = lines(result.stdout).flatMap((line) => /^([0-9a-f]{24}) /.exec(line)?.[1] ?? [])
      expect(printed.sort()).toEqual(expected)
      expect(expected.length).toBeGreaterThan(0)
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("readme-library with a token the workspace refuses says so and exits 1, as a scheduled job must see it", () =>
    Effect.gen(function*() {
      const cwd = yield* temporaryDirectory
      const result = yield* example("readme-library", { cwd, env: { INTERCOM_BASE_URL: baseUrl(), INTERCOM_ACCESS_TOKEN: "not-a-token-of-it" } })
      expect(result.exitCode).toBe(1)
      expect(result.stdout + result.stderr).toMatch(/Unauthorized: Intercom refused the access token for users/)
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)
})

describe("an example stopped part-way", () => {
  const token = Buffer.from("tok:stopped:1234").toString("base64")
  // 200 ms a page: the export is still running when the signal comes.
  const ctrlC = Buffer.from("tok:ctrl-c:1234").toString("base64")
  const baseUrl = simulatorForAll(["--users", "2000", "--latency", "200", "--token", token, "--token", ctrlC])

  it.scopedLive("SIGTERM to `pnpm -C examples export-users` alone stops the program too, and the last export stays as it was", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const cwd = yield* temporaryDirectory
      const out = path.join(cwd, "out")
      yield* fs.makeDirectory(out)
      yield* fs.writeFileString(path.join(out, "users.ndjson"), "the last export\n")
      const exporting = yield* start("pnpm", ["-s", "-C", NodePath.join(root, "examples"), "export-users"], {
        cwd,
        env: { INTERCOM_BASE_URL: baseUrl(), INTERCOM_ACCESS_TOKEN: token }
      })
      yield* eventually(fs.exists(path.join(out, "users.ndjson.partial")))
      // pnpm alone, as `timeout` or a supervisor signals it: it passes the signal on and waits for the program.
      process.kill(exporting.pid, "SIGTERM")
      yield* Effect.exit(exporting.exitCode)
      // The program has ended too, its partial file gone: an orphan would still be writing it, and would then rename it
      // over the last export. Looked at until it settles: on a loaded machine (a CI run, once) the removal came a moment
      // after pnpm's exit.
      yield* eventually(Effect.map(fs.readDirectory(out), (entries) => entries.join() === "users.ndjson"))
      expect(yield* fs.readFileString(path.join(out, "users.ndjson"))).toBe("the last export\n")
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("a copied sync-sqlite run as examples/README.md says, stopped by a terminal's Ctrl-C, records its run interrupted", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      // The README's command for an example copied into a project of one's own. The `tsx` command is not it: on Ctrl-C
      // it sends SIGINT to the program again ~30 ms later, after runMain has let go of the signal, and Node then ends
      // the program at once (a race, lost in 5 of 14 tries by hand: the run left `running`; never under this test).
      const readme = yield* fs.readFileString(path.join(root, "examples", "README.md"))
      const documented = /^node --import tsx src\/export-users\.ts$/m.exec(readme)
      expect(documented, "examples/README.md: how to run a copied example").not.toBeNull()
      // A project of one's own: the example copied into its src/, the examples' node_modules standing in for its install.
      const project = yield* temporaryDirectory
      yield* fs.makeDirectory(path.join(project, "src"))
      yield* fs.copyFile(path.join(root, "examples", "src", "sync-sqlite.ts"), path.join(project, "src", "sync-sqlite.ts"))
      yield* fs.symlink(path.join(root, "examples", "node_modules"), path.join(project, "node_modules"))
      const syncing = yield* start("node", ["--import", "tsx", "src/sync-sqlite.ts"], {
        cwd: project,
        env: { INTERCOM_BASE_URL: baseUrl(), INTERCOM_ACCESS_TOKEN: ctrlC }
      })
      const database = path.join(project, "out", "intercom.sqlite")
      const runStatus = Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ status: string }>`SELECT status FROM intercom_sync_runs`
        return rows.map((row) => row.status)
      }).pipe(Effect.provide(SqliteClient.layer({ filename: database })), Effect.scoped)
      // Its run under way, some users stored: then Ctrl-C, to the whole process group as a terminal sends it.
      yield* eventually(Effect.flatMap(fs.exists(database), (exists) =>
        exists ? Effect.map(Effect.orElseSucceed(runStatus, () => []), (statuses) => statuses.join() === "running") : Effect.succeed(false)))
      yield* syncing.kill("SIGINT")
      expect(yield* syncing.exitCode).toBe(0)
      expect(yield* Effect.orDie(runStatus)).toEqual(["interrupted"])
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)
})
