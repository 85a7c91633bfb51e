/**
 * Whether a fillfactor below 100 on PostgreSQL's seen tables pays: a run updates every seen row (`last_seen_at`,
 * `last_seen_run`, neither indexed), and with room left on a row's page the update is HOT (no new primary-key entry).
 * Two databases on one server, the seen table at fillfactor 100 in one and `FILLFACTOR` in the other; each round syncs
 * every page again with a new run (every record unchanged, so the seen rows are all that is written), alternating
 * the two, and prints the medians of a page's time, the HOT share and the WAL a round writes.
 *
 * `pnpm -C packages/sync exec tsx bench/seen.ts`: it starts its own PostgreSQL.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
// The module itself: the testing package's index loads vitest, which refuses to run outside a test.
import * as PostgresServer from "@intercom-scroll/testing/PostgresServer"
import { Console, Effect, Layer, Redacted } from "effect"
import { performance } from "node:perf_hooks"
import * as Migrations from "../src/internal/migrations.js"
import * as Store from "../src/internal/store.js"
import { median, pages } from "./pages.js"

const rounds = 9
const users = Number(process.env.USERS ?? 20_000)
const fillfactor = Number(process.env.FILLFACTOR ?? 50)


interface Round {
  readonly perPage: number
  readonly hot: number
  readonly walBytes: number
}

/** One database: migrated, the seen table at `factor`, every page written once; then a round at a time. */
const database = (url: string, factor: number) =>
  Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    yield* Migrations.migrate(sql, "pg", { lockTimeoutMillis: 0, workspace: undefined })
    yield* sql.unsafe(`ALTER TABLE intercom_users_seen SET (fillfactor = ${factor})`)
    const store = Store.make(sql, "pg", "bench", "users")
    const written = yield* pages(users)
    const sync = Effect.gen(function*() {
      const run = yield* store.startRun(Date.now(), { label: undefined, runner: undefined })
      for (const records of written) yield* sql.withTransaction(store.writePage(run, records, Date.now()))
    })
    yield* sync
    const round = Effect.gen(function*() {
      const [before] = yield* sql<{ lsn: string; hot: string; updates: string }>`SELECT
        CAST(pg_current_wal_lsn() AS text) AS lsn, n_tup_hot_upd AS hot, n_tup_upd AS updates
        FROM pg_stat_user_tables WHERE relname = 'intercom_users_seen'`
      const started = performance.now()
      yield* sync
      const perPage = (performance.now() - started) / written.length
      // The statistics collector reports a little after the fact.
      yield* sql`SELECT pg_stat_force_next_flush()`.pipe(Effect.ignore)
      yield* Effect.sleep("1 second")
      const [after] = yield* sql<{ wal: string; hot: string; updates: string }>`SELECT
        CAST(pg_current_wal_lsn() - CAST(${before.lsn} AS pg_lsn) AS text) AS wal, n_tup_hot_upd AS hot,
        n_tup_upd AS updates FROM pg_stat_user_tables WHERE relname = 'intercom_users_seen'`
      const updates = Number(after.updates) - Number(before.updates)
      return {
        perPage,
        hot: updates === 0 ? 0 : (Number(after.hot) - Number(before.hot)) / updates,
        walBytes: Number(after.wal)
      } satisfies Round
    })
    return { url, factor, round }
  })

const program = Effect.gen(function*() {
  const server = yield* Effect.acquireRelease(Effect.promise(() => PostgresServer.start()), (server) => Effect.promise(server.stop))
  const admin = PgClient.layer({ url: Redacted.make(server.url), maxConnections: 1 })
  const urls = yield* Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const made: Array<string> = []
    for (const factor of [100, fillfactor]) {
      yield* sql.unsafe(`CREATE DATABASE seen_${factor}`)
      made.push(server.url.replace(/\/postgres$/, `/seen_${factor}`))
    }
    return made
  }).pipe(Effect.provide(admin))
  const databases = yield* Effect.forEach(urls, (url, index) =>
    Effect.map(
      Layer.build(PgClient.layer({ url: Redacted.make(url), maxConnections: 2 })),
      (context) => ({ index, context })
    ))
  const measured = yield* Effect.forEach(databases, ({ context, index }) =>
    Effect.map(
      Effect.provide(database(urls[index], index === 0 ? 100 : fillfactor), context),
      (db) => ({ ...db, round: Effect.provide(db.round, context), results: [] as Array<Round> })
    ))
  for (let round = 0; round < rounds; round++) {
    for (const db of round % 2 === 0 ? measured : [...measured].reverse()) db.results.push(yield* db.round)
  }
  for (const db of measured) {
    yield* Console.log(
      `fillfactor ${db.factor}: a page of 100 unchanged users in ${median(db.results.map((r) => r.perPage)).toFixed(2)} ms, ` +
        `${(median(db.results.map((r) => r.hot)) * 100).toFixed(0)} % of the seen updates HOT, ` +
        `${(median(db.results.map((r) => r.walBytes)) / 1024 / 1024).toFixed(1)} MiB of WAL a run ` +
        `(medians of ${rounds} runs of ${users} users)`
    )
  }
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.orDie)).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
