import Database from "better-sqlite3"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import * as SqliteWriter from "../src/lib/sqliteWriter.js"

const directories: Array<string> = []
afterEach(() => {
  for (const directory of directories.splice(0)) Fs.rmSync(directory, { recursive: true, force: true })
})

describe("the probes' second writer", () => {
  it("waits for a lock this thread holds while blocked, from before the holder commits until after", async () => {
    const directory = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "sqlite-writer-"))
    directories.push(directory)
    const file = NodePath.join(directory, "probe.sqlite")
    const holder = new Database(file)
    holder.pragma("journal_mode = wal")
    const writer = await SqliteWriter.start(file, { everySeconds: 0.02 })

    // This thread holds the write lock and blocks its own event loop: a writer that shared it could not even try.
    holder.exec("BEGIN IMMEDIATE")
    const heldFrom = SqliteWriter.epochSeconds()
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1_000)
    // Taken before the commit: the writer may take the lock and finish its write before this thread reads the clock
    // again once the commit returns.
    const committingAt = SqliteWriter.epochSeconds()
    holder.exec("COMMIT")
    const writes = await writer.stop()
    holder.close()

    // Lower bounds only (the machine is shared): a write began while the lock was held and ended after the commit began.
    const blocked = writes.filter(({ at }) => at >= heldFrom && at < committingAt)
    expect(blocked.length).toBeGreaterThan(0)
    // Both threads' clocks are the epoch to the microsecond, each from its own time origin: 0.1 ms of slack.
    for (const { at, waited } of blocked) expect(at + waited).toBeGreaterThanOrEqual(committingAt - 0.0001)
    const rows = new Database(file, { readonly: true }).prepare("SELECT count(*) AS n FROM probe_writes").get()
    expect(rows).toEqual({ n: writes.length })
  })

  it("fails with SQLite's message when it cannot write", async () => {
    const directory = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "sqlite-writer-"))
    directories.push(directory)
    const file = NodePath.join(directory, "probe.sqlite")
    new Database(file).exec("CREATE TABLE probe_writes (at REAL NOT NULL, other TEXT NOT NULL)").close()
    await expect(SqliteWriter.start(file, { everySeconds: 0.02 })).rejects.toThrow(/failed: table probe_writes has no column named waited/)
  })
})
