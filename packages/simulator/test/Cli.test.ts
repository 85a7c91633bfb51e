import { describe, expect, it } from "@effect/vitest"
import { NodeContext } from "@effect/platform-node"
import { Command, Options, type Usage } from "@effect/cli"
import { Console, Duration, Effect, Option, Stream } from "effect"
import * as Cli from "../src/Cli.js"
import type { Simulator } from "../src/index.js"
import * as PlainConsole from "../src/internal/plainConsole.js"
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { fileURLToPath } from "node:url"
import type { Answer } from "./helpers.js"

/** The flags a usage names, in its order. */
const namesOf = (usage: Usage.Usage): ReadonlyArray<string> => {
  switch (usage._tag) {
    case "Named":
      return usage.names.filter((name) => name.startsWith("--"))
    case "Optional":
    case "Repeated":
      return namesOf(usage.usage)
    case "Alternation":
    case "Concat":
      return [...namesOf(usage.left), ...namesOf(usage.right)]
    default:
      return []
  }
}

const bin = fileURLToPath(new URL("../bin/intercom-simulator.js", import.meta.url))

/** Starts the package's bin and resolves with its URL once it prints the listening line. */
const start = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.async<{ readonly child: ChildProcess; readonly url: string }, Error>((resume) => {
      const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"] })
      let stdout = ""
      let stderr = ""
      child.stderr.on("data", (chunk) => (stderr += chunk))
      child.stdout.on("data", (chunk) => {
        stdout += chunk
        const match = /^Intercom simulator listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(stdout)
        if (match) resume(Effect.succeed({ child, url: match[1] }))
      })
      child.on("exit", (code) => resume(Effect.fail(new Error(`exited with ${code}: ${stderr}`))))
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.kill("SIGINT"))
  )

const call = (url: string, token: string, path = "/companies/scroll") =>
  Effect.promise(async () => {
    const response = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } })
    const body: Answer["body"] = await response.json()
    return { status: response.status, headers: response.headers, body }
  })

describe("the standalone simulator", () => {
  it.live("serves the workspaces and faults its flags describe, prints one line, and stops on SIGINT", () =>
    Effect.gen(function*() {
      const { child, url } = yield* start([
        "--port", "0", "--token", "A", "--token", "B", "--companies", "3", "--page-size", "5",
        "--restart-at", "2", "--rate-limit", "5", "--rate-window", "30", "--remove-at", "1:companies:1"
      ])
      const first = yield* call(url, "A")
      expect(first.status).toBe(200)
      // fetch asks for gzip and deflate, and the standalone simulator compresses unless told not to.
      expect(first.headers.get("content-encoding")).toBe("gzip")
      expect(first.body.data).toHaveLength(2) // 3 companies, 1 removed at the first page request
      expect(first.headers.get("x-ratelimit-limit")).toBe("5")
      expect(Number(first.headers.get("x-ratelimit-reset")) % 30).toBe(0)
      const second = yield* call(url, "A", `/companies/scroll?scroll_param=${first.body.scroll_param}`)
      expect(second.status).toBe(500)
      // Another token is another workspace, with its own data set (and seed).
      const other = yield* call(url, "B")
      expect(other.status).toBe(200)
      expect(other.body.data[0].id).not.toBe(first.body.data[0].id)
      expect((yield* call(url, "nope")).status).toBe(401)
      let stderr = ""
      child.stderr!.on("data", (chunk: Buffer) => stderr += chunk.toString())
      child.kill("SIGINT")
      const [code] = yield* Effect.promise(() => once(child, "exit"))
      expect(code).toBe(0)
      // Its stats on the way out, for a run against it from outside to check.
      expect(stderr.startsWith(Cli.stoppedLine)).toBe(true)
      const stats = JSON.parse(stderr.slice(Cli.stoppedLine.length))
      expect(stats.total.requests).toBe(4)
      expect(stats.workspaces.A).toMatchObject({ requests: 2, scrollsOpened: 1, errorsByCode: { server_error: 1 } })
      expect(stats.workspaces.B).toMatchObject({ requests: 1, scrollsOpened: 1 })
    }).pipe(Effect.scoped), 60_000)
})

describe("the standalone simulator's tokens of one workspace", () => {
  it.live("--token A,B serves one app to both tokens: one open scroll and one rate limit between them", () =>
    Effect.gen(function*() {
      // Windows are the clock's (as Intercom's): an hour's, so that the two requests of a loaded machine share one.
      const { child, url } = yield* start(["--port", "0", "--token", "A,B", "--token", "C", "--rate-limit", "4", "--rate-window", "3600"])
      const first = yield* call(url, "A")
      expect(first.status).toBe(200)
      const refused = yield* call(url, "B")
      expect(refused.status).toBe(400)
      expect(refused.body.errors?.[0]?.code).toBe("scroll_exists")
      expect(refused.headers.get("x-ratelimit-remaining")).toBe("2")
      // The next --token is another app.
      expect((yield* call(url, "C")).status).toBe(200)
      const [a, b, c] = yield* Effect.forEach(["A", "B", "C"], (token) => call(url, token, "/me"))
      expect(b.body.app.id_code).toBe(a.body.app.id_code)
      expect(c.body.app.id_code).not.toBe(a.body.app.id_code)
      let stderr = ""
      child.stderr!.on("data", (chunk: Buffer) => stderr += chunk.toString())
      child.kill("SIGINT")
      yield* Effect.promise(() => once(child, "exit"))
      const stats = JSON.parse(stderr.slice(Cli.stoppedLine.length))
      expect(stats.workspaces.B).toMatchObject({ scrollsOpened: 0, scrollExistsWhileLive: 1 })
      expect(stats.apps[a.body.app.id_code]).toMatchObject({ requests: 4, scrollsOpened: 1, scrollExistsWhileLive: 1 })
    }).pipe(Effect.scoped), 60_000)
})

describe("the standalone simulator's --restart-order", () => {
  it.live("same: the scroll opened after a 500 starts with the first one's page; varied (the default): with another", () =>
    Effect.gen(function*() {
      for (const [flags, repeats] of [[["--restart-order", "same"], true], [["--restart-order", "varied"], false], [[], false]] as const) {
        const { url } = yield* start(["--port", "0", "--token", "A", "--companies", "40", "--page-size", "10", "--restart-at", "2", ...flags])
        const first = yield* call(url, "A")
        expect((yield* call(url, "A", `/companies/scroll?scroll_param=${first.body.scroll_param}`)).status).toBe(500)
        const again = yield* call(url, "A")
        const ids = (answer: Pick<Answer, "body">) => answer.body.data.map((company: { readonly id: string }) => company.id)
        expect(ids(again).join() === ids(first).join()).toBe(repeats)
      }
    }).pipe(Effect.scoped), 60_000)
})

describe("the standalone simulator stopped", () => {
  it.live("with a page in flight (a latency of 10 minutes): drops it and ends at once, its stats as they stand", () =>
    Effect.gen(function*() {
      const { child, url } = yield* start(["--port", "0", "--token", "A", "--latency", "600000"])
      let stderr = ""
      child.stderr!.on("data", (chunk: Buffer) => stderr += chunk.toString())
      const answer = Effect.runPromiseExit(call(url, "A"))
      // The request is in: it waits out the latency.
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 500)))
      child.kill("SIGTERM")
      const [code] = yield* Effect.promise(() => once(child, "exit")).pipe(
        Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error("the simulator waited for the page in flight") })
      )
      expect(code).toBe(0)
      expect((yield* Effect.promise(() => answer))._tag).toBe("Failure")
      const stats = JSON.parse(stderr.slice(Cli.stoppedLine.length))
      expect(stats.workspaces.A).toMatchObject({ requests: 1, pagesServed: 0 })
    }).pipe(Effect.scoped), 60_000)

  it.live("by SIGTERM with 1,000 tokens, its stderr a pipe read slowly: prints its whole stats line (~600 kB) before it exits", () =>
    Effect.gen(function*() {
      // The runtime exits the process as soon as the program ends on a signal: the line went only as far as the pipe
      // took it before (219,264 bytes of 597,255 here), and JSON.parse failed on it. The reader is made slow (a loaded
      // machine's) by not reading until a second after the signal: the simulator must wait for it.
      const tokens = Array.from({ length: 1_000 }, (_, i) => ["--token", `token-${i}`]).flat()
      const { child } = yield* start(["--port", "0", ...tokens])
      let stderr = ""
      child.stderr!.on("data", (chunk: Buffer) => stderr += chunk.toString())
      child.stderr!.pause()
      const closed = once(child, "close")
      child.kill("SIGTERM")
      yield* Effect.sleep("1 second")
      child.stderr!.resume()
      const [code] = yield* Effect.promise(() => closed)
      expect(code).toBe(0)
      expect(stderr.endsWith("\n")).toBe(true)
      const stats = JSON.parse(stderr.slice(Cli.stoppedLine.length))
      expect(Object.keys(stats.workspaces)).toHaveLength(1_000)
      expect(stats.workspaces["token-999"]).toMatchObject({ requests: 0 })
    }).pipe(Effect.scoped), 60_000)
})

/** Runs the bin to its end: its exit code and what it wrote. */
const runToExit = (args: ReadonlyArray<string>) =>
  Effect.async<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
  })

describe("the standalone simulator failing", () => {
  it.live("on a port in use, says so in one line (no log record, no stack) and exits 1", () =>
    Effect.gen(function*() {
      const { url } = yield* start(["--port", "0", "--token", "A"])
      const port = new URL(url).port
      const second = yield* runToExit(["--port", port, "--token", "A"])
      expect(second.code).toBe(1)
      expect(second.stdout).toBe("")
      expect(second.stderr).toBe(`ServeError: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`)
    }).pipe(Effect.scoped), 60_000)

  it.live("on a usage error, says only what @effect/cli says of it, and exits 1", () =>
    Effect.gen(function*() {
      const missing = yield* runToExit(["--port", "0"])
      expect(missing.code).toBe(1)
      expect(missing.stdout).toBe("")
      expect(missing.stderr.trim()).toBe("Expected at least 1 value(s) for option: '--token'")
    }), 60_000)
})

describe("Cli.run", () => {
  it.live("refuses a count, a page size, a rate limit, a rate, a port or a fault's pages out of range in words naming the flag, and serves nothing", () =>
    Effect.gen(function*() {
      const refusals: Array<string> = []
      // @effect/cli says a usage error with Console.error: kept here, out of the test run's output, and checked.
      const said: Array<string> = []
      const console = yield* Effect.console
      const recording = { ...console, error: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void said.push(args.join(" "))) }
      const flags = [
        ["--users", "-5"], ["--page-size", "0"], ["--rate-limit", "0"], ["--restart-rate", "2"], ["--bandwidth", "0"],
        ["--port", "70000"], ["--restart-at", "3,x"], ["--add-at", "5:people:3"],
        // Longer than a timer holds (it would never fire: the page would never come), and no bandwidth at all.
        ["--latency", "99999999999"], ["--handshake", "2147483648"], ["--bandwidth", "Infinity"],
        // A window without a limit would be dropped without a word.
        ["--rate-window", "5"],
        // Another client's scroll for ever: no scroll would ever open.
        ["--foreign-scroll", "1e400"], ["--foreign-scroll", "-1"]
      ]
      for (const flag of flags) {
        const port = flag[0] === "--port" ? [] : ["--port", "0"]
        const exit = yield* Cli.run(["node", "intercom-simulator", ...port, "--token", "T", ...flag]).pipe(
          // Served, it would run until stopped.
          Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => `${flag.join(" ")} was served` }),
          Effect.exit,
          Effect.withConsole(recording)
        )
        refusals.push(JSON.stringify(exit))
      }
      expect(refusals[0]).toContain("--users must be 0 or more")
      expect(refusals[1]).toContain("--page-size must be 1 or more")
      expect(refusals[2]).toContain("--rate-limit must be 1 or more")
      expect(refusals[3]).toContain("--restart-rate must be between 0 and 1")
      expect(refusals[4]).toContain("--bandwidth must be a number of megabits per second above 0")
      expect(refusals[5]).toContain("--port must be a TCP port, 0 to 65535")
      // One line each, not the schema's tree.
      expect(refusals[6]).toContain("--restart-at takes page request numbers, 1 or more, separated by commas, such as 3,7; got \\\"3,x\\\"")
      expect(refusals[7]).toContain("--add-at takes PAGE:RESOURCE:COUNT, such as 5:users:10 (RESOURCE users, leads or companies); got \\\"5:people:3\\\"")
      expect(refusals[8]).toContain("--latency must be 0 to 2147483647 milliseconds")
      expect(refusals[9]).toContain("--handshake must be 0 to 2147483647 milliseconds")
      expect(refusals[10]).toContain("--bandwidth must be a number of megabits per second above 0 (leave it out for no limit)")
      expect(refusals[11]).toContain("--rate-window goes with --rate-limit N")
      expect(refusals[12]).toContain("--foreign-scroll must be a number of seconds, 0 or more")
      expect(refusals[13]).toContain("--foreign-scroll must be a number of seconds, 0 or more")
      expect(said.join("\n")).not.toContain("└─")
      expect(said.join("\n")).toContain("--restart-rate must be between 0 and 1")
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)
})

describe("Cli.run's tokens", () => {
  it.live("refuses a token given twice, an empty one (`--token A,`) or one with whitespace as a usage error naming --token, and serves nothing", () =>
    Effect.gen(function*() {
      const said: Array<string> = []
      const console = yield* Effect.console
      const recording = { ...console, error: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void said.push(args.join(" "))) }
      const cases = [["--token", "A", "--token", "A"], ["--token", "A,"], ["--token", "A,B", "--token", "B"], ["--token", "A, B"]]
      const exits: Array<string> = []
      for (const tokens of cases) {
        const exit = yield* Cli.run(["node", "intercom-simulator", "--port", "0", ...tokens]).pipe(
          Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => `${tokens.join(" ")} was served` }),
          Effect.exit,
          Effect.withConsole(recording)
        )
        exits.push(JSON.stringify(exit))
      }
      // Usage errors (@effect/cli's, said by it on stderr), not a defect of Simulator.make's (`RuntimeException: …`).
      for (const exit of exits) expect(exit).not.toContain("RuntimeException")
      expect(said.map((line) => line.trim())).toEqual([
        "--token A is given twice: each token is one workspace's, or one of the tokens of one workspace in --token A,B",
        "--token \"A,\" holds an empty token: the tokens of one workspace are separated by single commas",
        "--token B is given twice: each token is one workspace's, or one of the tokens of one workspace in --token A,B",
        "--token \"A, B\" holds whitespace, which no Authorization header carries: the tokens of one workspace are separated by commas alone"
      ])
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)
})

/** A console that keeps what is written to stdout and stderr. */
const capture = Effect.map(Effect.console, (console) => {
  const written = { stdout: [] as Array<string>, stderr: [] as Array<string> }
  const into = (lines: Array<string>) => (...args: ReadonlyArray<unknown>) =>
    Effect.sync(() => void lines.push(args.join(" ")))
  const captured: Console.Console = { ...console, log: into(written.stdout), error: into(written.stderr) }
  return { captured, written }
})

describe("the command line", () => {
  it.effect("maps --bandwidth, --handshake, --compression, --scroll-param and --restart-order to the server's options, and their defaults", () =>
    Effect.gen(function*() {
      const seen: Array<Simulator.ServerOptions> = []
      const command = Command.make("probe", Cli.options, (config) =>
        Effect.sync(() => seen.push(Cli.serverOptions(config))))
      const probe = Command.run(command, { name: "probe", version: "0" })
      yield* probe(["node", "probe", "--token", "T", "--bandwidth", "2.5", "--handshake", "80", "--compression", "off"])
      yield* probe(["node", "probe", "--token", "T", "--scroll-param", "stable", "--restart-order", "same"])
      yield* probe(["node", "probe", "--token", "T"])
      expect(seen[0]).toMatchObject({ bandwidth: 2.5, handshake: Duration.millis(80), compression: false, scrollParam: "rotating" })
      expect(seen[1]).toMatchObject({ compression: true, scrollParam: "stable", restartOrder: "same" })
      expect(seen[2]).toMatchObject({ compression: true, scrollParam: "rotating", restartOrder: "varied" })
      expect("bandwidth" in seen[2]).toBe(false)
      expect("handshake" in seen[2]).toBe(false)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("--help: the usage, every flag on a line of its own with what it does, and examples; nothing generic", () =>
    Effect.gen(function*() {
      const { captured, written } = yield* capture
      yield* Cli.run(["node", "intercom-simulator", "--help"]).pipe(Effect.withConsole(captured))
      const help = written.stdout.join("\n")
      expect(help).toMatch(/^USAGE\n\n {2}intercom-simulator --token TOKEN \[--token TOKEN \.\.\.\] \[FLAG \.\.\.\]\n/m)
      const flagLines = help.slice(help.indexOf("FLAGS\n\n") + 7, help.indexOf("\n\nEXAMPLES")).split("\n")
      // Every flag the command takes, in the order it declares them, each on one line with its description.
      const declared = Options.getUsage(Options.all(Cli.options))
      expect(flagLines.map((line) => line.trim().split(" ")[0])).toEqual(namesOf(declared))
      for (const line of flagLines) expect(line, line).toMatch(/^ {2}--[a-z-]+ .*\S {2,}\S.*$/)
      expect(help).toContain("  --port N ")
      expect(help).toMatch(/ {2}--latency MS +Milliseconds added to every page\n/)
      expect(help).toMatch(/ {2}--scroll-param rotating \| stable +rotating: .* \(default rotating\)\n/)
      expect(help).toMatch(/\nEXAMPLES\n\n {2}intercom-simulator --token T\n/)
      // @effect/cli's own sentences and spelling.
      for (const generic of ["An integer.", "This setting is optional", "A user-defined piece of text", "$ intercom-simulator", "integer"]) {
        expect(help).not.toContain(generic)
      }
      expect(help).not.toContain("\u001b")
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("PlainConsole", () => {
  it("wants styles on a terminal only, unless NO_COLOR is set (and not empty) or TERM is dumb", () => {
    const terminal = { isTTY: true }
    expect(PlainConsole.wantsStyles(terminal, {})).toBe(true)
    expect(PlainConsole.wantsStyles(terminal, { NO_COLOR: "" })).toBe(true)
    expect(PlainConsole.wantsStyles(terminal, { NO_COLOR: "1" })).toBe(false)
    expect(PlainConsole.wantsStyles(terminal, { TERM: "dumb" })).toBe(false)
    expect(PlainConsole.wantsStyles({ isTTY: false }, {})).toBe(false)
    expect(PlainConsole.wantsStyles({}, {})).toBe(false)
  })

  it.effect("takes escape codes out of what goes to a stream that does not want them, and only there", () =>
    Effect.gen(function*() {
      const { captured, written } = yield* capture
      const styled = "\u001b[0;1mUSAGE\u001b[0m \u001b[2K"
      const plainStdout = PlainConsole.make(captured, { stdout: false, stderr: true })
      const plainStderr = PlainConsole.make(captured, { stdout: true, stderr: false })
      yield* Console.log(styled, 1).pipe(Effect.withConsole(plainStdout))
      yield* Console.error(styled).pipe(Effect.withConsole(plainStdout))
      yield* Console.error(styled).pipe(Effect.withConsole(plainStderr))
      expect(written).toEqual({ stdout: ["USAGE  1"], stderr: [styled, "USAGE "] })
    }))
})

describe("the standalone simulator's --help", () => {
  it.live("prints its usage, flags and examples as plain text to a pipe, exit 0", () =>
    Effect.gen(function*() {
      const child = spawn(process.execPath, [bin, "--help"], { stdio: ["ignore", "pipe", "pipe"] })
      let stdout = ""
      child.stdout.on("data", (chunk) => (stdout += chunk))
      const [code] = yield* Effect.promise(() => once(child, "exit"))
      expect(code).toBe(0)
      expect(stdout).toMatch(/^intercom-simulator \d+\.\d+\.\d+\n\nA faithful Intercom Scroll API on this machine: /)
      expect(stdout).toContain("\nUSAGE\n\n  intercom-simulator --token TOKEN [--token TOKEN ...] [FLAG ...]\n")
      expect(stdout).toMatch(/\n {2}--token TOKEN +Access token of a workspace; repeat for several workspaces, [^\n]+\n/)
      expect(stdout).toContain("\nEXAMPLES\n")
      expect(stdout).not.toContain("$ intercom-simulator")
      expect(stdout).not.toContain("\u001b")
    }), 60_000)
})

describe("Cli.listeningUrl", () => {
  const bytes = (...chunks: ReadonlyArray<string>) => Stream.fromIterable(chunks.map((chunk) => new TextEncoder().encode(chunk)))

  it.effect("reads the URL from the banner, even split across chunks, and None when the output has none", () =>
    Effect.gen(function*() {
      const announced = yield* Cli.listeningUrl(bytes("warming up\nIntercom simulator list", "ening on http://127.0.0.1:4010\n"))
      expect(announced).toEqual(Option.some("http://127.0.0.1:4010"))
      expect(yield* Cli.listeningUrl(bytes("Error: listen EADDRINUSE\n"))).toEqual(Option.none())
      expect(yield* Cli.listeningUrl(bytes("someone said: Intercom simulator listening on http://x\n"))).toEqual(Option.none())
    }))
})

describe("the package's index", () => {
  it.effect("leaves the command line out, so that a program that only simulates never loads @effect/cli", () =>
    Effect.gen(function*() {
      const index = yield* Effect.promise(() => import("../src/index.js"))
      expect(Object.keys(index).sort()).toEqual(["Embedded", "FaultPlan", "Resource", "Simulator"])
      // The bin's failure line is its own.
      expect(Object.keys(Cli)).not.toContain("failureLine")
    }))
})
