/**
 * The fleet at 2,000 workspaces, as packages/bench/NOTES.md's "The fleet at 2,000 workspaces" sections ran it: `tsx
 * src/probeFleetScale.ts [--repo DIR] [--every 1] [--max-syncs 8] [--port-base 47500] [--kill-at 0.4] [--down 20]
 * [--out FILE]`. REPO (default this checkout) is installed and built (`pnpm -s build`): its
 * `packages/cli/bin/intercom-scroll.js` is run (a worktree of an older commit measures that); the simulators are this
 * checkout's.
 *
 * Every `--every`th workspace of the 2,000 (1: all) over three standalone simulators at `--latency 20` (A: 1,000 tokens
 * of 100 users; B: 800 of 300 users; C: 200 of 500 users, 100 leads and 20 companies; 440,000 users, 20,000 leads and
 * 4,000 companies in all), a PostgreSQL 15 of the Debian package (fsync on, its defaults; a fresh data directory), two
 * `fleet runner --max-syncs 8` of the bin under `/usr/bin/time -v` with the tokens in their environment, then
 * `fleet sync --resources users,leads,companies` (also under `/usr/bin/time -v`) three times:
 * 1. the first (every record inserted); 2. again, nothing changed; 3. again, and the second runner killed with SIGKILL
 * once `--kill-at` of the second sync's time has passed, started again `--down` seconds later.
 * The simulators are started afresh before each sync (their data follows from their seeds, so nothing changes), so
 * that the stats each prints when stopped are that sync's alone. `fleet status` is run, and timed, every 15 s during
 * the third sync and once after it.
 *
 * Then the copy is checked: each workspace's live counts equal what its simulator serves, no row deleted, no id twice,
 * no run left `running`, each workspace and resource one complete run a sync, the complete runs' counts adding up to
 * the records, the runs cut by the kill `abandoned` or `interrupted`; no advisory lock and no session once the runners
 * stopped; each simulator served each workspace's records once a sync. A workspace whose sync moved (the killed
 * runner had begun it, or it was cut as that runner joined again) is run again from its first resource: it may have
 * more than one complete run of a resource, and be served its records once for each of its runs. Printed throughout: the runners' RSS and the database's sessions every 5 s, the load every
 * minute, the syncs' progress lines. Run as root (PostgreSQL runs as the `postgres` user); ports `--port-base` to
 * `--port-base` + 20.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { flag } from "./lib/args.js"
import { cpuSeconds as cpuOf, debianPostgres, exited, untilPrinted } from "./lib/probeProcesses.js"

const here = NodePath.join(NodePath.dirname(fileURLToPath(import.meta.url)), "..", "..", "..")
const repo = NodePath.resolve(flag("--repo") ?? here)
const every = Number(flag("--every") ?? 1)
const maxSyncs = Number(flag("--max-syncs") ?? 8)
const portBase = Number(flag("--port-base") ?? 47500)
const killAt = Number(flag("--kill-at") ?? 0.4)
const downSeconds = Number(flag("--down") ?? 20)
const out = flag("--out")
const bin = NodePath.join(repo, "packages", "cli", "bin", "intercom-scroll.js")
// This checkout's simulator whatever the CLI's version: its stats line whole (f8b83ba).
const simulatorBin = NodePath.join(here, "packages", "simulator", "bin", "intercom-simulator.js")
const resources = ["users", "leads", "companies"] as const

const t0 = performance.now()
const clock = () => `${((performance.now() - t0) / 1000).toFixed(0).padStart(5)} s`
const print = (line: string) => {
  const stamped = `${clock()} ${line}`
  process.stdout.write(`${stamped}\n`)
  if (out !== undefined) Fs.appendFileSync(out, `${stamped}\n`)
}
const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

const started: Array<ChildProcess> = []
/** Processes run under `time`, which a signal to `time` would leave behind. */
const timed: Array<number> = []
const stopAll = () => {
  for (const pid of timed) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // gone
    }
  }
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
}
process.on("exit", stopAll)
process.on("SIGINT", () => process.exit(130))
process.on("SIGTERM", () => process.exit(143))

/** The process `time -v` runs: its only child. */
const childOf = (pid: number): number => Number(execFileSync("pgrep", ["-P", String(pid)]).toString().trim().split("\n")[0])
/** User and system CPU seconds of a live process; 0 once it is gone. */
const cpuSeconds = (pid: number): number => cpuOf(pid) ?? 0
const rssMegabytes = (pid: number): number => {
  try {
    const line = Fs.readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))
    return line === undefined ? 0 : Number(line.split(/\s+/)[1]) / 1024
  } catch {
    return 0
  }
}
/** What `/usr/bin/time -v` wrote: elapsed, user and system CPU, peak RSS. */
const timeReport = (file: string): string => {
  const text = Fs.readFileSync(file, "utf8")
  const field = (name: string) => text.split("\n").find((l) => l.includes(name))?.split(": ").pop()?.trim() ?? "?"
  return `elapsed ${field("Elapsed (wall clock)")}, user ${field("User time")} s, sys ${field("System time")} s, peak RSS ${
    (Number(field("Maximum resident set size")) / 1024).toFixed(0)
  } MB, exit ${field("Exit status")}${text.includes("terminated by signal") ? ` (${text.split("\n")[0].trim()})` : ""}`
}

const directory = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "probe-fleet-scale-"))
// PostgreSQL 15 of the Debian package, fsync on, its defaults; stopped, and the directory removed, at exit.
const postgres = debianPostgres(directory, portBase)
const database = "fleet"
const psql = (query: string, db = database): string => postgres.psql(db, query)
psql(`CREATE DATABASE ${database}`, "postgres")
const url = postgres.url(database)

// The workspaces: every `every`th of the 2,000.
const groups = [
  { key: "a", count: Math.round(1_000 / every), users: 100, leads: 0, companies: 0 },
  { key: "b", count: Math.round(800 / every), users: 300, leads: 0, companies: 0 },
  { key: "c", count: Math.round(200 / every), users: 500, leads: 100, companies: 20 }
]
const tokens: Record<string, string> = {}
const expected = new Map<string, { readonly users: number; readonly leads: number; readonly companies: number }>()
const workspaces: Array<{ workspace: string; baseUrl: string; tokenEnv: string }> = []
for (const [i, group] of groups.entries()) {
  for (let n = 0; n < group.count; n++) {
    const name = `${group.key}${n}`
    tokens[`TOKEN_${name.toUpperCase()}`] = `token-${name}`
    expected.set(name, group)
    workspaces.push({ workspace: name, baseUrl: `http://127.0.0.1:${portBase + 1 + i}`, tokenEnv: `TOKEN_${name.toUpperCase()}` })
  }
}
const workspacesFile = NodePath.join(directory, "workspaces.json")
Fs.writeFileSync(workspacesFile, JSON.stringify(workspaces))
const total = (resource: (typeof resources)[number]) => [...expected.values()].reduce((sum, e) => sum + e[resource], 0)
const records = resources.reduce((sum, resource) => sum + total(resource), 0)

/** The stats each simulator prints when stopped, by token. */
type Served = Record<string, { readonly recordsServed: number; readonly pagesServed: number; readonly requests: number }>
let simulators: Array<{ readonly child: ChildProcess; readonly stderr: string }> = []
const startSimulators = async () => {
  simulators = await Promise.all(groups.map(async (group, i) => {
    // Its stderr to a file: the stats line is ~600 bytes a token, and through a pipe the bin before f8b83ba cut it short.
    const stderr = NodePath.join(directory, `simulator-${group.key}.stderr`)
    const fd = Fs.openSync(stderr, "w")
    const child = spawn(process.execPath, [
      simulatorBin, "--port", String(portBase + 1 + i), "--latency", "20",
      "--users", String(group.users), "--leads", String(group.leads), "--companies", String(group.companies),
      ...Array.from({ length: group.count }, (_, n) => ["--token", `token-${group.key}${n}`]).flat()
    ], { stdio: ["ignore", "pipe", fd] })
    Fs.closeSync(fd)
    started.push(child)
    await untilPrinted(child, "stdout", "listening on")
    return { child, stderr }
  }))
}
const stopSimulators = async (): Promise<Served> => {
  const served: Served = {}
  for (const { child, stderr } of simulators) {
    child.kill("SIGTERM")
    await exited(child)
    const text = Fs.readFileSync(stderr, "utf8")
    const line = text.split("\n").find((l) => l.includes("what it served: "))
    if (line === undefined) throw new Error(`a simulator printed no stats:\n${text.slice(-2_000)}`)
    Object.assign(served, (JSON.parse(line.slice(line.indexOf("{"))) as { workspaces: Served }).workspaces)
  }
  return served
}

// The runners, each under /usr/bin/time -v.
const runners: Array<{ time: ChildProcess; pid: number; timeFile: string; log: string }> = []
const startRunner = async (index: number, attempt: number) => {
  const timeFile = NodePath.join(directory, `runner${index}-${attempt}.time`)
  const log = NodePath.join(directory, `runner${index}-${attempt}.log`)
  const time = spawn("/usr/bin/time", [
    "-v", "-o", timeFile, process.execPath, bin, "fleet", "runner", "--database", url,
    "--port", String(portBase + 10 + index), "--max-syncs", String(maxSyncs)
  ], { env: { ...process.env, ...tokens }, stdio: ["ignore", "ignore", "pipe"] })
  started.push(time)
  time.stderr!.on("data", (data: Buffer) => Fs.appendFileSync(log, data))
  await untilPrinted(time, "stderr", "Listening on")
  runners[index] = { time, pid: childOf(time.pid!), timeFile, log }
  timed.push(runners[index].pid)
}
const warnings = (log: string) =>
  Fs.existsSync(log) ? Fs.readFileSync(log, "utf8").split("\n").filter((l) => /level=(WARN|ERROR|FATAL)/.test(l)) : []

// Every 5 s: the runners' RSS and the database's sessions; every minute, the load.
const samples: Array<{ sessions: number; waiting: number; rss: Array<number> }> = []
const sampler = setInterval(() => {
  try {
    const [sessions, waiting] = psql(
      `SELECT count(*), count(*) FILTER (WHERE wait_event_type = 'Lock') FROM pg_stat_activity WHERE datname = '${database}' AND pid <> pg_backend_pid()`
    ).split("\t").map(Number)
    samples.push({ sessions, waiting, rss: runners.map((r) => rssMegabytes(r.pid)) })
  } catch {
    // the database stopping
  }
}, 5_000)
const loads = setInterval(() => print(`load ${Os.loadavg().map((l) => l.toFixed(2)).join(" ")}`), 60_000)
const sampled = (from: number) => {
  const part = samples.slice(from)
  const range = (values: Array<number>) => `${Math.min(...values)}–${Math.max(...values)}`
  return `PG sessions ${range(part.map((s) => s.sessions))} (waiting on a lock: max ${Math.max(...part.map((s) => s.waiting))}), runner RSS ${
    runners.map((_, i) => range(part.map((s) => Math.round(s.rss[i] ?? 0)))).join(" / ")
  } MB`
}

/** `fleet status`, timed; its first lines. */
const status = (format: "text" | "json" = "text") => {
  const begun = performance.now()
  const text = execFileSync(process.execPath, [bin, "fleet", "status", "--database", url, "--format", format], { env: process.env })
    .toString()
  return { seconds: (performance.now() - begun) / 1000, text }
}

const fleetSync = async (run: number, during?: (done: Promise<unknown>) => Promise<void>) => {
  const timeFile = NodePath.join(directory, `sync${run}.time`)
  const begun = performance.now()
  const client = spawn("/usr/bin/time", [
    "-v", "-o", timeFile, process.execPath, bin, "fleet", "sync", "--database", url, "--workspaces", workspacesFile,
    "--resources", "users,leads,companies", "--run", `scale-${run}`
  ], { env: { ...process.env, ...tokens }, stdio: ["ignore", "pipe", "pipe"] })
  started.push(client)
  void sleep(500).then(() => {
    if (client.exitCode === null) timed.push(childOf(client.pid!))
  })
  let output = ""
  client.stdout!.on("data", (data: Buffer) => void (output += data.toString()))
  client.stderr!.on("data", (data: Buffer) => void (output += data.toString()))
  const from = samples.length
  const pidsBefore = runners.map((runner) => runner.pid)
  const cpuBefore = runners.map((runner) => cpuSeconds(runner.pid))
  const done = exited(client).then((code) => ({ code, seconds: (performance.now() - begun) / 1000 }))
  const [{ code, seconds }] = await Promise.all([done, during?.(done)])
  const lines = output.split("\n").filter(Boolean)
  Fs.writeFileSync(NodePath.join(directory, `sync${run}.out`), output)
  if (out !== undefined) Fs.writeFileSync(`${out}.sync${run}`, output)
  // A runner killed meanwhile: its CPU until the kill, then its successor's.
  const cpu = runners.map((runner, i) =>
    runner.pid === pidsBefore[i]
      ? (cpuSeconds(runner.pid) - cpuBefore[i]).toFixed(1)
      : `${(cpuAtKill - cpuBefore[i]).toFixed(1)} + ${cpuSeconds(runner.pid).toFixed(1)}`
  )
  print(`sync ${run}: exit ${code}, ${seconds.toFixed(1)} s; runner CPU ${cpu.join(" / ")} s; fleet sync ${timeReport(timeFile)}; ${sampled(from)}`)
  for (const line of lines.filter((l) => !/^\S+ (complete|synced)/.test(l)).slice(-6)) print(`  | ${line}`)
  return { code, seconds }
}

// The checks of the copy after sync `run`.
const check = (run: number, served: Served, moved: ReadonlySet<string>) => {
  const problems: Array<string> = []
  for (const resource of resources) {
    const table = `intercom_${resource}_records`
    const rows = psql(`SELECT workspace, count(*) FILTER (WHERE deleted_at IS NULL), count(*) FILTER (WHERE deleted_at IS NOT NULL),
      count(DISTINCT id) - count(*) FROM ${table} GROUP BY workspace`).split("\n").filter(Boolean)
    const live = new Map(rows.map((row) => {
      const [workspace, alive, deleted, twice] = row.split("\t")
      if (Number(deleted) > 0) problems.push(`${workspace} ${resource}: ${deleted} deleted`)
      if (Number(twice) !== 0) problems.push(`${workspace} ${resource}: an id twice`)
      return [workspace, Number(alive)] as const
    }))
    for (const workspace of live.keys()) if (!expected.has(workspace)) problems.push(`${workspace}: a stray workspace`)
    for (const [workspace, counts] of expected) {
      if ((live.get(workspace) ?? 0) !== counts[resource]) {
        problems.push(`${workspace} ${resource}: ${live.get(workspace) ?? 0} live, its simulator serves ${counts[resource]}`)
      }
    }
  }
  const label = `scale-${run}`
  const byStatus = psql(`SELECT status, count(*), coalesce(sum(inserted), 0), coalesce(sum(updated), 0), coalesce(sum(unchanged), 0),
    coalesce(sum(deleted), 0) FROM intercom_sync_runs WHERE label = '${label}' GROUP BY status ORDER BY status`)
  print(`  runs of ${label} (status, runs, inserted, updated, unchanged, deleted): ${byStatus.split("\n").join("; ")}`)
  // Each workspace and resource: one complete run, or more where its sync was on the killed runner (`moved`): the
  // cluster runs a moved request again from its first resource.
  const notOnce = psql(`SELECT workspace, resource, count(*) FILTER (WHERE status = 'complete') FROM intercom_sync_runs
    WHERE label = '${label}' GROUP BY workspace, resource HAVING count(*) FILTER (WHERE status = 'complete') <> 1`)
    .split("\n").filter(Boolean).map((line) => line.split("\t"))
  const again = notOnce.filter(([workspace, , complete]) => Number(complete) > 1 && moved.has(workspace))
  const wrongRuns = notOnce.filter((row) => !again.includes(row))
  if (again.length > 0) print(`  ${again.length} workspace-resources complete more than once (their sync moved, run again from its first resource)`)
  if (wrongRuns.length > 0) problems.push(`not one complete run a workspace and resource: ${wrongRuns.slice(0, 5).map((r) => r.join(" ")).join("; ")}`)
  const runsOf = Number(psql(`SELECT count(DISTINCT (workspace, resource)) FROM intercom_sync_runs WHERE label = '${label}'`))
  if (runsOf !== expected.size * resources.length) problems.push(`${runsOf} workspace-resources with runs of ${label}`)
  // The latest complete run of each workspace and resource counts its records.
  const [counted] = psql(`SELECT coalesce(sum(inserted + updated + unchanged), 0) FROM intercom_sync_runs r
    WHERE label = '${label}' AND status = 'complete' AND NOT EXISTS (SELECT 1 FROM intercom_sync_runs l WHERE l.label = r.label
    AND l.workspace = r.workspace AND l.resource = r.resource AND l.status = 'complete' AND l.id > r.id)`).split("\t").map(Number)
  if (counted !== records) problems.push(`the complete runs counted ${counted} records, not ${records}`)
  for (const resource of resources) {
    const wrong = psql(`SELECT r.workspace, r.inserted + r.updated + r.unchanged, count(x.id) FROM intercom_sync_runs r
      LEFT JOIN intercom_${resource}_records x ON x.workspace = r.workspace AND x.deleted_at IS NULL
      WHERE r.label = '${label}' AND r.status = 'complete' AND r.resource = '${resource}'
      GROUP BY r.id HAVING r.inserted + r.updated + r.unchanged <> count(x.id) LIMIT 5`)
    if (wrong !== "") problems.push(`${resource}: a complete run's counts differ from the live rows: ${wrong.split("\n").join("; ")}`)
  }
  // The runs a workspace's records could have been served for: one run a resource, or its runs moved and cut.
  const runCounts = new Map<string, number>()
  for (const line of psql(`SELECT workspace, resource, count(*) FROM intercom_sync_runs WHERE label = '${label}' GROUP BY workspace, resource`)
    .split("\n").filter(Boolean)) {
    const [workspace, resource, count] = line.split("\t")
    const counts = expected.get(workspace)
    if (counts !== undefined) {
      runCounts.set(workspace, (runCounts.get(workspace) ?? 0) + Number(count) * counts[resource as (typeof resources)[number]])
    }
  }
  const running = Number(psql(`SELECT count(*) FROM intercom_sync_runs WHERE status = 'running'`))
  if (running !== 0) problems.push(`${running} runs left running`)
  // What the simulators served: each workspace's records once, or for one that moved, at most once a run.
  let servedRecords = 0
  let pages = 0
  let requests = 0
  for (const [workspace, counts] of expected) {
    const stats = served[`token-${workspace}`]
    const own = counts.users + counts.leads + counts.companies
    const got = stats?.recordsServed ?? 0
    servedRecords += got
    pages += stats?.pagesServed ?? 0
    requests += stats?.requests ?? 0
    const most = runCounts.get(workspace) ?? 0
    if (got < own || got > most || (!moved.has(workspace) && got !== own)) {
      problems.push(`${workspace}: its simulator served ${got} records, it has ${own} (its runs: at most ${most})`)
    }
  }
  print(`  the simulators served ${servedRecords} records (the copy: ${records}) in ${pages} pages, ${requests} requests`)
  print(problems.length === 0 ? `  check ${run}: every workspace as its simulator serves it` : `  check ${run}: ${problems.length} problems:`)
  for (const problem of problems.slice(0, 30)) print(`    ${problem}`)
  return problems.length
}

print(`probeFleetScale: ${workspaces.length} workspaces (${total("users")} users, ${total("leads")} leads, ${total("companies")} companies), ` +
  `--max-syncs ${maxSyncs}, ${Os.cpus().length} CPUs, ${repo} at ${execFileSync("git", ["-C", repo, "rev-parse", "--short", "HEAD"]).toString().trim()}`)
print(`load ${Os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
await startRunner(0, 1)
await startRunner(1, 1)
print("runners listening")
await sleep(10_000)
let failures = 0

await startSimulators()
const first = await fleetSync(1)
failures += check(1, await stopSimulators(), new Set())
await startSimulators()
const second = await fleetSync(2)
failures += check(2, await stopSimulators(), new Set())
const idle = psql(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'`)
print(`idle between syncs: ${idle} advisory locks held (the runners' shard locks), ${sampled(samples.length - 2)}`)

// The third: the second runner killed part way, started again.
await startSimulators()
let killedAt = ""
let cpuAtKill = 0
const third = await fleetSync(3, async (done) => {
  let syncing = true
  void done.then(() => (syncing = false))
  const ticker = (async () => {
    while (syncing) {
      await Promise.race([sleep(15_000), done])
      if (!syncing) break
      try {
        const { seconds, text } = status()
        print(`fleet status in ${seconds.toFixed(2)} s: ${text.split("\n").filter(Boolean).slice(0, 8).join(" ⏎ ")}`)
        if (out !== undefined) Fs.appendFileSync(`${out}.status`, `--- ${clock()} (${seconds.toFixed(2)} s)\n${text}\n`)
      } catch (error) {
        print(`fleet status failed: ${String(error)}`)
      }
    }
  })()
  await sleep(killAt * second.seconds * 1_000)
  const completed = psql(`SELECT count(DISTINCT workspace) FROM intercom_sync_runs WHERE label = 'scale-3' AND status = 'complete'`)
  cpuAtKill = cpuSeconds(runners[1].pid)
  process.kill(runners[1].pid, "SIGKILL")
  killedAt = psql("SELECT now()")
  print(`SIGKILL to runner 1 (pid ${runners[1].pid}), ${completed} workspaces with a complete run`)
  await exited(runners[1].time)
  const killed = runners[1]
  print(`runner 1 killed: ${timeReport(killed.timeFile)}; its log: ${warnings(killed.log).length} warnings`)
  await sleep(downSeconds * 1_000)
  await startRunner(1, 2)
  print(`runner 1 started again (pid ${runners[1].pid})`)
  await ticker
})
const cutRuns = psql(`SELECT workspace, resource, status, runner FROM intercom_sync_runs WHERE label = 'scale-3' AND status <> 'complete'`)
  .split("\n").filter(Boolean)
print(`runs of scale-3 not complete: ${cutRuns.length}: ${cutRuns.slice(0, 12).join("; ")}`)
// The workspaces whose sync moved: begun by the killed runner, or cut as it joined again.
const onKilled = psql(`SELECT DISTINCT workspace FROM intercom_sync_runs WHERE label = 'scale-3'
  AND runner = '127.0.0.1:${portBase + 11}' AND started_at < '${killedAt}'::timestamptz`).split("\n").filter(Boolean)
const moved = new Set([...onKilled, ...cutRuns.map((line) => line.split("\t")[0])])
print(`${onKilled.length} workspaces had runs on the killed runner; ${moved.size} moved in all`)
failures += check(3, await stopSimulators(), moved)
try {
  const after = status()
  print(`fleet status after, in ${after.seconds.toFixed(2)} s:\n${after.text}`)
  const afterJson = status("json")
  print(`fleet status --format json in ${afterJson.seconds.toFixed(2)} s, ${afterJson.text.length} bytes`)
} catch (error) {
  print(`fleet status failed: ${String(error)}`)
}

// Stop the runners: nothing left behind.
clearInterval(sampler)
for (const runner of runners) process.kill(runner.pid, "SIGTERM")
await Promise.all(runners.map((runner) => exited(runner.time)))
for (const [i, runner] of runners.entries()) {
  print(`runner ${i}: ${timeReport(runner.timeFile)}; ${warnings(runner.log).length} warnings`)
  for (const line of warnings(runner.log).slice(0, 5)) print(`  ${line.slice(0, 300)}`)
}
const locks = psql(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'`)
const sessions = psql(`SELECT count(*) FROM pg_stat_activity WHERE datname = '${database}' AND pid <> pg_backend_pid()`)
print(`after the runners stopped: ${locks} advisory locks, ${sessions} sessions of ${database}`)
if (locks !== "0" || sessions !== "0") failures++
print(`syncs ${first.seconds.toFixed(1)} / ${second.seconds.toFixed(1)} / ${third.seconds.toFixed(1)} s; ${failures} failures`)
clearInterval(loads)
stopAll()
process.exit(failures === 0 ? 0 : 1)
