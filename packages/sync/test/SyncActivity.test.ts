/**
 * `SyncActivity.read` over SQLite and PostgreSQL: the runs under way, those that ended since a time by status with the
 * rows they changed, and the latest failures, from runs made by `Sync.run` under the TestClock.
 */
import { SqlClient, Statement } from "@effect/sql"
import { describe, expect, it, layer } from "@effect/vitest"
import { Progress } from "@intercom-scroll/core"
import { QueryPlan } from "@intercom-scroll/testing"
import { Cause, Context, DateTime, Effect, Exit, Layer, Schedule, TestClock } from "effect"
import { Sync, SyncActivity } from "../src/index.js"
import * as Dialect from "../src/internal/dialect.js"
import * as Lock from "../src/internal/lock.js"
import * as Databases from "./support/databases.js"
import { freshToken, interruptAtPage, intercom } from "./support/world.js"

/** PostgreSQL: a session of its own that holds each workspace's lock, as a run under way holds its own, for the scope. */
const holdLocks = (...workspaces: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const session = yield* (yield* SqlClient.SqlClient).reserve
    for (const workspace of workspaces) {
      yield* session.execute("SELECT pg_advisory_lock($1, $2)", [...Lock.workspaceKey(workspace)], undefined)
    }
  })

describe.each(Databases.both)("SyncActivity.read on %s", (_name, database) => {
  layer(database, { timeout: "60 seconds" })((it) => {
    it.scoped("what is running, what ended since a time by status with its rows, and the latest failures", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { dialect } = yield* Databases.TestDatabase
        const at = (millis: number) => dialect === "pg" ? new Date(millis) : new Date(millis).toISOString()
        const [early, complete, failing, crashed, running, stopped] = ["early", "complete", "failing", "crashed", "running", "stopped"].map(
          freshToken
        )
        const sync = (token: string, users: number, options: Sync.Options = {}) =>
          Effect.exit(Effect.provide(
            Sync.run("users", { workspace: token, ...options }),
            intercom(token, { pageSize: 10, workspace: { users, ...(token === failing ? { faults: { restartAt: [3] } } : {}) } })
          ))

        // Before the cutoff: a complete run, not counted.
        yield* sync(early, 30)
        yield* TestClock.adjust("1 hour")
        const since = yield* DateTime.now
        // After it: a complete run, a run that fails on its third page, and a run a dead process left `running` that
        // the next run of its workspace marks abandoned.
        expect(Exit.isSuccess(yield* sync(complete, 40, { label: "nightly" }))).toBe(true)
        yield* TestClock.adjust("1 minute")
        expect(Exit.isFailure(yield* sync(failing, 50, { restart: Schedule.stop }))).toBe(true)
        yield* TestClock.adjust("1 minute")
        yield* sql`INSERT INTO ${sql(Sync.runsTable)} (workspace, resource, status, started_at, label)
          VALUES (${crashed}, 'users', 'running', ${at(DateTime.toEpochMillis(since))}, 'r0')`
        yield* sync(crashed, 5)
        yield* TestClock.adjust("1 minute")
        // A run stopped from outside as its second page comes in (a fleet's workspace moving, a Ctrl-C): not a failure.
        expect(Exit.isInterrupted(yield* Effect.provideService(sync(stopped, 30), Progress.Progress, interruptAtPage(2)))).toBe(true)
        yield* TestClock.adjust("1 minute")
        // Under way: a run whose process is still at it.
        const runningSince = DateTime.toEpochMillis(yield* DateTime.now)
        yield* sql`INSERT INTO ${sql(Sync.runsTable)} (workspace, resource, status, started_at, alive_at, label)
          VALUES (${running}, 'leads', 'running', ${at(runningSince)}, ${at(runningSince + 20_000)}, 'r9')`
        // Its last sign of life 20 s in; read 2 minutes after its start, it has been silent for 100 s. Its lock held.
        yield* TestClock.adjust("2 minutes")
        if (dialect === "pg") yield* holdLocks(running)

        const activity = yield* SyncActivity.read({ since })
        expect(activity.since).toEqual(since)
        expect(activity.running.map((run) => [run.workspace, run.resource, DateTime.toEpochMillis(run.startedAt), run.label, run.seen]))
          .toEqual([[running, "leads", runningSince, "r9", 0]])
        expect(activity.running.map((run) => [DateTime.toEpochMillis(run.aliveAt), run.silentFor])).toEqual([[runningSince + 20_000, 100]])
        expect(activity.lockFree).toEqual([])
        expect(activity.ended).toEqual({ complete: 2, failed: 1, interrupted: 1, abandoned: 1 })
        // 40 and 5 inserted by the complete runs; the failed run wrote its first two pages, the interrupted one its first.
        expect(activity.rows).toEqual({ inserted: 75, updated: 0, unchanged: 0, deleted: 0 })
        expect(activity.failures.map((run) => [run.workspace, run.status, run.label, run.seen])).toEqual([
          [crashed, "abandoned", "r0", 0],
          [failing, "failed", undefined, 20]
        ])
        expect(activity.failures[1]!.error).toMatch(/^RestartRequired: The users scroll broke off at page 3 /)
        expect(activity.failures[0]!.error).toMatch(/^It never recorded its end /)

        // At most as many failures as asked for; none at all with 0.
        expect((yield* SyncActivity.read({ since, failures: 1 })).failures.map((run) => run.workspace)).toEqual([crashed])
        expect((yield* SyncActivity.read({ since, failures: 0 })).failures).toEqual([])
        // Infinity is all of them; NaN a defect that names it, not the statement's SqlError.
        expect((yield* SyncActivity.read({ since, failures: Infinity })).failures).toHaveLength(2)
        const nan = yield* Effect.exit(SyncActivity.read({ since, failures: Number.NaN }))
        expect(Exit.isFailure(nan) && Cause.isDie(nan.cause) && String(Cause.squash(nan.cause))).toContain(
          "SyncActivity.read: failures must be a number, got NaN"
        )
        // Since the start: the early run too.
        expect((yield* SyncActivity.read({ since: DateTime.unsafeMake(0) })).ended.complete).toBe(3)
      }))

    it.scoped("PostgreSQL: a run recorded running whose workspace's lock no session holds is cut off, not under way; SQLite cannot tell", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { dialect } = yield* Databases.TestDatabase
        yield* Sync.migrate
        const [cut, alive] = ["cut", "alive"].map(freshToken)
        const startedAt = dialect === "pg" ? new Date(0) : new Date(0).toISOString()
        // `cut`: its runner lost its database as the run was cut, and could not record its end. `alive`: under way.
        yield* sql`INSERT INTO ${sql(Sync.runsTable)} ${
          sql.insert([cut, alive].map((workspace) => ({ workspace, resource: "users", status: "running", started_at: startedAt, label: "outage" })))
        }`
        if (dialect === "pg") yield* holdLocks(alive)
        const since = DateTime.unsafeMake(0)
        const { lockFree, running } = yield* SyncActivity.read({ since })
        // This case's runs (the database is the file's).
        const names = (runs: ReadonlyArray<SyncActivity.Running>) =>
          runs.map((run) => run.workspace).filter((workspace) => workspace === cut || workspace === alive)
        if (dialect === "sqlite") {
          expect({ running: names(running), lockFree: names(lockFree) }).toEqual({ running: [cut, alive], lockFree: [] })
          return
        }
        expect({ running: names(running), lockFree: names(lockFree) }).toEqual({ running: [alive], lockFree: [cut] })
        expect(lockFree.find((run) => run.workspace === cut)).toMatchObject({ resource: "users", label: "outage", seen: 0 })
        // Its lock taken again (the workspace's next run, before it marks this one abandoned): under way, as far as anyone can tell.
        yield* holdLocks(cut)
        expect(names((yield* SyncActivity.read({ since })).running)).toEqual([cut, alive])
      }))

    it.scoped("PostgreSQL: a run that starts before the runs are read and ends before the locks are looked at is under way, not cut off", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { dialect } = yield* Databases.TestDatabase
        // SQLite reads no locks: a run its `running` read sees is listed under way.
        if (dialect !== "pg") return
        yield* Sync.migrate
        const runs = sql(Sync.runsTable)
        const short = freshToken("short")
        const key = Lock.workspaceKey(short)
        const session = yield* sql.reserve
        // A short run in its own order (Sync.run's): its lock taken, then its row inserted `running`; its end
        // committed, then its lock released.
        const start = Effect.zipRight(
          session.execute("SELECT pg_advisory_lock($1, $2)", [...key], undefined),
          session.execute(
            `INSERT INTO ${Sync.runsTable} (workspace, resource, status, started_at) VALUES ($1, 'users', 'running', now())`,
            [short],
            undefined
          )
        )
        const end = Effect.zipRight(
          session.execute(
            `UPDATE ${Sync.runsTable} SET status = 'complete', finished_at = now(), inserted = 3 WHERE workspace = $1`,
            [short],
            undefined
          ),
          session.execute("SELECT pg_advisory_unlock($1, $2)", [...key], undefined)
        )
        // The run starts just before the statement that reads the runs `running` (after any look at the locks before
        // it), and ends just after it: before whatever `read` sends next (the runs ended, in the same snapshot).
        let step: "before" | "reading" | "after" = "before"
        const interleaved = Statement.withTransformer((statement) => {
          const [text] = statement.compile()
          if (step === "before" && /WHERE status = 'running' ORDER BY/.test(text)) {
            step = "reading"
            return Effect.as(Effect.orDie(start), statement)
          }
          if (step === "reading") {
            step = "after"
            return Effect.as(Effect.orDie(end), statement)
          }
          return Effect.succeed(statement)
        })
        const activity = yield* interleaved(SyncActivity.read({ since: DateTime.unsafeMake(0) }))
        expect(step).toBe("after")
        const mine = (list: ReadonlyArray<SyncActivity.Running>) => list.filter((run) => run.workspace === short)
        // Its end committed before its lock was let go: it ended after the snapshot, which has it under way, and does
        // not count it ended. Not cut off.
        expect({ running: mine(activity.running).length, lockFree: mine(activity.lockFree) }).toEqual({ running: 1, lockFree: [] })
        const [row] = yield* sql<{ readonly status: string }>`SELECT status FROM ${runs} WHERE workspace = ${short}`
        expect(row?.status).toBe("complete")
        const quiet = yield* SyncActivity.read({ since: DateTime.unsafeMake(0) })
        expect(mine(quiet.running)).toEqual([])
        expect({ complete: activity.ended.complete + 1, inserted: activity.rows.inserted + 3 })
          .toEqual({ complete: quiet.ended.complete, inserted: quiet.rows.inserted })
      }))

    it.scoped("a run that ends as the activity is read is under way or ended in the report, not both", () =>
      Effect.gen(function*() {
        const { client, dialect } = yield* Databases.TestDatabase
        yield* Sync.migrate
        const ending = freshToken("ending")
        // Another process's run (its own client, its own session): its lock taken (PostgreSQL), its row `running`.
        const other = yield* (Context.get(yield* Layer.build(client), SqlClient.SqlClient)).reserve
        const parameter = (n: number) => dialect === "pg" ? `$${n}` : "?"
        const key = [...Lock.workspaceKey(ending)]
        if (dialect === "pg") yield* other.execute("SELECT pg_advisory_lock($1, $2)", key, undefined)
        yield* other.execute(
          `INSERT INTO ${Sync.runsTable} (workspace, resource, status, started_at) VALUES (${parameter(1)}, 'users', 'running', ${parameter(2)})`,
          [ending, Dialect.time(dialect, 0)],
          undefined
        )
        // It ends, and lets go of its lock, just before `read` reads the runs ended: after the runs under way (and
        // after the look at the locks, which then saw its lock held).
        const end = Effect.zipRight(
          other.execute(
            `UPDATE ${Sync.runsTable} SET status = 'complete', finished_at = ${parameter(1)}, inserted = 7 WHERE workspace = ${parameter(2)}`,
            [Dialect.time(dialect, 1_000), ending],
            undefined
          ),
          dialect === "pg" ? Effect.asVoid(other.execute("SELECT pg_advisory_unlock($1, $2)", key, undefined)) : Effect.void
        )
        let ended = false
        const interleaved = Statement.withTransformer((statement) => {
          const [text] = statement.compile()
          if (!ended && /GROUP BY status/.test(text)) {
            ended = true
            return Effect.as(Effect.orDie(end), statement)
          }
          return Effect.succeed(statement)
        })
        const since = DateTime.unsafeMake(0)
        const before = yield* SyncActivity.read({ since })
        const activity = yield* interleaved(SyncActivity.read({ since }))
        expect(ended).toBe(true)
        const listed = [...activity.running, ...activity.lockFree].filter((run) => run.workspace === ending).length
        const counted = activity.ended.complete - before.ended.complete
        expect({ listed, counted }).toEqual({ listed: 1, counted: 0 })
        // Read again: ended, and counted once.
        const after = yield* SyncActivity.read({ since })
        expect(after.running.filter((run) => run.workspace === ending)).toEqual([])
        expect({ complete: after.ended.complete - before.ended.complete, inserted: after.rows.inserted - before.rows.inserted })
          .toEqual({ complete: 1, inserted: 7 })
      }))

    it.effect("underWay: the workspaces with a run of a name running, each with what its latest runs of that name have written", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { dialect } = yield* Databases.TestDatabase
        yield* Sync.migrate
        const [acme, globex, initech, umbrella] = ["acme", "globex", "initech", "umbrella"].map(freshToken)
        const row = (workspace: string, resource: string, status: string, label: string, inserted: number | null) => ({
          workspace,
          resource,
          status,
          started_at: dialect === "pg" ? new Date(0) : new Date(0).toISOString(),
          label,
          inserted,
          unchanged: inserted === null ? null : 1
        })
        yield* sql`INSERT INTO ${sql(Sync.runsTable)} ${
          sql.insert([
            // Its users done, its leads under way: both count.
            row(acme, "users", "complete", "r1", 100),
            row(acme, "leads", "running", "r1", 20),
            // Under way, but under another name.
            row(globex, "users", "running", "r2", 50),
            // Its users run again (its runner died): the latest counts, not the one it replaced.
            row(initech, "users", "abandoned", "r1", 70),
            row(initech, "users", "running", "r1", null),
            // Done: not under way.
            row(umbrella, "users", "complete", "r1", 10)
          ])
        }`
        expect(yield* SyncActivity.underWay("r1")).toEqual(new Map([[acme, 122], [initech, 0]]))
        expect(yield* SyncActivity.underWay("r2")).toEqual(new Map([[globex, 51]]))
        expect(yield* SyncActivity.underWay("r3")).toEqual(new Map())
      }))

    it.effect("reads the runs through indexes, not by scanning every run: a fleet keeps millions", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { dialect } = yield* Databases.TestDatabase
        yield* Sync.migrate
        // A run left `running`, its lock free: on PostgreSQL, read, then its lock looked at, then read again. Named, so
        // that `underWay` reads its workspace's runs after the runs under way.
        yield* sql`INSERT INTO ${sql(Sync.runsTable)} ${
          sql.insert({ workspace: freshToken("left"), resource: "users", status: "running", started_at: dialect === "pg" ? new Date(0) : new Date(0).toISOString(), label: "r1" })
        }`
        // The statements `read` sends, as the database receives them, each then explained in its turn.
        const sent: Array<readonly [string, ReadonlyArray<unknown>]> = []
        yield* Effect.all([SyncActivity.read({ since: DateTime.unsafeMake(0) }), SyncActivity.underWay("r1")]).pipe(
          Statement.withTransformer((statement) => Effect.sync(() => (sent.push(statement.compile()), statement)))
        )
        // And one look at the runs table's columns, in the catalog (a version before has fewer).
        const catalog = sent.filter(([text]) => /information_schema\.columns|pragma_table_info/.test(text))
        expect(catalog).toHaveLength(1)
        // PostgreSQL: the locks held, in the lock manager's view (not a table), once the runs under way are read.
        const locks = sent.filter(([text]) => /pg_locks/.test(text))
        expect(locks).toHaveLength(dialect === "pg" ? 1 : 0)
        // PostgreSQL: the snapshot's isolation, set as its transaction begins.
        const isolation = sent.filter(([text]) => /^SET TRANSACTION/.test(text))
        expect(isolation).toHaveLength(dialect === "pg" ? 1 : 0)
        const reads = sent.filter((statement) => ![...catalog, ...locks, ...isolation].includes(statement))
        // PostgreSQL: and the runs `running` read again, since one of them had its lock free.
        expect(reads).toHaveLength(dialect === "pg" ? 6 : 5)
        for (const [text, params] of reads) {
          // A small table is cheaper to scan: PostgreSQL is told to use an index wherever one can answer.
          const plan = dialect === "pg"
            ? yield* Effect.flatMap(sql.unsafe("SET LOCAL enable_seqscan = off"), () =>
              sql.unsafe<{ "QUERY PLAN": string }>(`EXPLAIN ${text}`, params)).pipe(
                sql.withTransaction,
                Effect.map((rows) => rows.map((row) => row["QUERY PLAN"]).join("\n"))
              )
            : yield* Effect.map(sql.unsafe<{ detail: string }>(`EXPLAIN QUERY PLAN ${text}`, params), (rows) =>
              rows.map((row) => row.detail).join("\n"))
          expect(plan, text).toMatch(/intercom_sync_runs_(by_finish|running|by_label|by_status)/)
          expect(plan, text).not.toMatch(/Seq Scan on intercom_sync_runs|SCAN intercom_sync_runs$/m)
        }
      }))
  })
})

describe.each(Databases.both)("SyncActivity.read on the tables of a version before on %s", (_name, database) => {
  it.effect("reads the runs of tables without label, runner and alive_at, and migrates nothing", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { dialect } = yield* Databases.TestDatabase
      // The runs table as migration 1 created it (81674d6), which the processes of a version before label (migration 5),
      // runner (7) and alive_at (9) still write while an operator reads with this one: it must not migrate them.
      yield* sql.unsafe(`CREATE TABLE intercom_sync_runs (
  id ${dialect === "pg" ? "INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"},
  workspace TEXT NOT NULL,
  resource TEXT NOT NULL CHECK (resource IN ('users', 'leads', 'companies')),
  status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed', 'abandoned')),
  started_at ${dialect === "pg" ? "timestamptz" : "TEXT"} NOT NULL,
  finished_at ${dialect === "pg" ? "timestamptz" : "TEXT"},
  inserted INTEGER,
  updated INTEGER,
  unchanged INTEGER,
  deleted INTEGER,
  restarts INTEGER,
  error TEXT
)`)
      const at = (millis: number) => dialect === "pg" ? new Date(millis) : new Date(millis).toISOString()
      const start = Date.UTC(2026, 11, 4, 6)
      yield* sql`INSERT INTO intercom_sync_runs ${
        sql.insert([
          { workspace: "acme", resource: "users", status: "complete", started_at: at(start), finished_at: at(start + 60_000), inserted: 10, updated: 2, unchanged: 3, deleted: 1, restarts: 0, error: null },
          { workspace: "acme", resource: "leads", status: "failed", started_at: at(start + 60_000), finished_at: at(start + 90_000), inserted: 1, updated: 0, unchanged: 0, deleted: 0, restarts: 1, error: "RestartRequired: a 500" },
          { workspace: "globex", resource: "users", status: "running", started_at: at(start + 120_000), finished_at: null, inserted: 5, updated: 0, unchanged: 0, deleted: null, restarts: 0, error: null }
        ])
      }`
      yield* TestClock.setTime(start + 150_000)
      if (dialect === "pg") yield* holdLocks("globex")
      const activity = yield* SyncActivity.read({ since: DateTime.unsafeMake(start) })
      expect(activity.running).toEqual([{
        id: 3,
        workspace: "globex",
        resource: "users",
        startedAt: DateTime.unsafeMake(start + 120_000),
        label: undefined,
        runner: undefined,
        seen: 5,
        // No sign of life but its start.
        aliveAt: DateTime.unsafeMake(start + 120_000),
        silentFor: 30
      }])
      expect(activity.ended).toEqual({ complete: 1, failed: 1, interrupted: 0, abandoned: 0 })
      expect(activity.rows).toEqual({ inserted: 11, updated: 2, unchanged: 3, deleted: 1 })
      expect(activity.failures).toMatchObject([{ workspace: "acme", resource: "leads", label: undefined, runner: undefined, error: "RestartRequired: a 500" }])
      expect(yield* sql`SELECT * FROM intercom_sync_runs`).toHaveLength(3)
      const [{ n }] = dialect === "pg"
        ? yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'intercom_sync_migrations'`
        : yield* sql<{ n: number }>`SELECT count(*) AS n FROM sqlite_master WHERE name = 'intercom_sync_migrations'`
      expect(n).toBe(0)
    }).pipe(Effect.scoped, Effect.provide(database)))
})

describe("SyncActivity.underWay on PostgreSQL", () => {
  it.live("reads each index once, in one scan: no join reads one again for each row of another", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Sync.migrate
      const runs = sql(Sync.runsTable)
      // The table's statistics as autovacuum leaves them during a sync: taken before it began (never now, here), so
      // that its name, on every run it writes, is one they have not seen and take for rare.
      yield* sql`ALTER TABLE ${runs} SET (autovacuum_enabled = false)`
      // 40 syncs kept of 200 workspaces, three resources each, as runners write them: 24,000 runs.
      yield* sql`INSERT INTO ${runs} (workspace, resource, status, started_at, finished_at, label, runner, alive_at, inserted)
        SELECT 'w' || (i / 3 % 200), (ARRAY['users', 'leads', 'companies'])[1 + i % 3], 'complete', now(), now(),
          'sync-' || (i / 600), '127.0.0.1:34431', now(), 100
        FROM generate_series(0, 40 * 600 - 1) AS i`
      yield* sql`ANALYZE ${runs}`
      // The next sync halfway: 100 workspaces done, then 16 whose users are done and whose leads are under way.
      yield* sql`INSERT INTO ${runs} (workspace, resource, status, started_at, finished_at, label, runner, alive_at, inserted)
        SELECT 'w' || (i / 3), (ARRAY['users', 'leads', 'companies'])[1 + i % 3], 'complete', now(), now(), 'now',
          '127.0.0.1:34431', now(), 100
        FROM generate_series(0, 100 * 3 - 1) AS i`
      yield* sql`INSERT INTO ${runs} (workspace, resource, status, started_at, finished_at, label, runner, alive_at, inserted)
        SELECT 'w' || i, resource, status, now(), CASE WHEN status = 'complete' THEN now() END, 'now', '127.0.0.1:34431',
          now(), CASE WHEN status = 'complete' THEN 100 ELSE 10 END
        FROM generate_series(100, 115) AS i, (VALUES ('users', 'complete'), ('leads', 'running')) AS step (resource, status)`
      const look = SyncActivity.underWay("now")
      const underWay = yield* look
      expect([...underWay.keys()].sort()).toEqual(Array.from({ length: 16 }, (_, i) => `w${100 + i}`).sort())
      expect([...underWay.values()]).toEqual(Array.from({ length: 16 }, () => 110))
      // The statements the look sends, explained as they ran.
      const sent: Array<readonly [string, ReadonlyArray<unknown>]> = []
      yield* look.pipe(Statement.withTransformer((statement) => Effect.sync(() => (sent.push(statement.compile()), statement))))
      expect(sent.length).toBeGreaterThan(0)
      const scans: Array<QueryPlan.IndexScan> = []
      for (const [text, params] of sent) {
        const [explained] = yield* sql.unsafe<{ readonly "QUERY PLAN": ReadonlyArray<{ readonly Plan: QueryPlan.PlanNode }> }>(
          `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`,
          params
        )
        scans.push(...explained["QUERY PLAN"].flatMap(({ Plan }) => QueryPlan.indexScans(Plan)))
      }
      // Each index in one scan, of at most its entries for the look: the name's 332 runs, the 16 workspaces' 122 runs
      // each, the 16 runs under way. The look's former statements joined: the name's index to the runs under way's, one
      // read again for each row of the other (5,405 entries), or the 16 workspaces' runs, a scan a workspace, all their
      // runs kept fetched from the table (1,952).
      const bound: Record<string, number> = {
        intercom_sync_runs_by_label: 100 * 3 + 16 * 2,
        intercom_sync_runs_by_status: 16 * 122,
        intercom_sync_runs_running: 16
      }
      expect(scans.filter(({ entries, index, loops, parallel }) => (loops > 1 && !parallel) || entries > (bound[index] ?? 0)))
        .toEqual([])
      expect(scans.length).toBeGreaterThan(0)
    }).pipe(Effect.provide(Layer.orDie(Databases.postgres))), 60_000)
})
