/**
 * Every public package follows the same pattern, so that adding one is copying one (the README's "Adding a
 * package"): source exports in the workspace and built ones when packed, effect packages as peers, a build config,
 * a docgen config, a LICENSE and a README. What the packed packages do once installed is `pnpm test:install`'s.
 */
import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { pathToFileURL } from "node:url"
import type * as Bundle from "../scripts/bundle.mjs"
import { publicPackages } from "./support/install.js"
import { root } from "./support/processes.js"

interface Manifest {
  readonly name: string
  readonly version: string
  readonly exports: Record<string, unknown>
  readonly bin?: Record<string, string>
  readonly files?: ReadonlyArray<string>
  readonly publishConfig?: { readonly exports?: Record<string, unknown>; readonly main?: string; readonly types?: string }
  readonly dependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
  readonly devDependencies?: Record<string, string>
}

const isEffectPackage = (name: string) => name === "effect" || name.startsWith("@effect/")

describe("the public packages", () => {
  it.effect("share one manifest pattern: source exports here, built ones when packed, effect packages as peers", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const packages = yield* publicPackages
      expect(packages.map((pkg) => pkg.name)).toEqual(expect.arrayContaining(["@intercom-scroll/core", "@intercom-scroll/cli"]))
      const buildReferences = (JSON.parse(yield* fs.readFileString(path.join(root, "tsconfig.build.json"))) as {
        readonly references: ReadonlyArray<{ readonly path: string }>
      }).references.map((reference) => reference.path)

      for (const pkg of packages) {
        const manifest = JSON.parse(yield* fs.readFileString(path.join(pkg.directory, "package.json"))) as Manifest
        const programs = Object.keys(manifest.bin ?? {}).length > 0 ? { "./bin": null } : {}
        expect(manifest.exports, pkg.name).toMatchObject({
          "./package.json": "./package.json",
          ".": "./src/index.ts",
          "./*": "./src/*.ts",
          "./internal/*": null,
          ...programs
        })
        expect(manifest.publishConfig, pkg.name).toMatchObject({
          main: "./dist/index.js",
          types: "./dist/index.d.ts",
          exports: {
            "./package.json": "./package.json",
            ".": { types: "./dist/index.d.ts", default: "./dist/index.js" },
            "./*": { types: "./dist/*.d.ts", default: "./dist/*.js" },
            "./internal/*": null,
            ...programs
          }
        })
        // Whatever the workspace closes, the packed package closes too.
        expect(Object.keys(manifest.publishConfig?.exports ?? {}).sort(), pkg.name).toEqual(Object.keys(manifest.exports).sort())
        expect(manifest.files, pkg.name).toContain("dist")

        // One copy of effect in an app: every effect package is a peer (tested at its devDependency's range).
        expect(Object.keys(manifest.dependencies ?? {}).filter(isEffectPackage), pkg.name).toEqual([])
        expect(Object.keys(manifest.peerDependencies ?? {}), pkg.name).toEqual(expect.arrayContaining(["effect", "@effect/platform"]))
        for (const [name, range] of Object.entries(manifest.peerDependencies ?? {})) {
          expect(manifest.devDependencies?.[name], `${pkg.name}: ${name}`).toBe(range)
        }
        expect({ ...manifest.dependencies, ...manifest.peerDependencies }, pkg.name).not.toHaveProperty("tsx")

        for (const file of ["README.md", "LICENSE", "docgen.json", "tsconfig.build.json"]) {
          expect(yield* fs.exists(path.join(pkg.directory, file)), `${pkg.name}: ${file}`).toBe(true)
        }
        expect(buildReferences, pkg.name).toContain(`${path.relative(root, pkg.directory)}/tsconfig.build.json`)

        // Each bin runs the bundle `pnpm build` writes from src/bin.ts: a module, or the CLI's script (from its code cache).
        for (const bin of Object.values(manifest.bin ?? {})) {
          expect(yield* fs.readFileString(path.join(pkg.directory, bin)), `${pkg.name}: ${bin}`).toMatch(/^import "\.\.\/dist\/bin\.js"$|"\.\.\/dist\/bin\.cjs"/m)
          expect(yield* fs.exists(path.join(pkg.directory, "src", "bin.ts")), pkg.name).toBe(true)
        }

        // What `--version` prints is the package's version (`pnpm changeset-version` writes it).
        const versionModule = path.join(pkg.directory, "src", "internal", "version.ts")
        if (yield* fs.exists(versionModule)) {
          expect(yield* fs.readFileString(versionModule), pkg.name).toContain(`export const moduleVersion = "${manifest.version}"`)
        }
      }
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("each README links only where its reader on npmjs.com can follow: another package at its npm page, no path", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const packages = yield* publicPackages
      for (const pkg of packages) {
        const readme = yield* fs.readFileString(path.join(pkg.directory, "README.md"))
        // npmjs.com shows the README alone: a relative link (`../sync`, `../../README.md`) leads nowhere there, and the
        // manifests name no repository to resolve it against.
        const targets = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1]!)
        expect(targets.filter((target) => !/^(https?:\/\/|#)/.test(target)), pkg.name).toEqual([])
        for (const target of targets.filter((target) => target.startsWith("https://www.npmjs.com/package/@intercom-scroll/"))) {
          expect(packages.map((other) => `https://www.npmjs.com/package/${other.name}`), `${pkg.name}: ${target}`).toContain(target)
        }
      }
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("a bundle is stale once the lockfile is newer: a dependency updated in place is bundled from new paths", () =>
    Effect.promise(async () => {
      // The script copied into a root of its own (it finds the root from where it is), so that every file's time is
      // the test's to set: the bundle newer than the script and its one input, only the lockfile newer than it.
      const copy = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "bundle-fresh-"))
      try {
        Fs.mkdirSync(NodePath.join(copy, "scripts"))
        Fs.copyFileSync(NodePath.join(root, "scripts", "bundle.mjs"), NodePath.join(copy, "scripts", "bundle.mjs"))
        for (const name of ["pnpm-lock.yaml", "input.ts", "bundle.js"]) Fs.writeFileSync(NodePath.join(copy, name), "")
        Fs.writeFileSync(NodePath.join(copy, "bundle.json"), JSON.stringify({ inputs: ["input.ts"] }))
        const at = (name: string, seconds: number) => Fs.utimesSync(NodePath.join(copy, name), seconds, seconds)
        const now = Math.floor(Date.now() / 1000)
        for (const name of ["scripts/bundle.mjs", "input.ts"]) at(name, now - 30)
        at("bundle.js", now - 20)
        const { isFresh } = await import(pathToFileURL(NodePath.join(copy, "scripts", "bundle.mjs")).href) as typeof Bundle
        const program = { output: "bundle.js", record: "bundle.json" }
        at("pnpm-lock.yaml", now - 40)
        expect(isFresh(program)).toBe(true)
        at("pnpm-lock.yaml", now - 10)
        expect(isFresh(program)).toBe(false)
      } finally {
        Fs.rmSync(copy, { recursive: true, force: true })
      }
    }))

  it.effect("the CLI's bundle starts without the export's code: the core and undici come with import() when a subcommand runs", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      // Written by scripts/bundle.mjs, which this project's global setup runs: the bundle's inputs, all and at start.
      const record = JSON.parse(yield* fs.readFileString(path.join(root, "packages", "cli", "build", "bin.bundle.json"))) as {
        readonly inputs: ReadonlyArray<string>
        readonly atStart: ReadonlyArray<string>
      }
      const exportPath = (input: string) => input.startsWith("packages/core/src/") || /node_modules\/undici\//.test(input)
      expect(record.inputs.filter(exportPath).length).toBeGreaterThan(0)
      expect(record.atStart.filter(exportPath)).toEqual([])
      expect(record.atStart).toEqual(expect.arrayContaining(["packages/cli/src/Cli.ts", "packages/cli/src/internal/exportFlags.ts"]))
    }).pipe(Effect.provide(NodeContext.layer)))
})
