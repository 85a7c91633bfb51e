import { HelpDoc, ValidationError } from "@effect/cli"
import { FetchHttpClient } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { ServeError } from "@effect/platform/HttpServerError"
import { SocketServerError } from "@effect/platform/SocketServer"
import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "@effect/vitest"
import { ScrollError } from "@intercom-scroll/core"
import { SyncError } from "@intercom-scroll/sync"
import { Cause, Effect, Exit, FiberId, Layer, Redacted } from "effect"
import { Cli, ExportError } from "../src/index.js"
import * as Failure from "../src/internal/failure.js"
import * as Help from "../src/internal/help.js"
import { makeCapture } from "./support/capture.js"

const TOKEN = "tok_secret_0123456789"

const scrollErrors: ReadonlyArray<ScrollError.ScrollError> = [
  new ScrollError.Expired({ resource: "users", page: 4, requestId: "req_1" }),
  new ScrollError.ConcurrentScroll({ resource: "leads" }),
  new ScrollError.RestartRequired({
    resource: "users",
    page: 9,
    cause: { _tag: "ServerError", status: 500, detail: "Request failed due to an internal network error.\nPlease restart." }
  }),
  new ScrollError.RestartRequired({ resource: "users", page: 1, cause: { _tag: "Timeout", millis: 30_000 } }),
  new ScrollError.RateLimited({ resource: "companies", page: 2, resetAt: 0, limit: 1000 }),
  new ScrollError.Unauthorized({ resource: "users", status: 401, code: "unauthorized", detail: "Access Token Invalid" }),
  new ScrollError.ApiError({ resource: "users", page: 1, status: 400, code: "intercom_version_invalid", detail: "nope" }),
  new ScrollError.InvalidResponse({ resource: "users", page: 3, issue: "not JSON" }),
  new ScrollError.Unreachable({
    resource: "users",
    baseUrl: "http://127.0.0.1:4010",
    reason: "refused",
    detail: "connect ECONNREFUSED 127.0.0.1:4010",
    attempts: 3
  }),
  new ScrollError.ConcurrentScroll({ resource: "leads", ownScroll: true }),
  new ScrollError.Unreachable({
    resource: "users",
    baseUrl: "https://api.intercom.io",
    reason: "refused",
    detail: "connect ECONNREFUSED 127.0.0.1:3128",
    attempts: 3,
    proxy: "http://127.0.0.1:3128"
  }),
  new ScrollError.InvalidResponse({
    resource: "users",
    page: 1,
    issue: "the server answered HTTP 301, a redirect to https://api.intercom.io/users/scroll, which the client does not follow",
    location: "https://api.intercom.io/users/scroll"
  }),
  new ScrollError.InvalidResponse({
    resource: "users",
    page: 1,
    issue: "at users.4.created_at: Expected number, actual \"1700000000\" (in the record with id \"5f1c\")",
    id: "5f1c"
  }),
  new ScrollError.InvalidResponse({
    resource: "users",
    page: 1,
    issue: "the body is over the 33554432-byte limit (Content-Length 36700885)",
    maxResponseBytes: 33554432
  })
]

const otherErrors = [
  new ScrollError.InvalidOptions({ detail: "base URL http://example.com is plain http" }),
  new ExportError.OutputError({ target: "/tmp/out.ndjson", detail: "ENOSPC: no space left on device" }),
  new ExportError.InvalidConfig({ variable: "INTERCOM_ACCESS_TOKEN", detail: "is not set" })
]

/** The library's options, which a user of the command line cannot set. */
const libraryOptions = /\b(prefetch|restart|concurrentScroll|rateLimit|baseUrl|region|accessToken) option|rateLimit\.|concurrentScroll/

/** The flags `intercom-scroll export --help` lists. */
const exportFlags = Effect.gen(function*() {
  const capture = makeCapture()
  yield* Cli.run(["node", "intercom-scroll", "export", "--help"]).pipe(
    Effect.provide(Layer.mergeAll(NodeContext.layer, FetchHttpClient.layer, capture.layer))
  )
  return new Set(capture.stdout().match(/--[a-z][a-z-]*/g))
})

describe("Failure.line", () => {
  for (const error of scrollErrors) {
    it.effect(`names ${error._tag} (${error.problem.slice(0, 40)}…) with what happened, on one line, and advice in the command line's own terms`, () =>
      Effect.gen(function*() {
        const line = Failure.line(Cause.fail(error), [Redacted.make(TOKEN)]) ?? ""
        expect(line.startsWith(`${error._tag}: ${error.problem.replace(/\s*\n\s*/g, " ")}`)).toBe(true)
        expect(line).not.toMatch(/[\r\n]/)
        expect(line).not.toMatch(/\bat \S+ \(/) // no stack frame
        // The library's advice speaks of its options; the command line's, of its flags.
        expect(error.message).toContain(error.advice)
        expect(line).not.toMatch(libraryOptions)
        const flags = yield* exportFlags
        for (const flag of line.match(/--[a-z][a-z-]*/g) ?? []) expect(flags).toContain(flag)
      }))
  }

  it("advises each of the scroll's errors with the flags that act on them", () => {
    const advised = (error: ScrollError.ScrollError) => Failure.line(Cause.fail(error)) ?? ""
    expect(advised(scrollErrors[0])).toMatch(/--prefetch N .*--max-restarts N/)
    expect(advised(scrollErrors[1])).toContain("--wait-for-other-scroll DURATION")
    expect(advised(scrollErrors[2])).toContain("--max-restarts N")
    expect(advised(scrollErrors[4])).toContain("Run again after 1970-01-01T00:00:00.000Z.")
    expect(advised(scrollErrors[5])).toContain("INTERCOM_ACCESS_TOKEN")
    expect(advised(scrollErrors[1])).toContain("Another app may be scrolling")
    expect(advised(scrollErrors[9])).toMatch(/^ConcurrentScroll: This program's own scroll .* Run again in about a minute, or wait for it with --wait-for-other-scroll DURATION/)
    expect(advised(scrollErrors[8])).toMatch(/^Unreachable: Could not connect to http:\/\/127\.0\.0\.1:4010 .*gave up after 3 attempts\. Check --base-url/)
    expect(advised(scrollErrors[7])).toMatch(/Check that --base-url \(or INTERCOM_BASE_URL\) points at Intercom's API/)
    expect(advised(scrollErrors[11])).toMatch(
      /^InvalidResponse: .*a redirect to https:\/\/api\.intercom\.io\/users\/scroll, .* If https:\/\/api\.intercom\.io\/users\/scroll is Intercom's API \(or a proxy you trust\), point --base-url \(or INTERCOM_BASE_URL\) there/
    )
    expect(advised(scrollErrors[10])).toMatch(
      /^Unreachable: Could not connect to https:\/\/api\.intercom\.io through the proxy http:\/\/127\.0\.0\.1:3128 for the users scroll: nothing is listening at the proxy .* Check the proxy that HTTPS_PROXY or HTTP_PROXY names/
    )
  })

  it("advises a record of the wrong type to be looked up by its id, not the base URL to be checked", () => {
    const line = Failure.line(Cause.fail(scrollErrors[12])) ?? ""
    expect(line).toMatch(/^InvalidResponse: .*\(in the record with id "5f1c"\)\. The run stopped at this record .*Look the record up in Intercom by its id/)
    expect(line).not.toContain("--base-url")
    expect(Failure.describeInFleet(scrollErrors[12])).not.toContain("baseUrl")
  })

  it("advises a page over the size limit with the limit, which the command line cannot raise", () => {
    const line = Failure.line(Cause.fail(scrollErrors[13])) ?? ""
    expect(line).toMatch(/over the 33554432-byte limit .*far below this command's limit of 33554432 bytes a page: .* raise the limit with --max-response-bytes SIZE/)
    expect(line).not.toContain("maxResponseBytes")
    expect(Failure.describeInFleet(scrollErrors[13])).toContain("the runners' limit of 33554432 bytes a page")
  })

  it("advises a redirect in the fleet's terms: the workspace's baseUrl in the workspaces file", () => {
    expect(Failure.describeInFleet(scrollErrors[11])).toMatch(
      /If https:\/\/api\.intercom\.io\/users\/scroll is Intercom's API \(or a proxy you trust\), point the workspace's baseUrl in the workspaces file there/
    )
    expect(Failure.describeInFleet(scrollErrors[7])).toContain("Check that the workspace's baseUrl in the workspaces file points at")
  })

  it("names the command that takes the flags its advice names, for a program that takes none (pnpm start)", () => {
    const surface = { flagsOf: "pnpm -s cli export users --out out/users.ndjson" }
    for (const error of scrollErrors) {
      const plain = Failure.line(Cause.fail(error)) ?? ""
      const fromStart = Failure.line(Cause.fail(error), [], surface) ?? ""
      if (/ --[a-z]/.test(plain)) {
        expect(fromStart).toBe(`${plain} (Those are flags of ${surface.flagsOf}, which runs the same export.)`)
      } else {
        expect(fromStart).toBe(plain)
      }
    }
    expect(Failure.line(Cause.fail(scrollErrors[0]), [], surface)).toContain("flags of pnpm -s cli export users")
  })

  for (const error of otherErrors) {
    it(`names ${error._tag} with its message, on one line`, () => {
      const line = Failure.line(Cause.fail(error), [Redacted.make(TOKEN)])
      expect(line).toBe(`${error._tag}: ${error.message.replace(/\s*\n\s*/g, " ")}`)
    })
  }

  it("leaves the words of the library's and its own errors whole, whatever the token: a short one is in many words", () => {
    const config = new ExportError.InvalidConfig({ variable: "INTERCOM_REGION", detail: "is \"mars\"; use us, eu or au" })
    const unreachable = scrollErrors[8]
    // Tokens no one would have, but which make the point: a letter, words of ours short and long.
    const tokens = ["T", "a", "the", "users", "INTERCOM_REGION"].map((token) => Redacted.make(token))
    for (const error of [config, unreachable]) {
      expect(Failure.line(Cause.fail(error), tokens)).toBe(Failure.line(Cause.fail(error)))
    }
    expect(Failure.line(Cause.fail(config), [Redacted.make("T")])).toContain("INTERCOM_REGION")
  })

  it("replaces the token in a defect or a failure of unknown kind, whose text nobody checked", () => {
    for (const cause of [Cause.die(new Error(`Bearer ${TOKEN} refused`)), Cause.fail(new Error(`Bearer ${TOKEN} refused`))]) {
      const line = Failure.line(cause, [Redacted.make(TOKEN)])
      expect(line).not.toContain(TOKEN)
      expect(line).toContain("Bearer <redacted>")
    }
    // A short token only where it stands alone: the words around it stay whole.
    expect(Failure.line(Cause.die(new Error("Transport failed for Bearer T")), [Redacted.make("T")])).toBe(
      "Error: Transport failed for Bearer <redacted>"
    )
  })

  it("names a failure of another library with its cause's words: a database's error, not only \"Failed to execute statement\"", () => {
    const error = new SqlError({
      message: "Failed to execute statement",
      cause: new Error("duplicate key value violates unique constraint \"pg_type_typname_nsp_index\"")
    })
    expect(Failure.line(Cause.fail(error))).toBe(
      "SqlError: Failed to execute statement: duplicate key value violates unique constraint \"pg_type_typname_nsp_index\""
    )
    // An error with no message of its own (the platform's ServeError, a health port in use) is named by its cause.
    const serve = new ServeError({ cause: new Error("listen EADDRINUSE: address already in use 127.0.0.1:8080") })
    expect(Failure.line(Cause.fail(serve))).toBe("ServeError: listen EADDRINUSE: address already in use 127.0.0.1:8080")
    // A cause that says what the error already says is not said twice.
    expect(Failure.line(Cause.die(new Error("boom", { cause: new Error("boom") })))).toBe("Error: boom")
  })

  it("says what the role needs where PostgreSQL refused it a privilege (42501), by subcommand", () => {
    const refused = Object.assign(new Error("permission denied for schema public"), { code: "42501" })
    const error = new SqlError({ message: "Failed to execute statement", cause: refused })
    expect(Failure.line(Cause.fail(error), [], { subcommand: ["sync"] })).toBe(
      "SqlError: Failed to execute statement: permission denied for schema public. A sync creates or upgrades its tables when they are missing or older than this version, which needs CREATE on the schema; once they are current, a role with USAGE on the schema and SELECT, INSERT, UPDATE and DELETE on the tables (and USAGE on their sequences) syncs. Run the first sync, and the first after an upgrade, with the tables' owner, or give the role a schema of its own, named in the URL (?options=-c%20search_path%3Dintercom)."
    )
    expect(Failure.line(Cause.fail(error), [], { subcommand: ["fleet", "runner"] })).toMatch(
      /permission denied for schema public\. The fleet's processes create the cluster's tables, and check them at every start with CREATE … IF NOT EXISTS/
    )
    // Another failure of the database is said as it was.
    const other = new SqlError({ message: "Failed to execute statement", cause: Object.assign(new Error("deadlock detected"), { code: "40P01" }) })
    expect(Failure.line(Cause.fail(other), [], { subcommand: ["sync"] })).toBe("SqlError: Failed to execute statement: deadlock detected")
  })

  it("a table of the sync's missing outside a run (fleet status, prune) is followed by what to do, as a run's TablesAltered says it", () => {
    const missing = Object.assign(new Error("relation \"intercom_sync_runs\" does not exist"), { code: "42P01" })
    const error = new SqlError({ message: "Failed to execute statement", cause: missing })
    expect(Failure.line(Cause.fail(error), [], { subcommand: ["fleet", "status"] })).toBe(
      "SqlError: Failed to execute statement: relation \"intercom_sync_runs\" does not exist. The sync's tables are not as its migrations made them (a table, view, column or key dropped or renamed by hand). One renamed: give it its name back. A view dropped: create it again as a new database's first sync makes it (its definition: sqlite3 NEW '.schema NAME', or pg_dump --schema-only --table NAME NEW). A table or column dropped, what it held is gone: sync into a new database (or, in PostgreSQL, a schema of its own), where the first sync copies every record again (a table made again empty is not enough: in PostgreSQL the sync would take the records it lost for unchanged). A primary key dropped: add it back (in PostgreSQL, ALTER TABLE NAME ADD PRIMARY KEY (workspace, id))."
    )
    // A run's own error is said as it is, its advice once.
    const altered = new SyncError.TablesAltered({ workspace: "acme", detail: "no such table: main.intercom_users_seen" })
    expect(Failure.line(Cause.fail(altered))).toBe(`TablesAltered: ${altered.message}`)
  })

  it("a runner's port in use names the flag that gave it: its own port or its health port", () => {
    const inUse = (port: number) =>
      Object.assign(new Error(`listen EADDRINUSE: address already in use 127.0.0.1:${port}`), { code: "EADDRINUSE" })
    const runner = { subcommand: ["fleet", "runner"] }
    expect(Failure.line(Cause.fail(new SocketServerError({ reason: "Open", cause: inUse(34431) })), [], runner)).toBe(
      "SocketServerError: Open: listen EADDRINUSE: address already in use 127.0.0.1:34431. Another process listens on this runner's port: give --port (or INTERCOM_SCROLL_RUNNER_PORT) a free one."
    )
    expect(Failure.line(Cause.fail(new ServeError({ cause: inUse(8080) })), [], runner)).toBe(
      "ServeError: listen EADDRINUSE: address already in use 127.0.0.1:8080. Another process listens on the health port: give --health-port (or INTERCOM_SCROLL_HEALTH_PORT) a free one."
    )
    // Elsewhere (the quickstart's simulator) it is said as it was.
    expect(Failure.line(Cause.fail(new ServeError({ cause: inUse(4010) })), [], { subcommand: [] })).toBe(
      "ServeError: listen EADDRINUSE: address already in use 127.0.0.1:4010"
    )
  })

  it("names a defect by its error, without its stack", () => {
    const line = Failure.line(Cause.die(new TypeError("boom")))
    expect(line).toBe("TypeError: boom")
  })

  it("a sync's LockTimeout advises the --lock-timeout flag, not the library's option", () => {
    const line = Failure.line(Cause.fail(new SyncError.LockTimeout({ workspace: "acme", waitedMillis: 31_200 })))
    expect(line).toBe(
      "LockTimeout: Another sync of workspace \"acme\" still held its lock after 31 s, so this one gave up: Intercom allows one scroll per workspace. Run again once the other sync has finished, or wait longer for it with --lock-timeout DURATION, such as --lock-timeout 10m (by default a sync waits as long as it takes)."
    )
  })

  it("a sync's LockLost for a database that answered nothing advises the --unanswered-timeout flag; any other LockLost does not", () => {
    const reason = "its PostgreSQL server stopped answering: a statement waited 125 s for an answer, and no connection to the server was answered for 121 s (connect timeouts, statements unanswered)"
    const unanswered = Failure.line(Cause.fail(new SyncError.LockLost({ workspace: "acme", reason, unanswered: true })))
    expect(unanswered).toBe(
      `LockLost: The sync of workspace "acme" lost its lock (${reason}), so it stopped before marking anything deleted. Run it again. If the database is coming back (a failover, a restart, a network outage), sync again, or give it longer with --unanswered-timeout DURATION, such as --unanswered-timeout 10m (default 2m).`
    )
    const ended = Failure.line(Cause.fail(new SyncError.LockLost({ workspace: "acme", reason: "its PostgreSQL session ended" })))
    expect(ended).not.toContain("--unanswered-timeout")
  })

  it("a sync's TableLocked names the blocking session and advises the --table-lock-timeout flag", () => {
    const blocker = new SyncError.Blocker({
      pid: 4242,
      applicationName: "psql",
      user: "ops",
      state: "idle in transaction",
      lock: "AccessExclusiveLock on intercom_users_records",
      transactionSeconds: 65.04,
      query: "BEGIN; LOCK TABLE intercom_users_records IN ACCESS EXCLUSIVE MODE"
    })
    const line = Failure.line(Cause.fail(new SyncError.TableLocked({ workspace: "acme", waitedMillis: 60_000, blockers: [blocker] })))
    expect(line).toBe(
      "TableLocked: A statement of the sync of workspace \"acme\" waited 60 s for a lock on its tables held by pid 4242 (psql, user ops, idle in transaction for 65 s, AccessExclusiveLock on intercom_users_records: BEGIN; LOCK TABLE intercom_users_records IN ACCESS EXCLUSIVE MODE), and gave up. Pages written before stay; nothing was marked deleted. End that session's transaction (COMMIT or ROLLBACK it, or SELECT pg_terminate_backend(pid)) and sync again, or wait longer for it with --table-lock-timeout DURATION, such as --table-lock-timeout 10m (default 1m)."
    )
  })

  it("a runner's start whose migration a lock held (Sync.migrate's TableLocked) advises starting it again, no flag it lacks", () => {
    const error = new SyncError.TableLocked({ migrating: true, waitedMillis: 60_000, blockers: [] })
    const said = Failure.line(Cause.fail(error))
    expect(said).toBe(
      "TableLocked: A statement of the sync's migrations waited 60 s for a lock on its tables held by another session (it had let go by the time it was looked for), and gave up. Nothing was migrated: the tables are as they were. End that session's transaction (COMMIT or ROLLBACK it, or SELECT pg_terminate_backend(pid)) and start the runner again: its migrations wait 1 minute for such a lock."
    )
    expect(said).not.toMatch(/tableLockTimeout|--table-lock-timeout|Sync\.migrate/)
  })

  it("a 429 without Intercom's headers keeps the library's advice for a proxy's limit, in the command's and the fleet's terms", () => {
    const proxy = new ScrollError.RateLimited({ resource: "users", page: 2, resetAt: 0, intercomHeaders: false })
    const hint = "If a proxy of yours limits the requests, raise its limit for Intercom's API."
    expect(Failure.line(Cause.fail(proxy))).toBe(`RateLimited: ${proxy.problem} Run again after 1970-01-01T00:00:00.000Z. ${hint}`)
    expect(Failure.describeInFleet(proxy)).toBe(
      `RateLimited: ${proxy.problem} Sync again after 1970-01-01T00:00:00.000Z, under a new --run. ${hint}`
    )
    // Intercom's own limit: no proxy to raise.
    expect(Failure.line(Cause.fail(scrollErrors[3]))).not.toContain("proxy")
    expect(Failure.describeInFleet(scrollErrors[3])).not.toContain("proxy")
  })

  it("a fleet sync's TableLocked advises what a fleet can do: no option of the library's, no flag the fleet lacks", () => {
    const error = new SyncError.TableLocked({ workspace: "acme", waitedMillis: 60_000, blockers: [] })
    const said = Failure.describeInFleet(error)
    expect(said).toBe(
      "TableLocked: A statement of the sync of workspace \"acme\" waited 60 s for a lock on its tables held by another session (it had let go by the time it was looked for), and gave up. Pages written before stay; nothing was marked deleted. End that session's transaction (COMMIT or ROLLBACK it, or SELECT pg_terminate_backend(pid)) and sync again under a new --run: a runner's sync waits 1 minute for such a lock."
    )
    expect(said).not.toMatch(/tableLockTimeout|--table-lock-timeout/)
  })

  it("says what a stop part-way leaves, by the subcommand the arguments name (an export's without any)", () => {
    // As `Cli.main` finds the subcommand in the arguments.
    const stopped = (args: ReadonlyArray<string> = []) =>
      Failure.line(Cause.interrupt(FiberId.none), [], { subcommand: Help.subcommandPath(Cli.command.descriptor, args) })
    expect(stopped()).toBe("Interrupted: stopped before the end (the export's file is left as it was)")
    expect(stopped(["export", "users", "--out", "sync"])).toBe(
      "Interrupted: stopped before the end (an export leaves its --out file as it was)"
    )
    expect(stopped(["--log-level", "debug", "sync", "users", "--database", "sqlite:x"])).toBe(
      "Interrupted: stopped before the end (a run begun is recorded as interrupted; a record is marked deleted only once a complete scroll missed it)"
    )
    expect(stopped(["fleet", "runner", "--database", "sqlite:x", "--port", "1"])).toBe(
      "Stopped: the runner's syncs finished, or went back to the fleet for another runner"
    )
    expect(stopped(["fleet", "sync", "--database", "sqlite:x", "--workspaces", "w.json"])).toBe(
      "Interrupted: stopped, and so did the syncs it was waiting for (a run begun is recorded as interrupted; a record is marked deleted only once a complete scroll missed it)"
    )
    expect(stopped(["fleet", "status", "--database", "sqlite:x"])).toBe(
      "Interrupted: stopped before the end (it only reads: nothing changed)"
    )
    expect(stopped(["fleet", "prune", "--database", "sqlite:x", "--older-than", "30d"])).toBe(
      "Interrupted: stopped before the end (what it pruned stays pruned; run it again for the rest)"
    )
  })

  it("says nothing when the reader of stdout closed it, as Unix tools do", () => {
    expect(Failure.line(Cause.fail(new ExportError.StdoutClosed()))).toBeUndefined()
  })

  it("adds nothing to a usage error, which @effect/cli has already printed", () => {
    const usage = ValidationError.invalidValue(HelpDoc.p("Expected one of the following cases: ndjson, json, csv"))
    expect(Failure.line(Cause.fail(usage))).toBeUndefined()
  })
})

describe("Failure.exitCode", () => {
  it("is 0 on success, 130 when interrupted, 141 when stdout was closed, 1 on failure", () => {
    expect(Failure.exitCode(Exit.void)).toBe(0)
    expect(Failure.exitCode(Exit.interrupt(FiberId.none))).toBe(130)
    expect(Failure.exitCode(Exit.interrupt(FiberId.none), "SIGTERM")).toBe(143)
    expect(Failure.exitCode(Exit.interrupt(FiberId.none), "SIGHUP")).toBe(129)
    expect(Failure.exitCode(Exit.void, "SIGTERM")).toBe(0)
    expect(Failure.exitCode(Exit.fail(new ExportError.StdoutClosed()))).toBe(141)
    expect(Failure.exitCode(Exit.fail(new ExportError.OutputError({ target: "stdout", detail: "EBADF" })))).toBe(1)
    expect(Failure.exitCode(Exit.fail(scrollErrors[0]))).toBe(1)
    expect(Failure.exitCode(Exit.die(new Error("boom")))).toBe(1)
  })
})
