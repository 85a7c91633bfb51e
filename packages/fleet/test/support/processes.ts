/**
 * Real processes for the process tests: the runner and client scripts bundled once into plain JavaScript (node starts
 * a bundle in about a second, tsx in tens under load), spawned with their output read line by line, and killed with
 * their scope if a test leaves them running.
 */
import { Deferred, Effect, type Scope } from "effect"
import { build, type Plugin } from "esbuild"
import { type ChildProcess, spawn } from "node:child_process"
import { createRequire } from "node:module"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
const outdir = join(here, "..", "..", "build", "process-test")

/**
 * better-sqlite3 loads a native addon relative to its own files, so it stays outside the bundle, imported by the
 * absolute path pnpm gave it (it is not a dependency of this package, so a bare name would not resolve from here).
 */
const nativeOutside: Plugin = {
  name: "native-outside",
  setup(build) {
    build.onResolve({ filter: /^better-sqlite3$/ }, (args) => ({
      path: createRequire(args.importer).resolve("better-sqlite3"),
      external: true
    }))
  }
}

/** Bundles `runner.ts` and `client.ts`, for plain node. */
export const bundle: Effect.Effect<{ readonly runner: string; readonly client: string }> = Effect.promise(async () => {
  await build({
    entryPoints: { runner: join(here, "runner.ts"), client: join(here, "client.ts") },
    outdir,
    bundle: true,
    platform: "node",
    format: "esm",
    outExtension: { ".js": ".mjs" },
    plugins: [nativeOutside],
    external: ["pg-native", "msgpackr-extract"],
    // CommonJS dependencies (pg) require Node's own modules.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    logLevel: "error"
  })
  return { runner: join(outdir, "runner.mjs"), client: join(outdir, "client.mjs") }
})

/** A fresh directory, removed with its scope. */
export const tempDir = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), prefix))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

export const freePort: Effect.Effect<number> = Effect.async((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

export interface Line {
  /** When the test process read it (Date.now()). */
  readonly at: number
  readonly text: string
}

export interface Process {
  readonly name: string
  readonly pid: number
  /** Every line of stdout and stderr so far, in order. */
  readonly lines: ReadonlyArray<Line>
  /** The JSON lines of stdout so far, parsed. */
  readonly json: ReadonlyArray<{ readonly at: number; readonly value: Record<string, unknown> }>
  readonly signal: (signal: NodeJS.Signals) => void
  /** The exit code, or the signal that ended it. */
  readonly exit: Effect.Effect<{ readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly at: number }>
}

/** Starts `node script args…`; SIGKILLed when the scope closes if still running. */
export const node = (
  name: string,
  script: string,
  args: ReadonlyArray<string>,
  env: Record<string, string> = {}
): Effect.Effect<Process, never, Scope.Scope> =>
  Effect.gen(function*() {
    const exited = yield* Deferred.make<{ code: number | null; signal: NodeJS.Signals | null; at: number }>()
    const child: ChildProcess = yield* Effect.acquireRelease(
      Effect.sync(() => spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })),
      (child) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
    )
    const lines: Array<Line> = []
    const json: Array<{ at: number; value: Record<string, unknown> }> = []
    const read = (stream: NodeJS.ReadableStream, parse: boolean) =>
      createInterface({ input: stream }).on("line", (text) => {
        const at = Date.now()
        lines.push({ at, text })
        if (parse && text.startsWith("{")) {
          try {
            json.push({ at, value: JSON.parse(text) })
          } catch {
            // not one of ours
          }
        }
        if (process.env.FLEET_TEST_ECHO) process.stderr.write(`[${name}] ${text}\n`)
      })
    read(child.stdout!, true)
    read(child.stderr!, false)
    child.on("exit", (code, signal) => Effect.runSync(Deferred.succeed(exited, { code, signal, at: Date.now() })))
    return {
      name,
      pid: child.pid!,
      lines,
      json,
      signal: (signal) => void child.kill(signal),
      exit: Deferred.await(exited)
    }
  })

/** Polls `check` every 100 ms until it gives a value, for at most `seconds`. */
export const eventually = <A>(what: string, seconds: number, check: Effect.Effect<A | undefined>) =>
  Effect.gen(function*() {
    const deadline = Date.now() + seconds * 1000
    while (Date.now() < deadline) {
      const value = yield* check
      if (value !== undefined) return value
      yield* Effect.sleep("100 millis")
    }
    return yield* Effect.dieMessage(`Timed out after ${seconds} s waiting for ${what}`)
  })
