/**
 * A second writer of a SQLite file, timing how long it waits for the file's write lock: every `every` seconds a
 * one-row `BEGIN IMMEDIATE` transaction in a table of its own (`probe_writes`; busy timeout 300 s, its own automatic
 * checkpoints off, so that it times the lock alone), as an app or a second sync writing the same file would.
 *
 * It runs in a worker thread of its own with better-sqlite3's blocking calls, so that a wait is the lock's and never
 * this event loop's, and the probe's own blocking work (a checkpoint, a fill) never holds it back. This module is also
 * the thread's entry: the loop below runs when it is loaded as the writer's worker.
 */
import Database from "better-sqlite3"
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads"

/** One write: when it began (seconds since the epoch) and how long it waited for the lock and the commit (s). */
export interface Write {
  readonly at: number
  readonly waited: number
}

export interface SqliteWriter {
  /** The writes so far, in order; those the thread has reported while this event loop was free to hear. */
  readonly writes: ReadonlyArray<Write>
  /** Ends the loop after the write under way, closes the connection, and gives every write. */
  readonly stop: () => Promise<ReadonlyArray<Write>>
}

interface Setup {
  readonly sqliteWriter: { readonly file: string; readonly everyMillis: number; readonly stop: SharedArrayBuffer }
}

const tsxApi = import.meta.resolve("tsx/esm/api")

type Report =
  | { readonly type: "write"; readonly write: Write }
  | { readonly type: "closed" }
  | { readonly type: "failed"; readonly message: string }

/** Seconds since the epoch, as the probes' samples and summaries give them. */
export const epochSeconds = (): number => Date.now() / 1000

/** Starts the writer on `file`; resolves once its first write is in, so that a probe's first step is measured. */
export const start = (file: string, options: { readonly everySeconds: number }): Promise<SqliteWriter> =>
  new Promise((resolve, reject) => {
    // The loop sleeps on this flag between writes, so a stop wakes it at once (its thread never reads messages).
    const stopFlag = new SharedArrayBuffer(4)
    const setup: Setup = { sqliteWriter: { file, everyMillis: options.everySeconds * 1000, stop: stopFlag } }
    // This module again, under tsx's loader: on Node 20 a worker thread takes neither the one `tsx` registered here
    // nor one given by `--import` in its execArgv, so the thread registers it itself before importing.
    const entry = `import(${JSON.stringify(tsxApi)}).then(({ register }) => { register(); return import(${
      JSON.stringify(import.meta.url)
    }) })`
    const worker = new Worker(entry, { eval: true, workerData: setup })
    const writes: Array<Write> = []
    let started = false
    const closed = new Promise<void>((resolveClosed, rejectClosed) => {
      worker.on("message", (report: Report) => {
        if (report.type === "closed") return resolveClosed()
        if (report.type === "failed") {
          // better-sqlite3's errors lose their message on the way between threads: it comes as text.
          const error = new Error(`the SQLite writer of ${file} failed: ${report.message}`)
          rejectClosed(error)
          return reject(error)
        }
        writes.push(report.write)
        if (!started) {
          started = true
          resolve({
            writes,
            stop: () => {
              Atomics.store(new Int32Array(stopFlag), 0, 1)
              Atomics.notify(new Int32Array(stopFlag), 0)
              return closed.then(() => writes)
            }
          })
        }
      })
      worker.once("error", (error) => {
        rejectClosed(error)
        reject(error)
      })
      worker.once("exit", (code) => {
        const error = new Error(`the SQLite writer's thread exited (${code}) before it closed`)
        rejectClosed(error)
        reject(error)
      })
    })
    // Until stop is called, a failure surfaces through `start` or `stop`; never as an unhandled rejection.
    closed.catch(() => undefined)
  })

const writeLoop = ({ everyMillis, file, stop }: Setup["sqliteWriter"]) => {
  const stopped = new Int32Array(stop)
  const db = new Database(file, { timeout: 300_000 })
  db.pragma("wal_autocheckpoint = 0")
  // `waited` is 0 in the table (the wait is reported, not stored), as the files the probes wrote before have it.
  db.exec("CREATE TABLE IF NOT EXISTS probe_writes (at REAL NOT NULL, waited REAL NOT NULL)")
  const begin = db.prepare("BEGIN IMMEDIATE")
  const insert = db.prepare("INSERT INTO probe_writes (at, waited) VALUES (?, 0)")
  const commit = db.prepare("COMMIT")
  while (Atomics.load(stopped, 0) === 0) {
    const at = epochSeconds()
    const from = performance.now()
    begin.run()
    insert.run(at)
    commit.run()
    const waited = (performance.now() - from) / 1000
    parentPort!.postMessage({ type: "write", write: { at, waited } } satisfies Report)
    Atomics.wait(stopped, 0, 0, everyMillis)
  }
  db.close()
  parentPort!.postMessage({ type: "closed" } satisfies Report)
}

if (!isMainThread && (workerData as Partial<Setup> | null)?.sqliteWriter !== undefined) {
  try {
    writeLoop((workerData as Setup).sqliteWriter)
  } catch (error) {
    parentPort!.postMessage({ type: "failed", message: error instanceof Error ? error.message : String(error) } satisfies Report)
  }
}
