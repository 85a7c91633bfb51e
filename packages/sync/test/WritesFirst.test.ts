/**
 * `discardLeftLogs`'s `writesFirst`, on a SQLite file and a second client on it (what another process is): whether a
 * chunk's bound is read inside its transaction, after the transaction's first statement has taken the write lock, or
 * just before it. Another client writes at the one moment that tells them apart, between the chunk's bound read and
 * the statement after it: a `Statement` transformer runs its write there, so nothing depends on timing.
 */
import { SqlClient, Statement } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, layer } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Layer } from "effect"
import * as Lock from "../src/internal/lock.js"
import { isBusy } from "../src/internal/lock/sqliteBusy.js"
import * as Store from "../src/internal/store.js"
import { Sync } from "../src/index.js"
import * as Databases from "./support/databases.js"
import { freshToken } from "./support/world.js"

/** An ended run's id, and the ids it logged as seen. */
const endedRun = 1
const logged = 50

/**
 * Runs `discard` with another client's write (a row into a table of its own, SQLite's busy timeout 0: refused at once
 * where it would wait) just after the bound read of the users' seen log; what became of that write, and how the
 * discard ended.
 */
const withWriteAfterBound = <E, R>(discard: Effect.Effect<void, E, R>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // Another client on the file, as another process has: a layer of its own, built here.
    const [{ file }] = yield* sql<{ file: string }>`SELECT file FROM pragma_database_list WHERE name = 'main'`
    const other = Context.get(yield* Layer.build(SqliteClient.layer({ filename: file })), SqlClient.SqlClient)
    yield* Sync.migrate
    yield* sql`DELETE FROM ${sql(Store.seenLogTable("users"))}`
    yield* sql`CREATE TABLE IF NOT EXISTS elsewhere (n INTEGER)`
    for (let id = 0; id < logged; id++) {
      yield* sql`INSERT INTO ${sql(Store.seenLogTable("users"))} ${sql.insert({ run: endedRun, id: `u${id}` })}`
    }
    yield* other`PRAGMA busy_timeout = 0`
    let boundRead = false
    let otherWrite: string | undefined
    const exit = yield* discard.pipe(
      Statement.withTransformer((statement) => {
        const [text] = statement.compile()
        if (otherWrite === undefined && boundRead) {
          // The statement after the bound read: the other client writes first.
          return other`INSERT INTO elsewhere (n) VALUES (1)`.pipe(
            Effect.match({ onFailure: (error) => isBusy(error) ? "refused: busy" : `failed: ${error.message}`, onSuccess: () => "committed" }),
            Effect.map((outcome) => {
              otherWrite = outcome
              return statement
            }),
            Statement.withTransformerDisabled,
            // On its own connection: a statement of any client inside a transaction runs on that transaction's.
            Effect.mapInputContext(Context.omit(SqlClient.TransactionConnection))
          )
        }
        if (/max\(rowid\)/.test(text) && text.includes(Store.seenLogTable("users"))) boundRead = true
        return Effect.succeed(statement)
      }),
      Effect.exit
    )
    const [{ left }] = yield* sql<{ left: number }>`SELECT count(*) AS left FROM ${sql(Store.seenLogTable("users"))}`
    return { otherWrite, exit, left: Number(left) }
  })

const ended = (sql: SqlClient.SqlClient) => () => sql.in([endedRun])

describe("discardLeftLogs' writesFirst (SQLite)", () => {
  layer(Databases.sqlite, { timeout: "60 seconds" })((it) => {
    it.scoped("under the lock's fence (writesFirst: true), the chunk's bound is read under the write lock: no other client commits before the chunk's delete", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Sync.migrate
        const lock = yield* Lock.acquire(sql, "sqlite", { workspace: freshToken("writes-first"), resource: "users", timeout: undefined })
        const { exit, left, otherWrite } = yield* withWriteAfterBound(
          Store.discardLeftLogs(sql, ended(sql), { run: lock.transaction, writesFirst: true })
        )
        expect(otherWrite).toBe("refused: busy")
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(left).toBe(0)
      }))

    it.scoped("a plain transaction (writesFirst: false, as pruneRuns passes) reads the bound before it: another client's commit in between does not fail the chunk", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { exit, left, otherWrite } = yield* withWriteAfterBound(
          Store.discardLeftLogs(sql, ended(sql), { run: sql.withTransaction, writesFirst: false })
        )
        expect(otherWrite).toBe("committed")
        expect(Exit.isSuccess(exit) ? "discarded" : Cause.pretty(exit.cause)).toBe("discarded")
        expect(left).toBe(0)
      }))
  })
})
