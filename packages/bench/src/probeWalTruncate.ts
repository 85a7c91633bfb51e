/**
 * What `Store.truncateWal` (a passive checkpoint, then `wal_checkpoint(TRUNCATE)` at busy timeout 0) costs another
 * writer of the file: `tsx src/probeWalTruncate.ts COPY.sqlite [--wal-gb 1] [--small 20]`, on a copy of a sync's
 * SQLite file (it writes a scratch table of its own, `probe_fill`, to grow the WAL).
 *
 * A second connection writes a one-row `BEGIN IMMEDIATE` transaction every 0.2 s throughout (lib/sqliteWriter.ts, as
 * in probeSqliteWriter.ts: busy timeout 300 s, its own checkpoints off, in a thread of its own). The first grows the
 * WAL to about `--wal-gb` with its automatic checkpoints off (as a deletion pass does), commits, checkpoints
 * passively, then truncates with busy timeout 0, timing each; then the same, `--small` times, after a commit of a few
 * pages (what every complete run pays). Prints JSON.
 *
 * Used for the NOTES section "SQLite's chunks sized by time; `Sync.pruneRuns`' discard chunked…".
 */
import Database from "better-sqlite3"
import * as Fs from "node:fs"
import { setTimeout as sleep } from "node:timers/promises"
import { argv, flag } from "./lib/args.js"
import * as SqliteWriter from "./lib/sqliteWriter.js"

const file = argv[0]
if (file === undefined || file.startsWith("--")) throw new Error("give the SQLite file first")
const walGb = Number(flag("--wal-gb") ?? 1)
const smallRuns = Number(flag("--small") ?? 20)

const walSize = () => {
  try {
    return Fs.statSync(`${file}-wal`).size
  } catch {
    return 0
  }
}

const seconds = (from: number) => (performance.now() - from) / 1000

interface Truncation {
  passive_s: number
  frames: number
  copied: number
  wal_before: number
  skipped?: true
  truncate?: ReadonlyArray<number> | string
  truncate_s?: number
  wal_after?: number
  grown_s?: number
  writer_waits_around_truncate?: ReadonlyArray<readonly [number, number]>
}

const db = new Database(file, { timeout: 5_000 })

/** Store.truncateWal's statements, timed; and when the truncate ran (seconds since the epoch). */
const truncate = (): { readonly result: Truncation; readonly window: readonly [number, number] } => {
  const passiveFrom = performance.now()
  const [busy, frames, copied] = db.prepare("PRAGMA wal_checkpoint(PASSIVE)").raw().get() as [number, number, number]
  const result: Truncation = { passive_s: seconds(passiveFrom), frames, copied, wal_before: walSize() }
  if (busy !== 0 || frames <= 0 || frames !== copied) {
    result.skipped = true
    return { result, window: [0, 0] }
  }
  db.pragma("busy_timeout = 0")
  const start = SqliteWriter.epochSeconds()
  const truncateFrom = performance.now()
  try {
    result.truncate = db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").raw().get() as Array<number>
  } catch (error) {
    result.truncate = error instanceof Error ? error.message : String(error)
  }
  result.truncate_s = seconds(truncateFrom)
  const end = SqliteWriter.epochSeconds()
  db.pragma("busy_timeout = 5000")
  result.wal_after = walSize()
  return { result, window: [start, end] }
}

db.pragma("journal_mode = wal")
db.pragma("wal_autocheckpoint = 0")
const writer = await SqliteWriter.start(file, { everySeconds: 0.2 })

// Pages of a scratch table of its own, 50,000 rows of 3,900 random bytes (~200 MB) a transaction, until the WAL is as
// large as asked.
db.exec("CREATE TABLE IF NOT EXISTS probe_fill (bytes BLOB NOT NULL)")
const fill = db.prepare(`WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 50000)
  INSERT INTO probe_fill (bytes) SELECT randomblob(3900) FROM n`)
const grownFrom = performance.now()
while (walSize() < walGb * 1e9) {
  db.exec("BEGIN IMMEDIATE")
  fill.run()
  db.exec("COMMIT")
}
const { result: large, window: [start, end] } = truncate()
large.grown_s = seconds(grownFrom)
// The second writer's waits from 3 s before the truncate to 3 s after, by when they began (s from the truncate's
// start); the sleep also lets this thread hear the writes reported while it was blocked.
await sleep(3_000)
const round = (value: number, places: number) => Math.round(value * 10 ** places) / 10 ** places
large.writer_waits_around_truncate = writer.writes
  .filter(({ at, waited }) => at + waited >= start - 3 && at <= end + 3)
  .map(({ at, waited }) => [round(at - start, 2), round(waited, 3)] as const)

const small: Array<Truncation> = []
const rewrite = db.prepare("UPDATE probe_fill SET bytes = randomblob(3900) WHERE rowid <= 200")
for (let i = 0; i < smallRuns; i++) {
  db.exec("BEGIN IMMEDIATE")
  rewrite.run()
  db.exec("COMMIT")
  await sleep(50)
  small.push(truncate().result)
}
const waits = await writer.stop()
db.close()

const median = (values: ReadonlyArray<number>) => {
  const ordered = [...values].sort((a, b) => a - b)
  return ordered.length === 0 ? null : ordered[Math.floor(ordered.length / 2)]
}

// A checkpoint's row as the NOTES quote it, "(0, 0, 0)".
const outcome = (one: Truncation) =>
  one.truncate === undefined ? "skipped" : typeof one.truncate === "string" ? one.truncate : `(${one.truncate.join(", ")})`
const done = small.flatMap((one) => one.truncate_s === undefined ? [] : [one.truncate_s])
process.stdout.write(`${
  JSON.stringify(
    {
      large,
      small: {
        runs: small.length,
        truncated: done.length,
        wal_before_median: median(small.map((one) => one.wal_before)),
        passive_s_median: median(small.map((one) => one.passive_s)),
        truncate_s_median: median(done),
        truncate_s_max: done.length === 0 ? null : done.reduce((most, value) => Math.max(most, value)),
        outcomes: [...new Set(small.map(outcome))].sort()
      },
      writer: { writes: waits.length, max: waits.length === 0 ? null : waits.reduce((most, write) => Math.max(most, write.waited), 0) }
    },
    null,
    1
  )
}\n`)
