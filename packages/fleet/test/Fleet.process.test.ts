/**
 * The fleet as real processes: a real PostgreSQL, the simulator on a port serving six workspaces, three runner
 * processes and a client-only process that sends `Sync` to every workspace and waits. A runner is stopped mid-sync,
 * by `kill -9` or by SIGTERM, and every workspace must still end complete in the sync tables, with no workspace
 * scrolled by two runners at once. The runner running a `--cron` round is killed, and the other runs the tick again
 * without syncing twice what the round had synced. A runner is frozen and cut off from the database (a partition), and
 * the sync's fence keeps it from writing when it wakes. And a one-runner fleet over SQLite, with the same commands.
 */
import { EntityId, Sharding } from "@effect/cluster"
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, layer } from "@effect/vitest"
import { Sync, SyncDatabase } from "@intercom-scroll/sync"
import { OtlpCollector, PostgresDatabase } from "@intercom-scroll/testing"
import { Duration, Effect, Layer, Redacted } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { Fleet } from "../src/index.js"
import {
  endedWithin,
  everyWorkspaceCompleted,
  everyWorkspaceSynced,
  logged,
  midSync,
  names,
  neverTwoLiveScrolls,
  passwordNeverShown,
  restarts,
  results,
  rowsOfRun,
  said,
  Scripts,
  serve,
  shardLocksStayedHealthy,
  shardsSplit,
  startFleet,
  starts,
  syncRuns,
  whileShardLocksFail,
  withDatabase
} from "./support/fleet.js"
import { bundle, eventually, freePort, node, type Process, startRunner, tempDir } from "./support/processes.js"

const listeningOn = (runner: Process) =>
  runner.json.map(({ value }) => /^Listening on: (.*)$/.exec(String(value.message))?.[1]).find((address) => address !== undefined)!


// The cases run concurrently: each has its own database, simulator and runners, and most of their time is waiting on
// the cluster's timings (the runners' health checks, the dead runner's scroll expiring, the termination timeout).
describe.concurrent("the fleet as processes", () => {
  layer(Layer.effect(Scripts, bundle), { timeout: "120 seconds", excludeTestServices: true })("a fleet of runner processes over PostgreSQL", (it) => {
    it.scoped("the fleet's PostgreSQL sessions carry TCP keepalives, so a vanished runner's locks die in seconds", () =>
      Effect.gen(function*() {
        const url = new URL(Redacted.value(yield* Effect.orDie(PostgresDatabase.make)))
        const settings = (options?: string) =>
          Effect.gen(function*() {
            const withOptions = new URL(url)
            if (options !== undefined) withOptions.searchParams.set("options", options)
            const database = yield* SyncDatabase.parse(withOptions.href)
            const sql = yield* Effect.provide(SqlClient.SqlClient, yield* Layer.build(Fleet.layerSql(database)).pipe(Effect.orDie))
            const show = (setting: string) => Effect.map(sql.unsafe<Record<string, string>>(`SHOW ${setting}`), ([row]) => row[setting])
            return yield* Effect.all([
              show("tcp_keepalives_idle"),
              show("tcp_keepalives_interval"),
              show("tcp_keepalives_count"),
              show("tcp_user_timeout"),
              show("search_path")
            ]).pipe(Effect.orDie)
          })
        expect(yield* settings()).toEqual(["5", "2", "3", "11000", "\"$user\", public"])
        // A URL's own options (a schema, as the sync's README shows) keep the keepalives beside them; a keepalive it
        // sets itself stays its own.
        expect(yield* settings("-c search_path=intercom")).toEqual(["5", "2", "3", "11000", "intercom"])
        expect(yield* settings("-c search_path=intercom -c tcp_keepalives_idle=30")).toEqual(["30", "2", "3", "11000", "intercom"])
      }))

    it.scoped("kill -9 of a runner mid-sync: its workspaces move to the others and every workspace ends complete in the tables", () =>
      Effect.gen(function*() {
        const fleet = yield* startFleet({ runners: 3, maxSyncs: 4 })
        const client = yield* fleet.sync
        const { runner: victim, workspace } = yield* midSync(fleet, 10)
        const interrupted = new Set(logged(victim, "Sync started").map(({ workspace }) => workspace))
        for (const { workspace } of logged(victim, "Sync done")) interrupted.delete(workspace)
        victim.signal("SIGKILL")
        const killedAt = Date.now()

        // A guard against a hang, not a measure: the moved syncs start over from their first page, and at the load of a
        // full suite on two cores the survivors took over 90 s to finish them (a fresh clone's CI, 2026-12-07).
        const exit = yield* client.exit.pipe(Effect.timeout("150 seconds"), Effect.orDie)
        const survivors = fleet.runners.filter((runner) => runner !== victim)
        const movedAt = survivors.flatMap((runner) => logged(runner, "Sync received")).find((line) => line.workspace === workspace)?.at ?? NaN
        const restartedElsewhere = names.filter((name) => !interrupted.has(name) && starts(fleet, name) > 1)
        yield* Effect.logInfo(`kill -9 mid-sync of ${workspace}: received by another runner ${movedAt - killedAt} ms later; all done ${exit.at - killedAt} ms after the kill; restarted by a move between survivors: ${restartedElsewhere.join(", ") || "none"}`)
        expect(exit.code).toBe(0)
        everyWorkspaceCompleted(client)
        // A runner's "Sync done" says each summary's counts and milliseconds, not a Duration's JSON.
        const done = fleet.runners.flatMap((runner) => runner.json).filter(({ value }) => value.message === "Sync done")
        expect(done.length).toBeGreaterThan(0)
        for (const { value } of done) {
          const summaries = String((value.annotations as Record<string, unknown>).summaries)
          expect(summaries).toMatch(/"resource":"users","inserted":\d+.*"millis":\d+/)
          expect(summaries).not.toContain("_id")
        }
        // Its progress lines (one every 5 s) never said that no runner serves the database: two stayed alive.
        const progress = client.lines.filter((line) => line.text.startsWith("fleet: "))
        expect(progress.length).toBeGreaterThan(0)
        expect(progress.filter((line) => line.text.includes("no runner"))).toEqual([])

        // Every workspace is in the tables, whole, with one complete run. The run the victim left `running` was marked
        // abandoned by the run that took the lock after it.
        const runs = yield* everyWorkspaceSynced(fleet)
        const abandoned = runs[workspace].filter((run) => run.status === "abandoned")
        const complete = runs[workspace].find((run) => run.status === "complete")!
        expect(abandoned).toHaveLength(1)
        expect(abandoned[0].id).toBeLessThan(complete.id)

        // The workspaces the victim was scrolling were scrolled again, from the first page, by another runner. (So may
        // be a few others: when the ring loses a runner, survivors may trade shards too, and a moved sync starts over.)
        // Each start that ended opened one scroll; one cut short (the victim's, or one a survivor gave up when a shard
        // moved) opened one or none: on a loaded machine it can end before its first request. And no workspace was
        // scrolled by two runners at once.
        const stats = yield* fleet.simulator.stats
        const ofWorkspace = (runner: Process, message: string, name: string) =>
          logged(runner, message).filter((line) => line.workspace === name).length
        for (const name of names) {
          const cutShort = fleet.runners.reduce((sum, runner) =>
            sum + ofWorkspace(runner, "Sync started", name) - ofWorkspace(runner, "Sync done", name), 0)
          const scrolls = stats.workspaces[name].scrollsOpened
          expect({ name, scrolls: Math.min(scrolls + cutShort, starts(fleet, name)) }).toEqual({ name, scrolls: starts(fleet, name) })
          expect(scrolls).toBeLessThanOrEqual(starts(fleet, name))
          if (interrupted.has(name)) expect(starts(fleet, name)).toBeGreaterThanOrEqual(2)
        }
        yield* neverTwoLiveScrolls(fleet)
        passwordNeverShown(fleet, [...fleet.runners, client])
      }), 240_000)

    it.scoped("kill -9 of the runner running a --cron round: the tick runs again on the other, says its syncs were sent before, and no workspace syncs twice", () =>
      Effect.gen(function*() {
        // The schedule's first tick 40 s from now (the runners ready before it, on a loaded machine too), the next a day
        // later: the tick run again is never superseded.
        const at = new Date((Math.ceil(Date.now() / 1000) + 40) * 1000)
        const run = `cron@${at.toISOString()}`
        // One sync at a time a runner, 60 ms a page (a sync ~2.4 s, a round of six ~8 s on two runners).
        const fleet = yield* startFleet({
          runners: 2,
          maxSyncs: 1,
          latency: Duration.millis(60),
          cron: `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} * * *`
        })
        const ofRun = (runner: Process, begins: string) =>
          runner.json.filter(({ value }) =>
            String(value.message).startsWith(begins) && (value.annotations as Record<string, unknown>).run === run
          )
        const rounds = (runner: Process) => ofRun(runner, "Round ").map(({ value }) => String(value.message))
        const workspacesOf = (runner: Process, message: string) => logged(runner, message).map((line) => line.workspace)
        // The round's runner, once a sync of the round has ended and two have not: some answered, some not. Its own
        // workspaces' syncs (those of the shards it holds, by the ring of the two runners' addresses: none, some or all)
        // end with it, one of them perhaps mid-scroll.
        const victim = yield* eventually("a round with a sync done and two not", 120, Effect.sync(() => {
          const holder = fleet.runners.find((runner) => rounds(runner).length > 0)
          const done = fleet.runners.flatMap((runner) => logged(runner, "Sync done")).length
          return holder !== undefined && done >= 1 && done <= names.length - 2 ? holder : undefined
        }))
        victim.signal("SIGKILL")
        const killedAt = Date.now()
        yield* victim.exit
        const [survivor] = fleet.runners.filter((runner) => runner !== victim)
        const doneBefore = [
          ...workspacesOf(victim, "Sync done"),
          ...logged(survivor, "Sync done").filter((line) => line.at < killedAt).map((line) => line.workspace)
        ]
        const cut = workspacesOf(victim, "Sync started").filter((name) => !doneBefore.includes(name))
        const story = `killed with ${cut.join(", ") || "no sync"} under way on it, ${doneBefore.join(", ")} done before`

        const doneAt = yield* eventually("the survivor's round of the tick to end", 150, Effect.sync(() => ofRun(survivor, "Round done")[0]?.at))
        yield* Effect.logInfo(`kill -9 mid-round (${story}): the tick's round began again on the other runner ${(ofRun(survivor, "Round started")[0]?.at ?? NaN) - killedAt} ms after the kill, ended ${doneAt - killedAt} ms after it`)
        // The victim's round had sent every workspace its sync (a round sends up to --max-in-flight, 1,000, at once).
        expect(rounds(victim), story).toEqual(["Round started"])
        expect(rounds(survivor), story).toEqual([
          "Round started: 6 of its 6 workspaces were sent this run's sync by an earlier round of it, and answer with that sync's result",
          "Round done: 6 complete, 0 failed (6 answered by this run's syncs sent before)"
        ])
        // One complete run a workspace, its rows the simulator's; those done before the kill not scrolled again, one cut
        // by it synced again (its run cut marked abandoned, if it had begun one), and no workspace scrolled by two
        // runners at once.
        const runs = yield* everyWorkspaceSynced(fleet)
        const stats = yield* fleet.simulator.stats
        // (Scrolls and runs, not starts: a sync done the instant before its answer was stored is delivered again, and
        // answered from its run's row.)
        for (const name of doneBefore) {
          expect({ name, scrolls: stats.workspaces[name].scrollsOpened, runs: runs[name].length }, story)
            .toEqual({ name, scrolls: 1, runs: 1 })
        }
        for (const name of cut) {
          expect(runs[name].map((each) => each.status).filter((status) => status !== "abandoned"), story).toEqual(["complete"])
        }
        yield* neverTwoLiveScrolls(fleet)
      }), 240_000)

    it.scoped("fleet sync with no runner on its database says so in its progress line, and waits for one", () =>
      Effect.gen(function*() {
        const fleet = yield* startFleet({ runners: 0, maxSyncs: 1, workspaces: 1 })
        const client = yield* fleet.sync
        // Its first progress line comes 5 s after a start that a loaded machine (CI's full run) makes slow: the bound is
        // for a client that never says it, and the failure shows what it said instead.
        yield* eventually("the client to say that no runner serves the database", 90, Effect.sync(() =>
          client.lines.some((line) => line.text.endsWith("| no runner serves this database: start intercom-scroll fleet runner on it"))
            ? true
            : undefined)).pipe(
            Effect.catchAllDefect((defect) =>
              Effect.dieMessage(`${String(defect)}; the client said: ${JSON.stringify(client.lines.map((line) => line.text))}`)
            )
          )
        client.signal("SIGINT")
        expect((yield* client.exit.pipe(Effect.timeout("30 seconds"), Effect.orDie)).code).toBe(130)
      }), 120_000)

    it.scoped("Ctrl-C on fleet sync stops the syncs it waits for, on the runners: a run begun is interrupted, not failed, none is left running, and the client says so", () =>
      Effect.gen(function*() {
        const fleet = yield* startFleet({ runners: 1, maxSyncs: 1, workspaces: 2 })
        const client = yield* fleet.sync
        const [runner] = fleet.runners
        const { workspace } = yield* midSync(fleet, 5)
        client.signal("SIGINT")
        const exit = yield* client.exit.pipe(Effect.timeout("30 seconds"), Effect.orDie)
        expect(exit.code).toBe(130)
        expect(client.lines.at(-1)?.text).toBe(
          "Interrupted: stopped, and so did the syncs it was waiting for (a run begun is recorded as interrupted; a record is marked deleted only once a complete scroll missed it)"
        )
        yield* eventually("the runner to stop the sync", 30, Effect.sync(() =>
          logged(runner, "Sync interrupted").some((line) => line.workspace === workspace) ? true : undefined))
        const runs = yield* syncRuns.pipe(withDatabase(fleet))
        expect(runs.filter((run) => run.status === "running")).toEqual([])
        expect(runs.filter((run) => run.workspace === workspace).map((run) => run.status)).toEqual(["interrupted"])
      }), 120_000)

    it.effect("SIGTERM to a runner mid-sync: it finishes the sync it runs, hands back those it has not started, and nothing runs twice", () =>
      whileShardLocksFail(3)(Effect.gen(function*() {
        // One sync at a time per runner, so that a runner owning two workspaces has one waiting when it is stopped.
        // 60 ms a page: a sync of 40 pages lasts 2.4 s, so that the half of it this test waits for (1.2 s) is not over
        // between two of its looks on a loaded machine (at 30 ms and from page 28, 0.36 s: missed by every look of a
        // first attempt at the start of a full run, as three runners and two other process files started at once).
        // A termination timeout of a minute, not the default 15 s: at the start of a full run (three runners, two other
        // process files, PostgreSQL on two cores) a runner's sync was seen crawling at a page a second, and what was left
        // of it outlasted 15 s (the cluster interrupted it, rightly). What this case checks is the same at any timeout.
        const fleet = yield* startFleet({
          runners: 3,
          maxSyncs: 1,
          latency: Duration.millis(60),
          runnerFlags: ["--termination-timeout", "60s"]
        })
        const client = yield* fleet.sync
        const owns = (runner: Process) => logged(runner, "Sync received").length >= 2
        // Past its half, so that what is left of it ends well within the termination timeout.
        const { runner: victim, workspace } = yield* midSync(fleet, 20, owns)
        const waiting = logged(victim, "Sync received").map(({ workspace }) => workspace)
          .filter((name) => !logged(victim, "Sync started").some((line) => line.workspace === name))
        victim.signal("SIGTERM")
        const stoppedAt = Date.now()

        const victimExit = yield* endedWithin(victim, "90 seconds", fleet.runners)
        const exit = yield* endedWithin(client, "120 seconds", fleet.runners, [client])
        const survivors = fleet.runners.filter((runner) => runner !== victim)
        const handedBack = waiting.map((name) =>
          (survivors.flatMap((runner) => logged(runner, "Sync received")).find((line) => line.workspace === name)?.at ?? NaN) - stoppedAt)
        yield* Effect.logInfo(`SIGTERM mid-sync of ${workspace}: runner exited ${victimExit.at - stoppedAt} ms later (code ${victimExit.code}, signal ${victimExit.signal}); ${waiting.length} waiting sync(s) received elsewhere after ${handedBack.join(", ")} ms; all done ${exit.at - stoppedAt} ms after the SIGTERM`)
        // A runner that gave up every shard, its lock storage found unhealthy, cut every sync: the case is run again.
        yield* shardLocksStayedHealthy(fleet.runners)
        expect(exit.code).toBe(0)
        everyWorkspaceCompleted(client)
        // Its last words say what a stopped runner leaves (not an export's), with the exit code of a SIGTERM.
        expect(victimExit.code).toBe(143)
        expect(victim.lines.at(-1)?.text).toBe("Stopped: the runner's syncs finished, or went back to the fleet for another runner")

        // The victim finished the sync it was running, and started none of those still waiting.
        // If not, the victim's last lines say why (when a loaded machine stalled the database 5 s, the cluster gave up
        // the runner's shards and interrupted the sync: bench NOTES, "Full runs that lost …").
        expect(logged(victim, "Sync done").map((line) => line.workspace), `SIGTERM at ${new Date(stoppedAt).toISOString()}\n${said([victim])}`)
          .toContain(workspace)
        for (const name of waiting) expect(logged(victim, "Sync started").map((line) => line.workspace)).not.toContain(name)
        // …and says so, not that it was interrupted mid-sync.
        for (const name of waiting) {
          expect(logged(victim, "Sync handed back: it had not started").map((line) => line.workspace)).toContain(name)
        }
        // Every workspace started, scrolled and ran exactly once, into the tables: nothing lost, nothing twice.
        const runs = yield* everyWorkspaceSynced(fleet)
        const stats = yield* fleet.simulator.stats
        for (const name of names) {
          const restarted = restarts(fleet.runners, name)
          expect(
            { name, starts: starts(fleet, name), scrolls: stats.workspaces[name].scrollsOpened, runs: runs[name].length },
            `${JSON.stringify(stats.workspaces[name])}\n${restarted.said}`
          ).toEqual({ name, starts: 1, scrolls: 1 + restarted.count, runs: 1 })
        }
        yield* neverTwoLiveScrolls(fleet)
        passwordNeverShown(fleet, [...fleet.runners, client])
      })), {
        // Up to three attempts of up to ~3 minutes each on a loaded machine.
        timeout: 600_000,
        // Once more on a fresh fleet when it fails otherwise (an attempt whose runner gave up its shards is run again
        // above: bench NOTES, "Full runs that lost …", and "The SIGTERM case, a fourth loss"): at the start of a full
        // run a first look for a runner mid-sync has timed out. Twice in a row is a failure.
        retry: 1
      })
  })

  /**
   * A runner that joins takes about half of the shards, and with them the workspaces of those shards, whose syncs may
   * be under way on the runner that held them. The cluster releases a shard once the entities on it have ended, up to
   * the termination timeout, and keeps its lock meanwhile: with one longer than what is left of those syncs, they end
   * where they began, and only then does the shard move.
   */
  layer(Layer.effect(Scripts, bundle), { excludeTestServices: true })("a runner joining mid-sync", (it) => {
    it.effect("with a --termination-timeout longer than the syncs under way, those of the workspaces that move finish on their first runner: one run each, complete, none interrupted", () =>
      whileShardLocksFail(3)(Effect.gen(function*() {
        // Twelve workspaces, so that some move (each has about half a chance); 40 pages of 1 s, so that what is left of
        // a sync when the runner joins outlasts the default 15 s by far, however slowly the runner starts.
        const workspaces = Array.from({ length: 12 }, (_, i) => names[i] ?? `workspace${i + 1}`)
        const fleet = yield* startFleet({
          runners: 1,
          maxSyncs: workspaces.length,
          workspaces,
          latency: Duration.seconds(1),
          runnerFlags: ["--termination-timeout", "5m"]
        })
        const [first] = fleet.runners
        const client = yield* fleet.sync
        yield* eventually("every workspace's sync a few pages in", 90, Effect.gen(function*() {
          const stats = yield* fleet.simulator.stats
          const started = new Set(logged(first, "Sync started").map(({ workspace }) => workspace))
          return workspaces.every((name) => started.has(name) && stats.workspaces[name].pagesServed >= 3) ? true : undefined
        }))
        const joined = yield* fleet.addRunner("runner2")
        const joinedAt = Date.now()
        const both = { ...fleet, runners: [first, joined] }
        const exit = yield* endedWithin(client, "150 seconds", [first, joined], [client])
        // A first runner that gave up every shard, its lock storage found unhealthy, cut every sync: the case is run again.
        yield* shardLocksStayedHealthy([first, joined])
        expect(exit.code).toBe(0)
        everyWorkspaceCompleted(client, workspaces)

        // Once the syncs have ended, the shards are split; the workspaces whose shard the joined runner holds moved.
        yield* shardsSplit(fleet.database, 2)
        const holders = yield* Effect.gen(function*() {
          const sharding = yield* Sharding.Sharding
          const sql = yield* SqlClient.SqlClient
          const locks = yield* sql<{ key: string; holder: string }>`
            SELECT l.objid::text AS key, a.application_name AS holder FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`
          // The cluster's advisory lock of a shard of its first group (the workspaces'): 1,000,000 and the shard's number.
          return Object.fromEntries(workspaces.map((name) => {
            const key = String(1_000_000 + sharding.getShardId(EntityId.make(name), "default").id)
            return [name, locks.find((lock) => lock.key === key)?.holder]
          }))
        }).pipe(Effect.provide(Fleet.layerClient({ database: yield* SyncDatabase.parse(fleet.database) })), Effect.orDie)
        const runnerAt = (runner: Process) => `intercom-scroll-fleet runner ${listeningOn(runner)}`
        for (const name of workspaces) expect([runnerAt(first), runnerAt(joined)]).toContain(holders[name])
        const moved = workspaces.filter((name) => holders[name] === runnerAt(joined))
        yield* Effect.logInfo(`a runner joined ${exit.at - joinedAt} ms before the end: ${moved.join(", ")} moved`)
        expect(moved.length, said([first, joined])).toBeGreaterThan(0)

        // Every sync ran once, on the first runner, and those that moved ended there after the runner joined.
        // If not, what the runners said of that workspace and of their shard locks says why.
        const saidOf = (name: string) =>
          [first, joined].map((runner) =>
            `${runner.name} said:\n  ${
              runner.lines.filter(({ text }) => text.includes(name) || /shard lock|unhealthy|recovered/i.test(text))
                .map(({ text }) => text.slice(0, 400)).join("\n  ")
            }`
          ).join("\n")
        for (const name of workspaces) expect({ name, starts: starts(both, name) }, saidOf(name)).toEqual({ name, starts: 1 })
        expect(logged(joined, "Sync started")).toEqual([])
        expect(logged(first, "Sync interrupted")).toEqual([])
        for (const name of moved) {
          expect(logged(first, "Sync done").find((line) => line.workspace === name)?.at).toBeGreaterThan(joinedAt)
        }
        const runs = yield* everyWorkspaceSynced(fleet)
        for (const name of workspaces) expect({ name, runs: runs[name].map((run) => run.status) }).toEqual({ name, runs: ["complete"] })
        const stats = yield* fleet.simulator.stats
        // One scroll each, and one more for each time its sync started over from the first page (a loaded machine's).
        for (const name of workspaces) {
          const restarted = restarts([first, joined], name)
          expect({ name, scrolls: stats.workspaces[name].scrollsOpened }, `${JSON.stringify(stats.workspaces[name])}\n${restarted.said}`)
            .toEqual({ name, scrolls: 1 + restarted.count })
        }
        yield* neverTwoLiveScrolls(fleet)
      })), {
        // Up to three attempts of up to ~3 minutes each on a loaded machine.
        timeout: 600_000,
        // Once more on a fresh fleet when it fails otherwise (an attempt whose runner gave up its shards is run again
        // above): twice in a row is a failure.
        retry: 1
      })
  })

  layer(Layer.effect(Scripts, bundle), { excludeTestServices: true })("a one-runner fleet over SQLite", (it) => {
    it.scoped("one runner over SQLite: the same commands, with sqlite:PATH, into the same tables; --max-in-flight 1 sends one workspace at a time; a run sent again says so, and syncs again once pruned; the runner and the client send their telemetry", () =>
      Effect.gen(function*() {
        const scripts = yield* Scripts
        const collector = yield* OtlpCollector.make
        const workspaces = names.slice(0, 2)
        const tokenOf = (workspace: string) => `${workspace}-token-51d7`
        const simulator = yield* serve({ workspaces: workspaces.map((workspace) => ({ token: tokenOf(workspace), users: 500 })) })
        const dir = yield* tempDir("fleet-sqlite-")
        const filename = join(dir, "fleet.db")
        const file = join(dir, "workspaces.json")
        writeFileSync(file, JSON.stringify(workspaces.map((workspace) => ({
          workspace,
          baseUrl: simulator.baseUrl,
          tokenEnv: `${workspace.toUpperCase()}_TOKEN`
        }))))
        const env = Object.fromEntries(workspaces.map((workspace) => [`${workspace.toUpperCase()}_TOKEN`, tokenOf(workspace)]))
        // The runner and the first client send their spans, logs and counters to the collector.
        const telemetry = (service: string) => ({
          OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
          OTEL_SERVICE_NAME: service,
          // A command's end waits 2 s for the collector unless a timeout is set (a CLI does not hang on its telemetry),
          // which the collector, in this test's own busy process, can miss at a full suite's load: a fresh clone's CI
          // once found none of the first client's spans. Here what is sent is under test, not how fast.
          OTEL_EXPORTER_OTLP_TIMEOUT: "20000"
        })
        const healthPort = yield* freePort
        const runner = yield* startRunner("runner", scripts.runner, (port) => ["--database", `sqlite:${filename}`, "--port", String(port), "--health-port", String(healthPort)], {
          ...env,
          ...telemetry("fleet-runner")
        })
        const client = yield* node("client", scripts.client, ["--database", `sqlite:${filename}`, "--workspaces", file, "--run", "r1", "--max-in-flight", "1"], {
          ...env,
          ...telemetry("fleet-sync")
        })
        const exit = yield* client.exit.pipe(
          Effect.timeout("90 seconds"),
          Effect.catchAll(() => Effect.dieMessage(`the client did not end within 90 seconds\n${said([runner, client])}`))
        )
        expect(exit.code).toBe(0)
        everyWorkspaceCompleted(client, workspaces, 500)
        expect(results(client).map(({ summaries }) => summaries?.[0].inserted)).toEqual([500, 500])
        expect(Object.values((yield* simulator.stats).workspaces).map((counters) => counters.scrollsOpened)).toEqual([1, 1])
        const live = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql<{ workspace: string; live: number }>`SELECT workspace, count(*) AS live FROM ${sql(Sync.tables.users)}
            WHERE deleted_at IS NULL GROUP BY workspace ORDER BY workspace`).pipe(
            Effect.provide(SqliteClient.layer({ filename })),
            Effect.orDie
          )
        expect(live).toEqual([{ workspace: "acme", live: 500 }, { workspace: "globex", live: 500 }])
        // The runner could run both at once (--max-syncs 4): the second reached it only once the first was answered.
        const order = runner.json.map(({ value }) => `${value.message} ${(value.annotations as Record<string, string>).workspace}`)
        const [first, second] = results(client).map(({ workspace }) => workspace)
        expect(order.indexOf(`Sync received ${second}`)).toBeGreaterThan(order.indexOf(`Sync done ${first}`))

        // Its health, for a probe: the database answers, and it holds every shard (the only runner).
        const health = yield* Effect.promise(() => fetch(`http://127.0.0.1:${healthPort}/health`))
        expect(health.status).toBe(200)
        expect(yield* Effect.promise(() => health.json())).toEqual({ healthy: true, database: "ok", shards: 300 })

        // What fleet status says of it: the runner alive, nothing left to answer, the two runs and their rows.
        const status = yield* node("status", scripts.status, ["--database", `sqlite:${filename}`])
        expect((yield* status.exit.pipe(Effect.timeout("60 seconds"), Effect.orDie)).code).toBe(0)
        expect(status.lines.map(({ text }) => text)).toEqual([
          `Fleet database: sqlite:${filename}`,
          `Runners: 1 live: ${listeningOn(runner)}`,
          "Syncs sent and not answered: 0",
          "Runs under way: 0",
          expect.stringMatching(/^Since \S+Z: runs complete 2, failed 0, abandoned 0, interrupted 0; rows inserted 1,000, updated 0, unchanged 0, deleted 0$/)
        ])

        // The same run sent again: the same answers, from storage, and a note that says so; no scroll opened.
        const note = /^fleet: run "r1" was sent before to 2 of 2 workspaces: they answer with what that send did/
        expect(client.lines.filter(({ text }) => note.test(text))).toEqual([])
        const again = yield* node("client", scripts.client, ["--database", `sqlite:${filename}`, "--workspaces", file, "--run", "r1"], env)
        expect((yield* again.exit.pipe(Effect.timeout("60 seconds"), Effect.orDie)).code).toBe(0)
        expect(again.lines.filter(({ text }) => note.test(text))).toHaveLength(1)
        expect(results(again)).toEqual(results(client))
        expect(Object.values((yield* simulator.stats).workspaces).map((counters) => counters.scrollsOpened)).toEqual([1, 1])

        // Pruned of everything sent until now, the database no longer knows r1: sent again, it syncs again.
        const prune = yield* node("prune", scripts.prune, ["--database", `sqlite:${filename}`, "--older-than", "0s"])
        expect((yield* prune.exit.pipe(Effect.timeout("60 seconds"), Effect.orDie)).code).toBe(0)
        expect(prune.lines.map(({ text }) => text)).toContainEqual(
          expect.stringMatching(/^Pruned 2 requests answered, 0 schedule ticks and 2 runs ended before \S+ from sqlite:/)
        )
        // Sent by a client that samples no trace: the runner, which follows its sender's decision, sends none of it.
        const third = yield* node("client", scripts.client, ["--database", `sqlite:${filename}`, "--workspaces", file, "--run", "r1"], {
          ...env,
          ...telemetry("fleet-sync-unsampled"),
          OTEL_TRACES_SAMPLER: "always_off"
        })
        expect((yield* third.exit.pipe(Effect.timeout("60 seconds"), Effect.orDie)).code).toBe(0)
        expect(third.lines.filter(({ text }) => note.test(text))).toEqual([])
        expect(results(third).map(({ summaries }) => summaries?.[0].unchanged)).toEqual([500, 500])
        expect(Object.values((yield* simulator.stats).workspaces).map((counters) => counters.scrollsOpened)).toEqual([2, 2])

        // Stopped, the runner sends what it has left. Each workspace's sync is one trace, from the first client's send to
        // the runner's scroll, with the runner's log lines about it; its counters add up the four syncs it ran.
        runner.signal("SIGTERM")
        expect((yield* runner.exit.pipe(Effect.timeout("60 seconds"), Effect.orDie)).code).toBe(143)
        const spans = collector.spans()
        for (const workspace of workspaces) {
          const sent = spans.filter((span) =>
            span.service === "fleet-sync" && span.name === "WorkspaceSync.sync" &&
            OtlpCollector.attribute(span.attributes, "workspace") === workspace
          )
          // Else the client's own words on its telemetry's end (`… what it held is not sent`).
          expect(sent, client.lines.slice(-5).map(({ text }) => text).join("\n")).toHaveLength(1)
          const ran = spans.filter((span) => span.traceId === sent[0]!.traceId && span.service === "fleet-runner")
          expect(ran.filter((span) => span.name === "WorkspaceSync.Sync").map((span) => OtlpCollector.attribute(span.attributes, "workspace")))
            .toEqual([workspace])
          expect(ran.filter((span) => span.name === "Sync.run").map((span) => OtlpCollector.attribute(span.attributes, "resource")))
            .toEqual(["users"])
          expect(ran.filter((span) => span.name === "Scroll.page")).toHaveLength(6)
        }
        // The runner's statements are sent within what they serve; its background ones (heartbeats, lock refreshes,
        // polls), each a span without a parent, are not.
        const statements = spans.filter((span) => span.service === "fleet-runner" && span.name === "sql.execute")
        expect(statements.filter((span) => span.parentSpanId === undefined)).toEqual([])
        expect(statements.length).toBeGreaterThan(0)
        // Nor is a probe of its health: neither the request nor its check.
        expect(spans.filter((span) => span.service === "fleet-runner" && /health/i.test(span.name))).toEqual([])
        // The four syncs it ran, of which the last two were sent unsampled.
        expect(spans.filter((span) => span.service === "fleet-runner" && span.name === "WorkspaceSync.Sync")).toHaveLength(2)
        expect(spans.filter((span) => span.service === "fleet-sync-unsampled")).toEqual([])
        const logs = collector.logs().filter((record) => record.service === "fleet-runner")
        expect(logs.map((record) => record.body)).toContainEqual(expect.stringMatching(/^Listening on: 127\.0\.0\.1:\d+$/))
        const done = logs.filter((record) => record.body === "Sync done")
        expect(done).toHaveLength(4)
        const sentTraces = new Set(spans.filter((span) => span.name === "WorkspaceSync.sync").map((span) => span.traceId))
        expect(done.filter((record) => record.traceId !== undefined && sentTraces.has(record.traceId))).toHaveLength(2)
        const last = (name: string, attributes: Record<string, string>) =>
          collector.counter(name).filter((point) => JSON.stringify(point.attributes) === JSON.stringify(attributes)).at(-1)?.value
        expect(last("intercom_sync_runs", { resource: "users", status: "complete" })).toBe(4)
        expect(last("intercom_sync_rows", { resource: "users", change: "inserted" })).toBe(1000)
        expect(last("intercom_sync_rows", { resource: "users", change: "unchanged" })).toBe(1000)
        expect(last("intercom_scroll_records", { resource: "users" })).toBe(2000)
        for (const request of collector.received) {
          for (const workspace of workspaces) expect(request.body.toString("utf8")).not.toContain(tokenOf(workspace))
        }
      }), 240_000) // Its steps each wait at most 60–90 s: a loaded machine (the runner ready after 18 s) spent 120 s on them in all.
  })

  /**
   * A partition: a runner frozen mid-sync (SIGSTOP) whose PostgreSQL sessions are cut (pg_terminate_backend), as when a
   * machine stalls while the database drops its connections. Its advisory locks go with its sessions: the cluster's
   * shard locks, so another runner takes its shards and runs its workspace's `Sync` again, and the sync's workspace
   * lock, so the new owner's run takes it. The frozen runner, woken once the new owner is writing, still believes it
   * owns the workspace until it notices its lost shard locks (seconds later), and it wakes with a page in hand.
   *
   * The cluster alone does not fence this (stage 1 measured 16 pages scrolled by the woken runner). The sync's fence
   * must: the stale run writes no page once it has woken (its writes go through the session that ended), it stops
   * before it scrolls on, and the new owner's run ends complete. So the workspace never has two scrolls that both write.
   * And the stale entity, having lost its lock, runs nothing more: once the new owner's run is complete and frees the
   * lock, no second run of the workspace begins (it did when the entity retried its sync after `LockLost`).
   *
   * Two runners and two workspaces are the fewest that show it: the frozen runner's workspace moves to the other
   * runner, which has its own workspace to sync meanwhile.
   */
  layer(Layer.effect(Scripts, bundle), { timeout: "120 seconds", excludeTestServices: true })("a partition", (it) => {
    it.effect(
      "a frozen runner whose sessions were cut wakes with a page in hand, and writes it nowhere: the new owner's run alone writes",
      () =>
        whileShardLocksFail(3)(Effect.gen(function*() {
          const fleet = yield* startFleet({ runners: 2, maxSyncs: 4, workspaces: 2 })
          const client = yield* fleet.sync
          const { runner: frozen, workspace } = yield* midSync(fleet, 10)
          const inDatabase = withDatabase(fleet)

          const frozenAt = Date.now()
          frozen.signal("SIGSTOP")
          const pagesAtFreeze = (yield* fleet.simulator.stats).workspaces[workspace].pagesServed
          const sessions = yield* Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const application = `intercom-scroll-fleet runner ${listeningOn(frozen)}`
            const pids = yield* sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE application_name = ${application}`
            for (const { pid } of pids) yield* sql`SELECT pg_terminate_backend(${pid})`
            yield* eventually("the frozen runner's sessions to end", 30, Effect.map(
              Effect.orDie(sql`SELECT 1 FROM pg_stat_activity WHERE application_name = ${application}`),
              (left) => left.length === 0 ? true : undefined
            ))
            return pids.length
          }).pipe(Effect.orDie, inDatabase)
          // The frozen runner's run, the workspace's one under way: what it stored first before its sessions ended is
          // all it may ever store. Usually the workspace's first; on a loaded machine a run may have been cut before it
          // (its shard moved when a runner's shard locks lapsed), ended and recorded so, never after it.
          const runsAtFreeze = (yield* syncRuns.pipe(inDatabase)).filter((run) => run.workspace === workspace)
          const underWay = runsAtFreeze.filter((run) => run.status === "running")
          expect(underWay).toHaveLength(1)
          const stale = underWay[0]
          expect(runsAtFreeze.filter((run) => run.id > stale.id)).toEqual([])
          const writtenBeforeFreeze = (yield* rowsOfRun(stale.id).pipe(inDatabase)).first

          // Another runner takes the workspace over, and its run begins to write.
          const others = fleet.runners.filter((runner) => runner !== frozen)
          const takenOver = yield* eventually("another runner to start the frozen runner's workspace", 90, Effect.sync(() =>
            others.flatMap((runner) => logged(runner, "Sync started")).find((line) => line.workspace === workspace)))
          const successor = yield* eventually("the new owner's run to write a page", 60, Effect.gen(function*() {
            const run = (yield* syncRuns).find((run) => run.workspace === workspace && run.id > stale.id)
            return run !== undefined && (yield* rowsOfRun(run.id)).last > 0 ? run : undefined
          }).pipe(inDatabase))
          frozen.signal("SIGCONT")
          const wokeAt = Date.now()
          // Its next write fails with LockLost; or, when the woken runner finds its shard locks gone first, the cluster
          // stops its entity before that write.
          const fenced = yield* eventually("the woken runner's sync to stop", 60, Effect.sync(() =>
            frozen.json.find(({ at, value }) =>
              at >= wokeAt && (value.annotations as Record<string, string>).workspace === workspace &&
              /lost its lock|^Sync interrupted$/.test(String(value.message))
            )))

          const exit = yield* endedWithin(client, "150 seconds", others, [client])
          const staleAfter = (yield* syncRuns.pipe(inDatabase)).find((run) => run.id === stale.id)!
          const storedByStale = (yield* rowsOfRun(stale.id).pipe(inDatabase)).first
          const stats = (yield* fleet.simulator.stats).workspaces[workspace]
          const runsAfter = (yield* syncRuns.pipe(inDatabase)).filter((run) => run.workspace === workspace)
          const staleAfterLockLost = frozen.json.filter(({ at, value }) =>
            at >= fenced.at && (value.annotations as Record<string, string>).workspace === workspace
          ).map(({ value }) => String(value.message))
          // What the other runners said of the workspace and of their shards: a second run after the new owner's
          // complete one is the stale entity's (a failure of the fence), or a new delivery after the new owner itself
          // gave its shards up (its shard-lock refresh unanswered within the cluster's 5 s on a loaded machine).
          const othersSaid = others.flatMap((runner) =>
            runner.json.filter(({ value }) =>
              (value.annotations as Record<string, string>).workspace === workspace ||
              /shard|unhealthy/i.test(String(value.message))
            ).map(({ at, value }) => `${((at - frozenAt) / 1000).toFixed(1)} s ${String(value.message).slice(0, 200)}`)
          )
          const seconds = (at: number) => `${((at - frozenAt) / 1000).toFixed(1)} s`
          yield* Effect.logInfo([
            `partition of the runner scrolling ${workspace}, with the sync's fence:`,
            `0.0 s SIGSTOP at page ${pagesAtFreeze}, ${writtenBeforeFreeze} users written by its run ${stale.id}; its ${sessions} PostgreSQL sessions terminated`,
            `${seconds(takenOver.at)} another runner starts ${workspace}; its run ${successor.id} is writing`,
            `${seconds(wokeAt)} SIGCONT`,
            `${seconds(fenced.at)} the woken runner's sync stops: ${String(fenced.value.message)}`,
            `${seconds(exit.at)} the client exits ${exit.code}; ${workspace}: ${stats.scrollsOpened} scrolls opened, ${
              stats.errorsByCode.scroll_exists ?? 0
            } scroll_exists, of which ${stats.scrollExistsWhileLive} while the open scroll was in use; run ${stale.id} stored ${storedByStale} users in all, and ended ${staleAfter.status} (${staleAfter.error})`,
            `runs of ${workspace}: ${runsAfter.map((run) => `${run.id} ${run.status}`).join(", ")}; its Sync started ${
              starts(fleet, workspace)
            } times`,
            `the frozen runner on ${workspace} after its LockLost: ${JSON.stringify(staleAfterLockLost)}`,
            `the other runners on ${workspace} and their shards: ${JSON.stringify(othersSaid)}`
          ].join("\n"))

          // The new owner that gave up every shard, its lock storage found unhealthy, let the workspace's Sync be
          // delivered again: the case is run again. (The frozen runner's own, on waking, is what the case makes.)
          yield* shardLocksStayedHealthy(others)
          expect(exit.code).toBe(0)
          everyWorkspaceCompleted(client, fleet.workspaces)
          // One complete run per workspace, none left running.
          yield* everyWorkspaceSynced(fleet)
          // No run of the workspace began after its complete one: nothing ran again once the new owner's run was done.
          const complete = runsAfter.find((run) => run.status === "complete")!
          expect(runsAfter.filter((run) => run.id > complete.id)).toEqual([])
          // Nor did any entity start its sync over: each time a runner started the workspace's Sync (of users only; the
          // stale entity once, before the freeze), it began one run at most.
          expect(runsAfter.length).toBeLessThanOrEqual(starts(fleet, workspace))
          // The stale run wrote nothing once woken: it stored no more users than before the freeze. (It is marked
          // abandoned by the new owner's run, then failed or interrupted with its counts if it records its own end.)
          expect(storedByStale).toBe(writtenBeforeFreeze)
          expect(staleAfter.status).not.toBe("complete")
          if (staleAfter.status === "failed" || staleAfter.status === "interrupted") expect(staleAfter.records).toBe(writtenBeforeFreeze)
          yield* neverTwoLiveScrolls(fleet)
        })),
      {
        // Up to three attempts of up to ~3 minutes each on a loaded machine.
        timeout: 600_000,
        // Once more on a fresh fleet when it fails otherwise: a fresh clone's CI run (2026-12-06 21:24) had the woken
        // runner receive the workspace's Sync again after the new owner's run was complete, and run it (runs 1 failed, 3
        // and 5 complete), likely the new owner giving its shards up under the full run's load (bench NOTES, "Taking
        // this stop's work in: two tests a loaded machine broke…"), which now runs the case again above; not proven,
        // and the line above says what the other runners said. Twice in a row is a failure.
        retry: 1
      }
    )
  })
})
