/**
 * Real processes for the process tests: runners and clients are the `intercom-scroll` CLI's `fleet runner` and
 * `fleet sync`, run by its bin from its bundle (brought up to date here from the current source), spawned with
 * their output read line by line, and killed with their scope if a test leaves them running.
 */
import { Deferred, Effect, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { ensureBundled, programs, root } from "../../../../scripts/bundle.mjs"

/** A command: the script node runs and the arguments before a test's own. */
export type Command = readonly [script: string, ...args: Array<string>]

/**
 * `intercom-scroll fleet runner`, `fleet sync`, `fleet prune` and `fleet status`, through the CLI's bin as a user runs them: it
 * compiles the bundle from a V8 code cache, half the CPU of a start from its source (packages/bench/NOTES.md, "Startup").
 */
export const bundle: Effect.Effect<{ readonly runner: Command; readonly client: Command; readonly prune: Command; readonly status: Command }> = Effect.promise(async () => {
  const cli = programs().filter((program) => program.name === "cli/bin")
  await ensureBundled(cli)
  const bin = join(root, cli[0].runner)
  return { runner: [bin, "fleet", "runner"], client: [bin, "fleet", "sync"], prune: [bin, "fleet", "prune"], status: [bin, "fleet", "status"] }
})

/** A fresh directory, removed with its scope. */
export const tempDir = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), prefix))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/**
 * A port nothing listens on, for a process to bind next. Taken below Linux's ephemeral range (32768–60999), which is
 * where `listen(0)` picks: any outgoing connection on the machine (the other tests open many) may take a port of that
 * range as its source before the process binds it. Two tests may still pick one port: `startRunner` starts again then.
 */
export const freePort: Effect.Effect<number> = Effect.suspend(() => freePortBetween(20_000, 32_000))

/**
 * A port from `low` (inclusive) to `high` (exclusive) that nothing listens on. A test that must leave its port free
 * for a while (a server started late) takes it from a range `freePort` never picks, which no other test can take.
 */
export const freePortBetween = (low: number, high: number): Effect.Effect<number> =>
  Effect.suspend(() => unused(low + Math.floor(Math.random() * (high - low)))).pipe(
    Effect.retry({ times: 100 }),
    Effect.orDie
  )

const unused = (port: number) =>
  Effect.async<number, "in use">((resume) => {
    const server = createServer()
    server.once("error", () => resume(Effect.fail("in use")))
    server.listen(port, "127.0.0.1", () => server.close(() => resume(Effect.succeed(port))))
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
  /** The log lines so far (logfmt, on stderr), parsed: `message`, and the rest under `annotations`. */
  readonly json: ReadonlyArray<{ readonly at: number; readonly value: Record<string, unknown> }>
  readonly signal: (signal: NodeJS.Signals) => void
  /** The exit code, or the signal that ended it. */
  readonly exit: Effect.Effect<{ readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly at: number }>
}

/** A logfmt line (`timestamp=… level=INFO fiber=#3 message="Sync started" workspace=acme`), or undefined. */
const parseLogfmt = (text: string): Record<string, unknown> | undefined => {
  if (!text.startsWith("timestamp=")) return undefined
  const fields: Record<string, string> = {}
  for (const [, key, value] of text.matchAll(/([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    try {
      fields[key] = value.startsWith("\"") ? JSON.parse(value) : value
    } catch {
      fields[key] = value
    }
  }
  const { fiber: _fiber, level, message, timestamp: _timestamp, ...annotations } = fields
  return { message, level, annotations }
}

/** Starts `node script args…`; SIGKILLed when the scope closes if still running. */
export const node = (
  name: string,
  [script, ...leading]: Command,
  args: ReadonlyArray<string>,
  env: Record<string, string> = {}
): Effect.Effect<Process, never, Scope.Scope> =>
  Effect.gen(function*() {
    const exited = yield* Deferred.make<{ code: number | null; signal: NodeJS.Signals | null; at: number }>()
    const child: ChildProcess = yield* Effect.acquireRelease(
      Effect.sync(() => spawn(process.execPath, [script, ...leading, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })),
      (child) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
    )
    const lines: Array<Line> = []
    const json: Array<{ at: number; value: Record<string, unknown> }> = []
    const read = (stream: NodeJS.ReadableStream) =>
      createInterface({ input: stream }).on("line", (text) => {
        const at = Date.now()
        lines.push({ at, text })
        const value = parseLogfmt(text)
        if (value !== undefined) json.push({ at, value })
        if (process.env.FLEET_TEST_ECHO) process.stderr.write(`[${name}] ${text}\n`)
      })
    read(child.stdout!)
    read(child.stderr!)
    // "close", not "exit": its output is read to the end by then.
    child.on("close", (code, signal) => Effect.runSync(Deferred.succeed(exited, { code, signal, at: Date.now() })))
    return {
      name,
      pid: child.pid!,
      lines,
      json,
      signal: (signal) => void child.kill(signal),
      exit: Deferred.await(exited)
    }
  })

/**
 * `fleet runner`, on a free port (`args(port)`), once it listens. Another process may bind the port between
 * `freePort` and the runner: a runner that exits for that starts again on another.
 */
export const startRunner = (
  name: string,
  command: Command,
  args: (port: number) => ReadonlyArray<string>,
  env: Record<string, string> = {}
): Effect.Effect<Process, never, Scope.Scope> =>
  Effect.gen(function*() {
    for (let attempt = 1;; attempt++) {
      const started = yield* node(name, command, args(yield* freePort), env)
      const listens = eventually(
        `${name} to listen`,
        60,
        Effect.sync(() => started.lines.some((line) => line.text.includes("Listening on")) || undefined)
      )
      const exited = yield* Effect.raceFirst(Effect.as(listens, false), Effect.as(started.exit, true))
      const portTaken = exited && started.lines.some((line) => line.text.includes("EADDRINUSE"))
      if (!portTaken || attempt === 5) return started
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
