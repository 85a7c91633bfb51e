/**
 * The command as the READMEs tell a user to install it: the CLI's packed tarball alone with `npm install -g` (into a
 * prefix of its own: support/install.ts), run by name from a directory outside the workspace, so that nothing is found
 * but what the global install put there. Its bin is a bundle, so npm installs nothing beside it; SQLite needs its
 * native addon installed globally beside it, PostgreSQL nothing more. The simulator it reads from is the workspace's,
 * but in the last case: the simulator's tarball alone, installed the same way.
 * Needs the npm registry: `pnpm test:install`.
 */
import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { PostgresDatabase } from "@intercom-scroll/testing"
import { expect, layer } from "@effect/vitest"
import { Context, Effect, Layer, Redacted } from "effect"
import * as Install from "../support/install.js"
import { simulator, withoutProgress } from "../support/processes.js"
import { env, expectedIds, ndjsonIds, workspaceFlags } from "../support/workspace.js"

class Global extends Context.Tag("test/install/Global")<Global, Install.GlobalInstallation>() {}

const GlobalLive = Layer.scoped(Global, Install.installedGlobally()).pipe(Layer.provideMerge(NodeContext.layer))

/** The ids of the live users in the database a SqlClient is on. */
const liveUserIds = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ readonly id: string }>`SELECT id FROM intercom_users WHERE deleted_at IS NULL`).pipe(
    Effect.map((rows) => rows.map((row) => row.id).sort())
  )

/**
 * The packages in a node_modules directory of the prefix (`lib/node_modules`, where each global package is, or a global
 * package's own, where npm puts what it installs for it), scoped ones by their full name; none if it is absent.
 */
const packagesIn = (...segments: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const modules = path.join((yield* Global).prefix, "lib", "node_modules", ...segments)
    if (!(yield* fs.exists(modules))) return []
    const names: Array<string> = []
    for (const entry of yield* fs.readDirectory(modules)) {
      if (entry.startsWith(".")) continue
      if (!entry.startsWith("@")) names.push(entry)
      else for (const scoped of yield* fs.readDirectory(path.join(modules, entry))) names.push(`${entry}/${scoped}`)
    }
    return names.sort()
  })

/** The global packages, and what npm installed for the CLI (in its own node_modules). */
const globalPackages = Effect.all({
  global: packagesIn(),
  forTheCli: packagesIn("@intercom-scroll", "cli", "node_modules")
})

layer(GlobalLive, { timeout: "15 minutes", excludeTestServices: true })("the CLI's tarball alone installed with npm install -g", (it) => {
  // The bin needs nothing from node_modules but better-sqlite3 for SQLite; the CLI's peers are the library entry's.
  it.effect("npm installs the CLI and nothing else: no effect, no @intercom-scroll/core", () =>
    Effect.gen(function*() {
      expect(yield* globalPackages).toEqual({ global: ["@intercom-scroll/cli"], forTheCli: [] })
    }))

  it.effect("intercom-scroll is on the PATH from the prefix's bin: --help exits 0 and lists the commands", () =>
    Effect.gen(function*() {
      const installation = yield* Global
      const help = yield* installation.run("intercom-scroll", ["--help"])
      expect(help.stderr).toBe("")
      expect(help.exitCode).toBe(0)
      expect(help.stdout).toContain("export <users|leads|companies>")
      expect(help.stdout).toContain("sync <users|leads|companies|all> --database URL")
      expect(help.stdout).toContain("fleet sync --database URL --workspaces FILE")
    }))

  // npm 11 would install non-optional peers itself, and warn of conflicts among them.
  it.effect("npm install -g says nothing about peers", () =>
    Effect.gen(function*() {
      const installation = yield* Global
      expect(installation.warnings).not.toMatch(/peer|ERESOLVE/i)
    }))

  it.scoped("intercom-scroll export users writes every user into the working directory", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const installation = yield* Global
      const baseUrl = yield* simulator(workspaceFlags)
      const exported = yield* installation.run("intercom-scroll", ["export", "users", "--out", "users.ndjson"], {
        env: env(baseUrl)
      })
      expect(withoutProgress(exported.stderr)).toMatch(/^Exported 1,200 users to .*\/work\/users\.ndjson/)
      expect(exported.exitCode).toBe(0)
      const written = yield* fs.readFileString(path.join(installation.directory, "users.ndjson"))
      expect(ndjsonIds(written).sort()).toEqual(yield* expectedIds)
    }))

  // Before the SQLite case below installs better-sqlite3 into the prefix: PostgreSQL's driver is in the bin's bundle.
  it.scoped("intercom-scroll sync users into PostgreSQL needs nothing more", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const installation = yield* Global
      expect(yield* fs.exists(path.join(installation.prefix, "lib", "node_modules", "better-sqlite3"))).toBe(false)
      const baseUrl = yield* simulator(workspaceFlags)
      const database = yield* Effect.orDie(PostgresDatabase.make)
      const synced = yield* installation.run("intercom-scroll", ["sync", "users", "--database", Redacted.value(database)], {
        env: env(baseUrl)
      })
      expect(withoutProgress(synced.stderr)).toMatch(/^Synced 1,200 users into postgres:.*: 1,200 inserted, 0 updated, 0 unchanged, 0 deleted/)
      expect(synced.exitCode).toBe(0)
      const ids = yield* liveUserIds.pipe(Effect.provide(PostgresDatabase.layerAt(database)), Effect.orDie)
      expect(ids).toEqual(yield* expectedIds)
      // The fleet's code, in chunks of the same bundle, loads from the prefix too.
      const status = yield* installation.run("intercom-scroll", ["fleet", "status", "--database", Redacted.value(database)])
      expect(status.stderr).toBe("")
      expect(status.exitCode).toBe(0)
    }))

  it.scoped("intercom-scroll sync users into SQLite names better-sqlite3@^12.6.2 and -g; once npm install -g puts it beside, it syncs every user", () =>
    Effect.gen(function*() {
      const path = yield* Path.Path
      const installation = yield* Global
      const baseUrl = yield* simulator(workspaceFlags)
      const file = path.join(installation.directory, "data", "intercom.sqlite")
      const sync = installation.run("intercom-scroll", ["sync", "users", "--database", `sqlite:${file}`], { env: env(baseUrl) })
      const missing = yield* sync
      expect(missing.stderr).toContain("npm install better-sqlite3@^12.6.2 beside it; with -g beside a global intercom-scroll")
      expect(missing.stderr).toMatch(/^DatabaseUnavailable: /)
      expect(missing.exitCode).toBe(1)
      // What the message and the READMEs say to run, into the same prefix.
      yield* installation.install(["better-sqlite3@^12.6.2"])
      expect(yield* globalPackages).toEqual({ global: ["@intercom-scroll/cli", "better-sqlite3"], forTheCli: [] })
      const synced = yield* sync
      expect(withoutProgress(synced.stderr)).toMatch(/^Synced 1,200 users into sqlite:.*: 1,200 inserted, 0 updated, 0 unchanged, 0 deleted/)
      expect(synced.exitCode).toBe(0)
      const ids = yield* liveUserIds.pipe(Effect.provide(SqliteClient.layer({ filename: file, readonly: true })), Effect.orDie)
      expect(ids).toEqual(yield* expectedIds)
    }), 600_000)

  // Last: the cases above count the prefix's packages. The simulator's bin is a bundle too, and its peers are its
  // library's: npm installed ~92 MB of them for it while they were required.
  it.scoped("the simulator's tarball alone, with npm install -g: nothing beside it, and its bin serves what the CLI exports", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const installation = yield* Global
      const tarball = installation.packed.filter((pkg) => pkg.name === "@intercom-scroll/simulator").map((pkg) => pkg.tarball)
      const installed = yield* installation.install(tarball)
      expect(installed.stderr).not.toMatch(/peer|ERESOLVE/i)
      // better-sqlite3 is there once the SQLite case above has run.
      const global = (yield* packagesIn()).filter((name) => name !== "better-sqlite3")
      expect(global).toEqual(["@intercom-scroll/cli", "@intercom-scroll/simulator"])
      expect(yield* packagesIn("@intercom-scroll", "simulator", "node_modules")).toEqual([])
      const baseUrl = yield* simulator(workspaceFlags, installation.bin("intercom-simulator"))
      const exported = yield* installation.run("intercom-scroll", ["export", "users", "--out", "served.ndjson"], { env: env(baseUrl) })
      expect(exported.exitCode).toBe(0)
      const written = yield* fs.readFileString(path.join(installation.directory, "served.ndjson"))
      expect(ndjsonIds(written).sort()).toEqual(yield* expectedIds)
    }))
})
