/**
 * What the fence costs: a page's write (100 users, one upsert) in the lock's transaction (`Held.transaction`: in
 * PostgreSQL on the lock's own session, in SQLite with the lease renewed first in the transaction) against the same
 * write in a plain transaction on the pool (what a run did before the fence). Each round writes every page with a new
 * run, so that each upsert really updates its rows; the two ways alternate, and the medians are printed.
 *
 * `pnpm -C packages/sync exec tsx bench/fence.ts`: it starts its own PostgreSQL.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
// The module itself: the testing package's index loads vitest, which refuses to run outside a test.
import * as PostgresServer from "@intercom-scroll/testing/PostgresServer"
import { Console, Effect, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import type { Dialect } from "../src/internal/dialect.js"
import * as Lock from "../src/internal/lock.js"
import * as Migrations from "../src/internal/migrations.js"
import * as Store from "../src/internal/store.js"
import { median, pages } from "./pages.js"

const rounds = 12
/** 50 pages of 100 users, as the simulator serves them. */
const users = 5_000

const measure = (dialect: Dialect) =>
  Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    yield* Migrations.migrate(sql, dialect, { lockTimeoutMillis: 0, workspace: undefined })
    const written = yield* pages(users)
    const held = yield* Lock.acquire(sql, dialect, { workspace: "bench", resource: "users", timeout: undefined })
    const store = Store.make(sql, dialect, "bench", "users")
    const ways = {
      pool: (write: Effect.Effect<Store.PageCounts, unknown>) => sql.withTransaction(write),
      fenced: (write: Effect.Effect<Store.PageCounts, unknown>) => held.transaction(write)
    }
    const perPage: Record<keyof typeof ways, Array<number>> = { pool: [], fenced: [] }
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (["pool", "fenced"] as const) : (["fenced", "pool"] as const)
      for (const way of order) {
        const run = yield* store.startRun(Date.now(), { label: undefined, runner: undefined })
        const started = performance.now()
        for (const records of written) yield* ways[way](store.writePage(run, records, Date.now()))
        // The first round inserts; the rest update rows that are there: keep those.
        if (round > 0) perPage[way].push((performance.now() - started) / written.length)
      }
    }
    const [pool, fenced] = [median(perPage.pool), median(perPage.fenced)]
    yield* Console.log(
      `${dialect}: a page of 100 users written in ${pool.toFixed(2)} ms on the pool, ${fenced.toFixed(2)} ms fenced ` +
        `(${((fenced / pool - 1) * 100).toFixed(1)} %), medians of ${rounds - 1} rounds of ${written.length} pages`
    )
  }).pipe(Effect.scoped)

const program = Effect.gen(function*() {
  const server = yield* Effect.acquireRelease(Effect.promise(() => PostgresServer.start()), (server) => Effect.promise(server.stop))
  yield* measure("pg").pipe(Effect.provide(PgClient.layer({ url: Redacted.make(server.url), maxConnections: 4 })))
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "sync-fence-bench-"))
  yield* measure("sqlite").pipe(
    Effect.provide(SqliteClient.layer({ filename: path.join(directory, "bench.sqlite") })),
    Effect.ensuring(Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true })))
  )
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.orDie)).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
