/**
 * A fleet through a database outage, as an operator meets it: a `fleet runner` (the CLI's bin, a real process) on the
 * test run's PostgreSQL through the testing package's `BlackHole`, which vanishes (every connection silent, new ones
 * too) while a sync is under way, for longer than the runner's `--unanswered-timeout`, and then comes back. The same
 * runner, not restarted, must take and complete syncs again, the tables must hold every record once, `fleet status`
 * must say what is true, and the runner's log must say what happened. Real time throughout; every wait is bounded.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Sync } from "@intercom-scroll/sync"
import { BlackHole, PostgresDatabase } from "@intercom-scroll/testing"
import { Duration, Effect, Layer, Redacted } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { logged, results, said, Scripts, serve, syncRuns, withDatabase } from "./support/fleet.js"
import { bundle, eventually, node, type Process, startRunner, tempDir } from "./support/processes.js"

/** How long the database stays away once the runner has given up the sync under way. */
const afterTheEnd = Duration.seconds(5)

describe("fleet runner through a database outage", () => {
  layer(Layer.effect(Scripts, bundle), { excludeTestServices: true })("over PostgreSQL", (it) => {
    it.scoped("the database away mid-sync until the runner gives the sync up, then back: the same runner completes the cut sync and the next; every record once, the deleted marked; status true during and after; the log says so", () =>
      Effect.gen(function*() {
        const scripts = yield* Scripts
        // acme: 60 pages of 10 users at 250 ms, a sync of ~15 s, caught in its middle (10 pages in; 14 by the time its
        // fetch ahead stops); at its 25th page request, in the sync after the outage, 30 of its users are removed and 10
        // added: rows that the cut run, or that one, wrote are gone from Intercom by the next scroll. globex: a few
        // pages, done before the outage.
        const simulator = yield* serve({
          pageSize: 10,
          expiry: Duration.seconds(10),
          workspaces: [
            { token: "acme", users: 600, faults: { latency: Duration.millis(250), mutations: [{ atPage: 25, resource: "users", remove: 30, add: 10 }] } },
            { token: "globex", users: 100 }
          ]
        })
        const direct = yield* Effect.orDie(PostgresDatabase.make)
        const hole = yield* BlackHole.make(direct)
        const database = Redacted.value(hole.url)
        const dir = yield* tempDir("fleet-outage-")
        const file = join(dir, "workspaces.json")
        const workspaces = ["acme", "globex"]
        writeFileSync(file, JSON.stringify(workspaces.map((workspace) => ({ workspace, baseUrl: simulator.baseUrl, tokenEnv: `${workspace.toUpperCase()}_TOKEN` }))))
        const env = { ACME_TOKEN: "acme", GLOBEX_TOKEN: "globex" }
        const runner = yield* startRunner("runner", scripts.runner, (port) => [
          "--database", database, "--port", String(port), "--max-syncs", "2", "--unanswered-timeout", "5s"
        ], env)
        const sync = (run: string) => node(`client ${run}`, scripts.client, ["--database", database, "--workspaces", file, "--run", run], env)
        // The operator's `fleet status`, from a machine whose own path to the database stays up.
        const status = Effect.gen(function*() {
          const process = yield* node("status", scripts.status, ["--database", Redacted.value(direct)])
          const exit = yield* process.exit.pipe(Effect.timeout("60 seconds"), Effect.orDie)
          expect(exit.code, said([process])).toBe(0)
          return process.lines.map(({ text }) => text)
        })
        const answered = (client: Process, seconds: number) =>
          client.exit.pipe(
            Effect.timeout(Duration.seconds(seconds)),
            Effect.catchAll(() => Effect.dieMessage(`${client.name} did not end within ${seconds} s\n${said([runner, client])}`))
          )

        const first = yield* sync("r1")
        yield* eventually("acme's sync under way and globex's done", 60, Effect.gen(function*() {
          const stats = yield* simulator.stats
          const done = logged(runner, "Sync done").map(({ workspace }) => workspace)
          return done.includes("globex") && !done.includes("acme") && (stats.workspaces.acme?.pagesServed ?? 0) >= 10 || undefined
        }))

        yield* hole.vanish
        const vanished = Date.now()
        // The runner's sessions ended on the server, and the locks they held with them, as the server's TCP keepalives
        // end those of a client gone from the network (~11 s in: idle 5 s, 3 probes 2 s apart), which the proxy's own
        // acknowledgements of their probes hide here. The runner's side of each stays open and silent.
        yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE application_name LIKE 'intercom-scroll-fleet runner%' AND datname = current_database()`).pipe(
            Effect.orDie,
            withDatabase({ database: Redacted.value(direct) })
          )
        // (3) The operator, whose own path to the database is fine, asks what the fleet is doing: acme's run is cut
        // off (its lock free, its end not recorded by a runner without its database), not under way.
        const during = yield* status
        expect(during, during.join("\n")).toContain("Runs under way: 0")
        expect(during, during.join("\n")).toContainEqual(expect.stringMatching(
          /^Runs cut off, their lock free \(their runner died or lost its database; the next run of each workspace marks it abandoned\): 1$/
        ))
        expect(during, during.join("\n")).toContainEqual(expect.stringMatching(/^ {2}acme users since \S+ \(run r1\) on 127\.0\.0\.1:\d+: [\d,]+ seen; last heard of \S+$/))

        // The database away until the runner has given up the sync under way, and a little more.
        const ended = (text: string) => text.includes(`message="Sync interrupted"`) || text.includes("its PostgreSQL server stopped answering")
        yield* eventually("the sync under way to end", 120, Effect.sync(() => runner.lines.find((line) => ended(line.text)))).pipe(
          Effect.catchAllDefect((defect) => Effect.dieMessage(`${String(defect)}\n${said([runner])}`))
        )
        yield* Effect.sleep(afterTheEnd)
        const pagesWhileAway = (yield* simulator.stats).workspaces.acme?.pagesServed ?? 0
        yield* hole.reset
        const back = Date.now()

        // (1) The same runner, not restarted, takes acme's request again and completes it: within a shard lock refresh
        // (5 s) of the return it holds its shards again, within a storage poll (2 s) it has the request, which waits
        // out the scroll the cut sync left open at the simulator (10 s at most) and scrolls its 60 pages again (~15 s):
        // 35 s, given three times that for a loaded machine.
        const firstExit = yield* answered(first, 105)
        expect(firstExit.code, said([runner, first])).toBe(0)
        expect(results(first).map(({ ok, workspace }) => ({ ok, workspace }))).toEqual([
          { ok: true, workspace: "globex" },
          { ok: true, workspace: "acme" }
        ])
        // And a sync sent after the return completes too.
        const second = yield* sync("r2")
        const secondExit = yield* answered(second, 90)
        expect(secondExit.code, said([runner, second])).toBe(0)
        expect(results(second).map(({ ok, workspace }) => ({ ok, workspace })).sort((a, b) => a.workspace.localeCompare(b.workspace)))
          .toEqual([{ ok: true, workspace: "acme" }, { ok: true, workspace: "globex" }])
        expect(runner.lines.filter((line) => line.text.includes("Listening on")), "the runner never started again").toHaveLength(1)
        yield* Effect.logInfo(
          `database away ${back - vanished} ms (acme at page ${pagesWhileAway}); r1 answered ${firstExit.at - back} ms after the return, r2 ${secondExit.at - back} ms`
        )

        // (2) Every record of each workspace once; those removed at Intercom (after the cut run had written some of
        // them) marked deleted, the live ones exactly the simulator's.
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          for (const workspace of workspaces) {
            const rows = yield* sql<{ id: string; deleted: boolean }>`
              SELECT id, deleted_at IS NOT NULL AS deleted FROM ${sql(Sync.tables.users)} WHERE workspace = ${workspace}`
            expect(new Set(rows.map(({ id }) => id)).size, workspace).toBe(rows.length)
            expect(rows.filter((row) => !row.deleted).map(({ id }) => id).sort(), workspace).toEqual([...yield* simulator.ids(workspace)].sort())
            const { removed } = yield* simulator.changes(workspace)
            const deleted = rows.filter((row) => row.deleted).map(({ id }) => id).sort()
            expect(deleted, workspace).toEqual(removed.filter((id) => rows.some((row) => row.id === id)).sort())
            yield* Effect.logInfo(`${workspace}: ${rows.length} rows, ${deleted.length} marked deleted of ${removed.length} removed`)
            if (workspace === "acme") expect(deleted.length).toBeGreaterThan(0)
          }
        }).pipe(Effect.orDie, withDatabase({ database: Redacted.value(direct) }))

        // (3) After the return, nothing shown under way or cut off: the cut run is marked abandoned (its end, as the
        // runner knew it, never reached the database), acme's other two runs complete.
        const after = yield* status
        expect(after, after.join("\n")).toContain("Runs under way: 0")
        expect(after.filter((line) => line.startsWith("Runs cut off")), after.join("\n")).toEqual([])
        const runs = yield* syncRuns.pipe(withDatabase({ database: Redacted.value(direct) }))
        const statuses = (workspace: string) => runs.filter((run) => run.workspace === workspace).map((run) => run.status)
        expect({ acme: statuses("acme"), globex: statuses("globex") }).toEqual({
          acme: ["abandoned", "complete", "complete"],
          globex: ["complete", "complete"]
        })

        // (4) The runner's log says what happened: its database unanswered, the sync interrupted, the database back.
        const logLines = runner.lines.map(({ text }) => text)
        const index = (pattern: RegExp) => logLines.findIndex((text) => pattern.test(text))
        expect(index(/Shard lock storage is unhealthy/), said([runner])).toBeGreaterThanOrEqual(0)
        expect(index(/message="Sync interrupted" workspace=acme run=r1/)).toBeGreaterThan(index(/Shard lock storage is unhealthy/))
        expect(index(/Shard lock storage has recovered/)).toBeGreaterThan(index(/Shard lock storage is unhealthy/))
        // In plain words: its session gone silent, and the database back, after how long.
        const gone = index(/its path to the database may have gone silent/)
        expect(gone, said([runner])).toBeGreaterThanOrEqual(0)
        expect(index(/again: its database answers again, \d+s after this runner lost its session/), said([runner])).toBeGreaterThan(gone)
        // The cluster's storage failure, at each of its polls through the outage (every 10 s): said once with its stack,
        // then counted in lines of their own without one.
        const readFailed = logLines.filter((text) => text.includes(`message="Could not read messages from storage`))
        const withStack = readFailed.filter((text) => /\\n +at /.test(text))
        expect(withStack, said([runner])).toHaveLength(1)
        expect(readFailed.some((text) => /message="Could not read messages from storage, again \d+ times? in the last \d+s, the last: /.test(text)), said([runner]))
          .toBe(true)
      }), 300_000)
  })
})
