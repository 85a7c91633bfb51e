/**
 * A second writer of a sync's SQLite file, timing how long it waits for the file's write lock: `tsx
 * src/probeSqliteWriter.ts FILE.sqlite --pid PID [--out LOG.jsonl] [--every 0.2]`, started beside `intercom-scroll
 * sync` (its PID), stopped with SIGTERM or Ctrl-C once the sync has exited (it stops by itself once PID has); or
 * `--pid 0` to run until stopped.
 *
 * Every `--every` seconds (0.2) a one-row `BEGIN IMMEDIATE` transaction in a table of its own (lib/sqliteWriter.ts:
 * busy timeout 300 s, its own automatic checkpoints off, so that it times the lock alone; in a thread of its own), as
 * an app or a second sync writing the same file would. Every 0.5 s a sample: the WAL file's size, the sync's bytes
 * written (/proc/PID/io) and CPU seconds (/proc/PID/stat), and the last run's row (status, deleted). At the end a
 * summary on stdout: the waits over the whole run, and over the deletion pass's marking (from the first sample whose
 * run had marked a row, less the longest wait, to the run recorded complete); with `--out`, every write and sample as
 * JSONL.
 *
 * Used for the NOTES section "SQLite's chunks sized by time; `Sync.pruneRuns`' discard chunked…".
 */
import Database from "better-sqlite3"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import { setTimeout as sleep } from "node:timers/promises"
import { argv, flag } from "./lib/args.js"
import * as SqliteWriter from "./lib/sqliteWriter.js"

const file = argv[0]
if (file === undefined || file.startsWith("--")) throw new Error("give the SQLite file first")
const pid = Number(flag("--pid") ?? 0)
const out = flag("--out")
const every = Number(flag("--every") ?? 0.2)

let stopping = false
process.on("SIGTERM", () => stopping = true)
process.on("SIGINT", () => stopping = true)

interface Sample {
  readonly at: number
  readonly wal: number
  readonly written: number | null
  readonly cpu: number | null
  readonly status: string | null
  readonly deleted: number | null
}

const samples: Array<Sample> = []
const ticks = Number(execFileSync("getconf", ["CLK_TCK"]).toString())

const walSize = () => {
  try {
    return Fs.statSync(`${file}-wal`).size
  } catch {
    return 0
  }
}

/** The sync's bytes written and CPU seconds (user+sys), from /proc; nulls once it has gone, or without `--pid`. */
const proc = (): { readonly written: number | null; readonly cpu: number | null } => {
  if (pid === 0) return { written: null, cpu: null }
  try {
    const io = Fs.readFileSync(`/proc/${pid}/io`, "utf8").split("\n").find((line) => line.startsWith("write_bytes"))
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    if (io === undefined) return { written: null, cpu: null }
    const fields = stat.slice(stat.lastIndexOf(")") + 1).trim().split(/\s+/)
    return { written: Number(io.split(/\s+/)[1]), cpu: (Number(fields[11]) + Number(fields[12])) / ticks }
  } catch {
    return { written: null, cpu: null }
  }
}

const reader = new Database(file, { readonly: true, timeout: 5_000 })
const firstRun = (() => {
  try {
    const row = reader.prepare("SELECT coalesce(max(id), 0) FROM intercom_sync_runs WHERE status <> 'running'").raw()
      .get() as [number]
    return row[0]
  } catch {
    return 0
  }
})()

const sample = () => {
  const wal = walSize()
  const { cpu, written } = proc()
  let run: { readonly status: string; readonly deleted: number } | undefined
  try {
    // The newest run, once it is one the sync began after the probe started (prepared each time: the table may not
    // be there yet).
    run = reader.prepare("SELECT status, deleted FROM intercom_sync_runs WHERE id > ? ORDER BY id DESC LIMIT 1")
      .get(firstRun) as typeof run
  } catch {
    run = undefined
  }
  samples.push({ at: SqliteWriter.epochSeconds(), wal, written, cpu, status: run?.status ?? null, deleted: run?.deleted ?? null })
}

const writer = await SqliteWriter.start(file, { everySeconds: every })
sample()
while (!stopping) {
  await sleep(500)
  if (pid !== 0 && !Fs.existsSync(`/proc/${pid}`)) stopping = true
  if (!stopping) sample()
}
const waits = await writer.stop()
reader.close()

if (out !== undefined) {
  const lines = [
    ...waits.map(({ at, waited }) => JSON.stringify({ wait: at, waited })),
    ...samples.map(({ at, ...rest }) => JSON.stringify({ sample: at, ...rest }))
  ]
  Fs.writeFileSync(out, lines.map((line) => `${line}\n`).join(""))
}

const percentile = (values: ReadonlyArray<number>, p: number) => {
  if (values.length === 0) return null
  const ordered = [...values].sort((a, b) => a - b)
  return ordered[Math.min(ordered.length - 1, Math.floor(p * ordered.length))]
}

const summary = (window: ReadonlyArray<SqliteWriter.Write>) => {
  const values = window.map((write) => write.waited)
  return {
    writes: values.length,
    p50: percentile(values, 0.5),
    p90: percentile(values, 0.9),
    max: values.length === 0 ? null : values.reduce((most, value) => Math.max(most, value)),
    over_1s: values.filter((value) => value > 1).length
  }
}

const longest = waits.reduce((most, write) => Math.max(most, write.waited), 0)
const markingFrom = samples.find((s) => s.deleted)?.at
const markingTo = samples.find((s) => s.status === "complete")?.at
const lastOf = <A>(values: ReadonlyArray<A | null>) => values.reduce<A | null>((last, value) => value ?? last, null)
const result: Record<string, unknown> = {
  all: summary(waits),
  wal_peak: samples.reduce((most, s) => Math.max(most, s.wal), 0),
  written: lastOf(samples.map((s) => s.written)),
  cpu: lastOf(samples.map((s) => s.cpu))
}
if (markingFrom !== undefined) {
  const end = markingTo ?? Infinity
  result.marking = summary(waits.filter(({ at }) => markingFrom - longest <= at && at <= end))
  result.marking_seconds = (markingTo ?? samples[samples.length - 1].at) - markingFrom
}
process.stdout.write(`${JSON.stringify(result, null, 1)}\n`)
