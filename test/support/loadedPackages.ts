/**
 * The packages a program loads from node_modules as it runs: every CommonJS module in Node's cache as the process
 * exits, recorded by a file it is started with (`NODE_OPTIONS=--require=…`), each module's package with the
 * `dependencies` its manifest names. For the CLI's bin, whose bundle should require from node_modules nothing but the
 * native addon SQLite's driver stands on.
 */
import { FileSystem, Path } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, type Scope } from "effect"
import type { Finished } from "./processes.js"

/** The package a file under node_modules belongs to, with its directory (the innermost node_modules). */
const packageOf = (file: string) => {
  const match = /^(.*\/node_modules\/((?:@[^/]+\/)?[^/]+))\/(?!.*\/node_modules\/)/.exec(file)
  return match === null ? undefined : { directory: match[1]!, name: match[2]! }
}

/** `run` with the recorder in the environment it is given to add: its end, and the packages it loaded by name. */
export const loadedPackages = <E, R>(run: (environment: Record<string, string>) => Effect.Effect<Finished, E, R>): Effect.Effect<
  { readonly finished: Finished; readonly packages: ReadonlyMap<string, ReadonlyArray<string>> },
  E | PlatformError,
  R | FileSystem.FileSystem | Path.Path | Scope.Scope
> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const directory = yield* fs.makeTempDirectoryScoped({ prefix: "loaded-packages-" })
    const recorder = path.join(directory, "record.cjs")
    const record = path.join(directory, "loaded.json")
    yield* fs.writeFileString(
      recorder,
      `process.once("exit", () => require("node:fs").writeFileSync(${JSON.stringify(record)}, JSON.stringify(Object.keys(require.cache))))\n`
    )
    const finished = yield* run({ NODE_OPTIONS: `--require=${recorder}` })
    const packages = new Map<string, ReadonlyArray<string>>()
    for (const file of JSON.parse(yield* fs.readFileString(record)) as ReadonlyArray<string>) {
      const found = packageOf(file)
      if (found === undefined || packages.has(found.name)) continue
      const manifest = JSON.parse(yield* fs.readFileString(path.join(found.directory, "package.json"))) as {
        readonly dependencies?: Readonly<Record<string, string>>
      }
      packages.set(found.name, Object.keys(manifest.dependencies ?? {}))
    }
    return { finished, packages }
  })

/** The packages loaded that are neither `wanted` nor a dependency of one loaded: what a program should not have loaded. */
export const loadedBeyond = (wanted: string, packages: ReadonlyMap<string, ReadonlyArray<string>>): ReadonlyArray<string> => {
  const needed = new Set([wanted, ...[...packages.values()].flat()])
  return [...packages.keys()].filter((name) => !needed.has(name))
}
