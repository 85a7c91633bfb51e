/**
 * The packages as a stranger installs them: built, packed, installed with npm into a project outside the workspace
 * (support/install.ts), and used there with plain node. Needs the npm registry: `pnpm test:install`.
 */
import { FileSystem, Path } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { NodeContext } from "@effect/platform-node"
import { expect, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as Install from "../support/install.js"
import { loadedBeyond, loadedPackages } from "../support/loadedPackages.js"
import { root, simulator, withoutProgress } from "../support/processes.js"
import { env, expectedIds, ndjsonIds, SEED, TOKEN, USERS, workspaceFlags } from "../support/workspace.js"

class Project extends Context.Tag("test/install/Project")<Project, Install.Project>() {}

// @types/node only for the type check below: a TypeScript user has it; running needs nothing but node.
const ProjectLive = Layer.scoped(Project, Install.installed({ extra: ["@types/node"] })).pipe(
  Layer.provideMerge(NodeContext.layer)
)

/** What a tarball may hold: built code, its types and maps, the bins, README, LICENSE (and a CHANGELOG once versioned). */
const shipped = /^(package\.json|README\.md|LICENSE|CHANGELOG\.md|bin\/[\w-]+\.js|dist\/[\w/]+\.(js|js\.map|d\.ts)|dist\/bin\.cjs(\.map)?|dist\/bin\.c?js\.LICENSES\.txt)$/

/** Every copy of each effect package under node_modules, nested ones included, by name. */
const effectCopies = (directory: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const copies = new Map<string, Array<string>>()
    const visit = (modules: string): Effect.Effect<void, PlatformError> =>
      Effect.gen(function*() {
        if (!(yield* fs.exists(modules))) return
        for (const entry of yield* fs.readDirectory(modules)) {
          if (entry.startsWith(".")) continue // .bin, .package-lock.json
          const names = entry.startsWith("@")
            ? (yield* fs.readDirectory(path.join(modules, entry))).map((name) => `${entry}/${name}`)
            : [entry]
          for (const name of names) {
            if (name === "effect" || name.startsWith("@effect/")) {
              copies.set(name, [...(copies.get(name) ?? []), path.join(modules, name)])
            }
            yield* visit(path.join(modules, name, "node_modules"))
          }
        }
      })
    yield* visit(path.join(directory, "node_modules"))
    return copies
  })

/** The library from plain node: the installed simulator's API and core's scroll over NodeHttpClient. */
const app = `
import { NodeHttpClient } from "@effect/platform-node"
import { IntercomClient, Scroll } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Effect, Layer, Redacted, Stream } from "effect"

const [baseUrl, token, seed, users] = process.argv.slice(2)

const Intercom = IntercomClient.layer({ accessToken: Redacted.make(token), baseUrl }).pipe(
  Layer.provide(NodeHttpClient.layerUndici)
)
const scrolled = await Scroll.users().pipe(
  Stream.map((user) => user.id),
  Stream.runCollect,
  Effect.provide(Intercom),
  Effect.runPromise
)
const simulated = await Simulator.make({ workspaces: [{ token, seed: Number(seed), users: Number(users) }] }).pipe(
  Effect.flatMap((simulator) => simulator.ids(token, "users")),
  Effect.runPromise
)
console.log(JSON.stringify({ scrolled: [...scrolled], simulated }))
`

/** The ids of the live rows of the database named by the first argument, through the installed sync package. */
const readBack = `
import { SqlClient } from "@effect/sql"
import { SyncDatabase } from "@intercom-scroll/sync"
import { Effect } from "effect"

const rows = await Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return yield* sql\`SELECT id FROM intercom_users WHERE deleted_at IS NULL\`
}).pipe(Effect.provide(SyncDatabase.layerFromUrl(process.argv[1])), Effect.runPromise)
console.log(JSON.stringify(rows.map((row) => row.id)))
`

/** What a TypeScript user writes: the entries and the modules by name type-check; internals are not there. */
const types = `
import { NodeHttpClient } from "@effect/platform-node"
import { IntercomClient, Scroll } from "@intercom-scroll/core"
import * as ScrollModule from "@intercom-scroll/core/Scroll"
import { Simulator } from "@intercom-scroll/simulator"
import { Cli } from "@intercom-scroll/cli"
import { Effect, Layer, Redacted, Stream } from "effect"
// @ts-expect-error: internals are closed to importers
import * as _internal from "@intercom-scroll/core/internal/idSet"

// Provided in full: nothing is left to require.
export const count = Stream.runCount(Scroll.users()).pipe(
  Effect.provide(IntercomClient.layer({ accessToken: Redacted.make("T") }).pipe(Layer.provide(NodeHttpClient.layerUndici)))
)
export const provided: [Effect.Effect.Context<typeof count>] extends [never] ? true : false = true
export const same: typeof Scroll.users = ScrollModule.users
export const simulated: Layer.Layer<Simulator.Simulator> = Simulator.layer({ workspaces: [{ token: "T" }] })
// @ts-expect-error: a stream is not a number (were the types lost to \`any\`, anything would do)
export const wrong: number = Scroll.users()
// @ts-expect-error: likewise
export const wrongToo: number = Cli.command
`

layer(ProjectLive, { timeout: "15 minutes", excludeTestServices: true })("the packed packages, installed with npm outside the workspace", (it) => {
  it.effect("each tarball holds built code, types, maps, the bins, README and LICENSE: no source, tests or config", () =>
    Effect.gen(function*() {
      const project = yield* Project
      expect(project.packed.map((pkg) => pkg.name)).toEqual(
        expect.arrayContaining(["@intercom-scroll/cli", "@intercom-scroll/core", "@intercom-scroll/simulator", "@intercom-scroll/sync"])
      )
      for (const pkg of project.packed) {
        expect(pkg.files.filter((file) => !shipped.test(file)), pkg.name).toEqual([])
        expect(pkg.files, pkg.name).toEqual(expect.arrayContaining(["README.md", "LICENSE", "dist/index.js", "dist/index.d.ts"]))
        expect(pkg.files.filter((file) => /^dist\/(bin|start)\.d\.ts$|^dist\/start\./.test(file)), pkg.name).toEqual([])
      }
    }))

  it.effect("the maps carry the sources they map, which the packages do not ship", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const project = yield* Project
      const map = JSON.parse(
        yield* fs.readFileString(`${project.directory}/node_modules/@intercom-scroll/core/dist/Scroll.js.map`)
      ) as { readonly sourcesContent?: ReadonlyArray<string | null> }
      expect(map.sourcesContent?.[0]).toMatch(/export const users/)
    }))

  it.effect("one copy of effect and of each @effect package is installed (the bins carry their own, bundled)", () =>
    Effect.gen(function*() {
      const project = yield* Project
      const copies = yield* effectCopies(project.directory)
      expect(copies.get("effect")).toHaveLength(1)
      expect([...copies].filter(([, found]) => found.length !== 1)).toEqual([])
      expect([...copies.keys()]).toEqual(expect.arrayContaining(["effect", "@effect/platform", "@effect/platform-node", "@effect/cli"]))
    }))

  it.scoped("app.mjs, in plain node: the library scrolls every user from the installed simulator's bin", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const project = yield* Project
      const baseUrl = yield* simulator(workspaceFlags, project.bin("intercom-simulator"))
      yield* fs.writeFileString(`${project.directory}/app.mjs`, app)
      const result = yield* project.node(["app.mjs", baseUrl, TOKEN, String(SEED), String(USERS)])
      expect(result.stderr).toBe("")
      expect(result.exitCode).toBe(0)
      const { scrolled, simulated } = JSON.parse(result.stdout) as Record<"scrolled" | "simulated", Array<string>>
      const expected = yield* expectedIds
      expect([...scrolled].sort()).toEqual(expected)
      expect([...simulated].sort()).toEqual(expected)
    }))

  it.scoped("the installed intercom-scroll bin exports every user, and says its version", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const project = yield* Project
      const baseUrl = yield* simulator(workspaceFlags, project.bin("intercom-simulator"))
      const exported = yield* project.node([project.bin("intercom-scroll"), "export", "users", "--out", "users.ndjson"], {
        env: env(baseUrl)
      })
      expect(exported.exitCode).toBe(0)
      expect(withoutProgress(exported.stderr)).toMatch(/^Exported 1,200 users to .*users\.ndjson/)
      expect(ndjsonIds(yield* fs.readFileString(`${project.directory}/users.ndjson`)).sort()).toEqual(yield* expectedIds)
      const version = yield* project.node([project.bin("intercom-scroll"), "--version"])
      const cli = project.packed.find((pkg) => pkg.name === "@intercom-scroll/cli")
      expect(version.stdout.trim()).toBe(cli?.version)
    }))

  it.scoped("the installed bin syncs every user into a new SQLite file, of all node_modules loading only better-sqlite3, installed beside it", () =>
    Effect.gen(function*() {
      const project = yield* Project
      const baseUrl = yield* simulator(workspaceFlags, project.bin("intercom-simulator"))
      const database = `sqlite:${project.directory}/data/intercom.sqlite`
      // The bundle carries @effect/sql-sqlite-node (installed here for the library's sake): the addon is all it requires.
      const { finished: synced, packages } = yield* loadedPackages((recorder) =>
        project.node([project.bin("intercom-scroll"), "sync", "users", "--database", database], {
          env: { ...env(baseUrl), ...recorder }
        })
      )
      expect(withoutProgress(synced.stderr)).toMatch(/^Synced 1,200 users into sqlite:.*: 1,200 inserted, 0 updated, 0 unchanged, 0 deleted/)
      expect(synced.exitCode).toBe(0)
      expect([...packages.keys()]).toContain("better-sqlite3")
      expect(loadedBeyond("better-sqlite3", packages)).toEqual([])
      // Read back by the installed packages, as an app of the project would.
      const read = yield* project.node(["--input-type=module", "--eval", readBack, database])
      expect(read.stderr).toBe("")
      expect((JSON.parse(read.stdout) as Array<string>).sort()).toEqual(yield* expectedIds)
    }))

  // Node.js 20 reached its end of life in April 2026: most users run 22, 24 or 26 (LTS since October). The SQLite
  // driver is a native addon built for the Node.js that installed it, so these run what is JavaScript only: the library
  // and the export.
  for (const major of [22, 24, 26]) {
    it.scoped.skipIf(process.platform !== "linux" || process.arch !== "x64")(
      `on Node.js ${major} too: app.mjs scrolls every user, and the installed bin exports them`,
      () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const project = yield* Project
          const executable = yield* Install.nodeOf(major, yield* fs.makeTempDirectoryScoped({ prefix: `node-${major}-` }))
          const version = yield* project.node(["--version"], { executable })
          expect(version.stdout).toMatch(new RegExp(`^v${major}\\.`))
          const baseUrl = yield* simulator(workspaceFlags, project.bin("intercom-simulator"))
          yield* fs.writeFileString(`${project.directory}/app.mjs`, app)
          const scrolled = yield* project.node(["app.mjs", baseUrl, TOKEN, String(SEED), String(USERS)], { executable })
          expect(scrolled.stderr).toBe("")
          expect([...(JSON.parse(scrolled.stdout) as { scrolled: Array<string> }).scrolled].sort()).toEqual(yield* expectedIds)
          const out = `users-node-${major}.ndjson`
          const exported = yield* project.node([project.bin("intercom-scroll"), "export", "users", "--out", out], {
            env: env(baseUrl),
            executable
          })
          expect(withoutProgress(exported.stderr)).toMatch(/^Exported 1,200 users to /)
          expect(exported.exitCode).toBe(0)
          expect(ndjsonIds(yield* fs.readFileString(`${project.directory}/${out}`)).sort()).toEqual(yield* expectedIds)
        }),
      120_000
    )
  }

  it.effect("@intercom-scroll/core/internal/… cannot be imported; the modules by name can", () =>
    Effect.gen(function*() {
      const project = yield* Project
      const load = (specifier: string) =>
        project.node(["--input-type=module", "--eval", `await import(${JSON.stringify(specifier)})`])
      const internal = yield* load("@intercom-scroll/core/internal/idSet")
      expect(internal.exitCode).not.toBe(0)
      expect(internal.stderr).toContain("ERR_PACKAGE_PATH_NOT_EXPORTED")
      expect((yield* load("@intercom-scroll/simulator/internal/app")).stderr).toContain("ERR_PACKAGE_PATH_NOT_EXPORTED")
      expect((yield* load("@intercom-scroll/cli/bin")).stderr).toContain("ERR_PACKAGE_PATH_NOT_EXPORTED")
      const byName = yield* load("@intercom-scroll/core/Scroll")
      expect(byName.stderr).toBe("")
      expect(byName.exitCode).toBe(0)
    }))

  it.effect("the types resolve through exports, with the peers' types, as a TypeScript user sees them", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const project = yield* Project
      yield* fs.writeFileString(path.join(project.directory, "types.ts"), types)
      yield* fs.writeFileString(path.join(project.directory, "tsconfig.json"), JSON.stringify({
        compilerOptions: {
          module: "NodeNext",
          moduleResolution: "NodeNext",
          target: "ES2022",
          strict: true,
          exactOptionalPropertyTypes: true,
          noEmit: true,
          // As Effect's own setup has it: the peers' declarations are theirs to check (platform-node's need @types/ws).
          skipLibCheck: true,
          types: ["node"]
        },
        files: ["types.ts"]
      }))
      // The workspace's own TypeScript, run on the project: the project itself holds none.
      const checked = yield* project.node([path.join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "."])
      expect(checked.stdout).toBe("")
      expect(checked.exitCode).toBe(0)
    }))
})
