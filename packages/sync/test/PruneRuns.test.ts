/**
 * `Sync.pruneRuns`: the runs that ended before the cutoff go, a few hundred to a transaction, with what a failed run
 * left in SQLite's seen logs; runs still `running`, and those that ended after it, stay.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { DateTime, Effect } from "effect"
import { Sync } from "../src/index.js"
import * as Databases from "./support/databases.js"

for (const [name, database] of Databases.both) {
  describe(`Sync.pruneRuns on ${name}`, () => {
    layer(database, { timeout: "60 seconds" })((it) => {
      it.effect("deletes the runs that ended before the cutoff, and what a failed one logged, and keeps the rest", () =>
        Effect.gen(function*() {
          yield* Sync.migrate
          const sql = yield* SqlClient.SqlClient
          const { dialect } = yield* Databases.TestDatabase
          const at = (iso: string) => dialect === "pg" ? new Date(iso) : new Date(iso).toISOString()
          const insert = (status: string, finishedAt: string | null, count = 1) =>
            sql`INSERT INTO ${sql(Sync.runsTable)} ${
              sql.insert(Array.from({ length: count }, () => ({
                workspace: "acme",
                resource: "users",
                status,
                started_at: at("2026-01-01T00:00:00Z"),
                finished_at: finishedAt === null ? null : at(finishedAt)
              })))
            }`
          // More than a transaction's few hundred, so that the prune goes on from where each batch ended.
          yield* insert("complete", "2026-01-01T00:10:00Z", 1_200)
          yield* insert("failed", "2026-01-01T00:20:00Z")
          yield* insert("abandoned", "2026-01-01T00:30:00Z")
          yield* insert("running", null)
          yield* insert("complete", "2026-03-01T00:00:00Z")
          const [failed] = yield* sql<{ id: number }>`SELECT id FROM ${sql(Sync.runsTable)} WHERE status = 'failed'`
          const seenLog = `${Sync.tables.users}_seen_log`
          if (dialect === "sqlite") {
            yield* sql`INSERT INTO ${sql(seenLog)} ${sql.insert([{ run: failed.id, id: "u1" }, { run: failed.id, id: "u2" }])}`
          }

          expect(yield* Sync.pruneRuns(DateTime.unsafeMake("2026-02-01T00:00:00Z"))).toBe(1_202)
          const left = yield* sql<{ status: string }>`SELECT status FROM ${sql(Sync.runsTable)} ORDER BY id`
          expect(left.map(({ status }) => status)).toEqual(["running", "complete"])
          if (dialect === "sqlite") {
            const [logged] = yield* sql<{ n: number }>`SELECT count(*) AS n FROM ${sql(seenLog)}`
            expect(logged.n).toBe(0)
          }
          expect(yield* Sync.pruneRuns(DateTime.unsafeMake("2026-02-01T00:00:00Z"))).toBe(0)
        }))
    })
  })
}
