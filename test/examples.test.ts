/**
 * Each example as a process of its own over real HTTP, its result checked against the simulated data: once with
 * its embedded simulator (no token), once against a standalone simulator through INTERCOM_BASE_URL. The processes
 * run the examples' source bundled (support/processes.ts says why); one case runs `pnpm -C examples export-users`
 * itself, tsx and all, to show where its file goes. The cases run concurrently: most of their time is waiting.
 */
import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { IntercomClient, Models, Scroll } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Effect, Layer, Redacted, Stream } from "effect"
import * as Fs from "node:fs/promises"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { bundleExamples, example as exampleIn, exampleScript, simulator } from "./support/processes.js"

const examples = ["export-users", "schedules", "compose", "sync-sqlite", "many-workspaces", "readme-library"]

let bundles = ""
beforeAll(async () => {
  bundles = await Fs.mkdtemp(NodePath.join(NodeOs.tmpdir(), "examples-bundles-"))
  await bundleExamples(bundles, examples)
}, 120_000)
afterAll(() => Fs.rm(bundles, { recursive: true, force: true }))

const example = (name: string, options: { readonly env?: Record<string, string>; readonly cwd?: string } = {}) =>
  exampleIn(bundles, name, options)

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
      expect(output).toContain("another scroll holds the workspace; waiting")
      expect(output).toContain("restarting from the first page after RestartRequired")
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

  it.scopedLive("sync-sqlite stores each user once in out/users.sqlite though the restart sends some again", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const cwd = yield* temporaryDirectory
      const result = yield* example("sync-sqlite", { cwd })
      expect(result.exitCode).toBe(0)
      // The restart's log line comes first (Effect's logger writes to stdout), then the example's own output.
      const output = lines(result.stdout)
      const at = output.findIndex((line) => line.startsWith("received "))
      const [summary, ...domains] = output.slice(at)
      const file = path.join(cwd, "out", "users.sqlite")
      // The 500 at page 5 restarts the scroll after 4 pages, and dedupe is off: those 400 come again.
      expect(summary).toBe(`received 2400 records, stored 2000 users in ${file}`)
      expect(domains).toHaveLength(3)
      expect(output.slice(0, at).join("\n")).toContain("Restarting the users scroll from the first page")
      expect(yield* fs.exists(file)).toBe(true)
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
})

describe.concurrent("examples against a standalone simulator (INTERCOM_BASE_URL)", () => {
  // One workspace per example, so that the examples run at once without waiting for each other's scroll. The
  // simulator gives its Nth workspace the seed N; the sizes are the same for all.
  const tokens = ["export-users", "schedules", "compose", "sync-sqlite", "many-1", "many-2", "readme-library"].map(
    (name) => Buffer.from(`tok:${name}:1234`).toString("base64")
  )
  const sizes = { users: 300, leads: 60, companies: 12 }
  const workspace = (token: string) => ({ token, seed: tokens.indexOf(token) + 1, ...sizes })

  /** The standalone simulator, one per case (a process of its own, over real HTTP), and an example against it. */
  const against = (name: string, accessToken: string) =>
    Effect.gen(function*() {
      const baseUrl = yield* simulator([
        "--users", String(sizes.users), "--leads", String(sizes.leads), "--companies", String(sizes.companies),
        ...tokens.flatMap((token) => ["--token", token])
      ])
      const cwd = yield* temporaryDirectory
      const result = yield* example(name, { cwd, env: { INTERCOM_BASE_URL: baseUrl, INTERCOM_ACCESS_TOKEN: accessToken } })
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

  it.scopedLive("sync-sqlite stores the workspace's users", () =>
    Effect.gen(function*() {
      const path = yield* Path.Path
      const result = yield* against("sync-sqlite", tokens[3]!)
      expect(lines(result.stdout)[0]).toBe(`received 300 records, stored 300 users in ${path.join(result.cwd, "out", "users.sqlite")}`)
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scopedLive("many-workspaces scrolls the workspaces of INTERCOM_ACCESS_TOKEN's comma-separated tokens", () =>
    Effect.gen(function*() {
      const result = yield* against("many-workspaces", `${tokens[4]},${tokens[5]}`)
      expect(lines(result.stdout)).toEqual(["workspace 1: 300 users", "workspace 2: 300 users", "total: 600 users"])
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
})
