// The thread of sqliteWriter.ts's second writer (plain JavaScript, so that a worker thread runs it without tsx's
// loader, under tsx and vitest alike): a one-row `BEGIN IMMEDIATE` transaction every `everyMillis`, each write's
// start (epoch seconds) and wait (s) posted to the parent, sleeping on the shared `stop` flag between writes, so that a
// stop wakes it at once (a thread in blocking calls never reads messages). Reports: sqliteWriter.ts's `Report`.
import Database from "better-sqlite3"
import { performance } from "node:perf_hooks"
import { parentPort, workerData } from "node:worker_threads"

const { everyMillis, file, stop } = workerData
const stopped = new Int32Array(stop)
try {
  const db = new Database(file, { timeout: 300_000 })
  db.pragma("wal_autocheckpoint = 0")
  // `waited` is 0 in the table (the wait is reported, not stored), as the files the probes wrote before have it.
  db.exec("CREATE TABLE IF NOT EXISTS probe_writes (at REAL NOT NULL, waited REAL NOT NULL)")
  const begin = db.prepare("BEGIN IMMEDIATE")
  const insert = db.prepare("INSERT INTO probe_writes (at, waited) VALUES (?, 0)")
  const commit = db.prepare("COMMIT")
  while (Atomics.load(stopped, 0) === 0) {
    // The epoch to the microsecond, as sqliteWriter.ts's epochSeconds: the main thread compares its own times with it.
    const from = performance.now()
    const at = (performance.timeOrigin + from) / 1000
    begin.run()
    insert.run(at)
    commit.run()
    parentPort.postMessage({ type: "write", write: { at, waited: (performance.now() - from) / 1000 } })
    Atomics.wait(stopped, 0, 0, everyMillis)
  }
  db.close()
  parentPort.postMessage({ type: "closed" })
} catch (error) {
  // better-sqlite3's errors lose their message on the way between threads: it goes as text.
  parentPort.postMessage({ type: "failed", message: error instanceof Error ? error.message : String(error) })
}
