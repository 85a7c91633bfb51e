#!/usr/bin/env node
// The CLI is one bundled CommonJS script (dist/bin.cjs: src/bin.ts and all it imports, effect included), which `pnpm
// build` writes, compiled here from a V8 code cache. Loading effect, @effect/platform-node and @effect/cli module by
// module takes most of a second and a half; one bundle, a fraction of that, of which compiling its text was the most
// (packages/bench/NOTES.md, "Startup"). Node 20 caches no module's compiled code (Node 22's
// module.enableCompileCache() does), so the bin does as v8-compile-cache does: the first run compiles the script and,
// as it exits, writes what V8 compiled to a cache file; the next runs hand it back to V8, which checks it (V8's version
// and flags, the source's length) and rejects what does not match. The file starts with a digest of the script, so
// that a different script of the same length never gets it. The cache is left alone when unreadable or unwritable,
// and not used at all with NODE_DISABLE_COMPILE_CACHE=1. Its directory: NODE_COMPILE_CACHE when set (as Node 22 reads
// it), else intercom-scroll/ in the user's cache directory. A process of its own shares no Context with anyone, so its
// own copy of effect harms no one.
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import * as v8 from "node:v8"
import * as Vm from "node:vm"

// V8's defaults suit a server with memory to spare; an export is one long burst of short-lived pages. Set before the
// script is compiled: V8 rejects a code cache written under other flags (packages/bench/NOTES.md, "Memory").
// - undici parses HTTP with a WebAssembly llhttp, which V8 recompiles with its optimising compiler at the first request:
//   ~33 MiB of compiler memory at its peak for a parser that only reads a page's headers. Liftoff's code does that as fast.
v8.setFlagsFromString("--liftoff-only")
// - A full GC once the old generation has doubled since the last one, where V8 lets it grow up to 4×: pages that survive
//   a young GC wait there for the next full one, with their bytes.
v8.setFlagsFromString("--heap-growing-percent=100")
// - The young generation keeps the size it has now instead of growing to 32 MiB.
v8.setFlagsFromString("--semi-space-growth-factor=1")

// A dependency's deprecation warning (pg's "pgpass support is deprecated" with PGPASSFILE, its "client.query() when the
// client is already executing a query" as a runner stops) is for that dependency's callers, not for whoever runs the
// command, and it is two lines of another format in the log. `--trace-deprecation` or `--throw-deprecation` (in
// NODE_OPTIONS) still get them.
if (!process.traceDeprecation && !process.throwDeprecation) process.noDeprecation = true

const script = fileURLToPath(import.meta.resolve("../dist/bin.cjs"))

const cacheDirectory = () => {
  if (process.env.NODE_DISABLE_COMPILE_CACHE === "1") return undefined
  if (process.env.NODE_COMPILE_CACHE) return process.env.NODE_COMPILE_CACHE
  try {
    const base = process.env.XDG_CACHE_HOME || (process.platform === "win32" ? process.env.LOCALAPPDATA : undefined) ||
      NodePath.join(Os.homedir(), ".cache")
    return NodePath.join(base, "intercom-scroll")
  } catch {
    // No home directory: no cache.
    return undefined
  }
}

/**
 * Writes what V8 compiled after the script's digest, through a rename: a run reading it gets all of one file. The
 * file is opened before V8 serialises anything, so that a cache that cannot be written costs no more than the open.
 */
const writeCache = (directory, file, digest, compiled) => {
  const temporary = `${file}.${process.pid}.tmp`
  try {
    Fs.mkdirSync(directory, { recursive: true })
    const descriptor = Fs.openSync(temporary, "w")
    try {
      Fs.writeSync(descriptor, digest)
      Fs.writeSync(descriptor, compiled.createCachedData())
    } finally {
      Fs.closeSync(descriptor)
    }
    Fs.renameSync(temporary, file)
  } catch {
    // Unwritable: the next run compiles the source again.
    try {
      Fs.rmSync(temporary, { force: true })
    } catch {
      // Never written.
    }
  }
}

/** The script compiled, from the cache when V8 takes it; the file's bytes are garbage once it returns. */
const compile = () => {
  const source = Fs.readFileSync(script)
  const digest = createHash("sha256").update(source).digest()
  const directory = cacheDirectory()
  // One file per installed script (by its path), replaced when the script changes.
  const file = directory && NodePath.join(directory, `bin-${createHash("sha256").update(script).digest("hex").slice(0, 16)}.cache`)
  let cachedData
  try {
    const cached = file && Fs.readFileSync(file)
    if (cached && digest.equals(cached.subarray(0, digest.length))) cachedData = cached.subarray(digest.length)
  } catch {
    // None yet, or unreadable: compiled from the source.
  }
  // Wrapped as Node wraps a CommonJS module.
  const compiled = new Vm.Script(`(function (exports, require, module, __filename, __dirname) { ${source.toString("utf8")}\n});`, {
    filename: script,
    cachedData
  })
  if (file && (cachedData === undefined || compiled.cachedDataRejected === true)) {
    // At exit: with the functions this run compiled too, not only the script's top level.
    process.once("exit", () => writeCache(directory, file, digest, compiled))
  }
  return compiled
}

const module = { exports: {} }
compile().runInThisContext()(module.exports, createRequire(script), module, script, NodePath.dirname(script))
