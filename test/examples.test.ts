/**
 * Each example, run as `pnpm -C examples <name>` runs it (tsx, its own process, the embedded simulator), and its
 * result checked against the simulated data.
 */
import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { IntercomClient, Scroll } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Effect, Layer, Redacted, Stream } from "effect"
import { example } from "./support/processes.js"

const inTempDirectory = <A, E, R>(f: (cwd: string) => Effect.Effect<A, E, R>) =>
  Effect.flatMap(
    Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "examples-e2e-" })),
    f
  )

/** The records an example's embedded workspace holds, read in process. */
const simulated = (workspace: Simulator.WorkspaceOptions) =>
  IntercomClient.layer({ accessToken: Redacted.make(workspace.token) }).pipe(
    Layer.provide(Simulator.layerClient({ workspaces: [workspace] }))
  )

const lines = (text: string) => text.split("\n").filter((line) => line !== "")

describe("examples", () => {
  it.scopedLive("export-users writes every user once to out/users.ndjson", () =>
    inTempDirectory((cwd) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        const result = yield* example("export-users", { cwd })
        expect(result.exitCode).toBe(0)
        expect(result.stdout).toBe("Exported 2500 users to out/users.ndjson\n")
        const ids = lines(yield* fs.readFileString(path.join(cwd, "out", "users.ndjson")))
          .map((line) => (JSON.parse(line) as { readonly id: string }).id)
        const expected = yield* Scroll.users().pipe(
          Stream.map((user) => user.id),
          Stream.runCollect,
          Effect.provide(simulated({ token: "example", users: 2_500 }))
        )
        expect(ids.sort()).toEqual([...expected].sort())
      })
    ).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("schedules waits out the foreign scroll, restarts once, then handles Unauthorized", () =>
    Effect.gen(function*() {
      const result = yield* example("schedules")
      expect(result.exitCode).toBe(0)
      const output = lines(result.stdout)
      expect(output).toContain("another scroll holds the workspace; waiting")
      expect(output).toContain("restarting from the first page after RestartRequired")
      expect(output).toContain("with the workspace's token: 1000 users")
      expect(output.at(-1)).toMatch(/^with a wrong token: the token was refused\. Unauthorized: /)
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("compose counts the people of each company, users then leads", () =>
    Effect.gen(function*() {
      const workspace = { token: "example", users: 2_000, leads: 500, companies: 40 }
      // The same counts, computed here with plain arrays.
      const expected = yield* Effect.gen(function*() {
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

      const result = yield* example("compose")
      expect(result.exitCode).toBe(0)
      const [headline, ...top] = lines(result.stdout)
      expect(headline).toBe(`companies: ${expected.names.size}, with people: ${expected.counts.size}`)
      expect(top).toHaveLength(5)
      const largest = Math.max(...expected.counts.values())
      for (const row of top) {
        const [, count, name] = /^\s*(\d+)\s{2}(.*)$/.exec(row) ?? []
        const ids = [...expected.names].filter(([, companyName]) => companyName === name).map(([id]) => id)
        expect(ids.map((id) => expected.counts.get(id))).toContain(Number(count))
      }
      expect(top[0]).toMatch(new RegExp(`^\\s*${largest}\\s`))
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("sync-sqlite stores each user once though the restart sends some again", () =>
    inTempDirectory((cwd) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        const result = yield* example("sync-sqlite", { cwd })
        expect(result.exitCode).toBe(0)
        // The restart's log line comes first (Effect's logger writes to stdout), then the example's own output.
        const output = lines(result.stdout)
        const at = output.findIndex((line) => line.startsWith("received "))
        const [summary, ...domains] = output.slice(at)
        const [, received, stored] = /^received (\d+) records, stored (\d+) users$/.exec(summary ?? "") ?? []
        expect(Number(stored)).toBe(2_000)
        // The 500 at page 5 restarts the scroll after 4 pages, and dedupe is off: those 400 come again.
        expect(Number(received)).toBe(2_400)
        expect(domains).toHaveLength(3)
        expect(output.slice(0, at).join("\n")).toContain("Restarting the users scroll from the first page")
        expect(yield* fs.exists(path.join(cwd, "out", "users.sqlite"))).toBe(true)
      })
    ).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("many-workspaces scrolls four workspaces, two at a time, and adds them up", () =>
    Effect.gen(function*() {
      const result = yield* example("many-workspaces")
      expect(result.exitCode).toBe(0)
      expect(lines(result.stdout)).toEqual([
        "workspace 1: 1000 users",
        "workspace 2: 1500 users",
        "workspace 3: 2000 users",
        "workspace 4: 2500 users",
        "total: 7000 users"
      ])
      expect(lines(result.stderr).at(-1)).toBe("workspaces 4/4 · 7000 users · 70 pages · 0 restarts")
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("fleet syncs six workspaces on a one-runner SQLite fleet, and a second run finds them unchanged", () =>
    inTempDirectory((cwd) =>
      Effect.gen(function*() {
        const sizes = [1000, 1250, 1500, 1750, 2000, 2250]
        const names = ["acme", "globex", "initech", "umbrella", "hooli", "stark"]
        const first = yield* example("fleet", { cwd })
        expect(first.exitCode).toBe(0)
        expect(lines(first.stdout).sort()).toEqual([
          ...names.map((name, i) =>
            `${name.padEnd(9)} ${String(sizes[i]).padStart(5)} users: ${sizes[i]} inserted, 0 updated, 0 unchanged, 0 deleted`),
          "6 workspaces synced; 9750 users in out/fleet.sqlite"
        ].sort())
        const second = yield* example("fleet", { cwd })
        expect(second.exitCode).toBe(0)
        expect(lines(second.stdout)).toContain(`acme       1000 users: 0 inserted, 0 updated, 1000 unchanged, 0 deleted`)
      })
    ).pipe(Effect.provide(NodeContext.layer)), 180_000)
})
