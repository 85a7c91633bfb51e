/**
 * A second writer of a SQLite file, timing how long it waits for the file's write lock: every `every` seconds a
 * one-row `BEGIN IMMEDIATE` transaction in a table of its own (`probe_writes`; busy timeout 300 s, its own automatic
 * checkpoints off, so that it times the lock alone), as an app or a second sync writing the same file would.
 *
 * It runs in a worker thread of its own (sqliteWriterThread.mjs) with better-sqlite3's blocking calls, so that a wait
 * is the lock's and never this event loop's, and the probe's own blocking work (a checkpoint, a fill) never holds it
 * back.
 */
import { Worker } from "node:worker_threads"

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

/** What sqliteWriterThread.mjs is given. */
interface Setup {
  readonly file: string
  readonly everyMillis: number
  readonly stop: SharedArrayBuffer
}

/** What sqliteWriterThread.mjs posts. */
type Report =
  | { readonly type: "write"; readonly write: Write }
  | { readonly type: "closed" }
  | { readonly type: "failed"; readonly message: string }

/**
 * Seconds since the epoch, as the probes' samples and summaries give them: to the microsecond, as the writer's thread
 * takes its writes' starts (Date.now's whole milliseconds, compared across threads, put a write a millisecond early).
 */
export const epochSeconds = (): number => (performance.timeOrigin + performance.now()) / 1000

/** Starts the writer on `file`; resolves once its first write is in, so that a probe's first step is measured. */
export const start = (file: string, options: { readonly everySeconds: number }): Promise<SqliteWriter> =>
  new Promise((resolve, reject) => {
    // The loop sleeps on this flag between writes, so a stop wakes it at once (its thread never reads messages).
    const stopFlag = new SharedArrayBuffer(4)
    const setup: Setup = { file, everyMillis: options.everySeconds * 1000, stop: stopFlag }
    const worker = new Worker(new URL("sqliteWriterThread.mjs", import.meta.url), { workerData: setup })
    const writes: Array<Write> = []
    let started = false
    const closed = new Promise<void>((resolveClosed, rejectClosed) => {
      worker.on("message", (report: Report) => {
        if (report.type === "closed") return resolveClosed()
        if (report.type === "failed") {
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
