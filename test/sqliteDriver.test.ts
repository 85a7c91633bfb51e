/**
 * The CLI's bin on SQLite, the default job: its bundle carries `@effect/sql-sqlite-node` over its own copy of effect,
 * and requires from node_modules only the native addon the driver stands on, better-sqlite3 (what a user installs
 * beside the CLI). Loaded from node_modules, the driver brought ~520 CommonJS modules, a second effect and fast-check
 * among them: ~0.35 s of CPU at every start (packages/bench/NOTES.md). What that costs is measured there, not here.
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createRequire } from "node:module"
import { loadedBeyond, loadedPackages } from "./support/loadedPackages.js"
import { cli, root, simulator, withoutProgress } from "./support/processes.js"
import { env, workspaceFlags } from "./support/workspace.js"

describe("the CLI's bin on SQLite", () => {
  it.scoped("syncs and reads the fleet's status loading from node_modules only better-sqlite3 and what it depends on: no second effect", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const baseUrl = yield* simulator(workspaceFlags)
      const database = `sqlite:${yield* fs.makeTempDirectoryScoped({ prefix: "cli-sqlite-" })}/intercom.sqlite`
      const commands = [["sync", "users", "--database", database], ["fleet", "status", "--database", database]]
      for (const args of commands) {
        const { finished, packages } = yield* loadedPackages((recorder) => cli(args, { env: { ...env(baseUrl), ...recorder } }))
        expect(finished.exitCode, withoutProgress(finished.stderr)).toBe(0)
        expect([...packages.keys()], args.join(" ")).toContain("better-sqlite3")
        expect(loadedBeyond("better-sqlite3", packages), args.join(" ")).toEqual([])
      }
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it("names better-sqlite3 an optional peer, at the range the driver it carries asks for", () => {
    const manifest = createRequire(import.meta.url)(`${root}/packages/cli/package.json`) as {
      readonly peerDependencies: Readonly<Record<string, string>>
      readonly peerDependenciesMeta: Readonly<Record<string, { readonly optional?: boolean }>>
    }
    const driver = createRequire(`${root}/packages/cli/package.json`)("@effect/sql-sqlite-node/package.json") as {
      readonly dependencies: Readonly<Record<string, string>>
    }
    expect(manifest.peerDependencies["better-sqlite3"]).toBe(driver.dependencies["better-sqlite3"])
    expect(manifest.peerDependenciesMeta["better-sqlite3"]?.optional).toBe(true)
  })
})
