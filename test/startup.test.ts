/**
 * The CLI's bin compiles its bundle from a V8 code cache (packages/cli/bin/intercom-scroll.js): written at the first
 * run, handed back to V8 at the next ones, rewritten when V8 or the digest rejects it, and never in the way when it
 * cannot be written. What it saves is measured in `pnpm bench` (measure 6), not here.
 */
import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { cli, root } from "./support/processes.js"

const script = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFile(`${root}/packages/cli/dist/bin.cjs`))
const digest = Effect.map(script, (bytes) => createHash("sha256").update(bytes).digest())

/** `--help` in `env`: its output, which must be the help whatever the cache held. */
const help = (env: Record<string, string>) =>
  Effect.gen(function*() {
    const finished = yield* cli(["--help"], { env })
    expect(finished.exitCode).toBe(0)
    expect(finished.stderr).toBe("")
    expect(finished.stdout).toContain("USAGE")
    return finished.stdout
  })

/** The cache files in `directory`, with their bytes. */
const cacheFiles = (directory: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const names = (yield* fs.readDirectory(directory)).filter((name) => name.endsWith(".cache")).sort()
    return yield* Effect.forEach(names, (name) => Effect.map(fs.readFile(path.join(directory, name)), (bytes) => ({ name, bytes: Buffer.from(bytes) })))
  })

describe("the CLI's bin and its code cache", () => {
  it.scoped("writes the cache at its first run, uses it unchanged at the next, and rewrites what V8 or the digest rejects", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "cli-compile-cache-" })
      const env = { NODE_COMPILE_CACHE: directory }
      const expected = yield* help(env)
      const [written, ...others] = yield* cacheFiles(directory)
      expect(others).toEqual([])
      expect(written!.bytes.subarray(0, 32)).toEqual(yield* digest)
      expect(written!.bytes.length).toBeGreaterThan(100_000)

      // Accepted: not written again.
      expect(yield* help(env)).toBe(expected)
      expect((yield* cacheFiles(directory))[0]!.bytes.equals(written!.bytes)).toBe(true)

      // The script's digest, then what V8 cannot read: V8 rejects it, and the run writes a good one.
      const file = `${directory}/${written!.name}`
      const unreadable = Buffer.alloc(written!.bytes.length - 32, 7)
      yield* fs.writeFile(file, Buffer.concat([yield* digest, unreadable]))
      expect(yield* help(env)).toBe(expected)
      const rewritten = (yield* cacheFiles(directory))[0]!.bytes
      expect(rewritten.subarray(0, 32)).toEqual(yield* digest)
      expect(rewritten.subarray(32).equals(unreadable)).toBe(false)

      // V8's data for this script under another script's digest: never handed to V8, and replaced.
      yield* fs.writeFile(file, Buffer.concat([Buffer.alloc(32), written!.bytes.subarray(32)]))
      expect(yield* help(env)).toBe(expected)
      expect((yield* cacheFiles(directory))[0]!.bytes.subarray(0, 32)).toEqual(yield* digest)
    }).pipe(Effect.provide(NodeContext.layer)), 120_000)

  it.scoped("prints no dependency's deprecation warning, unless NODE_OPTIONS asks to trace them", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "cli-deprecation-" })
      // A dependency's deprecated call once the command runs (at its first write), as pg makes one with PGPASSFILE or
      // as a runner stops.
      const preload = `${directory}/deprecated.cjs`
      yield* fs.writeFileString(
        preload,
        `const write = process.stdout.write.bind(process.stdout)
process.stdout.write = (...args) => {
  require("node:util").deprecate(() => {}, "a dependency's call is deprecated", "DEP_TEST")()
  return write(...args)
}
`
      )
      yield* help({ NODE_OPTIONS: `--require ${preload}` })
      const traced = yield* cli(["--help"], { env: { NODE_OPTIONS: `--require ${preload} --trace-deprecation` } })
      expect(traced.stderr).toContain("DeprecationWarning: a dependency's call is deprecated")
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scoped("runs as well when the cache cannot be written, and writes none with NODE_DISABLE_COMPILE_CACHE=1", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "cli-compile-cache-" })
      yield* fs.writeFileString(`${directory}/file`, "")
      const expected = yield* help({ NODE_COMPILE_CACHE: `${directory}/file/cache` })
      expect(yield* help({ NODE_COMPILE_CACHE: directory, NODE_DISABLE_COMPILE_CACHE: "1" })).toBe(expected)
      expect(yield* fs.readDirectory(directory)).toEqual(["file"])
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)
})
