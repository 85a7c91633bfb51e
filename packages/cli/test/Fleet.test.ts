import { NodeContext } from "@effect/platform-node"
import { Rpc } from "@effect/rpc"
import { describe, expect, it } from "@effect/vitest"
import { ScrollError } from "@intercom-scroll/core"
import { FleetStatus, type Summary, WorkspaceSync } from "@intercom-scroll/fleet"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Sync, SyncActivity, SyncError } from "@intercom-scroll/sync"
import { Clock, ConfigProvider, DateTime, Duration, Effect, Exit, Fiber, FiberId, Layer, Logger, LogLevel, Redacted, Schedule, Schema, TestClock } from "effect"
import { existsSync, writeFileSync } from "node:fs"
import { PostgresDatabase, PostgresServer } from "@intercom-scroll/testing"
import { makeFake } from "../../core/test/support/fakeIntercom.js"
import { freePort, tempDir } from "../../fleet/test/support/processes.js"
import { Cli } from "../src/index.js"
import * as Failure from "../src/internal/failure.js"
import * as FleetCommand from "../src/internal/fleet.js"
import * as StopDeadline from "../src/internal/stopDeadline.js"
import { makeCapture } from "./support/capture.js"

const cli = (args: ReadonlyArray<string>) => {
  const capture = makeCapture({ stdoutTty: false })
  return Cli.main(["node", "intercom-scroll", ...args]).pipe(
    Effect.provide(Layer.mergeAll(NodeContext.layer, makeFake().httpClient, capture.layer)),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
    Effect.exit,
    Effect.map((exit) => ({ exit, stdout: capture.stdout(), stderr: capture.stderr() }))
  )
}

/** The current clock, `by` milliseconds ahead: a machine without good NTP. */
const skewed = (base: Clock.Clock, by: number): Clock.Clock => ({
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis() + by,
  unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos() + BigInt(by) * 1_000_000n,
  currentTimeMillis: Effect.map(base.currentTimeMillis, (millis) => millis + by),
  currentTimeNanos: Effect.map(base.currentTimeNanos, (nanos) => nanos + BigInt(by) * 1_000_000n),
  sleep: (duration) => base.sleep(duration)
})

const summary = (resource: Summary.Summary["resource"], counts: { inserted: number; updated: number; unchanged: number; deleted: number }): Summary.Summary => ({
  runId: 1,
  workspace: "acme",
  resource,
  ...counts,
  restarts: 0,
  duration: Duration.millis(1_600),
  app: "ebd94e69"
})

describe("intercom-scroll fleet", () => {
  it("one combined progress line: complete, failed (when any), syncing and waiting, the records and the time", () => {
    expect(FleetCommand.renderProgress({ workspaces: 6, complete: 2, failed: 0, syncing: 3, records: 8_000 }, 12_300))
      .toBe("fleet: 2 of 6 workspaces complete, 3 syncing, 1 waiting | 8,000 records | 12.3 s")
    expect(FleetCommand.renderProgress({ workspaces: 6, complete: 4, failed: 1, syncing: 1, records: 12_345 }, 75_000))
      .toBe("fleet: 4 of 6 workspaces complete, 1 failed, 1 syncing, 0 waiting | 12,345 records | 1 min 15 s")
    // No runner alive on the database: the requests wait for one, and the line says so until all are answered.
    expect(FleetCommand.renderProgress({ workspaces: 2, complete: 0, failed: 0, syncing: 0, records: 0, runners: 0 }, 30_100))
      .toBe("fleet: 0 of 2 workspaces complete, 0 syncing, 2 waiting | 0 records | 30.1 s | no runner serves this database: start intercom-scroll fleet runner on it")
    // Syncs still running on a runner that is stopping, which has left the live ones: it serves no new sync.
    expect(FleetCommand.renderProgress({ workspaces: 3, complete: 0, failed: 0, syncing: 2, records: 40, runners: 0 }, 2_000))
      .toBe("fleet: 0 of 3 workspaces complete, 2 syncing, 1 waiting | 40 records | 2.0 s | no live runner takes new syncs: start intercom-scroll fleet runner on this database")
    expect(FleetCommand.renderProgress({ workspaces: 2, complete: 1, failed: 0, syncing: 1, records: 9, runners: 2 }, 1_000))
      .toBe("fleet: 1 of 2 workspaces complete, 1 syncing, 0 waiting | 9 records | 1.0 s")
  })

  it("one line per workspace: its summaries, or why it failed, in one line", () => {
    const complete = Exit.succeed([
      summary("users", { inserted: 3_990, updated: 10, unchanged: 0, deleted: 2 }),
      summary("companies", { inserted: 0, updated: 0, unchanged: 50, deleted: 0 })
    ])
    expect(FleetCommand.renderResult("acme", complete, 3_200)).toBe(
      "acme: complete in 3.2 s: users 4,000 seen (3,990 inserted, 10 updated, 0 unchanged, 2 deleted); companies 50 seen (0 inserted, 0 updated, 50 unchanged, 0 deleted)"
    )
    // A token of another workspace: the line says where the runner read it.
    const swapped = Exit.fail(new SyncError.WorkspaceMismatch({ workspace: "acme", boundApp: "b629045a", tokenApp: "4558822f" }))
    expect(FleetCommand.renderResult("acme", swapped, 900, "GLOBEX_TOKEN")).toMatch(
      /^acme: failed: WorkspaceMismatch: The access token belongs to Intercom workspace 4558822f, .* \(The token was read from GLOBEX_TOKEN on the runner\.\)$/
    )
    // A workspace that could not be checked says so on its line.
    const unchecked = Exit.succeed([{ ...summary("users", { inserted: 1, updated: 0, unchanged: 0, deleted: 0 }), app: null }])
    expect(FleetCommand.renderResult("initech", unchecked, 1_600)).toBe(
      "initech: complete in 1.6 s: users 1 seen (1 inserted, 0 updated, 0 unchanged, 0 deleted) (not checked: Intercom did not say which workspace the token belongs to; the runner's log says why)"
    )
    const failed = Exit.fail(
      new WorkspaceSync.SyncFailed({ workspace: "globex", resource: "users", failure: "SqlError", detail: "connection\nreset" })
    )
    expect(FleetCommand.renderResult("globex", failed, 900)).toMatch(
      /^globex: failed: SyncFailed: The sync of the users of workspace "globex" failed: SqlError: connection reset\. [^\n]*$/
    )
  })

  it("a workspace whose runs were cut before the one that completed: the time its sender waited, and the runs cut, each resource's", () => {
    // The users' request ran three times (its workspace moved twice): 1 min 40 s waited for a last run of 3.4 s.
    const moved = Exit.succeed([
      { ...summary("users", { inserted: 1_196, updated: 1_797, unchanged: 0, deleted: 1 }), duration: Duration.millis(3_400), cutBefore: 2 },
      { ...summary("companies", { inserted: 0, updated: 0, unchanged: 50, deleted: 0 }), cutBefore: 1 },
      // None cut.
      { ...summary("leads", { inserted: 0, updated: 0, unchanged: 7, deleted: 0 }), cutBefore: 0 }
    ])
    expect(FleetCommand.renderResult("b3", moved, 100_000)).toBe(
      "b3: complete in 1 min 40 s: users 2,993 seen (1,196 inserted, 1,797 updated, 0 unchanged, 1 deleted, 2 runs cut before this one, which synced again from the first page in 3.4 s); companies 50 seen (0 inserted, 0 updated, 50 unchanged, 0 deleted, 1 run cut before this one, which synced again from the first page in 1.6 s); leads 7 seen (0 inserted, 0 updated, 7 unchanged, 0 deleted)"
    )
    // A runner of the version before, which does not say.
    const older = Exit.succeed([summary("users", { inserted: 0, updated: 0, unchanged: 7, deleted: 0 })])
    expect(FleetCommand.renderResult("b4", older, 61_000)).toBe("b4: complete in 1 min 01 s: users 7 seen (0 inserted, 0 updated, 7 unchanged, 0 deleted)")
  })

  it.effect("an answer this version cannot read, from a runner of another version, is said so in one line", () =>
    Effect.gen(function*() {
      // A reply with an error this version does not know, as a newer runner might send.
      const read = yield* Effect.flip(
        Schema.decodeUnknown(Rpc.exitSchema(WorkspaceSync.Sync))({ _tag: "Failure", cause: { _tag: "Fail", error: { _tag: "FromTheFuture" } } })
      )
      for (const exit of [Exit.fail(read), Exit.die(read)]) {
        const line = FleetCommand.renderResult("acme", exit as Exit.Exit<never, never>, 900)
        expect(line).toMatch(
          /^acme: failed: its answer could not be read \(.+\): a runner of another version of intercom-scroll answered, and its sync may have completed there \(fleet status shows its runs\)\. Use the fleet sync of the runners' version\.$/
        )
        expect(line.length, line).toBeLessThan(600)
      }
    }))

  it("a scroll's error of a workspace says what to do in the fleet's terms: tokenEnv, the workspaces file, --run", () => {
    const refused = Exit.fail(new ScrollError.Unauthorized({ resource: "users", status: 401, code: "unauthorized", detail: "Access Token Invalid" }))
    expect(FleetCommand.renderResult("acme", refused, 900)).toBe(
      "acme: failed: Unauthorized: Intercom refused the access token for users (HTTP 401 unauthorized: Access Token Invalid). Check the token in the variable the workspace's tokenEnv names, on the runners; its baseUrl or region in the workspaces file; and that the app may read users."
    )
    const restart = Exit.fail(new ScrollError.RestartRequired({ resource: "users", page: 3, cause: { _tag: "Timeout", millis: 30_000 } }))
    expect(FleetCommand.renderResult("acme", restart, 900)).toMatch(/Sync again later, under a new --run\.$/)
    expect(FleetCommand.renderResult("acme", restart, 900)).not.toMatch(/restart option|--max-restarts/)
  })

  it("a run's name sent before: how many workspaces answer from then, in the singular or the plural", () => {
    expect(FleetCommand.renderSentBefore("nightly", 2, 3)).toBe(
      "fleet: run \"nightly\" was sent before to 2 of 3 workspaces: they answer with what that send did, and sync nothing again; name a new --run to sync again"
    )
    expect(FleetCommand.renderSentBefore("nightly", 1, 1)).toBe(
      "fleet: run \"nightly\" was sent before to 1 of 1 workspace: it answers with what that send did, and syncs nothing again; name a new --run to sync again"
    )
  })

  it.scoped("fleet sync's progress counts the records its syncs under way have written so far, not only those complete", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir("cli-fleet-progress-")
      const filename = `${directory}/fleet.sqlite`
      const file = `${directory}/workspaces.json`
      writeFileSync(file, JSON.stringify(["acme", "globex"].map((workspace) => ({ workspace, baseUrl: "https://api.intercom.test", tokenEnv: "T" }))))
      // What a runner's syncs of run r1 wrote: acme's users done and its leads under way; globex's users under another run.
      yield* Effect.gen(function*() {
        yield* Sync.migrate
        const sql = yield* SqlClient.SqlClient
        const row = (workspace: string, resource: string, status: string, label: string, inserted: number) =>
          ({ workspace, resource, status, started_at: "2026-12-03T00:00:00.000Z", label, inserted, updated: 0, unchanged: 0 })
        yield* sql`INSERT INTO ${sql(Sync.runsTable)} ${
          sql.insert([row("acme", "users", "complete", "r1", 1_000), row("acme", "leads", "running", "r1", 234), row("globex", "users", "running", "r0", 99)])
        }`
      }).pipe(Effect.provide(SqliteClient.layer({ filename })), Effect.orDie)
      const capture = makeCapture({ stdoutTty: false })
      const args = ["fleet", "sync", "--database", `sqlite:${filename}`, "--workspaces", file, "--run", "r1", "--resources", "users,leads"]
      // No runner: the requests wait, and the progress line says what the database says of them.
      const sync = yield* Cli.main(["node", "intercom-scroll", ...args]).pipe(
        Effect.provide(Layer.mergeAll(NodeContext.layer, makeFake().httpClient, capture.layer)),
        Effect.forkScoped
      )
      // Away from a terminal the line comes every 5 s, on the TestClock; the database answers in real time.
      for (let second = 0; second < 60 && !capture.stderr().includes(" records |"); second++) {
        yield* TestClock.adjust("1 second")
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      }
      expect(capture.stderr()).toMatch(/^fleet: 0 of 2 workspaces complete, 1 syncing, 1 waiting \| 1,234 records \|/m)
      yield* Fiber.interrupt(sync)
    }), 30_000)

  it.scoped("fleet sync's progress keeps a workspace syncing, with its records, once its runs have ended and before its answer comes", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir("cli-fleet-ended-")
      const filename = `${directory}/fleet.sqlite`
      const file = `${directory}/workspaces.json`
      writeFileSync(file, JSON.stringify(["acme", "globex"].map((workspace) => ({ workspace, baseUrl: "https://api.intercom.test", tokenEnv: "T" }))))
      const database = SqliteClient.layer({ filename })
      // acme's run r1 under way, as a runner writes it.
      yield* Effect.gen(function*() {
        yield* Sync.migrate
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO ${sql(Sync.runsTable)} ${
          sql.insert({ workspace: "acme", resource: "users", status: "running", started_at: "2026-12-03T00:00:00.000Z", label: "r1", inserted: 500, updated: 0, unchanged: 0 })
        }`
      }).pipe(Effect.provide(database), Effect.orDie)
      const capture = makeCapture({ stdoutTty: false })
      const args = ["fleet", "sync", "--database", `sqlite:${filename}`, "--workspaces", file, "--run", "r1", "--resources", "users"]
      const sync = yield* Cli.main(["node", "intercom-scroll", ...args]).pipe(
        Effect.provide(Layer.mergeAll(NodeContext.layer, makeFake().httpClient, capture.layer)),
        Effect.forkScoped
      )
      const progressLines = () => capture.stderr().split("\n").filter((line) => line.startsWith("fleet: "))
      // Away from a terminal the line comes every 5 s, on the TestClock; the database answers in real time.
      const nextLine = Effect.gen(function*() {
        const before = progressLines().length
        for (let second = 0; second < 60 && progressLines().length === before; second++) {
          yield* TestClock.adjust("1 second")
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
        }
        return progressLines().at(-1) ?? ""
      })
      expect(yield* nextLine).toMatch(/^fleet: 0 of 2 workspaces complete, 1 syncing, 1 waiting \| 500 records \|/)
      // The runner ends the run; its answer has not reached this process yet (here, no runner answers at all).
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE ${sql(Sync.runsTable)} SET status = 'complete' WHERE label = 'r1'`
      }).pipe(Effect.provide(database), Effect.orDie)
      // It read `0 syncing, 2 waiting | 0 records`: less than a moment before, and than the line saying complete to come.
      expect(yield* nextLine).toMatch(/^fleet: 0 of 2 workspaces complete, 1 syncing, 1 waiting \| 500 records \|/)
      yield* Fiber.interrupt(sync)
    }), 30_000)

  it.scoped("fleet sync's progress says so when the database stops answering, where it read as syncs waiting for a runner", () =>
    Effect.gen(function*() {
      // A PostgreSQL of this test's own, which it stops: the run's shared one serves the other tests.
      const server = yield* Effect.promise(() => PostgresServer.start())
      let stopped = false
      yield* Effect.addFinalizer(() => stopped ? Effect.void : Effect.promise(() => server.stop()))
      const directory = yield* tempDir("cli-fleet-down-")
      const file = `${directory}/workspaces.json`
      writeFileSync(file, JSON.stringify([{ workspace: "acme", baseUrl: "https://api.intercom.test", tokenEnv: "T" }]))
      const capture = makeCapture({ stdoutTty: false })
      const args = ["fleet", "sync", "--database", server.url, "--workspaces", file, "--run", "r1"]
      // Interrupted at the end without waiting: with its database gone, the client cannot say where it stopped.
      const sync = yield* Cli.main(["node", "intercom-scroll", ...args]).pipe(
        Effect.provide(Layer.mergeAll(NodeContext.layer, makeFake().httpClient, capture.layer)),
        Effect.forkDaemon
      )
      yield* Effect.addFinalizer(() => Fiber.interruptFork(sync))
      const lineSaying = (words: string) =>
        Effect.gen(function*() {
          // Away from a terminal the line comes every 5 s, on the TestClock; the database answers in real time.
          for (let second = 0; second < 60; second++) {
            const line = capture.stderr().split("\n").find((line) => line.endsWith(words))
            if (line !== undefined) return line
            yield* TestClock.adjust("1 second")
            yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
          }
          return yield* Effect.die(new Error(`no progress line ending "${words}":\n${capture.stderr()}`))
        })
      expect(yield* lineSaying("no runner serves this database: start intercom-scroll fleet runner on it"))
        .toMatch(/^fleet: 0 of 1 workspaces complete, 0 syncing, 1 waiting \| 0 records \|/)
      yield* Effect.promise(() => server.stop())
      stopped = true
      expect(yield* lineSaying("the database does not answer: the syncs wait for it"))
        .toMatch(/^fleet: 0 of 1 workspaces complete, 0 syncing, 1 waiting \| 0 records \| .* \| the database does not answer: the syncs wait for it$/)
    }), 60_000)

  it.scoped("fleet sync's line says how long it waited for the workspace's answer, not only how long its run took", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir("cli-fleet-waited-")
      const filename = `${directory}/fleet.sqlite`
      const file = `${directory}/workspaces.json`
      writeFileSync(file, JSON.stringify([{ workspace: "acme", baseUrl: "https://api.intercom.test", tokenEnv: "ACME_TOKEN" }]))
      const capture = makeCapture({ stdoutTty: false })
      const args = ["fleet", "sync", "--database", `sqlite:${filename}`, "--workspaces", file, "--run", "r1", "--resources", "users"]
      // The request waits, on the TestClock, for a runner that is not there yet…
      const sync = yield* Cli.main(["node", "intercom-scroll", ...args]).pipe(
        Effect.provide(Layer.mergeAll(NodeContext.layer, makeFake().httpClient, capture.layer)),
        Effect.forkScoped
      )
      for (let second = 0; second < 60 && !capture.stderr().includes("no runner serves this database"); second++) {
        yield* TestClock.adjust("1 second")
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      }
      yield* TestClock.adjust("100 seconds")
      // …then one comes, on the real clock, and syncs the workspace in well under a minute of it (the fake Intercom does
      // not say whose the token is: the line says the run went unchecked).
      const runnerArgs = ["fleet", "runner", "--database", `sqlite:${filename}`, "--port", String(yield* freePort), "--allow-base-url", "https://api.intercom.test"]
      yield* Cli.run(["node", "intercom-scroll", ...runnerArgs]).pipe(
        Effect.provide(Layer.mergeAll(NodeContext.layer, makeFake({ records: 120 }).httpClient, makeCapture().layer)),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["ACME_TOKEN", "tok_waited_0123456789"]]))),
        Logger.withMinimumLogLevel(LogLevel.Warning),
        Effect.withClock(Clock.make()),
        Effect.forkScoped
      )
      // The client polls for the answer on the TestClock.
      for (let step = 0; step < 600 && !capture.stdout().includes("acme: "); step++) {
        yield* TestClock.adjust("100 millis")
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
      }
      expect(capture.stdout()).toMatch(/^acme: complete in [12] min \d\d s: users 120 seen \(120 inserted, 0 updated, 0 unchanged, 0 deleted\) \(not checked: [^\n]+\)\n$/)
      expect(Exit.isSuccess(yield* Fiber.await(sync))).toBe(true)
      // Its last line on stderr (not a terminal here) is the totals, once every workspace has answered.
      expect(capture.stderr().trimEnd().split("\n").at(-1)).toMatch(/^fleet: 1 of 1 workspaces complete, 0 syncing, 0 waiting \| 120 records \| [12] min \d\d s$/)
    }), 90_000)

  it("the end of a fleet sync that did not complete says which failed, and that the others are synced only when some are", () => {
    expect(new FleetCommand.FleetSyncIncomplete({ failed: ["globex"], workspaces: 3 }).message).toBe(
      "1 of 3 workspaces did not complete (globex). The others are synced. Each line above says why, and what to change first where something must; then run fleet sync again (a new run) to sync the failed ones."
    )
    expect(new FleetCommand.FleetSyncIncomplete({ failed: ["a", "b", "c", "d", "e", "f"], workspaces: 6 }).message).toBe(
      "6 of 6 workspaces did not complete (a, b, c, d, e, …). Each line above says why, and what to change first where something must; then run fleet sync again (a new run) to sync the failed ones."
    )
  })

  it("a run that was interrupted, or died, in one line that says what to do or what happened, never a stack", () => {
    expect(FleetCommand.renderResult("p", Exit.interrupt(FiberId.none), 900)).toBe(
      "p: interrupted: this run was stopped before it ended, and a run sent again under its name is answered the same; sync again under a new --run name"
    )
    expect(FleetCommand.renderResult("q", Exit.die(new TypeError("boom")), 900)).toBe("q: failed: TypeError: boom")
  })

  it.effect("refuses flags that cannot work in words that name them", () =>
    Effect.gen(function*() {
      const refusals: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [["runner", "--database", "sqlite:f.db", "--port", "0"], "--port must be a TCP port, 1 to 65535"],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--max-syncs", "0"], "--max-syncs must be a whole number, 1 or more"],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--pages-per-transaction", "0"], "--pages-per-transaction must be a whole number, 1 or more"],
        [["runner", "--database", "sqlite:f.db", "--port", "nine"], "--port must be a TCP port, 1 to 65535"],
        // Where a server listens on every address, and no address to dial: the cluster's runners dial --host.
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--host", "0.0.0.0"], "--host \\\"0.0.0.0\\\" (or INTERCOM_SCROLL_RUNNER_HOST) is no address the fleet's other processes can reach this runner at"],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--host", "::"], "--host \\\"::\\\" (or INTERCOM_SCROLL_RUNNER_HOST) is no address"],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--termination-timeout", "0"], "--termination-timeout: \\\"0\\\" must be longer than zero"],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--termination-timeout", "-5m"], "--termination-timeout: \\\"-5m\\\" is not a duration"],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--termination-timeout", "25d"], "--termination-timeout: \\\"25d\\\" is longer than 24d 20h 31m 23s 647ms: a timer waits at most 2147483647 ms (about 24.8 days); a longer one never runs out"],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--termination-timeout", "soon"], "--termination-timeout: \\\"soon\\\" is not a duration"],
        // As sync's: refused as the flag is read, not by every sync of the runner.
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--unanswered-timeout", "0"], "--unanswered-timeout: \\\"0\\\" must be longer than zero"],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--unanswered-timeout", "25d"], "--unanswered-timeout: \\\"25d\\\" is longer than 24d 20h 31m 23s 647ms: a timer waits at most 2147483647 ms (about 24.8 days)"],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--unanswered-timeout", "soon"], "--unanswered-timeout: \\\"soon\\\" is not a duration"],
        [["sync", "--database", "sqlite:f.db", "--workspaces", "w.json", "--max-in-flight", "0"], "--max-in-flight must be a whole number, 1 or more"],
        [["sync", "--database", "sqlite:f.db", "--workspaces", "w.json", "--resources", "users,tickets"], "--resources takes users, leads and companies"],
        [["sync", "--database", "sqlite:f.db", "--workspaces", "w.json", "--resources", "users,users"], "each once"],
        [["sync", "--database", "sqlite:f.db", "--workspaces", "w.json", "--run", ""], "--run must name the run: it is empty"],
        [["prune", "--database", "sqlite:f.db", "--older-than", "soon"], "--older-than: \\\"soon\\\" is not a duration"],
        [["prune", "--database", "sqlite:f.db", "--older-than", "90"], "--older-than: \\\"90\\\" has no unit: give one, such as 90d, 90h or 90m"],
        [["prune", "--database", "sqlite:f.db"], "--older-than"],
        [["status", "--database", "sqlite:f.db", "--since", "soon"], "--since: \\\"soon\\\" is not a duration"],
        // Before any date there is: the cutoff (DateTime.subtractDuration) throws "Invalid time value".
        [["status", "--database", "sqlite:f.db", "--since", "1000000000d"], "--since: \\\"1000000000d\\\" is longer than 100 years"],
        [["prune", "--database", "sqlite:f.db", "--older-than", "1000000000d"], "--older-than: \\\"1000000000d\\\" is longer than 100 years"],
        [["status", "--database", "sqlite:f.db", "--format", "yaml"], "--format takes text or json; got \\\"yaml\\\""],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--cron", "every hour", "--workspaces", "w.json"], "--cron: \\\"every hour\\\" is not a cron expression"],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--cron", "0 6 31 2 *", "--workspaces", "w.json"], "--cron: \\\"0 6 31 2 *\\\" never comes"],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--cron", "0 * * * *"], "--cron needs --workspaces FILE"],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--workspaces", "w.json"], "--workspaces on a runner goes with --cron"],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--max-in-flight", "3"], "--max-in-flight on a runner goes with --cron"],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--allow-base-url", "https://gw.internal,ftp://gw.internal"], "--allow-base-url takes https URLs separated by commas"],
        [["runner", "--database", "sqlite:f.db", "--port", "9000", "--allow-base-url", "http://gw.internal"], "--allow-base-url takes https URLs separated by commas"]
      ]
      for (const [flags, words] of refusals) {
        const { exit } = yield* cli(["fleet", ...flags])
        expect(Failure.exitCode(exit)).toBe(1)
        expect(JSON.stringify(exit)).toContain(words)
      }
    }))

  it.scoped("fleet status --format json: one object, its times in ISO 8601, a run under way with its last sign of life", () =>
    Effect.gen(function*() {
      const filename = `${yield* tempDir("cli-status-json-")}/fleet.sqlite`
      // A sync's tables, with a run a dead process left running (alive 10 s in), one that failed and one interrupted.
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Sync.migrate
        const runs = sql(Sync.runsTable)
        yield* sql`INSERT INTO ${runs} ${
          sql.insert({ workspace: "acme", resource: "users", status: "running", started_at: new Date(0).toISOString(), alive_at: new Date(10_000).toISOString(), inserted: 300 })
        }`
        yield* sql`INSERT INTO ${runs} ${
          sql.insert({ workspace: "globex", resource: "leads", status: "failed", started_at: new Date(0).toISOString(), finished_at: new Date(5_000).toISOString(), error: "RestartRequired: The leads scroll broke off at page 3" })
        }`
        yield* sql`INSERT INTO ${runs} ${
          sql.insert({ workspace: "initech", resource: "users", status: "interrupted", started_at: new Date(0).toISOString(), finished_at: new Date(6_000).toISOString(), error: "Interrupted before the scroll reached its end" })
        }`
      }).pipe(Effect.provide(SqliteClient.layer({ filename })), Effect.orDie)
      yield* TestClock.adjust("2 minutes")
      const { exit, stdout } = yield* cli(["fleet", "status", "--database", `sqlite:${filename}`, "--format", "json"])
      expect(Exit.isSuccess(exit)).toBe(true)
      const status = JSON.parse(stdout)
      expect(status).toMatchObject({ database: `sqlite:${filename}`, runners: [], pending: { requests: 0, oldestSentAt: null }, schedules: [] })
      expect(status.running).toEqual([{
        id: 1,
        workspace: "acme",
        resource: "users",
        startedAt: "1970-01-01T00:00:00.000Z",
        aliveAt: "1970-01-01T00:00:10.000Z",
        silentFor: 110,
        label: null,
        runner: null,
        seen: 300
      }])
      // Counted apart, and not listed with the failures.
      expect(status.ended).toEqual({ complete: 0, failed: 1, interrupted: 1, abandoned: 0 })
      expect(status.failures).toMatchObject([{ workspace: "globex", status: "failed", finishedAt: "1970-01-01T00:00:05.000Z", error: "RestartRequired: The leads scroll broke off at page 3" }])
    }))

  it.scoped("fleet status --workspaces: the workspaces that need attention, by kind, in text and in JSON, stale as the clock moves on", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("cli-status-attention-")
      const filename = `${dir}/fleet.sqlite`
      const file = `${dir}/workspaces.json`
      writeFileSync(file, JSON.stringify(["acme", "globex", "initech", "umbrella"].map((workspace) => ({ workspace, tokenEnv: `${workspace.toUpperCase()}_TOKEN` }))))
      const day = (n: number) => new Date(n * 86_400_000).toISOString()
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Sync.migrate
        const rows = [
          { workspace: "acme", resource: "users", status: "complete", started_at: day(9.4), finished_at: day(9.5) },
          { workspace: "globex", resource: "users", status: "complete", started_at: day(1), finished_at: day(1) },
          { workspace: "globex", resource: "users", status: "failed", started_at: day(9), finished_at: day(9), error: "MissingToken: GLOBEX_TOKEN is not set\nsecond line" },
          { workspace: "umbrella", resource: "users", status: "complete", started_at: day(7), finished_at: day(7) },
          { workspace: "wayne", resource: "users", status: "complete", started_at: day(9), finished_at: day(9) },
          // globex's next run, under way as status reads: said beside its failure.
          { workspace: "globex", resource: "users", status: "running", started_at: day(10), alive_at: day(10) }
        ]
        for (const row of rows) yield* sql`INSERT INTO ${sql(Sync.runsTable)} ${sql.insert(row)}`
      }).pipe(Effect.provide(SqliteClient.layer({ filename })), Effect.orDie)
      yield* TestClock.adjust("10 days")
      const status = (...more: Array<string>) => cli(["fleet", "status", "--database", `sqlite:${filename}`, ...more])

      const text = yield* status("--workspaces", file)
      expect(Exit.isSuccess(text.exit)).toBe(true)
      expect(text.stdout.slice(text.stdout.indexOf("Workspaces of"))).toBe([
        `Workspaces of ${file} (4), by resource (users): 1 fine, 1 failing, 1 stale (no complete run since 1970-01-09T00:00:00Z), 1 never synced; 1 removed from the file`,
        "Failing (the last run failed or was abandoned), the longest first:",
        "  globex users: failed since 1970-01-10T00:00:00Z, last complete 1970-01-02T00:00:00Z; its next run under way since 1970-01-11T00:00:00Z, 0 seen: MissingToken: GLOBEX_TOKEN is not set",
        "Stale (no complete run since 1970-01-09T00:00:00Z), the longest first:",
        "  umbrella users: last complete 1970-01-08T00:00:00Z",
        "Never synced: initech",
        `Removed from the file, their copies kept (the fleet's README, "Remove a workspace", says how to drop one): wayne`,
        ""
      ].join("\n"))

      const json = JSON.parse((yield* status("--workspaces", file, "--format", "json")).stdout)
      expect(json.attention).toEqual({
        workspacesFile: file,
        resources: ["users"],
        staleBefore: "1970-01-09T00:00:00.000Z",
        fine: 1,
        failing: [{
          workspace: "globex",
          resource: "users",
          failedInARow: 1,
          abandoned: 0,
          since: "1970-01-10T00:00:00.000Z",
          lastError: "MissingToken: GLOBEX_TOKEN is not set",
          lastCompleteAt: "1970-01-02T00:00:00.000Z",
          nextRun: { id: expect.any(Number), startedAt: "1970-01-11T00:00:00.000Z", seen: 0 }
        }],
        stale: [{ workspace: "umbrella", resource: "users", lastCompleteAt: "1970-01-08T00:00:00.000Z" }],
        neverSynced: [{ workspace: "initech", resource: "users" }],
        removed: ["wayne"]
      })
      // A longer bound: umbrella is fine. From the database alone: wayne is one of the workspaces looked at.
      const alone = JSON.parse((yield* status("--stale-after", "4d", "--format", "json")).stdout).attention
      expect(alone).toMatchObject({ workspacesFile: null, staleBefore: "1970-01-07T00:00:00.000Z", fine: 3, stale: [], neverSynced: [], removed: [] })
      expect(alone.failing.map((pair: { workspace: string }) => pair.workspace)).toEqual(["globex"])
      // Without either flag, status is as before: no attention.
      expect(JSON.parse((yield* status("--format", "json")).stdout).attention).toBeUndefined()

      // Two days on, acme's last complete run is older than the bound too.
      yield* TestClock.adjust("2 days")
      const later = JSON.parse((yield* status("--workspaces", file, "--format", "json")).stdout).attention
      expect(later.stale.map((pair: { workspace: string }) => pair.workspace)).toEqual(["umbrella", "acme"])
      expect(later.fine).toBe(0)
    }))

  it("fleet status --workspaces at thousands of workspaces: ten of each kind listed, the counts whole", () => {
    const at = (iso: string) => DateTime.unsafeMake(iso)
    const names = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(4, "0")}`)
    const resources = ["users", "leads", "companies"] as const
    // f0000 fails in every resource alike (its token is missing); the others in their users alone: f0001's and
    // f0002's runs abandoned (their runner died), f0002's after failing too.
    const failing = names(300, "f").flatMap((workspace, i) =>
      (i === 0 ? resources : ["users" as const]).map((resource) => ({
        workspace,
        resource,
        failedInARow: i === 0 ? 12 : i === 2 ? 3 : 1,
        abandoned: i === 1 ? 1 : i === 2 ? 2 : 0,
        since: at("2026-12-03T12:00:00Z"),
        lastError: i === 0 ? "MissingToken: F0000_TOKEN is not set" : undefined,
        lastCompleteAt: i === 0 ? undefined : at("2026-12-01T12:00:00Z")
      }))
    )
    const attention: FleetStatus.Attention = {
      staleBefore: at("2026-12-04T12:00:00Z"),
      failing,
      // s0000's users and leads both stale, but since different times: a line each.
      stale: [
        { workspace: "s0000", resource: "users", lastCompleteAt: undefined },
        ...names(12, "s").map((workspace, i) => ({ workspace, resource: "leads" as const, lastCompleteAt: i === 0 ? undefined : at("2026-12-01T12:00:00Z") }))
      ],
      neverSynced: [
        ...names(11, "n").flatMap((workspace) => resources.map((resource) => ({ workspace, resource }))),
        { workspace: "n0011", resource: "companies" }
      ],
      removed: names(3, "r"),
      fine: 5_677
    }
    const lines = FleetCommand.renderAttention({ attention, file: "workspaces.json", workspaces: 2_000, resources }).split("\n")
    expect(lines[0]).toBe(
      "Workspaces of workspaces.json (2,000), by resource (users, leads, companies): 5,677 fine, 302 failing, 13 stale (no complete run since 2026-12-04T12:00:00Z), 34 never synced; 3 removed from the file"
    )
    expect(lines.slice(1, 6)).toEqual([
      "Failing (the last run failed or was abandoned), the longest first:",
      "  f0000 users, leads, companies: 12 failed in a row since 2026-12-03T12:00:00Z, never complete: MissingToken: F0000_TOKEN is not set",
      "  f0001 users: abandoned since 2026-12-03T12:00:00Z, last complete 2026-12-01T12:00:00Z",
      "  f0002 users: 3 failed or abandoned in a row since 2026-12-03T12:00:00Z, last complete 2026-12-01T12:00:00Z",
      "  f0003 users: failed since 2026-12-03T12:00:00Z, last complete 2026-12-01T12:00:00Z"
    ])
    expect(lines[12]).toBe("  and 290 more (--format json lists every one)")
    expect(lines.slice(13, 15)).toEqual([
      "Stale (no complete run since 2026-12-04T12:00:00Z), the longest first:",
      "  s0000 users, leads: its records kept, no complete run left (pruned)"
    ])
    expect(lines[24]).toBe("  and 2 more (--format json lists every one)")
    expect(lines[25]).toBe(`Never synced: ${names(10, "n").join(", ")} and 2 more`)
    expect(lines[26]).toBe(`Removed from the file, their copies kept (the fleet's README, "Remove a workspace", says how to drop one): r0000, r0001, r0002`)
    expect(lines).toHaveLength(28)
    // A workspace never synced in some resources only names them.
    const some = FleetCommand.renderAttention({ attention: { ...attention, neverSynced: attention.neverSynced.slice(-4) }, file: "w.json", workspaces: 2_000, resources })
    expect(some).toContain("\nNever synced: n0010, n0011 (companies)\n")
    // From the database alone: no file, so no count of never synced (unless some are known) nor of removed.
    expect(FleetCommand.renderAttention({ attention: { ...attention, neverSynced: [], removed: [] }, file: undefined, workspaces: undefined, resources: ["users"] }).split("\n")[0]).toBe(
      "Workspaces in the database, by resource (users): 5,677 fine, 302 failing, 13 stale (no complete run since 2026-12-04T12:00:00Z)"
    )
  })

  it("fleet status --workspaces: a failing workspace whose next run is under way says so (a killed runner's, taken up by another), not a silent one", () => {
    const at = (iso: string) => DateTime.unsafeMake(iso)
    const failing = ["acme", "globex"].map((workspace) => ({
      workspace,
      resource: "users" as const,
      failedInARow: 1,
      abandoned: 1,
      since: at("2026-12-07T12:00:05Z"),
      lastError: "Abandoned: its process died",
      lastCompleteAt: at("2026-12-07T11:00:00Z")
    }))
    const attention: FleetStatus.Attention = { staleBefore: at("2026-12-05T12:00:00Z"), failing, stale: [], neverSynced: [], removed: [], fine: 0 }
    const run = (workspace: string, silentFor: number): SyncActivity.Running => ({
      id: 7,
      workspace,
      resource: "users",
      startedAt: at("2026-12-07T12:00:04Z"),
      label: "cron@2026-12-07T12:00:00.000Z",
      runner: "10.0.0.8:34431",
      seen: 1_200,
      aliveAt: at("2026-12-07T12:00:30Z"),
      silentFor
    })
    // acme's next run is alive; globex's row has been silent past three renewals: likely dead itself, not said.
    const running = [run("acme", 4), run("globex", 45), { ...run("acme", 2), resource: "leads" as const }]
    const lines = FleetCommand.renderAttention({ attention, file: "w.json", workspaces: 2, resources: ["users"], running }).split("\n")
    expect(lines.slice(1, 4)).toEqual([
      "Failing (the last run failed or was abandoned), the longest first:",
      "  acme users: abandoned since 2026-12-07T12:00:05Z, last complete 2026-12-07T11:00:00Z; its next run under way since 2026-12-07T12:00:04Z, 1,200 seen: Abandoned: its process died",
      "  globex users: abandoned since 2026-12-07T12:00:05Z, last complete 2026-12-07T11:00:00Z: Abandoned: its process died"
    ])
  })

  it("fleet status in a few lines: runners, syncs not answered, runs under way (ten listed), those cut off (their lock free), what ended since, the latest failures", () => {
    const at = (iso: string) => DateTime.unsafeMake(iso)
    const run = (i: number) => ({ id: i, workspace: `w${i}`, resource: "users" as const, startedAt: at("2026-12-03T10:00:00.123Z"), label: i === 1 ? "r7" : undefined, runner: i === 2 ? "10.0.0.8:34431" : undefined, seen: i * 1_000 })
    const status: FleetStatus.Status = {
      runners: [
        { address: "10.0.0.7:34431", live: true, silentFor: 2 },
        { address: "10.0.0.8:34431", live: true, silentFor: 4 },
        { address: "10.0.0.9:34431", live: false, silentFor: 7_380 }
      ],
      pending: { requests: 1_204, oldestSentAt: at("2026-12-03T09:58:00Z") },
      activity: {
        since: at("2026-12-02T10:00:00Z"),
        // w2's process went quiet 3 minutes ago: it may have died.
        running: Array.from({ length: 12 }, (_, i) => ({ ...run(i + 1), aliveAt: at("2026-12-03T10:05:00Z"), silentFor: i === 1 ? 180 : 4 })),
        // w13's runner lost its database as the run was cut: its row says `running`, its lock is free.
        lockFree: [{ ...run(13), runner: "10.0.0.7:34431", aliveAt: at("2026-12-03T10:01:30.456Z"), silentFor: 40 }],
        ended: { complete: 9_812, failed: 4, interrupted: 37, abandoned: 2 },
        rows: { inserted: 1_200, updated: 3, unchanged: 9_000_000, deleted: 12 },
        failures: [
          { ...run(3), status: "abandoned", finishedAt: at("2026-12-03T09:00:00Z"), error: undefined, label: "r6", runner: "10.0.0.9:34431" },
          { ...run(4), status: "failed", finishedAt: at("2026-12-03T08:00:00Z"), error: "RestartRequired: The users scroll broke off at page 3", label: undefined }
        ]
      },
      schedules: [{ schedule: "cron", at: at("2026-12-03T12:00:00Z") }]
    }
    expect(FleetCommand.renderStatus(status, "postgres://fleet@db/fleet")).toBe([
      "Fleet database: postgres://fleet@db/fleet",
      "Runners: 2 live: 10.0.0.7:34431, 10.0.0.8:34431; 1 silent (stopped, dead or frozen): 10.0.0.9:34431 for 2 h 03 min",
      "Syncs sent and not answered: 1,204, the oldest sent 2026-12-03T09:58:00Z",
      "Schedule cron: next tick 2026-12-03T12:00:00Z",
      "Runs under way: 12",
      "  w1 users since 2026-12-03T10:00:00Z (run r7): 1,000 seen",
      "  w2 users since 2026-12-03T10:00:00Z on 10.0.0.8:34431: 2,000 seen; silent for 3 min 00 s: its process may have died (the next run of the workspace marks it abandoned) or be frozen",
      ...Array.from({ length: 8 }, (_, i) => `  w${i + 3} users since 2026-12-03T10:00:00Z: ${i + 3},000 seen`),
      "  and 2 more",
      "Runs cut off, their lock free (their runner died or lost its database; the next run of each workspace marks it abandoned): 1",
      "  w13 users since 2026-12-03T10:00:00Z on 10.0.0.7:34431: 13,000 seen; last heard of 2026-12-03T10:01:30Z",
      "Since 2026-12-02T10:00:00Z: runs complete 9,812, failed 4, abandoned 2, interrupted 37; rows inserted 1,200, updated 3, unchanged 9,000,000, deleted 12",
      "Latest failed or abandoned runs:",
      "  2026-12-03T09:00:00Z w3 users abandoned (run r6) on 10.0.0.9:34431",
      "  2026-12-03T08:00:00Z w4 users failed: RestartRequired: The users scroll broke off at page 3",
      ""
    ].join("\n"))
    // A schedule no runner alive hosts (each live one without --cron) waits, its tick in the past: said so.
    const cronless = status.runners.map((runner) => ({ ...runner, schedules: runner.live ? false : true }))
    expect(FleetCommand.renderStatus({ ...status, runners: cronless }, "postgres://fleet@db/fleet")).toContain(
      "\nSchedule cron: next tick 2026-12-03T12:00:00Z: no runner alive hosts the schedules (started with --cron), so no round runs until one does\n"
    )
    const hosted = cronless.map((runner, i) => i === 1 ? { ...runner, schedules: true } : runner)
    expect(FleetCommand.renderStatus({ ...status, runners: hosted }, "postgres://fleet@db/fleet")).toContain(
      "\nSchedule cron: next tick 2026-12-03T12:00:00Z\n"
    )
    // A --cron changed to tick sooner: the runner's own next tick first, the one the --cron before left said apart.
    const changed = [{ schedule: "cron", at: at("2026-12-03T10:15:00Z") }, ...status.schedules]
    expect(FleetCommand.renderStatus({ ...status, schedules: changed }, "postgres://fleet@db/fleet")).toContain(
      "\nSchedule cron: next tick 2026-12-03T10:15:00Z (also stored: 2026-12-03T12:00:00Z, left by the --cron before)\n"
    )
    // The schedule's first tick changed before it came, at a time of the new --cron too: the same run, said so.
    const first = [{ schedule: "cron", at: at("2026-12-03T12:00:00Z") }, ...status.schedules]
    expect(FleetCommand.renderStatus({ ...status, schedules: first }, "postgres://fleet@db/fleet")).toContain(
      "\nSchedule cron: next tick 2026-12-03T12:00:00Z (also stored: 2026-12-03T12:00:00Z, left by the --cron before; at the next tick's time, the same run: each workspace synced once)\n"
    )
    // A fleet without a schedule: no line for one.
    const quiet = FleetCommand.renderStatus({ ...status, runners: [], pending: { requests: 0, oldestSentAt: undefined }, schedules: [] }, "sqlite:/f.db")
    expect(quiet).toContain("\nRunners: none registered\nSyncs sent and not answered: 0\nRuns under way: 12\n")
    const many = FleetCommand.renderStatus({
      ...status,
      runners: Array.from({ length: 125 }, (_, i) => ({ address: `10.0.${Math.floor(i / 100)}.${i % 100}:34431`, live: true, silentFor: 1 }))
    }, "postgres://fleet@db/fleet")
    expect(many).toContain(`\nRunners: 125 live: ${Array.from({ length: 10 }, (_, i) => `10.0.0.${i}:34431`).join(", ")} and 115 more\n`)
  })

  it("fleet status says a run silent 15 s is so where its runner's heartbeat has stopped too, and not where its runner beats", () => {
    const at = (iso: string) => DateTime.unsafeMake(iso)
    const running = (id: number, workspace: string, runner: string | undefined, silentFor: number): SyncActivity.Running => ({
      id, workspace, resource: "users", startedAt: at("2026-12-03T10:00:00Z"), label: undefined, runner, seen: 10, aliveAt: at("2026-12-03T10:00:00Z"), silentFor
    })
    const status: FleetStatus.Status = {
      // 10.0.0.9 was killed 12 s ago: still live for the cluster (30 s), its heartbeat (every 5 s) stopped.
      runners: [{ address: "10.0.0.7:34431", live: true, silentFor: 2 }, { address: "10.0.0.9:34431", live: true, silentFor: 12 }],
      pending: { requests: 4, oldestSentAt: undefined },
      schedules: [],
      activity: {
        ...SyncActivity.none(at("2026-12-02T10:00:00Z")),
        running: [
          running(1, "acme", "10.0.0.9:34431", 16),
          // Its runner beats: a page late, not a death.
          running(2, "globex", "10.0.0.7:34431", 16),
          // Under 15 s: one renewal may be a little late.
          running(3, "initech", "10.0.0.9:34431", 14),
          // No runner named (a sync of its own): 30 s, as before.
          running(4, "umbrella", undefined, 16),
          running(5, "hooli", undefined, 30)
        ]
      }
    }
    const tail = "its process may have died (the next run of the workspace marks it abandoned) or be frozen"
    expect(FleetCommand.renderStatus(status, "postgres://fleet@db/fleet").split("\n").filter((line) => line.startsWith("  "))).toEqual([
      `  acme users since 2026-12-03T10:00:00Z on 10.0.0.9:34431: 10 seen; silent for 16.0 s, and its runner for 12.0 s: ${tail}`,
      "  globex users since 2026-12-03T10:00:00Z on 10.0.0.7:34431: 10 seen",
      "  initech users since 2026-12-03T10:00:00Z on 10.0.0.9:34431: 10 seen",
      "  umbrella users since 2026-12-03T10:00:00Z: 10 seen",
      `  hooli users since 2026-12-03T10:00:00Z: 10 seen; silent for 30.0 s: ${tail}`
    ])
  })

  it.scopedLive("fleet status --since and fleet prune --older-than count back from the database's clock, not this machine's", () =>
    Effect.gen(function*() {
      const url = Redacted.value(yield* Effect.orDie(PostgresDatabase.make))
      // A run that ended 3 minutes ago by the database's clock, which the runners stamp their runs with.
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Sync.migrate
        yield* sql`INSERT INTO ${sql(Sync.runsTable)} (workspace, resource, status, started_at, alive_at, finished_at)
          VALUES ('acme', 'users', 'complete', now() - interval '4 minutes', now() - interval '3 minutes', now() - interval '3 minutes')`
      }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url) })), Effect.orDie)
      // Read from a machine whose clock is an hour ahead: since 5 minutes before its "now", the run was not counted;
      // pruned of what is over an hour old, the run was deleted.
      const aheadByAnHour = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.flatMap(Effect.clock, (base) => Effect.withClock(effect, skewed(base, 3_600_000)))
      const status = yield* aheadByAnHour(cli(["fleet", "status", "--database", url, "--since", "5m", "--format", "json"]))
      expect(Exit.isSuccess(status.exit)).toBe(true)
      expect(JSON.parse(status.stdout).ended).toEqual({ complete: 1, failed: 0, interrupted: 0, abandoned: 0 })
      const pruned = yield* aheadByAnHour(cli(["fleet", "prune", "--database", url, "--older-than", "1h"]))
      expect(Exit.isSuccess(pruned.exit)).toBe(true)
      expect(pruned.stdout).toMatch(/^Pruned 0 requests answered, 0 schedule ticks and 0 runs ended before /)
    }), 60_000)

  it.effect("fleet status or prune of a SQLite file that is not there says so, and makes none", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("fleet-status-")
      const { exit, stderr } = yield* cli(["fleet", "status", "--database", `sqlite:${dir}/typo.db`])
      expect(Failure.exitCode(exit)).toBe(1)
      expect(stderr).toBe(`NoSuchDatabase: There is no database at sqlite:${dir}/typo.db: fleet status reads a fleet's database and makes none. Check --database (the path the runners were given).\n`)
      expect(existsSync(`${dir}/typo.db`)).toBe(false)
      const pruned = yield* cli(["fleet", "prune", "--database", `sqlite:${dir}/typo.db`, "--older-than", "90d"])
      expect(Failure.exitCode(pruned.exit)).toBe(1)
      expect(pruned.stderr).toBe(`NoSuchDatabase: There is no database at sqlite:${dir}/typo.db: fleet prune prunes a fleet's database and makes none. Check --database (the path the runners were given).\n`)
      expect(existsSync(`${dir}/typo.db`)).toBe(false)
    }).pipe(Effect.scoped))

  it.effect("a database that is neither postgres nor sqlite is refused in one line that does not echo it", () =>
    Effect.gen(function*() {
      const { exit, stderr } = yield* cli(["fleet", "runner", "--database", "mysql://root:hunter2@db/fleet", "--port", "9000"])
      expect(Failure.exitCode(exit)).toBe(1)
      expect(stderr).toContain(`InvalidDatabaseUrl: Invalid database URL: the scheme "mysql" is neither sqlite nor postgres`)
      expect(stderr).not.toContain("hunter2")
    }))

  it.effect("--help of a nested subcommand: its usage from the program's name on, its own flags", () =>
    Effect.gen(function*() {
      const runner = yield* cli(["fleet", "runner", "--help"])
      expect(runner.stdout).toMatch(
        /^USAGE\n\nintercom-scroll fleet runner --database URL --port P \[--host H\] \[--max-syncs N\] \[--pages-per-transaction N\] \[--termination-timeout DURATION\] \[--unanswered-timeout DURATION\] \[--health-port P\] \[--allow-base-url URL,…\] \[--cron EXPR\] \[--workspaces FILE\] \[--resources R,…\] \[--max-in-flight N\]\n/m
      )
      expect(runner.stdout).toContain("The port the runner listens on")
      expect(runner.stdout).toContain("Also sync every workspace of --workspaces on this schedule, in UTC")
      expect(runner.stdout).toContain("With --cron: the resources to sync at each tick")
      // Its totals, printed last since every workspace's answer is in, are what a reader of its help looks for.
      const sync = yield* cli(["fleet", "sync", "--help"])
      expect(sync.stdout).toContain("one line per workspace as it answers, and the totals once all have")
      const fleet = yield* cli(["fleet", "--help"])
      expect(fleet.stdout).toContain("\nrunner --database URL --port P [FLAG ...]\n")
      expect(fleet.stdout).toContain("\nsync --database URL --workspaces FILE [FLAG ...]\n")
      const top = yield* cli(["--help"])
      expect(top.stdout).toContain("\nfleet sync --database URL --workspaces FILE [FLAG ...]\n")
    }))

  describe("the runner's log", () => {
    /** Runs `fleet runner` on a fresh SQLite file until it listens, then stops it; the levels it logged at. */
    const levelsLogged = (flags: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const directory = yield* tempDir("cli-runner-log-")
        const port = yield* freePort
        const logged: Array<{ readonly level: LogLevel.LogLevel; readonly message: string }> = []
        const collect = Logger.make(({ logLevel, message }) => {
          logged.push({ level: logLevel, message: String(message) })
        })
        const args = ["fleet", "runner", "--database", `sqlite:${directory}/fleet.sqlite`, "--port", String(port), ...flags]
        const runner = yield* Cli.run(["node", "intercom-scroll", ...args]).pipe(
          Effect.provide(Layer.mergeAll(NodeContext.layer, makeFake().httpClient, makeCapture().layer)),
          // The bin's level for every command but the runner, as Cli.layer sets it.
          Effect.provide(Layer.merge(Logger.replace(Logger.defaultLogger, collect), Logger.minimumLogLevel(LogLevel.Error))),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
          Effect.fork
        )
        // "Listening on" is logged at info: with less than that, the runner is up once its port answers.
        yield* Effect.suspend(() =>
          logged.some((entry) => entry.message.includes("Listening on")) ? Effect.void : Effect.fail("not yet")
        ).pipe(Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("20 seconds"))))
        yield* Fiber.interrupt(runner)
        return new Set(logged.map((entry) => entry.level.label))
      }).pipe(Effect.scoped)

    it.live("at info by default: what it receives, starts and ends, not the cluster's debug lines", () =>
      Effect.gen(function*() {
        const levels = yield* levelsLogged([])
        expect(levels).toContain("INFO")
        expect(levels).not.toContain("DEBUG")
      }), 60_000)

    /**
     * Runs `fleet runner` on a fresh SQLite file until it listens, with `flags` and the `env` its flags fall back on;
     * the stop's deadline armed then (in ms), and the first line it logs as it is stopped.
     */
    const stopped = (flags: ReadonlyArray<string>, env: ReadonlyArray<readonly [string, string]> = []) =>
      Effect.gen(function*() {
        const directory = yield* tempDir("cli-runner-stopping-")
        const logged: Array<string> = []
        const args = ["fleet", "runner", "--database", `sqlite:${directory}/fleet.sqlite`, "--port", String(yield* freePort), ...flags]
        const runner = yield* Cli.run(["node", "intercom-scroll", ...args]).pipe(
          Effect.provide(Layer.mergeAll(NodeContext.layer, makeFake().httpClient, makeCapture().layer)),
          Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logged.push(String(message))))),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map(env))),
          Effect.fork
        )
        yield* Effect.suspend(() => logged.some((line) => line.includes("Listening on")) ? Effect.void : Effect.fail("not yet")).pipe(
          Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("20 seconds")))
        )
        let deadline: number | undefined
        StopDeadline.arm("SIGTERM", 143, {
          setTimeout: (_, millis) => ((deadline = millis), { unref: () => undefined }),
          writeStderr: () => undefined,
          exit: () => undefined,
          now: () => 0
        })
        const before = logged.length
        yield* Fiber.interrupt(runner)
        return { deadline, line: logged[before] }
      }).pipe(Effect.scoped)

    it.live("says when it begins to stop, before the cluster's own lines of its stop", () =>
      Effect.gen(function*() {
        expect(yield* stopped([])).toEqual({
          deadline: StopDeadline.graceMillis,
          line: "Stopping: the syncs running may finish for up to 15s; those not started go back to the fleet (a second Ctrl-C or SIGTERM, 2 s or more after the first, stops at once)"
        })
      }), 60_000)

    it.live("--termination-timeout (or its variable) is how long its syncs may finish, and the stop's deadline leaves them that long", () =>
      Effect.gen(function*() {
        const tenMinutes = {
          deadline: 10 * 60_000 + 45_000,
          line: "Stopping: the syncs running may finish for up to 10m; those not started go back to the fleet (a second Ctrl-C or SIGTERM, 2 s or more after the first, stops at once)"
        }
        expect(yield* stopped(["--termination-timeout", "10m"])).toEqual(tenMinutes)
        expect(yield* stopped([], [["INTERCOM_SCROLL_TERMINATION_TIMEOUT", "10 minutes"]])).toEqual(tenMinutes)
        // Once the runner has stopped, a stop's deadline is the default again.
        expect(yield* stopped([])).toMatchObject({ deadline: StopDeadline.graceMillis })
      }), 60_000)

    it.live("at the level --log-level names, given after the subcommand as its help shows it", () =>
      Effect.gen(function*() {
        expect(yield* levelsLogged(["--log-level", "debug"])).toContain("DEBUG")
        expect(yield* levelsLogged(["--log-level=debug"])).toContain("DEBUG")
      }), 60_000)
  })

  it.live("--cron with --workspaces: the runner also syncs every workspace at each tick, each round's runs named cron@TIME", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir("cli-runner-cron-")
      const port = yield* freePort
      const file = `${directory}/workspaces.json`
      writeFileSync(file, JSON.stringify([{ workspace: "acme", baseUrl: "https://api.intercom.test", tokenEnv: "ACME_TOKEN" }]))
      const logged: Array<string> = []
      const collect = Logger.make(({ message }) => {
        logged.push(String(message))
      })
      const filename = `${directory}/fleet.sqlite`
      // Every second, with the seconds field: a round of one workspace each tick. The workspaces' host is neither
      // Intercom's nor this machine's: the runner sends the token there only as it is told it may.
      const args = ["fleet", "runner", "--database", `sqlite:${filename}`, "--port", String(port), "--cron", "* * * * * *", "--workspaces", file, "--allow-base-url", "https://api.intercom.test"]
      const runner = yield* Cli.run(["node", "intercom-scroll", ...args]).pipe(
        Effect.provide(Layer.mergeAll(NodeContext.layer, makeFake({ records: 120 }).httpClient, makeCapture().layer)),
        Effect.provide(Logger.replace(Logger.defaultLogger, collect)),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["ACME_TOKEN", "tok_cron_0123456789"]]))),
        Effect.fork
      )
      yield* Effect.suspend(() => logged.includes("Round done: 1 complete, 0 failed") ? Effect.void : Effect.fail("not yet")).pipe(
        Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("30 seconds")))
      )
      yield* Fiber.interrupt(runner)
      const runs = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ label: string; status: string; inserted: number }>`SELECT label, status, inserted FROM ${sql(Sync.runsTable)} ORDER BY id`).pipe(
          Effect.provide(SqliteClient.layer({ filename })),
          Effect.orDie
        )
      expect(runs[0]).toMatchObject({ label: expect.stringMatching(/^cron@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/), status: "complete", inserted: 120 })
    }).pipe(Effect.scoped), 60_000)

  it.live("--cron reads --workspaces again at each round: a workspace added to the file while the runner runs is synced", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir("cli-runner-cron-")
      const port = yield* freePort
      const file = `${directory}/workspaces.json`
      const entry = (workspace: string) => ({ workspace, baseUrl: "https://api.intercom.test", tokenEnv: `${workspace.toUpperCase()}_TOKEN` })
      writeFileSync(file, JSON.stringify([entry("acme")]))
      const logged: Array<string> = []
      const collect = Logger.make(({ message }) => {
        logged.push(String(message))
      })
      const until = (line: string) =>
        Effect.suspend(() => logged.includes(line) ? Effect.void : Effect.fail(`no "${line}" yet`)).pipe(
          Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("30 seconds")))
        )
      const args = ["fleet", "runner", "--database", `sqlite:${directory}/fleet.sqlite`, "--port", String(port), "--cron", "* * * * * *", "--workspaces", file, "--allow-base-url", "https://api.intercom.test"]
      const runner = yield* Cli.run(["node", "intercom-scroll", ...args]).pipe(
        Effect.provide(Layer.mergeAll(NodeContext.layer, makeFake({ records: 120 }).httpClient, makeCapture().layer)),
        Effect.provide(Logger.replace(Logger.defaultLogger, collect)),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["ACME_TOKEN", "tok_cron_0123456789"], ["GLOBEX_TOKEN", "tok_cron_9876543210"]]))),
        Effect.fork
      )
      yield* until("Round done: 1 complete, 0 failed")
      // An operator's day 2: a workspace added to the file, the runner left running.
      writeFileSync(file, JSON.stringify([entry("acme"), entry("globex")]))
      yield* until("Round done: 2 complete, 0 failed")
      yield* Fiber.interrupt(runner)
      expect(logged).toContain("The workspaces file changed: 1 added (globex)")
    }).pipe(Effect.scoped), 60_000)

  it.live("a runner started with a --cron that ticks before the schedule's stored tick sends its own next tick, whose round runs then", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir("cli-runner-recron-")
      const file = `${directory}/workspaces.json`
      writeFileSync(file, JSON.stringify([{ workspace: "acme", baseUrl: "https://api.intercom.test", tokenEnv: "ACME_TOKEN" }]))
      const filename = `${directory}/fleet.sqlite`
      const logged: Array<string> = []
      const start = (cron: string) =>
        Effect.flatMap(freePort, (port) =>
          Cli.run(["node", "intercom-scroll", "fleet", "runner", "--database", `sqlite:${filename}`, "--port", String(port), "--cron", cron, "--workspaces", file, "--allow-base-url", "https://api.intercom.test"]).pipe(
            Effect.provide(Layer.mergeAll(NodeContext.layer, makeFake().httpClient, makeCapture().layer)),
            Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logged.push(String(message))))),
            Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["ACME_TOKEN", "tok_cron_0123456789"]]))),
            Effect.fork
          ))
      const ticks = FleetStatus.schedules.pipe(Effect.provide(SqliteClient.layer({ filename })), Effect.orDie)
      // A yearly schedule: its first tick, at the next 1 January, stored as its runner starts.
      const yearly = yield* start("0 0 0 1 1 *")
      const [tick] = yield* ticks.pipe(Effect.filterOrFail((stored) => stored.length > 0), Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo("30 seconds"))))
      yield* Fiber.interrupt(yearly)
      expect(DateTime.formatIso(tick!.at)).toMatch(/-01-01T00:00:00\.000Z$/)
      // Made to tick every second: the runner sends its own next tick as it starts, says so, and its round runs.
      const often = yield* start("* * * * * *")
      yield* Effect.suspend(() => logged.some((line) => line.startsWith("Round done: 1 complete")) ? Effect.void : Effect.fail("not yet")).pipe(
        Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("30 seconds")))
      )
      yield* Fiber.interrupt(often)
      expect(logged.find((line) => line.startsWith("The schedule's stored tick"))).toMatch(
        /^The schedule's stored tick, \d{4}-01-01T00:00:00\.000Z, comes after this runner's cron's next, \S+Z: that one sent, from which the cron applies$/
      )
    }).pipe(Effect.scoped), 90_000)

  it.live("a runner without --cron registers only the workspaces' shard group (it takes no tick), one with --cron the schedules' too", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir("cli-runner-groups-")
      const file = `${directory}/workspaces.json`
      writeFileSync(file, JSON.stringify([{ workspace: "acme", baseUrl: "https://api.intercom.test", tokenEnv: "ACME_TOKEN" }]))
      /** The shard groups a runner given `flags` registers in the cluster, on a SQLite file of its own. */
      const groupsOf = (flags: ReadonlyArray<string>) =>
        Effect.gen(function*() {
          const filename = `${directory}/${flags.length === 0 ? "plain" : "cron"}.sqlite`
          const args = ["fleet", "runner", "--database", `sqlite:${filename}`, "--port", String(yield* freePort), ...flags]
          const logged: Array<string> = []
          const runner = yield* Cli.run(["node", "intercom-scroll", ...args]).pipe(
            Effect.provide(Layer.mergeAll(NodeContext.layer, makeFake().httpClient, makeCapture().layer)),
            Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logged.push(String(message))))),
            Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["ACME_TOKEN", "tok_cron_0123456789"]]))),
            Effect.fork
          )
          yield* Effect.suspend(() => logged.some((line) => line.includes("Listening on")) ? Effect.void : Effect.fail("not yet")).pipe(
            Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("20 seconds")))
          )
          // The cluster registers the runner, with the groups it hosts, a moment after it listens.
          const registered = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ runner: string }>`SELECT runner FROM cluster_runners`).pipe(
            Effect.flatMap((rows) => rows.length === 1 ? Effect.succeed(rows[0].runner) : Effect.fail("not yet")),
            Effect.provide(SqliteClient.layer({ filename })),
            Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("20 seconds"))),
            Effect.orDie
          )
          yield* Fiber.interrupt(runner)
          return (JSON.parse(registered) as { readonly groups: ReadonlyArray<string> }).groups
        })
      expect(yield* groupsOf([])).toEqual(["default"])
      expect(yield* groupsOf(["--cron", "0 0 * * *", "--workspaces", file])).toEqual(["default", "schedules"])
    }).pipe(Effect.scoped), 60_000)

  it.effect("a --log-level it does not know is refused in one line naming the levels", () =>
    Effect.gen(function*() {
      for (const flags of [["--log-level", "loud"], ["--log-level"]]) {
        const { exit, stderr } = yield* cli(["fleet", "runner", "--database", "sqlite:f.db", "--port", "9000", ...flags])
        expect(Failure.exitCode(exit)).toBe(1)
        expect(stderr).toMatch(/^--log-level takes one of all, trace, debug, info, warning, error, fatal, none; got ("loud"|nothing)\n$/)
      }
    }))
})
