/**
 * The sync over both dialects, one test body and two layers: what a run stores, counts and marks deleted, and what
 * a failed, interrupted or abandoned run leaves behind.
 */
import { HttpClient, HttpClientResponse } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { IntercomClient, type Models, Progress, type Scroll } from "@intercom-scroll/core"
import { ClockSteps } from "@intercom-scroll/testing"
import { type FaultPlan, Simulator } from "@intercom-scroll/simulator"
import { Cause, Clock, Duration, Effect, Exit, Fiber, Layer, Logger, Metric, Option, Redacted, Schedule, Schema, TestClock, TestServices, Tracer } from "effect"
import { Sync, SyncMetrics } from "../src/index.js"
import * as Store from "../src/internal/store.js"
import * as Databases from "./support/databases.js"
import { driveClock, freshToken, interruptAtPage, intercom, live, rows, runs, scripted } from "./support/world.js"

const noRestarts = { restart: Schedule.stop }

/** Three users a test can change one of (`b2`) between runs. */
const threeUsers: ReadonlyArray<Record<string, unknown>> = [
  { type: "user", id: "a1", email: "a@example.com", name: "Ada", updated_at: 1 },
  { type: "user", id: "b2", email: "b@example.com", name: "Bo", updated_at: 1 },
  { type: "user", id: "c3", email: "c@example.com", name: "Cy", updated_at: 1 }
]

/** A workspace of `threeUsers`, synced once; `serve` changes what Intercom sends from then on. */
const threeUsersSynced = Effect.gen(function*() {
  const token = freshToken()
  let users = threeUsers
  const intercom = scripted(token, () => users)
  yield* Effect.provide(Sync.run("users", { workspace: token }), intercom)
  return {
    token,
    intercom,
    serve: (change: (user: Record<string, unknown>) => Record<string, unknown>) => {
      users = users.map(change)
      return users
    }
  }
})

/** Notes in a new table `notes` the id of every row that an UPDATE of `table` writes: a trigger, in each dialect. */
const noteUpdates = (table: string, notes: string, event: "UPDATE" | "INSERT" = "UPDATE") =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { dialect } = yield* Databases.TestDatabase
    yield* sql.unsafe(`CREATE TABLE ${notes} (id TEXT NOT NULL)`)
    if (dialect === "pg") {
      yield* sql.unsafe(`CREATE FUNCTION ${notes}_note() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO ${notes} VALUES (NEW.id); RETURN NEW; END $$`)
      yield* sql.unsafe(`CREATE TRIGGER ${notes} AFTER ${event} ON ${table} FOR EACH ROW EXECUTE FUNCTION ${notes}_note()`)
    } else {
      yield* sql.unsafe(`CREATE TRIGGER ${notes} AFTER ${event} ON ${table} BEGIN INSERT INTO ${notes} VALUES (NEW.id); END`)
    }
  })

/**
 * The tracer in use, calling `hook` each time a span is given an attribute: a run annotates its span at known steps, and
 * the hook runs on the run's own fiber, at that step.
 */
const onSpanAttribute = (hook: (key: string, value: unknown) => void) =>
  Effect.map(Effect.tracer, (inner) =>
    Tracer.make({
      span: (...args) => {
        const span = inner.span(...args)
        const attribute = span.attribute.bind(span)
        return Object.assign(span, {
          attribute: (key: string, value: unknown) => {
            attribute(key, value)
            hook(key, value)
          }
        })
      },
      context: (f, fiber) => inner.context(f, fiber)
    }))

describe.each(Databases.both)("Sync.run on %s", (_name, database) => {
  layer(database, { timeout: "60 seconds" })((it) => {
    const stored = freshToken()
    it.effect("stores every record whole, with its typed columns, and records a complete run", () =>
      Effect.gen(function*() {
        const token = stored
        const summary = yield* Sync.run("users", { workspace: token })
        const simulator = yield* Simulator.Simulator
        const ids = yield* simulator.ids(token, "users")
        const table = yield* rows(token, "users")
        expect(summary).toMatchObject({ workspace: token, resource: "users", inserted: 250, updated: 0, unchanged: 0, deleted: 0, restarts: 0 })
        expect([...table.keys()].sort()).toEqual([...ids].sort())
        for (const row of table.values()) {
          expect(row.record.id).toBe(row.id)
          expect(row.email).toBe(row.record.email ?? null)
          expect(row.name).toBe(row.record.name ?? null)
          expect(row.created_at).toBe(row.record.created_at)
          expect(row.updated_at).toBe(row.record.updated_at)
          expect(row.deleted_at).toBeNull()
          expect([row.first_seen_run, row.last_seen_run, row.changed_run]).toEqual([summary.runId, summary.runId, summary.runId])
        }
        // Every field as received, custom attributes and fields no schema names included.
        expect([...table.values()].some((row) => "x_internal_flag" in row.record)).toBe(true)
        const [run] = yield* runs(token)
        expect(run).toMatchObject({ id: summary.runId, status: "complete", inserted: 250, updated: 0, unchanged: 0, deleted: 0, restarts: 0, error: null, label: null })
      }).pipe(Effect.provide(intercom(stored, { workspace: { users: 250 } }))))

    const labelled = freshToken()
    it.effect("keeps the label and the runner a run was given in its row", () =>
      Effect.gen(function*() {
        const summary = yield* Sync.run("users", { workspace: labelled, label: "nightly@2026-12-03", runner: "10.0.0.7:34431" })
        expect((yield* runs(labelled)).map((run) => [run.id, run.label, run.runner])).toEqual([[summary.runId, "nightly@2026-12-03", "10.0.0.7:34431"]])
      }).pipe(Effect.provide(intercom(labelled, { workspace: { users: 10 } }))))

    it.effect("a second run counts unchanged records and moves only last_seen_at", () =>
      Effect.gen(function*() {
        const token = freshToken()
        yield* Effect.provide(Sync.run("users", { workspace: token }), intercom(token, { workspace: { users: 120, seed: 7 } }))
        const before = yield* rows(token, "users")
        yield* TestClock.adjust("3 hours")
        const summary = yield* Effect.provide(
          Sync.run("users", { workspace: token }),
          intercom(token, { workspace: { users: 120, seed: 7 } })
        )
        expect(summary).toMatchObject({ inserted: 0, updated: 0, unchanged: 120, deleted: 0 })
        const after = yield* rows(token, "users")
        for (const [id, row] of after) {
          const old = before.get(id)!
          expect(row.first_seen_at).toBe(old.first_seen_at)
          expect(row.last_seen_at).toBe(old.last_seen_at + 3 * 3600_000)
          expect(row.first_seen_run).toBe(old.first_seen_run)
          expect(row.changed_run).toBe(old.changed_run)
          expect(row.last_seen_run).toBe(summary.runId)
        }
      }))

    it.effect("marks deleted what a complete scroll did not see, and brings back what reappears", () =>
      Effect.gen(function*() {
        const token = freshToken()
        const sync = (users: number) =>
          Effect.provide(Sync.run("users", { workspace: token }), intercom(token, { workspace: { users, seed: 3 } }))
        yield* sync(100)
        const start = yield* Clock.currentTimeMillis
        yield* TestClock.adjust("1 hour")
        // The same data set, 30 records shorter: the last 30 are gone from Intercom.
        const shrunk = yield* sync(70)
        const afterShrink = yield* rows(token, "users")
        expect(shrunk).toMatchObject({ inserted: 0, updated: 0, unchanged: 70, deleted: 30 })
        expect(afterShrink.size).toBe(100) // nothing is ever removed from the table
        expect(live(afterShrink).size).toBe(70)
        for (const row of afterShrink.values()) {
          expect(row.deleted_at).toBe(row.last_seen_run === shrunk.runId ? null : start + 3600_000)
          // A deletion is a change, by the run that made it: `changed_run > N` finds it beside the rows written.
          expect(row.changed_run).toBe(row.deleted_at === null ? row.first_seen_run : shrunk.runId)
        }
        yield* TestClock.adjust("1 hour")
        const grown = yield* sync(110)
        expect(grown).toMatchObject({ inserted: 10, updated: 30, unchanged: 70, deleted: 0 })
        const afterGrowth = yield* rows(token, "users")
        expect(live(afterGrowth).size).toBe(110)
        // A second run with nothing gone deletes nothing more.
        const again = yield* sync(110)
        expect(again).toMatchObject({ inserted: 0, updated: 0, unchanged: 110, deleted: 0 })
      }))

    it.effect("replaces a changed record and counts it updated", () =>
      Effect.gen(function*() {
        const token = freshToken()
        let users = threeUsers
        const intercom = scripted(token, () => users)
        yield* Effect.provide(Sync.run("users", { workspace: token }), intercom)
        users = users.map((user) => user.id === "b2" ? { ...user, name: "Bo Changed", updated_at: 2, custom_attributes: { tier: "gold" } } : user)
        const summary = yield* Effect.provide(Sync.run("users", { workspace: token }), intercom)
        expect(summary).toMatchObject({ inserted: 0, updated: 1, unchanged: 2, deleted: 0 })
        const table = yield* rows(token, "users")
        expect(table.get("b2")).toMatchObject({ name: "Bo Changed", updated_at: 2, changed_run: summary.runId })
        expect(table.get("b2")!.record).toEqual(users[1])
        expect(table.get("a1")!.changed_run).not.toBe(summary.runId)
      }))

    it.effect("writes an unchanged record's stored row not at all, only its seen row", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { dialect } = yield* Databases.TestDatabase
        const { intercom, serve, token } = yield* threeUsersSynced
        // Every UPDATE of a stored record, noted by a trigger; in PostgreSQL also each row version's xmin.
        yield* noteUpdates("intercom_users_records", "test_updates")
        const versions = dialect === "pg"
          ? Effect.map(
            sql<{ id: string; version: string }>`SELECT id, CAST(xmin AS text) AS version FROM intercom_users_records WHERE workspace = ${token}`,
            (found) => new Map(found.map((row) => [row.id, row.version]))
          )
          : Effect.succeed(new Map<string, string>())
        const before = yield* versions
        const users = serve((user) => user.id === "b2" ? { ...user, name: "Bo Changed", updated_at: 2 } : user)
        yield* TestClock.adjust("1 hour")
        const now = yield* Clock.currentTimeMillis
        const summary = yield* Effect.provide(Sync.run("users", { workspace: token }), intercom)
        const updates = yield* sql<{ id: string }>`SELECT id FROM test_updates`
        expect(updates.map((row) => row.id)).toEqual(["b2"])
        const after = yield* versions
        if (dialect === "pg") {
          expect(after.get("a1")).toBe(before.get("a1"))
          expect(after.get("c3")).toBe(before.get("c3"))
          expect(after.get("b2")).not.toBe(before.get("b2"))
        }
        expect(summary).toMatchObject({ inserted: 0, updated: 1, unchanged: 2, deleted: 0 })
        // What users query still says the run saw all three.
        const table = yield* rows(token, "users")
        expect([...table.values()].map((row) => [row.id, row.last_seen_run, row.last_seen_at]).sort()).toEqual(
          users.map((user) => [user.id, summary.runId, now])
        )
      }).pipe(Effect.provide(database)))

    it.effect("tells an unchanged record by its digest alone in PostgreSQL, by the record itself in SQLite", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { dialect } = yield* Databases.TestDatabase
        const { intercom, serve, token } = yield* threeUsersSynced
        // A stored record edited by hand, and a live one marked deleted by hand: a run that compares records puts
        // Intercom's back; one that compares the digest of what it stored neither sends nor reads the record, and
        // leaves both edits (the sync's README says so).
        const edited = JSON.stringify({ ...threeUsers[1], name: "Edited by hand" })
        yield* dialect === "pg"
          ? sql`UPDATE intercom_users_records SET record = CAST(${edited} AS jsonb) WHERE workspace = ${token} AND id = 'b2'`
          : sql`UPDATE intercom_users_records SET record = ${edited} WHERE workspace = ${token} AND id = 'b2'`
        yield* sql`UPDATE intercom_users_records SET deleted_at = first_seen_at WHERE workspace = ${token} AND id = 'c3'`
        const again = yield* Effect.provide(Sync.run("users", { workspace: token }), intercom)
        const afterEdit = yield* rows(token, "users")
        if (dialect === "pg") {
          expect(again).toMatchObject({ inserted: 0, updated: 0, unchanged: 3 })
          expect(afterEdit.get("b2")!.record).toMatchObject({ name: "Edited by hand" })
          expect(afterEdit.get("c3")!.deleted_at).not.toBeNull()
        } else {
          expect(again).toMatchObject({ inserted: 0, updated: 2, unchanged: 1 })
          expect(afterEdit.get("b2")!.record).toEqual(threeUsers[1])
          expect(afterEdit.get("c3")!.deleted_at).toBeNull()
        }
        // Once Intercom's record changes, both replace it.
        const users = serve((user) => user.id === "b2" ? { ...user, name: "Bo Changed", updated_at: 2 } : user)
        const changed = yield* Effect.provide(Sync.run("users", { workspace: token }), intercom)
        expect(changed).toMatchObject({ inserted: 0, updated: 1, unchanged: 2 })
        expect((yield* rows(token, "users")).get("b2")!.record).toEqual(users[1])
      }).pipe(Effect.provide(database)))

    it.effect("in SQLite moves the seen rows at the run's end, not a page at a time, and keeps every row in view mid-run", () =>
      Effect.gen(function*() {
        const token = freshToken()
        const sql = yield* SqlClient.SqlClient
        const { dialect } = yield* Databases.TestDatabase
        const world = (users: number) => intercom(token, { pageSize: 10, workspace: { users, seed: 13 } })
        yield* Effect.provide(Sync.run("users", { workspace: token }), world(30))
        const before = yield* rows(token, "users")
        // Every UPDATE and INSERT of a seen row, noted by triggers.
        yield* noteUpdates("intercom_users_seen", "test_seen_updates")
        yield* noteUpdates("intercom_users_seen", "test_seen_inserts", "INSERT")
        const count = (query: Effect.Effect<ReadonlyArray<{ n: number }>, unknown>) =>
          Effect.map(Effect.orDie(query), ([row]) => Number(row.n))
        // At each page: the seen rows updated and inserted so far, the stored records missing from the view, and those
        // new to the run that the view does not show as seen by it.
        const duringPages: Array<{ readonly updated: number; readonly inserted: number; readonly missing: number; readonly stale: number }> = []
        const look = Effect.all({
          updated: count(sql<{ n: number }>`SELECT CAST(count(*) AS INTEGER) AS n FROM test_seen_updates`),
          inserted: count(sql<{ n: number }>`SELECT CAST(count(*) AS INTEGER) AS n FROM test_seen_inserts`),
          missing: count(sql<{ n: number }>`SELECT CAST(count(*) AS INTEGER) AS n FROM intercom_users_records AS r
            WHERE r.workspace = ${token} AND NOT EXISTS (SELECT 1 FROM intercom_users AS v WHERE v.workspace = r.workspace AND v.id = r.id)`),
          stale: count(sql<{ n: number }>`SELECT CAST(count(*) AS INTEGER) AS n FROM intercom_users
            WHERE workspace = ${token} AND first_seen_run = (SELECT max(id) FROM intercom_sync_runs WHERE workspace = ${token})
            AND (last_seen_run <> first_seen_run OR last_seen_at <> first_seen_at)`)
        })
        yield* TestClock.adjust("1 hour")
        const summary = yield* Effect.provide(Sync.run("users", { workspace: token }), world(50)).pipe(
          Effect.provideService(Progress.Progress, {
            report: (event) => event._tag === "Page" ? Effect.map(look, (seen) => void duringPages.push(seen)) : Effect.void
          })
        )
        expect(summary).toMatchObject({ inserted: 20, updated: 0, unchanged: 30, deleted: 0 })
        expect(duringPages.length).toBe(5)
        expect(duringPages.every((page) => page.missing === 0 && page.stale === 0)).toBe(true)
        // SQLite: not one seen row written during the pages, not even a new record's (the view shows it as first
        // seen); PostgreSQL marks them page by page.
        const writtenDuringPages = duringPages.at(-1)!.updated + duringPages.at(-1)!.inserted
        if (dialect === "sqlite") expect(writtenDuringPages).toBe(0)
        else expect(writtenDuringPages).toBeGreaterThan(0)
        // At the end, the 30 stored before have moved to this run, the 20 new ones too.
        const updates = yield* sql<{ id: string }>`SELECT id FROM test_seen_updates`
        expect(new Set(updates.map((row) => row.id))).toEqual(new Set(before.keys()))
        const inserts = yield* sql<{ id: string }>`SELECT id FROM test_seen_inserts`
        expect(inserts.length).toBe(20)
        const after = yield* rows(token, "users")
        expect(after.size).toBe(50)
        expect([...after.values()].every((row) => row.last_seen_run === summary.runId)).toBe(true)
        if (dialect === "sqlite") {
          expect(yield* count(sql<{ n: number }>`SELECT CAST(count(*) AS INTEGER) AS n FROM intercom_users_seen_log`)).toBe(0)
        }
      }).pipe(Effect.provide(database)))

    it.effect("a run under way renews alive_at on its row every 10 seconds, while it waits as while it writes", () =>
      Effect.gen(function*() {
        const token = freshToken()
        yield* Sync.migrate
        // Pages that take 40 seconds each to come: the run writes nothing meanwhile but its sign of life.
        const running = yield* Effect.fork(Effect.provide(
          Sync.run("users", { workspace: token }),
          intercom(token, { workspace: { users: 5, faults: { latency: Duration.seconds(40) } } })
        ))
        const start = yield* Clock.currentTimeMillis
        const aliveAt = Effect.map(runs(token), (found) => found[0]?.alive_at)
        // Real time for the database's round trips, the TestClock for the run's.
        const settled = (expected: number) =>
          Effect.repeat(Effect.zipRight(TestServices.provideLive(Effect.sleep("5 millis")), aliveAt), {
            until: (seen) => seen === expected
          }).pipe(
            Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`alive_at never read ${expected - start}`) }),
            TestServices.provideLive,
            Effect.orDie
          )
        yield* settled(start)
        for (const tick of [1, 2, 3]) {
          yield* TestClock.adjust("10 seconds")
          yield* settled(start + tick * 10_000)
        }
        // Then it ends, its last sign of life its end. A second at a time, with real time between: moves of 10 s made
        // while a statement of the run's was still on its way ran the lock's silence watch past its 20 s of waiting
        // under load, and it took the connection for silent (LockLost).
        const summary = yield* ClockSteps.runToEnd({ step: "1 second", realPause: "10 millis", maxSteps: 1_000 })(running)
        const [run] = yield* runs(token)
        expect(run).toMatchObject({ id: summary.runId, status: "complete" })
        expect(run.alive_at).toBe(run.finished_at)
      }).pipe(Effect.provide(database)))

    it.effect("a run under way writes on its row what it has written so far, every 5 seconds, not every page", () =>
      Effect.gen(function*() {
        const token = freshToken()
        // At each page, 2 seconds later than the one before: the run's row as the page arrives.
        const readings: Array<string> = []
        const sql = yield* SqlClient.SqlClient
        const look = Effect.map(runs(token), ([run]) => `${run.status} ${run.inserted ?? "-"}`).pipe(
          Effect.provideService(SqlClient.SqlClient, sql)
        )
        const summary = yield* Effect.provide(Sync.run("users", { workspace: token }), intercom(token, { pageSize: 10, workspace: { users: 100 } })).pipe(
          Effect.provideService(Progress.Progress, {
            report: (event) =>
              event._tag === "Page"
                ? Effect.zipRight(TestClock.adjust("2 seconds"), Effect.map(Effect.orDie(look), (reading) => void readings.push(reading)))
                : Effect.void
          })
        )
        expect(summary.inserted).toBe(100)
        // Pages written 2, 4, 6… seconds after the start: the row takes the count at the page of 6 s (3 pages written),
        // then at 12 s (6) and 18 s (9); the end writes all of it.
        expect(readings).toEqual([
          "running -", "running -", "running -", "running 30", "running 30", "running 30", "running 60", "running 60", "running 60", "running 90", "running 90"
        ].slice(0, readings.length))
        expect(readings.length).toBeGreaterThanOrEqual(10)
        expect((yield* runs(token))[0]).toMatchObject({ status: "complete", inserted: 100 })
      }).pipe(Effect.provide(database)))

    it.effect("puts nothing from a record into SQL: quotes, statements, unicode and odd ids are stored as given", () =>
      Effect.gen(function*() {
        const token = freshToken()
        const nasty = [
          { type: "user", id: "'; DROP TABLE intercom_users; --", email: "o'brien@example.com", name: "Robert'); DROP TABLE intercom_sync_runs;--" },
          { type: "user", id: "quote\"double", email: "\"quoted\"@example.com", name: "Zoë Łukasz 李 محمد 🎉", custom_attributes: { "key'with'quotes": "$1 ? :name @p0 \\ \u2028" } },
          { type: "user", id: "x".repeat(300), email: null, name: "back\\slash\nnew line\ttab", created_at: 1_700_000_000 }
        ]
        const summary = yield* Effect.provide(Sync.run("users", { workspace: `${token} ' "; --` }), scripted(token, () => nasty))
        expect(summary.inserted).toBe(3)
        const table = yield* rows(`${token} ' "; --`, "users")
        expect(new Map([...table].map(([id, row]) => [id, row.record]))).toEqual(new Map(nasty.map((user) => [user.id, user])))
        expect(table.get(nasty[0].id)).toMatchObject({ email: "o'brien@example.com", name: nasty[0].name })
        expect(table.get(nasty[1].id)!.name).toBe("Zoë Łukasz 李 محمد 🎉")
        const sql = yield* SqlClient.SqlClient
        const [{ n }] = yield* sql<{ n: number }>`SELECT CAST(count(*) AS INTEGER) AS n FROM ${sql(Sync.runsTable)}`
        expect(Number(n)).toBeGreaterThan(0)
      }))

    it.effect("stores what PostgreSQL cannot hold (U+0000, an unpaired surrogate) with U+FFFD there, as received in SQLite", () =>
      Effect.gen(function*() {
        const token = freshToken()
        const { dialect } = yield* Databases.TestDatabase
        const odd = [
          { type: "user", id: "nul", email: "a\u0000b@example.com", name: "x\u0000y", custom_attributes: { note: "\u0000" } },
          { type: "user", id: "surrogate", email: null, name: "half \ud83d of an emoji", custom_attributes: { literal: "\\u0000 stays" } }
        ]
        const summary = yield* Effect.provide(Sync.run("users", { workspace: token }), scripted(token, () => odd))
        expect(summary.inserted).toBe(2)
        const table = yield* rows(token, "users")
        if (dialect === "sqlite") {
          expect(table.get("nul")!.record).toEqual(odd[0])
          expect(table.get("nul")!.name).toBe("x\u0000y")
        } else {
          expect(table.get("nul")).toMatchObject({ email: "a\uFFFDb@example.com", name: "x\uFFFDy" })
          expect(table.get("nul")!.record.custom_attributes).toEqual({ note: "\uFFFD" })
          expect(table.get("surrogate")!.record.name).toBe("half \uFFFD of an emoji")
        }
        // A backslash followed by "u0000" is text, not the character: kept in both.
        expect(table.get("surrogate")!.record.custom_attributes).toEqual({ literal: "\\u0000 stays" })
        // Stored once, the same record again is unchanged.
        const again = yield* Effect.provide(Sync.run("users", { workspace: token }), scripted(token, () => odd))
        expect(again).toMatchObject({ inserted: 0, updated: 0, unchanged: 2 })
      }))

    it.effect("refuses a page with an id longer than a copy keeps as InvalidResponse, in both databases, and writes none of that page", () =>
      Effect.gen(function*() {
        const token = freshToken()
        // Random, so that PostgreSQL cannot compress it under its index's bound: 3,000 bytes of two-byte characters.
        const overlong = Array.from({ length: 1500 }, () => String.fromCharCode(0x100 + Math.floor(Math.random() * 0x700))).join("")
        const longest = "k".repeat(1024)
        const users = [
          { type: "user", id: "a1", email: "a@example.com" },
          { type: "user", id: longest, email: "k@example.com" },
          { type: "user", id: overlong, email: "o@example.com" }
        ]
        const exit = yield* Effect.exit(Effect.provide(Sync.run("users", { workspace: token, ...noRestarts }), scripted(token, () => users)))
        const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
        expect(error?._tag).toBe("InvalidResponse")
        expect(error?.message).toContain("Page 2 of the users scroll is not a valid Intercom response: a record's id is 3000 bytes long, over the 1024 a database copy keeps")
        expect(error?.message.length).toBeLessThan(600)
        // Two a page: the first page is stored, an id at the bound with it; the second, the overlong id's, is not.
        const table = yield* rows(token, "users")
        expect([...table.keys()].sort()).toEqual(["a1", longest])
        const [run] = yield* runs(token)
        expect(run).toMatchObject({ status: "failed", inserted: 2 })
        expect(run.error).toMatch(/^InvalidResponse: Page 2 of the users scroll/)
      }))

    it.effect("refuses a page with an id PostgreSQL's text cannot hold (U+0000, half a surrogate pair) as InvalidResponse, in both databases", () =>
      Effect.gen(function*() {
        for (const [unkeepable, shown] of [["a\u0000b", "\"a\\u0000b\""], ["half\ud800", "\"half\\ud800\""]] as const) {
          const token = freshToken()
          const users = [
            { type: "user", id: "a1", email: "a@example.com" },
            { type: "user", id: "a2", email: "b@example.com" },
            { type: "user", id: unkeepable, email: "o@example.com" }
          ]
          const error = yield* Effect.flip(Effect.provide(Sync.run("users", { workspace: token, ...noRestarts }), scripted(token, () => users)))
          expect(error._tag).toBe("InvalidResponse")
          expect(error.message).toContain(
            `Page 2 of the users scroll is not a valid Intercom response: a record's id holds a character a copy cannot keep (U+0000, or half of a surrogate pair): ${shown}`
          )
          // The first page is stored; the second, the id's, is not: replaced by U+FFFD, two such ids could become one row.
          expect([...(yield* rows(token, "users")).keys()].sort()).toEqual(["a1", "a2"])
          const [run] = yield* runs(token)
          expect(run).toMatchObject({ status: "failed", inserted: 2 })
        }
      }))

    it.effect("keeps companies with their company_id and name", () =>
      Effect.gen(function*() {
        const token = freshToken()
        const summary = yield* Sync.run("companies", { workspace: token })
        const table = yield* rows(token, "companies")
        expect(summary.inserted).toBe(30)
        for (const row of table.values()) {
          expect(row.company_id).toBe(row.record.company_id)
          expect(row.name).toBe(row.record.name)
          expect(row.record.type).toBe("company")
        }
        // Users of the same workspace name are another table, untouched.
        expect((yield* rows(token, "users")).size).toBe(0)
      }).pipe(Effect.provide(intercom(freshToken(), { workspace: { companies: 30 } }))))

    it.effect("a run that fails marks nothing deleted, and records the error", () =>
      Effect.gen(function*() {
        const token = freshToken()
        yield* Effect.provide(Sync.run("users", { workspace: token }), intercom(token, { pageSize: 10, workspace: { users: 50, seed: 5 } }))
        // Fewer records, and a 500 on the third page with no restart allowed.
        const exit = yield* Effect.exit(Effect.provide(
          Sync.run("users", { workspace: token, ...noRestarts }),
          intercom(token, { pageSize: 10, workspace: { users: 20, seed: 5, faults: { restartAt: [3] } } })
        ))
        expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause).pipe((e) => e._tag === "Some" && e.value._tag)).toBe("RestartRequired")
        const table = yield* rows(token, "users")
        expect(live(table).size).toBe(50)
        const [first, failed] = yield* runs(token)
        expect(failed).toMatchObject({ status: "failed", inserted: 0, unchanged: 20, deleted: 0 })
        // What the failed run saw (two pages) still counts as seen by it; the rest stays the first run's.
        const lastSeen = [...table.values()].map((row) => row.last_seen_run)
        expect(lastSeen.filter((run) => run === failed.id).length).toBe(20)
        expect(lastSeen.filter((run) => run === first.id).length).toBe(30)
        expect(failed.error).toMatch(/^RestartRequired: The users scroll broke off at page 3 /)
        // What happened, not the library's advice (an option the CLI's user does not have): the reader says what to do.
        expect(failed.error).not.toContain("option")
        expect(failed.finished_at).not.toBeNull()
      }))

    it.effect("a run that fails where its end cannot be recorded says so; a fold is spoken of only in SQLite, which has one", () =>
      Effect.gen(function*() {
        const token = freshToken()
        const sql = yield* SqlClient.SqlClient
        const { dialect } = yield* Databases.TestDatabase
        yield* Sync.migrate
        const warnings: Array<string> = []
        const collect = Logger.make(({ logLevel, message }) => {
          if (logLevel._tag === "Warning") warnings.push(String(message))
        })
        // The runs table goes away mid-run (as the database does), and the scroll then breaks off at its third page. In
        // SQLite, whose fold is transactions of its own before the run's end, the seen table goes too (the pages write
        // only the log).
        const goAway = Effect.zipRight(
          sql`ALTER TABLE intercom_sync_runs RENAME TO runs_away`,
          dialect === "sqlite" ? Effect.asVoid(sql`ALTER TABLE intercom_users_seen RENAME TO seen_away`) : Effect.void
        )
        const exit = yield* Effect.exit(Effect.provide(
          Sync.run("users", { workspace: token, ...noRestarts }),
          intercom(token, { pageSize: 10, workspace: { users: 50, faults: { restartAt: [3] } } })
        ).pipe(
          Effect.provideService(Progress.Progress, {
            report: (event) => event._tag === "Page" && event.page === 2 ? Effect.orDie(goAway) : Effect.void
          }),
          Effect.provide(Logger.replace(Logger.defaultLogger, collect))
        ))
        yield* sql`ALTER TABLE runs_away RENAME TO intercom_sync_runs`
        if (dialect === "sqlite") yield* sql`ALTER TABLE seen_away RENAME TO intercom_users_seen`
        expect(Exit.isFailure(exit)).toBe(true)
        expect(warnings).toEqual([
          ...(dialect === "sqlite" ? ["Could not fold what the failed sync run saw"] : []),
          "Could not record the failed sync run"
        ])
        expect((yield* runs(token)).map((run) => run.status)).toEqual(["running"])
      }))

    it.effect("a run that fails in the database records the database's own words, not only that a statement failed", () =>
      Effect.gen(function*() {
        const token = freshToken()
        const sql = yield* SqlClient.SqlClient
        const { client } = yield* Databases.TestDatabase
        yield* Sync.migrate
        yield* sql`ALTER TABLE intercom_users_seen RENAME TO seen_away`
        // On a client of its own: the SQLite client keeps a statement that failed to prepare, and a later test's page of
        // as many records would meet that failure again.
        const exit = yield* Effect.exit(Effect.provide(
          Sync.run("users", { workspace: token }),
          Layer.merge(intercom(token, { workspace: { users: 20 } }), client)
        ))
        yield* sql`ALTER TABLE seen_away RENAME TO intercom_users_seen`
        expect(Exit.isFailure(exit)).toBe(true)
        const [run] = yield* runs(token)
        expect(run.status).toBe("failed")
        // A table renamed, which its view follows in both dialects: the run finds the name missing before it scrolls.
        expect(run.error).toMatch(/^TablesAltered: The sync of workspace "[^"]+" met a table, view, column or key of its own missing: (no such table: (main\.)?intercom_users_seen|relation "intercom_users_seen" does not exist)\.$/)
      }))

    it.effect("counts its rows by change and its end by status in SyncMetrics, as the summaries do", () =>
      Effect.gen(function*() {
        const token = freshToken()
        const counters = [
          SyncMetrics.rowsChanged("users", "inserted"),
          SyncMetrics.rowsChanged("users", "updated"),
          SyncMetrics.rowsChanged("users", "unchanged"),
          SyncMetrics.rowsChanged("users", "deleted"),
          SyncMetrics.runsEnded("users", "complete"),
          SyncMetrics.runsEnded("users", "failed"),
          SyncMetrics.runsEnded("users", "interrupted")
        ]
        const read = Effect.forEach(counters, (counter) => Effect.map(Metric.value(counter), (state) => state.count))
        const since = (before: ReadonlyArray<number>) => Effect.map(read, (now) => now.map((count, i) => count - before[i]!))
        const sync = (users: number, faults: FaultPlan.FaultPlan = {}) =>
          Effect.exit(Effect.provide(
            Sync.run("users", { workspace: token, ...noRestarts }),
            intercom(token, { pageSize: 10, workspace: { users, seed: 9, faults } })
          ))
        const leadsBefore = (yield* Metric.value(SyncMetrics.runsEnded("leads", "complete"))).count
        let before = yield* read
        yield* sync(50)
        expect(yield* since(before)).toEqual([50, 0, 0, 0, 1, 0, 0])
        before = yield* read
        yield* sync(40)
        expect(yield* since(before)).toEqual([0, 0, 40, 10, 1, 0, 0])
        // Failed on its third page: the two pages written count, the deletions it never reached do not; a failure, not
        // an interruption.
        before = yield* read
        yield* sync(30, { restartAt: [3] })
        expect(yield* since(before)).toEqual([0, 0, 20, 0, 0, 1, 0])
        // Another resource's counters are its own.
        expect((yield* Metric.value(SyncMetrics.runsEnded("leads", "complete"))).count).toBe(leadsBefore)
      }))

    it.effect("an interrupted run marks nothing deleted and is recorded interrupted, not failed, and counted so", () =>
      Effect.gen(function*() {
        const token = freshToken()
        yield* Effect.provide(Sync.run("users", { workspace: token }), intercom(token, { pageSize: 10, workspace: { users: 50, seed: 9 } }))
        const ended = Effect.all([
          Metric.value(SyncMetrics.runsEnded("users", "interrupted")),
          Metric.value(SyncMetrics.runsEnded("users", "failed"))
        ]).pipe(Effect.map((states) => states.map((state) => state.count)))
        const before = yield* ended
        const exit = yield* Effect.provide(
          Sync.run("users", { workspace: token }),
          intercom(token, { pageSize: 10, workspace: { users: 30, seed: 9 } })
        ).pipe(Effect.provideService(Progress.Progress, interruptAtPage(2)), Effect.exit)
        expect(Exit.isInterrupted(exit)).toBe(true)
        expect(live(yield* rows(token, "users")).size).toBe(50)
        const [, interrupted] = yield* runs(token)
        expect(interrupted).toMatchObject({ status: "interrupted", error: "Interrupted before the scroll reached its end", deleted: 0 })
        expect((yield* ended).map((count, i) => count - before[i]!)).toEqual([1, 0])
      }))

    it.effect("a run interrupted or failing as soon as its row is inserted, before it scrolls, is recorded so, not left running", () =>
      Effect.gen(function*() {
        // The run's span learns the row's id right after the insert: `atInsert` runs on the run's fiber at that step.
        const syncHooked = (atInsert: (fiber: Fiber.RuntimeFiber<unknown, unknown>) => void) =>
          Effect.gen(function*() {
            const token = freshToken()
            const tracer = yield* onSpanAttribute((key) => {
              if (key === "runId") Option.map(Fiber.getCurrentFiber(), atInsert)
            })
            const exit = yield* Effect.provide(Sync.run("users", { workspace: token }), intercom(token, { workspace: { users: 20 } })).pipe(
              Effect.withTracer(tracer),
              Effect.fork,
              Effect.flatMap(Fiber.await)
            )
            expect(live(yield* rows(token, "users")).size).toBe(0)
            const [run, ...others] = yield* runs(token)
            expect(others).toEqual([])
            expect(run).toMatchObject({ inserted: 0, deleted: 0 })
            expect(run.finished_at).not.toBeNull()
            return { exit, run }
          })
        // Interrupted: it lands on the run's next step, before the scroll.
        const interrupted = yield* syncHooked((fiber) => fiber.unsafeInterruptAsFork(fiber.id()))
        expect(Exit.isInterrupted(interrupted.exit)).toBe(true)
        expect(interrupted.run).toMatchObject({ status: "interrupted", error: "Interrupted before the scroll reached its end" })
        // A defect at the same step.
        const died = yield* syncHooked(() => {
          throw new Error("boom at the insert")
        })
        expect(Exit.isFailure(died.exit) && Cause.isDie(died.exit.cause)).toBe(true)
        expect(died.run).toMatchObject({ status: "failed", error: "Defect: boom at the insert" })
      }))

    it.effect("a record sent again by a restart counts once and is written once, with dedupe on or off", () =>
      Effect.gen(function*() {
        for (const dedupe of [true, false]) {
          const token = freshToken()
          const world = (users: number, faults: FaultPlan.FaultPlan) =>
            intercom(token, { pageSize: 10, workspace: { users, seed: 11, faults } })
          yield* Effect.provide(Sync.run("users", { workspace: token }), world(40, {}))
          // 60 records now; a 500 on the fourth page request: the scroll starts over and sends the first pages again.
          const summary = yield* driveClock((progress) =>
            Effect.provide(
              Sync.run("users", { workspace: token, dedupe, restart: Schedule.recurs(2) }),
              world(60, { restartAt: [4] })
            ).pipe(Effect.provideService(Progress.Progress, progress))
          ).pipe(Effect.flatten)
          expect(summary).toMatchObject({ inserted: 20, updated: 0, unchanged: 40, deleted: 0, restarts: 1 })
          const table = yield* rows(token, "users")
          expect(live(table).size).toBe(60)
          expect([...table.values()].every((row) => row.last_seen_run === summary.runId)).toBe(true)
        }
      }))

    it.effect("refuses an empty or unusable workspace name, or a lock timeout that is no duration, before touching anything", () =>
      Effect.gen(function*() {
        const token = freshToken()
        const empty = yield* Effect.exit(Effect.provide(Sync.run("users", { workspace: "" }), intercom(token)))
        expect(Exit.isFailure(empty) && Cause.failureOption(empty.cause).pipe((e) => e._tag === "Some" && e.value.message))
          .toBe("Invalid sync options: the workspace name is empty")
        const timeout = yield* Effect.exit(Effect.provide(
          Sync.run("users", { workspace: token, lockTimeout: "soon" as Duration.DurationInput }),
          intercom(token)
        ))
        expect(Exit.isFailure(timeout) && Cause.failureOption(timeout.cause).pipe((e) => e._tag === "Some" && e.value._tag))
          .toBe("InvalidOptions")
        // A negative or NaN lock timeout decodes to zero, which would give up at once: refused too.
        for (const lockTimeout of [Number.NaN, -1, "-5 seconds"] as const) {
          const error = yield* Effect.flip(Effect.provide(Sync.run("users", { workspace: token, lockTimeout }), intercom(token)))
          expect(error.message).toBe(`Invalid sync options: lockTimeout ${String(lockTimeout)} is not a duration`)
        }
        // Past the run's other timeouts' ceiling: no bound anyone means (Duration.infinity says "as long as it takes").
        for (const lockTimeout of [2 ** 31, "25 days", Duration.millis(2 ** 31 - 0.5)] as const) {
          const error = yield* Effect.flip(Effect.provide(Sync.run("users", { workspace: token, lockTimeout }), intercom(token)))
          expect(error.message).toBe(
            "Invalid sync options: lockTimeout must be at most 2147483647 ms (about 24.8 days), or Duration.infinity to wait as long as it takes"
          )
        }
        // A table lock timeout of zero would be PostgreSQL's "no limit", or give up at once: neither is meant.
        for (const tableLockTimeout of [0, "0 seconds"] as const) {
          const error = yield* Effect.flip(Effect.provide(Sync.run("users", { workspace: token, tableLockTimeout }), intercom(token)))
          expect(error.message).toBe("Invalid sync options: tableLockTimeout must be longer than zero (Duration.infinity for no limit)")
        }
        // Past PostgreSQL's longest lock_timeout, which would take it for no limit at all.
        for (const tableLockTimeout of [2 ** 31, "25 days", Duration.millis(2 ** 31 - 0.5)] as const) {
          const error = yield* Effect.flip(Effect.provide(Sync.run("users", { workspace: token, tableLockTimeout }), intercom(token)))
          expect(error.message).toBe(
            "Invalid sync options: tableLockTimeout must be at most 2147483647 ms (about 24.8 days), PostgreSQL's longest lock_timeout, or Duration.infinity for no limit"
          )
        }
        // A name the fleet's workspaces file would refuse: blank, a control character, too long.
        for (const workspace of ["   ", "acme\n", " acme", "w".repeat(201), "acme\uD800", "\uDC00acme"]) {
          const error = yield* Effect.flip(Effect.provide(Sync.run("users", { workspace }), intercom(token)))
          expect(error.message).toMatch(/^Invalid sync options: the workspace name ".*" must be 1 to 200 characters, without control characters, unpaired surrogates or spaces at either end$/s)
        }
        // A prefetch the scroll would die of: refused before the lock is taken and the run recorded.
        for (const prefetch of [-1, 1.5, Number.NaN]) {
          const error = yield* Effect.flip(Effect.provide(Sync.run("users", { workspace: token, prefetch }), intercom(token)))
          expect(error.message).toBe(`Invalid sync options: prefetch ${prefetch} must be a whole number of 0 or more`)
        }
        // A name with a surrogate pair (an emoji) is a name like any other.
        expect(Schema.is(Sync.WorkspaceName)("acme 🚀")).toBe(true)
        expect(yield* Effect.orElseSucceed(runs(token), () => [])).toEqual([])
      }))

    it.effect("refuses an unansweredTimeout of zero, negative, past 24.8 days or infinite, recording no run, and takes 2³¹−1 ms", () =>
      Effect.gen(function*() {
        const token = freshToken()
        for (const unansweredTimeout of [0, "0 seconds", 2 ** 31, "25 days", Duration.infinity] as const) {
          const error = yield* Effect.flip(Effect.provide(Sync.run("users", { workspace: token, unansweredTimeout }), intercom(token)))
          expect(error.message).toBe(
            `Invalid sync options: unansweredTimeout ${String(unansweredTimeout)} must be longer than zero and at most 2147483647 ms (about 24.8 days)`
          )
        }
        for (const unansweredTimeout of [-1, "-5 seconds"] as const) {
          const error = yield* Effect.flip(Effect.provide(Sync.run("users", { workspace: token, unansweredTimeout }), intercom(token)))
          expect(error.message).toBe(`Invalid sync options: unansweredTimeout ${unansweredTimeout} is not a duration`)
        }
        // The longest it takes runs; the refused recorded no run (the one row is its).
        yield* Effect.provide(Sync.run("users", { workspace: token, unansweredTimeout: Duration.millis(2 ** 31 - 1) }), intercom(token))
        const recorded = yield* runs(token)
        expect(recorded).toHaveLength(1)
        expect(recorded).toMatchObject([{ status: "complete" }])
      }))

    it.effect("Sync.recordRefused records a failed run of the workspace, but not of a name a run refuses", () =>
      Effect.gen(function*() {
        const token = freshToken()
        yield* Sync.migrate
        const error = { _tag: "MissingToken", message: "ACME_TOKEN is not set" }
        yield* Sync.recordRefused("users", { workspace: token, label: "r1", error })
        expect(yield* runs(token)).toMatchObject([{ status: "failed", label: "r1", error: "MissingToken: ACME_TOKEN is not set" }])
        // A row of a name no run may have: the fleet's readers would list a workspace no sync could reach.
        for (const workspace of ["", " acme", "acme\n", "w".repeat(201)]) {
          const refused = yield* Effect.flip(Sync.recordRefused("users", { workspace, error }))
          expect(refused._tag).toBe("InvalidOptions")
          expect(yield* runs(workspace)).toEqual([])
        }
      }))

    it.effect("a run left running by a dead process is marked abandoned by the next run", () =>
      Effect.gen(function*() {
        const token = freshToken()
        const sql = yield* SqlClient.SqlClient
        yield* Sync.migrate
        yield* sql`INSERT INTO ${sql(Sync.runsTable)} ${sql.insert({ workspace: token, resource: "leads", status: "running", started_at: new Date(0).toISOString() })}`
        // One that said it was alive 2 minutes in, and what it had written: it ended then, as near as anyone knows.
        yield* sql`INSERT INTO ${sql(Sync.runsTable)} ${
          sql.insert({
            workspace: token,
            resource: "companies",
            status: "running",
            started_at: new Date(0).toISOString(),
            alive_at: new Date(120_000).toISOString(),
            inserted: 7,
            updated: 2,
            unchanged: 40,
            restarts: 1
          })
        }`
        const [dead] = yield* runs(token)
        const { dialect } = yield* Databases.TestDatabase
        // SQLite: what the dead run logged as seen is discarded, not folded (when it saw them is not known).
        const logged = dialect === "sqlite"
          ? Effect.map(
            sql<{ n: number }>`SELECT CAST(count(*) AS INTEGER) AS n FROM intercom_leads_seen_log WHERE run = ${dead.id}`,
            ([row]) => Number(row.n)
          )
          : Effect.succeed(0)
        if (dialect === "sqlite") {
          yield* sql`INSERT INTO intercom_leads_seen_log ${sql.insert([{ run: dead.id, id: "l1" }, { run: dead.id, id: "l2" }])}`
          expect(yield* logged).toBe(2)
        }
        yield* TestClock.adjust("5 minutes")
        const now = yield* Clock.currentTimeMillis
        yield* Effect.provide(Sync.run("users", { workspace: token }), intercom(token, { workspace: { users: 5 } }))
        const [abandoned, alive, complete] = yield* runs(token)
        // One that recorded no counts has 0, as every ended run has numbers; one that did keeps them. Neither deleted
        // anything: deletions commit with completion.
        expect(abandoned).toMatchObject({
          resource: "leads",
          status: "abandoned",
          finished_at: now,
          inserted: 0,
          updated: 0,
          unchanged: 0,
          restarts: 0,
          deleted: 0
        })
        expect(alive).toMatchObject({
          resource: "companies",
          status: "abandoned",
          finished_at: 120_000,
          inserted: 7,
          updated: 2,
          unchanged: 40,
          restarts: 1,
          deleted: 0
        })
        // What it says of itself in `fleet status`: that nobody saw it end, not an error it never had.
        expect(abandoned.error).toBe(
          "It never recorded its end (its process died, or its database went away as it ended); the next run of its workspace found it running"
        )
        expect(complete).toMatchObject({ resource: "users", status: "complete" })
        expect(yield* logged).toBe(0)
      }).pipe(Effect.provide(database)))

    it.effect("records a dead run stored first get seen rows of their first sighting, and are deleted by a run that does not see them", () =>
      Effect.gen(function*() {
        const token = freshToken()
        const sql = yield* SqlClient.SqlClient
        const { dialect } = yield* Databases.TestDatabase
        yield* Sync.migrate
        // A run whose process died after its first page, two records new to the table: it wrote them and logged them.
        const [{ id: dead }] = yield* sql<{ id: number }>`INSERT INTO ${sql(Sync.runsTable)} ${
          sql.insert({ workspace: token, resource: "users", status: "running", started_at: new Date(0).toISOString() })
        } RETURNING id`
        const store = Store.make(sql, dialect, token, "users")
        const ghost = (id: string): Models.User => ({ type: "user", id, email: `${id}@example.com`, name: id, updated_at: 1 })
        yield* sql.withTransaction(store.writePage(Number(dead), [ghost("dead-1"), ghost("dead-2")], 60_000))
        expect([...(yield* rows(token, "users")).values()].map((row) => [row.id, row.last_seen_run, row.last_seen_at]))
          .toEqual([["dead-1", Number(dead), 60_000], ["dead-2", Number(dead), 60_000]])

        yield* TestClock.adjust("5 minutes")
        const summary = yield* Effect.provide(Sync.run("users", { workspace: token }), intercom(token, { workspace: { users: 5 } }))
        expect(summary).toMatchObject({ inserted: 5, deleted: 2 })
        const after = yield* rows(token, "users")
        for (const id of ["dead-1", "dead-2"]) {
          expect(after.get(id)).toMatchObject({ last_seen_run: Number(dead), last_seen_at: 60_000, changed_run: summary.runId })
          expect(after.get(id)!.deleted_at).not.toBeNull()
        }
      }).pipe(Effect.provide(database)))

    it.effect("binds a workspace to its token's Intercom app: another app's token stops before writing, a rotated one syncs", () =>
      Effect.gen(function*() {
        const workspace = freshToken()
        const sync = (token: string, seed: number) =>
          Effect.provide(Sync.run("users", { workspace }), intercom(token, { workspace: { users: 30, seed } }))
        const first = yield* sync(freshToken(), 21)
        expect(first.inserted).toBe(30)
        const sql = yield* SqlClient.SqlClient
        const [binding] = yield* sql<{ app_id: string }>`SELECT app_id FROM intercom_sync_workspaces WHERE workspace = ${workspace}`
        expect(binding.app_id).toMatch(/^[0-9a-f]{8}$/)
        expect(first.app).toBe(binding.app_id)

        // Another workspace's token under the same name: refused before a row is written.
        const before = yield* rows(workspace, "users")
        const error = yield* Effect.flip(sync(freshToken(), 22))
        expect(error).toMatchObject({ _tag: "WorkspaceMismatch", workspace, boundApp: binding.app_id })
        expect(error._tag === "WorkspaceMismatch" && error.tokenApp).not.toBe(binding.app_id)
        expect(yield* rows(workspace, "users")).toEqual(before)
        const [, refused] = yield* runs(workspace)
        expect(refused).toMatchObject({ status: "failed", inserted: 0, deleted: 0 })
        // Each app by its id and, where Intercom gave one, its name.
        expect(refused.error).toMatch(
          /^WorkspaceMismatch: The access token belongs to Intercom workspace ([0-9a-f]{8}) \("Simulated workspace \1"\), but the rows of workspace ".*" hold the records of ([0-9a-f]{8}) \("Simulated workspace \2"\)/
        )

        // A new token of the same workspace (the same data set, so the same app): synced as before.
        expect(yield* sync(freshToken(), 21)).toMatchObject({ inserted: 0, unchanged: 30, deleted: 0 })

        // A token whose app may not read admins cannot be checked: refused too, the rows being bound.
        const current = yield* rows(workspace, "users")
        const unchecked = yield* Effect.flip(Effect.provide(
          Sync.run("users", { workspace }),
          intercom(freshToken(), { workspace: { users: 30, seed: 22, readAdmins: false } })
        ))
        expect(unchecked).toMatchObject({ _tag: "WorkspaceUnchecked", workspace, boundApp: binding.app_id })
        expect(unchecked.message).toContain("token_unauthorized")
        expect(yield* rows(workspace, "users")).toEqual(current)

        // A token Intercom refuses outright is not taken for one that may not read admins: the scroll says what it is.
        const invalid = IntercomClient.layer({ accessToken: Redacted.make("tok_not_a_token"), baseUrl: "https://api.intercom.io" }).pipe(
          Layer.provide(Simulator.layerClient({ workspaces: [{ token: freshToken(), users: 30, seed: 21 }] })),
          Layer.orDie
        )
        const outright = yield* Effect.flip(Effect.provide(Sync.run("users", { workspace, ...noRestarts }), invalid))
        expect(outright._tag).toBe("Unauthorized")
        expect(yield* rows(workspace, "users")).toEqual(current)
      }))

    it.effect("a name never bound, whose stored records name another app, is refused before it is bound", () =>
      Effect.gen(function*() {
        const workspace = freshToken()
        const sync = (seed: number, readAdmins = true) =>
          Effect.provide(Sync.run("users", { workspace }), intercom(freshToken(), { workspace: { users: 20, seed, readAdmins } }))
        // Synced unchecked (as before the check existed): rows, no binding.
        expect(yield* sync(31, false)).toMatchObject({ inserted: 20, app: null })
        const before = yield* rows(workspace, "users")
        const storedApp = String([...before.values()][0].record.app_id)

        const other = yield* Effect.flip(sync(32))
        expect(other).toMatchObject({ _tag: "WorkspaceMismatch", workspace, boundApp: storedApp })
        expect(yield* rows(workspace, "users")).toEqual(before)
        const sql = yield* SqlClient.SqlClient
        expect(yield* sql`SELECT * FROM intercom_sync_workspaces WHERE workspace = ${workspace}`).toEqual([])

        // The records' own workspace binds it.
        expect(yield* sync(31)).toMatchObject({ inserted: 0, unchanged: 20, deleted: 0, app: storedApp })
      }))

    it.effect("keeps custom attributes as Intercom sent them: a schema in a Scroll's options object is not applied", () =>
      Effect.gen(function*() {
        const token = freshToken()
        const exportOptions: Scroll.Options<{ readonly score: number }, { readonly score: string }> = {
          customAttributes: Schema.Struct({ score: Schema.NumberFromString })
        }
        // @ts-expect-error: the sync's options take no custom attributes' schema.
        const refused: Sync.Options = exportOptions
        expect(refused).toBe(exportOptions)
        // One that slips through (a cast, plain JavaScript) is ignored: the record is stored as sent, and one whose
        // attributes the schema would refuse is stored too, instead of failing the run.
        const options = exportOptions as unknown as Sync.Options
        const users = [
          { type: "user", id: "u1", custom_attributes: { score: "12" } },
          { type: "user", id: "u2", custom_attributes: { score: "not a number" } }
        ]
        const summary = yield* Effect.provide(Sync.run("users", { ...options, workspace: token }), scripted(token, () => users))
        expect(summary.inserted).toBe(2)
        const stored = yield* rows(token, "users")
        expect([...stored.values()].map(({ record }) => record.custom_attributes)).toEqual(
          expect.arrayContaining([{ score: "12" }, { score: "not a number" }])
        )
      }))

    it.effect("a name follows another app once bound to it as WorkspaceMismatch advises, whether it was bound or only held records", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        // Bound by its first run (the app may read admins), or never bound, its stored records naming their app.
        for (const readAdmins of [true, false]) {
          // A quote in the name: the advice's statement is run as it is written.
          const workspace = `${freshToken()}'s`
          const sync = (seed: number, readAdmins = true) =>
            Effect.provide(Sync.run("users", { workspace }), intercom(freshToken(), { workspace: { users: 20, seed, readAdmins } }))
          yield* sync(41, readAdmins)
          const error = yield* Effect.flip(sync(42))
          if (error._tag !== "WorkspaceMismatch") return expect.fail(`expected WorkspaceMismatch, got ${error._tag}`)
          yield* sql.unsafe(error.advice.slice(error.advice.indexOf("INSERT INTO")))
          expect(yield* sync(42)).toMatchObject({ inserted: 20, deleted: 20, app: error.tokenApp })
        }
      }))

    it.effect("a token that may not read admins, or a client that cannot ask, syncs unchecked and binds nothing", () =>
      Effect.gen(function*() {
        const workspace = freshToken()
        const logs: Array<string> = []
        const logger = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push(String(message))))
        const token = freshToken()
        const unchecked = yield* Effect.provide(
          Sync.run("users", { workspace }),
          Layer.merge(intercom(token, { workspace: { users: 10, readAdmins: false } }), logger)
        )
        expect(unchecked).toMatchObject({ inserted: 10, app: null })
        expect(logs.some((line) => line.includes("does not check"))).toBe(true)
        // A test double: `scrollPage` alone, no `identify`.
        const double = Layer.succeed(IntercomClient.IntercomClient, {
          baseUrl: "https://intercom.test",
          scrollPage: (_resource, { page }) =>
            Effect.succeed({ records: page === 1 ? threeUsers as never : [], scrollParam: `page-${page + 1}` })
        })
        expect(yield* Effect.provide(Sync.run("users", { workspace }), double)).toMatchObject({ inserted: 3, deleted: 10, app: null })
        const sql = yield* SqlClient.SqlClient
        expect(yield* sql`SELECT * FROM intercom_sync_workspaces WHERE workspace = ${workspace}`).toEqual([])
      }))

    it.effect("a token Intercom refuses fails the run with Unauthorized, and no warning about GET /me says it first", () =>
      Effect.gen(function*() {
        const warnings: Array<string> = []
        const logger = Logger.replace(
          Logger.defaultLogger,
          Logger.make(({ logLevel, message }) => void (logLevel._tag === "Warning" && warnings.push(String(message))))
        )
        // The simulator knows another token: it answers this one 401 at `GET /me` and at the scroll.
        const refused = IntercomClient.layer({ accessToken: Redacted.make(freshToken()), baseUrl: "https://api.intercom.io" }).pipe(
          Layer.provide(Simulator.layerClient({ workspaces: [{ token: freshToken(), users: 10 }] })),
          Layer.orDie
        )
        const error = yield* Effect.flip(Effect.provide(Sync.run("users", { workspace: freshToken() }), Layer.merge(refused, logger)))
        expect(error._tag).toBe("Unauthorized")
        expect(warnings.filter((line) => line.includes("does not check"))).toEqual([])
      }))

    it.effect("the error recorded for a failed run never holds the access token", () =>
      Effect.gen(function*() {
        const token = "tok_SECRET_7f3a9b1c"
        // A proxy that echoes the request's Authorization header back in a 500's message (a 404's for `GET /me`, which
        // the client would otherwise ask again, on a clock that stands still here).
        const echo = HttpClient.make((request, url) =>
          Effect.succeed(HttpClientResponse.fromWeb(request, new Response(JSON.stringify({
            type: "error.list",
            request_id: `req ${request.headers["authorization"]}`,
            errors: [{ code: "server_error", message: `upstream said ${request.headers["authorization"]} ${token}` }]
          }), { status: url.pathname === "/me" ? 404 : 500, headers: { "content-type": "application/json" } })))
        )
        const client = IntercomClient.layer({ accessToken: Redacted.make(token), baseUrl: "https://api.intercom.io" }).pipe(
          Layer.provide(Layer.succeed(HttpClient.HttpClient, echo)),
          Layer.orDie
        )
        const workspace = freshToken()
        const exit = yield* Effect.exit(Effect.provide(Sync.run("users", { workspace, ...noRestarts }), client))
        expect(Exit.isFailure(exit)).toBe(true)
        const [failed] = yield* runs(workspace)
        expect(failed.status).toBe("failed")
        expect(failed.error).toContain("RestartRequired")
        expect(failed.error).not.toContain(token)
        expect(failed.error).not.toContain("SECRET")
      }))
  })
})
