/**
 * A fleet runner's CPU, and what it asks of the database, between versions of the CLI: `tsx src/probeRunnerCpu.ts
 * --version NAME=REPO [--version NAME=REPO …] [--pairs 2] [--every 5] [--syncs 2] [--max-syncs 8] [--port-base 47400]
 * [--idle 30] [--out FILE]`. Each REPO is a checkout of this repository, installed and built (`pnpm -s build`: its
 * `packages/cli/bin/intercom-scroll.js` is run, its own simulator too); a worktree of an older commit compares it.
 *
 * The profile of packages/bench/NOTES.md's "The fleet at 2,000 workspaces" sections, every `--every`th workspace of the
 * 2,000: three standalone simulators at `--latency 20` (A: tokens of 100 users; B: of 300 users; C: of 500 users, 100
 * leads and 20 companies; A and B without leads or companies), a PostgreSQL 15 of the Debian package (fsync on, its
 * defaults, `pg_stat_statements` preloaded; one server, a fresh database a run), one `fleet runner --max-syncs 8` of
 * the version's bin (with lib/runtime-counters.mjs preloaded), `fleet sync --resources users,leads,companies` `--syncs`
 * times, then SIGTERM. A pair runs each version once, the order swapped from one pair to the next: the machine is
 * shared, so only ratios within a pair compare.
 *
 * For each run it prints the runner's CPU a second while it idles `--idle` seconds before the first sync (its shards
 * held, nothing to sync), the syncs' times, the runner's CPU over the syncs (user+sys, /proc), the timers it set, the
 * fibers it made and its GC, and the database's work over the run: `pg_stat_database` (tuples returned, transactions),
 * the indexes read most (`pg_stat_user_indexes`) and the statements called most (`pg_stat_statements`), per second
 * of the syncs. Run as root (PostgreSQL runs as the `postgres` user); ports `--port-base` to `--port-base` + 20.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { argv, flag } from "./lib/args.js"
import { cpuSeconds as cpuOf, debianPostgres, exited, untilPrinted } from "./lib/probeProcesses.js"

const versions = argv.flatMap((arg, i) => arg === "--version" ? [argv[i + 1]] : []).map((spec) => {
  const [name, repo] = spec.split("=")
  return { name, repo: NodePath.resolve(repo) }
})
if (versions.length === 0) throw new Error("give at least one --version NAME=REPO")
const pairs = Number(flag("--pairs") ?? 2)
const every = Number(flag("--every") ?? 5)
const syncs = Number(flag("--syncs") ?? 2)
const maxSyncs = Number(flag("--max-syncs") ?? 8)
const portBase = Number(flag("--port-base") ?? 47400)
const out = flag("--out")
const idleSeconds = Number(flag("--idle") ?? 30)
const counters = NodePath.join(NodePath.dirname(fileURLToPath(import.meta.url)), "lib", "runtime-counters.mjs")

const print = (line: string) => {
  process.stdout.write(`${line}\n`)
  if (out !== undefined) Fs.appendFileSync(out, `${line}\n`)
}

const started: Array<ChildProcess> = []
const stopAll = () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
}
process.on("exit", stopAll)
process.on("SIGINT", () => process.exit(130))
process.on("SIGTERM", () => process.exit(143))

/** User and system CPU seconds of a live process. */
const cpuSeconds = (pid: number): number => {
  const seconds = cpuOf(pid)
  if (seconds === undefined) throw new Error(`process ${pid} is gone`)
  return seconds
}

// PostgreSQL 15 of the Debian package, as packages/bench/NOTES.md's fleet profiles ran it.
const postgres = debianPostgres(Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "probe-runner-cpu-pg-")), portBase, [
  "max_connections=200",
  "shared_preload_libraries=pg_stat_statements",
  "pg_stat_statements.max=1000"
])
const psql = postgres.psql
psql("template1", "CREATE EXTENSION pg_stat_statements")

// The workspaces: every `every`th of the 2,000 profile's.
const groups = [
  { key: "a", count: Math.round(1_000 / every), flags: ["--users", "100", "--leads", "0", "--companies", "0"] },
  { key: "b", count: Math.round(800 / every), flags: ["--users", "300", "--leads", "0", "--companies", "0"] },
  { key: "c", count: Math.round(200 / every), flags: ["--users", "500", "--leads", "100", "--companies", "20"] }
]
const tokens: Record<string, string> = {}
const workspaces: Array<{ workspace: string; baseUrl: string; tokenEnv: string }> = []
const startSimulators = async (repo: string) => {
  for (const [i, group] of groups.entries()) {
    const names = Array.from({ length: group.count }, (_, n) => `${group.key}${n}`)
    const simulator = spawn(process.execPath, [
      NodePath.join(repo, "packages", "simulator", "bin", "intercom-simulator.js"),
      "--port",
      String(portBase + 1 + i),
      "--latency",
      "20",
      ...group.flags,
      ...names.flatMap((name) => ["--token", `token-${name}`])
    ], { stdio: ["ignore", "pipe", "pipe"] })
    started.push(simulator)
    await untilPrinted(simulator, "stdout", "listening on")
    for (const name of names) {
      tokens[`TOKEN_${name.toUpperCase()}`] = `token-${name}`
      workspaces.push({ workspace: name, baseUrl: `http://127.0.0.1:${portBase + 1 + i}`, tokenEnv: `TOKEN_${name.toUpperCase()}` })
    }
  }
}

interface Counts {
  readonly timeouts: number
  readonly intervals: number
  readonly immediates: number
  readonly gcCount: number
  readonly gcMillis: number
  readonly fibers: number
  readonly cpuMillis: number
}

/** The runtime counters of a runner, written by lib/runtime-counters.mjs on SIGUSR2. */
const readCounts = async (runner: ChildProcess, file: string): Promise<Counts> => {
  const before = Fs.existsSync(file) ? Fs.readFileSync(file, "utf8").split("\n").filter(Boolean).length : 0
  runner.kill("SIGUSR2")
  for (let i = 0; i < 200; i++) {
    const lines = Fs.existsSync(file) ? Fs.readFileSync(file, "utf8").split("\n").filter(Boolean) : []
    if (lines.length > before) return JSON.parse(lines[lines.length - 1]) as Counts
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error("the runner did not write its counters")
}

const directory = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "probe-runner-cpu-"))
process.on("exit", () => Fs.rmSync(directory, { recursive: true, force: true }))

const runOnce = async (version: { readonly name: string; readonly repo: string }, run: number) => {
  const database = `probe_${run}`
  psql("postgres", `CREATE DATABASE ${database}`)
  const url = postgres.url(database)
  const file = NodePath.join(directory, "workspaces.json")
  Fs.writeFileSync(file, JSON.stringify(workspaces))
  const countsFile = NodePath.join(directory, `counters-${run}.jsonl`)
  const bin = NodePath.join(version.repo, "packages", "cli", "bin", "intercom-scroll.js")
  const env = { ...process.env, ...tokens, BENCH_COUNTERS_FILE: countsFile }
  const runner = spawn(process.execPath, [
    "--import",
    counters,
    bin,
    "fleet",
    "runner",
    "--database",
    url,
    "--port",
    String(portBase + 10),
    "--max-syncs",
    String(maxSyncs)
  ], { env, stdio: ["ignore", "ignore", "pipe"] })
  started.push(runner)
  let warnings = 0
  runner.stderr!.on("data", (data: Buffer) => {
    warnings += (data.toString().match(/level=(WARN|ERROR|FATAL)/g) ?? []).length
  })
  await untilPrinted(runner, "stderr", "Listening on")
  // The shards taken, the schedules' first tick sent.
  await new Promise((resolve) => setTimeout(resolve, 10_000))
  // Idle a while first: what the runner spends holding its shards with nothing to sync, per second.
  const idleCpuBefore = cpuSeconds(runner.pid!)
  const idleBefore = await readCounts(runner, countsFile)
  await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1_000))
  const idleCpu = cpuSeconds(runner.pid!) - idleCpuBefore
  const idleAfter = await readCounts(runner, countsFile)
  psql(database, "SELECT pg_stat_statements_reset(), pg_stat_reset()")
  const cpuBefore = cpuSeconds(runner.pid!)
  const countsBefore = await readCounts(runner, countsFile)
  const times: Array<number> = []
  for (let i = 1; i <= syncs; i++) {
    const begun = performance.now()
    const client = spawn(process.execPath, [
      bin,
      "fleet",
      "sync",
      "--database",
      url,
      "--workspaces",
      file,
      "--resources",
      "users,leads,companies",
      "--run",
      `probe-${i}`
    ], { env: { ...process.env, ...tokens }, stdio: ["ignore", "ignore", "pipe"] })
    started.push(client)
    let stderr = ""
    client.stderr!.on("data", (data: Buffer) => void (stderr = (stderr + data.toString()).slice(-4_000)))
    const code = await exited(client)
    if (code !== 0) throw new Error(`fleet sync exited ${code}:\n${stderr}`)
    times.push((performance.now() - begun) / 1000)
  }
  const seconds = times.reduce((a, b) => a + b, 0)
  const cpu = cpuSeconds(runner.pid!) - cpuBefore
  const countsAfter = await readCounts(runner, countsFile)
  const delta = (key: keyof Counts) => countsAfter[key] - countsBefore[key]
  runner.kill("SIGTERM")
  await exited(runner)
  const load = Os.loadavg()[0]
  print(
    `${version.name} run ${run}: syncs ${times.map((t) => `${t.toFixed(1)} s`).join(" / ")}; runner CPU ${cpu.toFixed(1)} s (${
      (cpu / seconds * 100).toFixed(0)
    } % of the syncs' time); load ${load.toFixed(1)}; warnings ${warnings}`
  )
  print(
    `  idle ${idleSeconds} s before: CPU ${(idleCpu / idleSeconds * 1000).toFixed(0)} ms/s, fibers ${
      ((idleAfter.fibers - idleBefore.fibers) / idleSeconds).toFixed(0)
    }/s, setTimeout ${((idleAfter.timeouts - idleBefore.timeouts) / idleSeconds).toFixed(0)}/s`
  )
  print(
    `  runtime over the syncs: fibers ${delta("fibers")} (${(delta("fibers") / seconds).toFixed(0)}/s), setTimeout ${delta("timeouts")} (${
      (delta("timeouts") / seconds).toFixed(0)
    }/s), setImmediate ${delta("immediates")}, setInterval ${delta("intervals")}, GC ${delta("gcCount")} collections ${
      (delta("gcMillis") / 1000).toFixed(1)
    } s`
  )
  const [returned, fetched, commits] = psql(database, `SELECT tup_returned, tup_fetched, xact_commit FROM pg_stat_database WHERE datname = '${database}'`).split("\t")
  print(`  database: tup_returned ${returned}, tup_fetched ${fetched}, xact_commit ${commits}`)
  for (
    const line of psql(
      database,
      `SELECT relname, indexrelname, idx_scan, idx_tup_read FROM pg_stat_user_indexes WHERE idx_scan > 0 ORDER BY idx_tup_read DESC LIMIT 8`
    ).split("\n").filter(Boolean)
  ) {
    const [table, index, scans, read] = line.split("\t")
    print(`  index ${table}.${index}: ${scans} scans (${(Number(scans) / seconds).toFixed(1)}/s), ${read} entries read`)
  }
  for (
    const line of psql(
      database,
      `SELECT calls, rows, round(total_exec_time::numeric, 0), regexp_replace(left(query, 150), '\\s+', ' ', 'g') FROM pg_stat_statements
       WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '${database}') ORDER BY calls DESC LIMIT 16`
    ).split("\n").filter(Boolean)
  ) {
    const [calls, rows, millis, query] = line.split("\t")
    print(`  ${calls} calls (${(Number(calls) / seconds).toFixed(1)}/s), ${rows} rows, ${millis} ms: ${query}`)
  }
  // The cluster's storage, whatever its share: what a runner asks of it while it syncs.
  for (
    const line of psql(
      database,
      `SELECT calls, rows, round(total_exec_time::numeric, 0), regexp_replace(left(query, 110), '\\s+', ' ', 'g') FROM pg_stat_statements
       WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '${database}') AND query LIKE '%cluster\\_%' ORDER BY calls DESC LIMIT 12`
    ).split("\n").filter(Boolean)
  ) {
    const [calls, rows, millis, query] = line.split("\t")
    print(`  cluster: ${calls} calls (${(Number(calls) / seconds).toFixed(1)}/s), ${rows} rows, ${millis} ms: ${query}`)
  }
  for (
    const line of psql(
      database,
      `SELECT relname, indexrelname, idx_scan, idx_tup_read FROM pg_stat_user_indexes WHERE relname LIKE 'cluster\\_%' AND idx_scan > 0
       ORDER BY idx_scan DESC`
    ).split("\n").filter(Boolean)
  ) {
    const [table, index, scans, read] = line.split("\t")
    print(`  cluster index ${table}.${index}: ${scans} scans (${(Number(scans) / seconds).toFixed(1)}/s), ${read} entries read`)
  }
  psql("postgres", `DROP DATABASE ${database}`)
  return { cpu, seconds }
}

await startSimulators(versions[0].repo)
print(`probeRunnerCpu: ${workspaces.length} workspaces, ${syncs} syncs a run, --max-syncs ${maxSyncs}, ${pairs} pairs, ${Os.cpus().length} CPUs`)
let run = 0
const results = new Map(versions.map((version) => [version.name, [] as Array<number>]))
for (let pair = 0; pair < pairs; pair++) {
  const order = pair % 2 === 0 ? versions : [...versions].reverse()
  const cpus: Array<string> = []
  for (const version of order) {
    const { cpu } = await runOnce(version, ++run)
    results.get(version.name)!.push(cpu)
    cpus.push(`${version.name} ${cpu.toFixed(1)} s`)
  }
  print(`pair ${pair + 1}: ${cpus.join(", ")}`)
}
if (versions.length === 2) {
  const [a, b] = versions.map((version) => results.get(version.name)!)
  print(`ratio ${versions[0].name}/${versions[1].name} per pair: ${a.map((cpu, i) => (cpu / b[i]).toFixed(3)).join(", ")}`)
}
stopAll()
process.exit(0)
