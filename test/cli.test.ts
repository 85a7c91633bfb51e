/**
 * The CLI as a user runs it: its bin, in its own process, against the standalone simulator over real HTTP. The cases
 * run concurrently (each scrolls a workspace or a simulator of its own): most of their time is waiting on their
 * processes, the 10 s of an expiry, the 200 ms pages of the Ctrl-C cases and the faults' restarts.
 */
import { type CommandExecutor, FileSystem, Path } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { Effect, Fiber, Layer, type Scope } from "effect"
import { spawn } from "node:child_process"
import { once } from "node:events"
import * as Os from "node:os"
import * as Zlib from "node:zlib"
import { parseCsv } from "./support/csv.js"
import { cli, cliBin, cliPipedTo, closedPort, eventually, root, run, simulator, start, startCli, withoutProgress } from "./support/processes.js"
import { simulatorForAll } from "./support/suite.js"
import { env, expectedIds, ndjsonIds, TOKEN, workspaceFlags, workspaces } from "./support/workspace.js"

const tempDirectory = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "cli-e2e-" }))

describe.concurrent("intercom-scroll export, as a process against the standalone simulator", () => {
  // One simulator for the cases that need no fault of its own, each exporting a workspace of its own on it.
  const shared = workspaces(["stdout", "head", "pnpm", "stderr", "out", "dev-stdout", "pnpm-out", "pnpm-start"])
  const sharedUrl = simulatorForAll(shared.flags)

  it.scopedLive("ndjson to stdout: every user once, whole, and a summary on stderr", () =>
    Effect.gen(function*() {
      const workspace = shared.of("stdout")
      const result = yield* cli(["export", "users"], { env: workspace.env(sharedUrl()) })
      expect(result.exitCode).toBe(0)
      const ids = ndjsonIds(result.stdout)
      expect([...ids].sort()).toEqual(yield* workspace.expectedIds)
      const first = JSON.parse(result.stdout.slice(0, result.stdout.indexOf("\n"))) as Record<string, unknown>
      expect(first).toMatchObject({ type: "user", custom_attributes: expect.any(Object) })
      expect(withoutProgress(result.stderr)).toMatch(/^Exported 1,200 users to stdout in .*: 24 pages, 0 restarts, .* records\/s\.\n$/)
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("--out /dev/stdout is stdout, as the shell's `>` takes it (opened, it fails where stdout is a socket)", () =>
    Effect.gen(function*() {
      const workspace = shared.of("dev-stdout")
      const result = yield* cli(["export", "users", "--out", "/dev/stdout"], { env: workspace.env(sharedUrl()) })
      expect(result.exitCode).toBe(0)
      expect([...ndjsonIds(result.stdout)].sort()).toEqual(yield* workspace.expectedIds)
      expect(withoutProgress(result.stderr)).toMatch(/^Exported 1,200 users to stdout in /)
      // Another descriptor the shell made a pipe: opened by its name, since its real path (`/proc/…/fd/pipe:[…]`) is
      // no file's, and written into.
      const piped = yield* cliPipedTo(["export", "users", "--out", "/dev/fd/3"], "wc -l", {
        env: workspace.env(sharedUrl()),
        from: "fd3"
      })
      expect(piped.exitCode).toBe(0)
      expect(piped.stdout.trim()).toBe("1200")
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("piped into head: stops when head has its line, quietly, with 141 as Unix tools do", () =>
    Effect.gen(function*() {
      const result = yield* cliPipedTo(["export", "users"], "head -n 1", { env: shared.of("head").env(sharedUrl()) })
      expect(result.exitCode).toBe(141)
      expect(result.stderr).toBe("")
      expect(JSON.parse(result.stdout)).toMatchObject({ type: "user" })
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("after an export piped into head, the next says the scroll it waits on is its own, and how long Intercom keeps it", () =>
    Effect.gen(function*() {
      // A scroll unused for 20 s is gone (long enough for the next process to start on a loaded CI machine, where 8 s
      // was once too short for sync.test's like case; short enough not to wait a minute), and the next export looks
      // again 20 s after it met the scroll.
      const baseUrl = yield* simulator([...workspaceFlags, "--expiry", "20"])
      const environment = { ...env(baseUrl), TMPDIR: yield* tempDirectory }
      const cut = yield* cliPipedTo(["export", "users"], "head -n 1 >/dev/null", { env: environment })
      expect(cut.exitCode).toBe(141)
      const next = yield* cli(["export", "users", "--wait-for-other-scroll", "20s", "--out", "/dev/null"], { env: environment })
      expect(next.exitCode).toBe(0)
      // Written into, not renamed over: as root (CI, a container) a rename would replace the device with a file.
      expect((yield* (yield* FileSystem.FileSystem).stat("/dev/null")).type).toBe("CharacterDevice")
      expect(next.stderr).toMatch(
        /^users: the scroll is this tool's own: an earlier export or sync of this workspace cut it short \d+ s ago \(interrupted, stopped by a failure, or its reader closed the pipe\), and Intercom keeps it open about a minute after its last use, so about (?:\d+ min )?\d+ s more\. Waiting up to \d+ s for it to close \(--wait-for-other-scroll\)\.$/m
      )
      // 90 s, not 60: the two exports and the scroll's 20 s took 35 s on a loaded machine (2026-12-05).
    }).pipe(Effect.provide(NodeContext.layer)), 90_000)

  it.scopedLive("a CSV export piped into head had scrolled to the end: the next takes another app's scroll for another app's", () =>
    Effect.gen(function*() {
      const baseUrl = yield* simulator(workspaceFlags)
      const environment = { ...env(baseUrl), TMPDIR: yield* tempDirectory }
      // CSV writes nothing before the scroll's end: head closes the pipe after it, with no scroll of this tool's open.
      const cut = yield* cliPipedTo(["export", "users", "--format", "csv"], "head -n 1 >/dev/null", { env: environment })
      expect(cut.exitCode).toBe(141)
      // Another app opens a scroll of the workspace and keeps it.
      const opened = yield* Effect.promise(() =>
        fetch(`${baseUrl}/users/scroll`, { headers: { authorization: `Bearer ${TOKEN}`, accept: "application/json", "intercom-version": "1.4" } })
      )
      expect(opened.status).toBe(200)
      const next = yield* cli(["export", "users", "--wait-for-other-scroll", "0", "--out", "/dev/null"], { env: environment })
      expect(next.exitCode).toBe(1)
      expect(next.stderr).toMatch(/^ConcurrentScroll: .* Another app may be scrolling the workspace/m)
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("through `pnpm -s cli`, as the README shows: the exit code is the CLI's own (141 into head)", () =>
    Effect.gen(function*() {
      const result = yield* run("bash", ["-c", "set -o pipefail; pnpm -s cli export users | head -n 1"], {
        env: shared.of("pnpm").env(sharedUrl())
      })
      expect(result.exitCode).toBe(141)
      expect(JSON.parse(result.stdout)).toMatchObject({ type: "user" })
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  /**
   * Runs `pnpm -s <args>` of the repository from a new directory, then checks that `out` (relative to that directory)
   * holds every user of the workspace, and that stderr named it.
   */
  const fromAnotherDirectory = (name: "pnpm-out" | "pnpm-start", args: ReadonlyArray<string>, out: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const cwd = yield* tempDirectory
      const workspace = shared.of(name)
      const result = yield* run("pnpm", ["-C", root, "-s", ...args], { env: workspace.env(sharedUrl()), cwd })
      expect(result.exitCode).toBe(0)
      const file = path.join(cwd, ...out)
      expect(result.stderr).toContain(`to ${file}`)
      expect([...ndjsonIds(yield* fs.readFileString(file))].sort()).toEqual(yield* workspace.expectedIds)
    }).pipe(Effect.provide(NodeContext.layer))

  it.scopedLive("through `pnpm -s cli` called from another directory: a relative --out is written there, as the README says", () =>
    fromAnotherDirectory("pnpm-out", ["cli", "export", "users", "--out", "users.ndjson"], ["users.ndjson"]), 60_000)

  it.scopedLive("`pnpm start` called from another directory: out/users.ndjson is written there", () =>
    fromAnotherDirectory("pnpm-start", ["start"], ["out", "users.ndjson"]), 60_000)

  it.scopedLive("stderr's reader gone (2>&1 >/dev/null | true): the export still ends well, the file whole, nothing left over", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const cwd = yield* tempDirectory
      const workspace = shared.of("stderr")
      // `true` exits without reading, long before the CLI has started: every write to stderr meets EPIPE.
      const result = yield* cliPipedTo(["export", "users", "--out", "users.ndjson"], "true", {
        env: workspace.env(sharedUrl()),
        cwd,
        from: "stderr"
      })
      expect(result.exitCode).toBe(0)
      expect([...ndjsonIds(yield* fs.readFileString(path.join(cwd, "users.ndjson")))].sort()).toEqual(yield* workspace.expectedIds)
      expect(yield* fs.readDirectory(cwd)).toEqual(["users.ndjson"])
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("json and csv to --out, relative to the working directory (not an INIT_CWD a script left behind)", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const cwd = yield* tempDirectory
      const elsewhere = yield* tempDirectory
      const workspace = shared.of("out")
      const expected = yield* workspace.expectedIds

      // As when an npm script runs `cd data && intercom-scroll …`: pnpm's INIT_CWD still names where it was called.
      const json = yield* cli(["export", "users", "--format", "json", "--out", "users.json"], {
        env: { ...workspace.env(sharedUrl()), INIT_CWD: elsewhere },
        cwd
      })
      expect(json.exitCode).toBe(0)
      const array = JSON.parse(yield* fs.readFileString(path.join(cwd, "users.json"))) as Array<{ readonly id: string }>
      expect(array.map((user) => user.id).sort()).toEqual(expected)

      const csv = yield* cli(["export", "users", "--format", "csv", "--out", "users.csv"], { env: workspace.env(sharedUrl()), cwd })
      expect(csv.exitCode).toBe(0)
      const [header = [], ...rows] = parseCsv(yield* fs.readFileString(path.join(cwd, "users.csv")))
      expect(header).toEqual(expect.arrayContaining(["type", "id", "email", "location_data.city_name"]))
      expect(header.some((column) => column.startsWith("custom_attributes."))).toBe(true)
      expect(rows.every((row) => row.length === header.length)).toBe(true)
      const idColumn = header.indexOf("id")
      expect(rows.map((row) => row[idColumn]).sort()).toEqual(expected)
      expect(yield* fs.readDirectory(cwd)).toEqual(expect.arrayContaining(["users.json", "users.csv"]))
      expect((yield* fs.readDirectory(cwd)).length).toBe(2)
      expect(yield* fs.readDirectory(elsewhere)).toEqual([])
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("a stopped export (--max-restarts 0) fails in one line, exit 1, and leaves the previous file", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const cwd = yield* tempDirectory
      yield* fs.writeFileString(path.join(cwd, "users.ndjson"), "previous export\n")
      const baseUrl = yield* simulator([...workspaceFlags, "--restart-at", "2"])
      const result = yield* cli(["export", "users", "--max-restarts", "0", "--out", "users.ndjson"], { env: env(baseUrl), cwd })
      expect(result.exitCode).toBe(1)
      expect(result.stderr).toMatch(/^RestartRequired: .*\n$/)
      expect(yield* fs.readFileString(path.join(cwd, "users.ndjson"))).toBe("previous export\n")
      expect(yield* fs.readDirectory(cwd)).toEqual(["users.ndjson"])
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("a restart whose pages hold only records written before (the final page cut): the file and the CSV are whole", () =>
    Effect.gen(function*() {
      const path = yield* Path.Path
      const fs = yield* FileSystem.FileSystem
      const cwd = yield* tempDirectory
      // 24 pages of 50, then the empty one, cut short: the scroll starts over, and every page it sends again is written.
      const baseUrl = yield* simulator([...workspaceFlags, "--cut-body-at", "25"])
      const ndjson = yield* cli(["export", "users", "--out", "users.ndjson"], { env: env(baseUrl), cwd })
      expect(ndjson.exitCode, ndjson.stderr).toBe(0)
      expect(withoutProgress(ndjson.stderr)).toMatch(/: 48 pages, 1 restart, /)
      expect([...ndjsonIds(yield* fs.readFileString(path.join(cwd, "users.ndjson")))].sort()).toEqual(yield* expectedIds)
      const csv = yield* cli(["export", "users", "--out", "users.csv"], { env: env(baseUrl), cwd })
      expect(csv.exitCode, csv.stderr).toBe(0)
      const rows = parseCsv(yield* fs.readFileString(path.join(cwd, "users.csv")))
      expect(rows.slice(1).map((row) => row[1]).sort()).toEqual(yield* expectedIds)
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("a restart in the same order, its first 9 pages all written before: the JSON and the .gz are whole", () =>
    Effect.gen(function*() {
      const path = yield* Path.Path
      const fs = yield* FileSystem.FileSystem
      const cwd = yield* tempDirectory
      // As Intercom may: the restarted scroll sends the first one's pages again, 9 of them before any new record.
      const baseUrl = yield* simulator([...workspaceFlags, "--restart-order", "same", "--restart-at", "10"])
      const json = yield* cli(["export", "users", "--out", "users.json"], { env: env(baseUrl), cwd })
      expect(json.exitCode, json.stderr).toBe(0)
      expect(withoutProgress(json.stderr)).toMatch(/Exported 1,200 users to .*: 33 pages, 1 restart, /)
      const users = JSON.parse(yield* fs.readFileString(path.join(cwd, "users.json"))) as ReadonlyArray<{ readonly id: string }>
      expect(users.map((user) => user.id).sort()).toEqual(yield* expectedIds)
      const gz = yield* cli(["export", "users", "--out", "users.ndjson.gz"], { env: env(baseUrl), cwd })
      expect(gz.exitCode, gz.stderr).toBe(0)
      const text = Zlib.gunzipSync(yield* fs.readFile(path.join(cwd, "users.ndjson.gz"))).toString()
      expect([...ndjsonIds(text)].sort()).toEqual(yield* expectedIds)
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("a wrong token: exit 1, one line naming Unauthorized, and the token nowhere", () =>
    Effect.gen(function*() {
      const wrong = "wrong-token-3b8d0a7c"
      const result = yield* cli(["export", "users"], { env: { INTERCOM_ACCESS_TOKEN: wrong, INTERCOM_BASE_URL: sharedUrl() } })
      expect(result.exitCode).toBe(1)
      expect(result.stdout).toBe("")
      expect(result.stderr).toMatch(/^Unauthorized: [^\n]+\n$/)
      expect(result.stderr).not.toContain(wrong)
      expect(result.stderr).not.toMatch(/\bat .*\.ts:\d+/) // no stack trace
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("a base URL where nothing listens: exit 1 after three quick tries, one line saying it could not connect, no restart", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const baseUrl = `http://127.0.0.1:${port}`
      const result = yield* cli(["export", "users"], { env: env(baseUrl) })
      expect(result.exitCode).toBe(1)
      expect(result.stdout).toBe("")
      // One line, not five "starting over" lines over 31 seconds and a RestartRequired at page 1.
      expect(result.stderr).toBe(
        `Unreachable: Could not connect to ${baseUrl} for the users scroll: nothing is listening there (connect ECONNREFUSED 127.0.0.1:${port}); gave up after 3 attempts. Check --base-url (or INTERCOM_BASE_URL, or --region), that the server there is running, and the network or proxy in between.\n`
      )
      expect(result.stderr).not.toContain(TOKEN)
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("no token: exit 1, one line saying how to set one", () =>
    Effect.gen(function*() {
      const result = yield* cli(["export", "users"])
      expect(result.exitCode).toBe(1)
      expect(result.stderr).toMatch(/^InvalidConfig: INTERCOM_ACCESS_TOKEN is not set[^\n]*\n$/)
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("--help into a pipe: plain text, no escape codes, the usage from the program's name", () =>
    Effect.gen(function*() {
      const result = yield* cli(["export", "--help"])
      expect(result.exitCode).toBe(0)
      expect(result.stdout).not.toContain("\x1b[")
      expect(result.stdout).toContain("intercom-scroll export [--out FILE]")
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("a flag typed wrong after the arguments: one line naming it and the flag closest to it, exit 1", () =>
    Effect.gen(function*() {
      // @effect/cli said `Expected to find option: '--database'`, naming the flag it looked for, not the one typed.
      const misspelt = yield* cli(["sync", "all", "--databse", "sqlite:intercom.sqlite"])
      expect(misspelt.exitCode).toBe(1)
      expect(misspelt.stderr).toBe(
        "intercom-scroll sync has no flag --databse: did you mean --database? (intercom-scroll sync --help lists its flags)\n"
      )
      const unknown = yield* cli(["export", "users", "--bogus", "3"])
      expect(unknown.exitCode).toBe(1)
      expect(unknown.stderr).toBe("intercom-scroll export has no flag --bogus (intercom-scroll export --help lists its flags).\n")
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("a flag missing its value: one line naming that flag, not the one after it, exit 1", () =>
    Effect.gen(function*() {
      // @effect/cli took `--base-url` for the count, and a flag at the end for an unknown argument.
      const followed = yield* cli(["export", "users", "--max-restarts", "--base-url", "http://127.0.0.1:47399"])
      expect(followed.exitCode).toBe(1)
      expect(followed.stderr).toBe("--max-restarts is missing its value (--max-restarts N): the next argument, --base-url, is a flag.\n")
      const last = yield* cli(["export", "users", "--out"])
      expect(last.exitCode).toBe(1)
      expect(last.stderr).toBe("--out is missing its value (--out FILE): nothing follows it.\n")
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("--wizard with stdin not a terminal: one line saying it needs one, exit 1, at once", () =>
    Effect.gen(function*() {
      // It wrote its prompt's escapes into the pipe and waited for an answer for ever.
      const result = yield* cli(["--wizard"]).pipe(
        Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error("--wizard was still waiting after 30 s") })
      )
      expect(result.exitCode).toBe(1)
      expect(result.stdout).toBe("")
      expect(result.stderr).toBe(
        "--wizard asks its questions on a terminal, and stdin is not one: run it in a terminal, or give the flags on the command line (intercom-scroll COMMAND --help lists a command's).\n"
      )
      // Inside a command, that command's help: the top level's lists commands, not their flags.
      const inExport = yield* cli(["export", "--wizard"])
      expect(inExport.exitCode).toBe(1)
      expect(inExport.stderr).toBe(
        "--wizard asks its questions on a terminal, and stdin is not one: run it in a terminal, or give the flags on the command line (intercom-scroll export --help lists them).\n"
      )
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  /**
   * Starts an export over a previous one in a new directory and, once its temporary file shows that it is writing,
   * signals it; then checks that it exited with `code` and left the directory as it was.
   */
  const interrupted = (
    started: (out: string) => Effect.Effect<CommandExecutor.Process, PlatformError, CommandExecutor.CommandExecutor | Scope.Scope>,
    signal: (exporting: CommandExecutor.Process) => Effect.Effect<void, PlatformError>,
    code: number,
    exitStatus: (exporting: CommandExecutor.Process) => Effect.Effect<number, PlatformError> = (exporting) => exporting.exitCode
  ) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const cwd = yield* tempDirectory
      const out = path.join(cwd, "users.ndjson")
      yield* fs.writeFileString(out, "previous export\n")
      const exporting = yield* started(out)
      // The temporary file beside the target shows the export is writing.
      yield* eventually(Effect.map(fs.readDirectory(cwd), (names) => names.some((name) => name.endsWith(".tmp"))))
      yield* signal(exporting)
      expect(yield* exitStatus(exporting)).toBe(code)
      // At once: whoever waited for the exit finds the directory clean.
      expect(yield* fs.readDirectory(cwd)).toEqual(["users.ndjson"])
      expect(yield* fs.readFileString(out)).toBe("previous export\n")
    })

  /**
   * Sends signals 50 ms apart (the same signal twice at once arrives once) to the process alone, or to its process
   * group as a terminal's Ctrl-C does.
   */
  const signalled = (to: "alone" | "group", ...signals: ReadonlyArray<NodeJS.Signals>) => (exporting: CommandExecutor.Process) =>
    Effect.forEach(signals, (signal, index) =>
      Effect.sleep(index === 0 ? "0 millis" : "50 millis").pipe(Effect.andThen(() => {
        try {
          process.kill(to === "group" ? -exporting.pid : exporting.pid, signal)
        } catch {
          // Gone already: the signal before ended it.
        }
      })), { discard: true })

  /**
   * The exit status as a shell reports it: the code, or 128 + the signal's number for a process a signal ended (the
   * platform fails `exitCode` then, naming the signal).
   */
  const shellStatus = (exporting: CommandExecutor.Process) =>
    exporting.exitCode.pipe(Effect.catchTag("SystemError", (error) => {
      const signal = /receipt of signal: (SIG[A-Z0-9]+)/.exec(String(error.cause))?.[1]
      const number = signal === undefined ? undefined : Os.constants.signals[signal as NodeJS.Signals]
      return number === undefined ? Effect.fail(error) : Effect.succeed(128 + number)
    }))

  // 200 ms a page: the export is still running when the signal comes.
  const slow = workspaces(["bin", "pnpm"])
  const slowUrl = simulatorForAll([...slow.flags, "--latency", "200"])

  it.scopedLive("Ctrl-C: exit 130 (SIGTERM: 143, SIGHUP: 129), no partial file, the previous export intact", () =>
    Effect.gen(function*() {
      const bin = (out: string) => startCli(["export", "users", "--out", out], { env: slow.of("bin").env(slowUrl()) })
      // `kill` signals the process group, as a terminal's Ctrl-C does.
      yield* interrupted(bin, (exporting) => exporting.kill("SIGINT"), 130)
      yield* interrupted(bin, (exporting) => exporting.kill("SIGTERM"), 143)
      // A closed terminal or a dropped SSH session: Node's default would end the process before its cleanup.
      yield* interrupted(bin, (exporting) => exporting.kill("SIGHUP"), 129)
      // A parent that passes the terminal's Ctrl-C on, as tsx did, doubles it: the second must not cut the cleanup short.
      yield* interrupted(bin, signalled("alone", "SIGINT", "SIGINT"), 130)
      yield* interrupted(bin, signalled("alone", "SIGTERM", "SIGTERM"), 143)
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)

  it.scopedLive("Ctrl-C through `pnpm -s cli`: pnpm waits for the CLI's cleanup and exits with its code", () =>
    Effect.gen(function*() {
      const script = (out: string) =>
        start("pnpm", ["-s", "cli", "export", "users", "--out", out], { env: slow.of("pnpm").env(slowUrl()) })
      // A terminal's Ctrl-C reaches pnpm and the CLI; pnpm passes its own on to the CLI too.
      yield* interrupted(script, (exporting) => exporting.kill("SIGINT"), 130)
      // pnpm alone, as `timeout` or a supervisor signals it: the CLI stops as well, rather than run on orphaned.
      yield* interrupted(script, signalled("alone", "SIGTERM"), 143)
      yield* interrupted(script, signalled("alone", "SIGINT"), 130)
      // Ctrl-C pressed twice: pnpm answers the second by sending SIGTERM to the CLI, which is stopping already. When
      // the CLI has ended before the second comes, pnpm (its handlers gone with its script) dies of it: still 130 to
      // a shell, and the cleanup was the CLI's, whole.
      yield* interrupted(script, signalled("group", "SIGINT", "SIGINT"), 130, shellStatus)
    }).pipe(Effect.provide(NodeContext.layer)), 90_000)
})

// The slow case: a simulator of its own, and an export through every fault at once. (Waiting out another client's
// scroll, a wait of the default schedule's 10 s here, is tested in process under the TestClock:
// packages/cli/test/Cli.test.ts.) Was test/cli-faults.test.ts, a file of its own so that it ran beside the others; in
// this file it runs beside the cases above, and a worker is not held 20 s by one process's waits.
describe.concurrent("intercom-scroll export, through faults", () => {
  it.scopedLive("through 500s, an expiry, a dropped connection and a tight rate limit: every user exactly once", () =>
    Effect.gen(function*() {
      const baseUrl = yield* simulator([
        ...workspaceFlags,
        "--restart-at", "3",
        "--expire-at", "9",
        "--drop-connection-at", "14",
        "--rate-limit", "12",
        "--rate-window", "1",
        // The dropped response had opened the next page: that scroll stays open on the server until it expires,
        // and the restart waits for it. Intercom takes a minute; here it takes 5 s.
        "--expiry", "5"
      ])
      const result = yield* cli(["export", "users"], { env: env(baseUrl) })
      expect(result.stderr).toMatch(/starting over from the first page \(attempt 2\).*HTTP 500/)
      expect(result.stderr).toMatch(/starting over from the first page \(attempt 3\).*expired/i)
      expect(result.stderr).toMatch(/starting over from the first page \(attempt 4\).*transport failure/)
      // The rate-limit waits are said when there were any: an export slowed by a loaded machine may stay under 12 a
      // second.
      expect(result.stderr).toMatch(/Exported 1,200 users to stdout in .*, 3 restarts, (\d+ rate-limit waits?, )?\d/)
      expect(result.exitCode).toBe(0)
      expect(ndjsonIds(result.stdout).sort()).toEqual(yield* expectedIds)
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)
})

describe("intercom-scroll export into a reader that stalls", () => {
  const token = "cli-test-token-stalled"
  // The simulator in this process, on a port: the bin reaches it over HTTP, the test reads what it served.
  const served = Simulator.layerServer({ workspaces: [{ token, users: 5_000 }] })

  it.scopedLive("waits for the reader: stdout's backpressure holds the scroll back, nothing piles up in the process", () =>
    Effect.gen(function*() {
      const simulator = yield* Simulator.Simulator
      const baseUrl = yield* Simulator.baseUrl
      const fs = yield* FileSystem.FileSystem
      const go = `${yield* tempDirectory}/go`
      // A reader that reads nothing until the test says so; the pipe and the export's own buffer fill meanwhile.
      const reader = `{ while [ ! -e "${go}" ]; do sleep 0.05; done; wc -l; }`
      const exported = yield* Effect.fork(cliPipedTo(["export", "users"], reader, { env: env(baseUrl, token) }))
      const pagesServed = Effect.map(simulator.stats, (stats) => stats.workspaces[token]?.pagesServed ?? 0)
      // Until the scroll stands still (a second without a page), or has served every page.
      let served = 0
      for (let still = 0; still < 10 && served < 51;) {
        yield* Effect.sleep("100 millis")
        const now = yield* pagesServed
        still = now === served && now > 0 ? still + 1 : 0
        served = now
      }
      // A page of 100 users is ~160 KB of NDJSON: one page fills the pipe, the prefetched ones wait behind it.
      expect(served).toBeLessThan(10)
      yield* fs.writeFileString(go, "")
      const result = yield* Fiber.join(exported)
      expect(result.exitCode).toBe(0)
      expect(result.stdout.trim()).toBe("5000")
      expect(yield* pagesServed).toBe(51)
    }).pipe(Effect.provide(Layer.merge(served, NodeContext.layer))), 60_000)

  it.scopedLive("stopped (SIGTERM) while its reader stalls: what it handed to stdout comes whole once the reader reads", () =>
    Effect.gen(function*() {
      const simulator = yield* Simulator.Simulator
      const baseUrl = yield* Simulator.baseUrl
      // The reader reads nothing until a second after the signal (a loaded machine's): the process must wait for it
      // rather than exit with its last write half in the pipe.
      const child = spawn("node", [cliBin, "export", "users"], {
        env: { ...process.env, ...env(baseUrl, token) },
        stdio: ["ignore", "pipe", "pipe"]
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
      let stdout = ""
      child.stdout.setEncoding("utf8").on("data", (text: string) => stdout += text).pause()
      const closed = once(child, "close")
      // Until the scroll stands still behind the full pipe.
      yield* eventually(Effect.map(simulator.stats, (stats) => (stats.workspaces[token]?.pagesServed ?? 0) >= 2))
      yield* Effect.sleep("500 millis")
      child.kill("SIGTERM")
      yield* Effect.sleep("1 second")
      child.stdout.resume()
      const [code] = yield* Effect.promise(() => closed)
      expect(code).toBe(143)
      expect(stdout.length).toBeGreaterThan(100_000)
      expect(stdout.endsWith("\n")).toBe(true)
      const lines = stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as { readonly type: string })
      expect(lines.every(({ type }) => type === "user")).toBe(true)
    }).pipe(Effect.provide(Layer.merge(served, NodeContext.layer))), 60_000)
})
