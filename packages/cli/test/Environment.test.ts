import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, DateTime, Effect, Fiber, Layer, Logger, Schedule } from "effect"
import { makeFake } from "../../core/test/support/fakeIntercom.js"
import { freePort, tempDir } from "../../fleet/test/support/processes.js"
import { Cli } from "../src/index.js"
import * as Failure from "../src/internal/failure.js"
import * as LogLevelFlag from "../src/internal/logLevelFlag.js"
import { makeCapture } from "./support/capture.js"

/** The command line run with `env` for its environment, as a container or a systemd unit gives one. */
const cli = (args: ReadonlyArray<string>, env: Record<string, string>) => {
  const capture = makeCapture({ stdoutTty: false })
  return Cli.main(["node", "intercom-scroll", ...args]).pipe(
    Effect.provide(Layer.mergeAll(NodeContext.layer, makeFake().httpClient, capture.layer)),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
    Effect.exit,
    Effect.map((exit) => ({ exit, stdout: capture.stdout(), stderr: capture.stderr() }))
  )
}

/**
 * Runs `fleet runner` with `flags` and `env` until it has logged "Listening on", then stops it; the lines its logger
 * wrote to stderr, through the CLI's own logger (logfmt, or what the format says).
 */
const runnerLines = (flags: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const console = yield* Effect.console
    const runner = yield* Cli.run(["node", "intercom-scroll", "fleet", "runner", ...flags]).pipe(
      Effect.provide(Layer.mergeAll(NodeContext.layer, makeFake().httpClient, makeCapture().layer)),
      Effect.provide(Logger.replace(Logger.defaultLogger, LogLevelFlag.logfmtToStderr)),
      Effect.withConsole({ ...console, unsafe: { ...console.unsafe, error: (...args) => void lines.push(args.map(String).join(" ")) } }),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
      Effect.fork
    )
    yield* Effect.suspend(() => lines.some((line) => line.includes("Listening on")) ? Effect.void : Effect.fail("not yet")).pipe(
      Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("20 seconds")))
    )
    yield* Fiber.interrupt(runner)
    return lines
  })

describe("configured by the environment (a container, a systemd unit, a pod)", () => {
  it.live("fleet runner from INTERCOM_SCROLL_* alone: the database (its password out of ps), the port, JSON logs at the level named", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir("cli-env-runner-")
      const lines = yield* runnerLines([], {
        INTERCOM_SCROLL_DATABASE: `sqlite:${directory}/fleet.sqlite`,
        INTERCOM_SCROLL_RUNNER_PORT: String(yield* freePort),
        INTERCOM_SCROLL_LOG_FORMAT: "json",
        INTERCOM_SCROLL_LOG_LEVEL: "debug",
        // What the kubelet sets in every pod for a Service named intercom-scroll: none of the runner's.
        INTERCOM_SCROLL_PORT: "tcp://10.96.0.12:34431",
        INTERCOM_SCROLL_SERVICE_HOST: "10.96.0.12"
      })
      // One JSON object a line, each with its level and time.
      const parsed = lines.map((line) => JSON.parse(line) as { readonly message: unknown; readonly logLevel: string; readonly timestamp: string })
      expect(parsed.some((line) => String(line.message).includes("Listening on") && line.logLevel === "INFO")).toBe(true)
      expect(parsed.some((line) => line.logLevel === "DEBUG")).toBe(true)
      expect(parsed.every((line) => !Number.isNaN(Date.parse(line.timestamp)))).toBe(true)
    }).pipe(Effect.scoped), 60_000)

  it.live("--log-format json on the line, and a flag wins over its variable", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir("cli-env-format-")
      const port = String(yield* freePort)
      const flags = ["--database", `sqlite:${directory}/fleet.sqlite`, "--port", port, "--log-format", "json", "--log-level", "info"]
      const lines = yield* runnerLines(flags, {
        INTERCOM_SCROLL_DATABASE: "mysql://nowhere/fleet",
        INTERCOM_SCROLL_RUNNER_PORT: "nine",
        INTERCOM_SCROLL_LOG_FORMAT: "logfmt",
        INTERCOM_SCROLL_LOG_LEVEL: "debug"
      })
      expect(lines.length).toBeGreaterThan(0)
      for (const line of lines) expect(JSON.parse(line)).toHaveProperty("logLevel", "INFO")
      // logfmt by default.
      const plain = yield* runnerLines(["--database", `sqlite:${directory}/other.sqlite`, "--port", String(yield* freePort)], {})
      expect(plain.find((line) => line.includes("Listening on"))).toMatch(/^timestamp=\S+ level=INFO /)
    }).pipe(Effect.scoped), 60_000)

  it.effect("a variable's value is checked as its flag's, in words that name both", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, Record<string, string>, string]> = [
        [["fleet", "runner", "--database", "sqlite:f.db"], { INTERCOM_SCROLL_RUNNER_PORT: "nine" }, "--port must be a TCP port, 1 to 65535 (or INTERCOM_SCROLL_RUNNER_PORT)"],
        [["fleet", "runner", "--database", "sqlite:f.db", "--port", "9000"], { INTERCOM_SCROLL_MAX_SYNCS: "0" }, "--max-syncs must be a whole number, 1 or more"],
        [["fleet", "runner", "--database", "sqlite:f.db", "--port", "9000"], { INTERCOM_SCROLL_PAGES_PER_TRANSACTION: "2.5" }, "--pages-per-transaction must be a whole number, 1 or more: at most how many pages one transaction writes (or INTERCOM_SCROLL_PAGES_PER_TRANSACTION)"],
        [["fleet", "runner", "--database", "sqlite:f.db", "--port", "9000"], { INTERCOM_SCROLL_CRON: "0 * * * *" }, "--cron needs --workspaces FILE"],
        [["fleet", "runner", "--database", "sqlite:f.db", "--port", "9000"], { INTERCOM_SCROLL_TERMINATION_TIMEOUT: "0s" }, "--termination-timeout: \\\"0s\\\" must be longer than zero"],
        [["fleet", "runner", "--database", "sqlite:f.db", "--port", "9000"], { INTERCOM_SCROLL_UNANSWERED_TIMEOUT: "25d" }, "--unanswered-timeout: \\\"25d\\\" is longer than 24d 20h 31m 23s 647ms: a timer waits at most 2147483647 ms (about 24.8 days)"],
        [["fleet", "runner", "--database", "sqlite:f.db", "--port", "9000"], { INTERCOM_SCROLL_ALLOWED_BASE_URLS: "gateway" }, "--allow-base-url takes https URLs separated by commas"],
        // sync reads it too, as every flag a deployment sets.
        [["sync", "users", "--database", "sqlite:f.db"], { INTERCOM_SCROLL_PAGES_PER_TRANSACTION: "0" }, "--pages-per-transaction must be a whole number, 1 or more: at most how many pages one transaction writes (or INTERCOM_SCROLL_PAGES_PER_TRANSACTION)"],
        [["sync", "users", "--database", "sqlite:f.db"], { INTERCOM_SCROLL_UNANSWERED_TIMEOUT: "0" }, "--unanswered-timeout: \\\"0\\\" must be longer than zero"],
        [["fleet", "sync", "--database", "sqlite:f.db"], { INTERCOM_SCROLL_WORKSPACES: "w.json", INTERCOM_SCROLL_RESOURCES: "users,tickets" }, "--resources takes users, leads and companies"],
        // Longer than PostgreSQL's lock_timeout takes, which would then be no limit at all.
        [["sync", "users", "--database", "sqlite:f.db", "--table-lock-timeout", "25d"], {}, "--table-lock-timeout: \\\"25d\\\" is longer than 24d 20h 31m 23s 647ms: PostgreSQL waits at most 2147483647 ms (about 24.8 days) for a lock"]
      ]
      for (const [args, env, words] of cases) {
        const { exit } = yield* cli(args, env)
        expect(Failure.exitCode(exit)).toBe(1)
        expect(JSON.stringify(exit)).toContain(words)
      }
      for (const [env, words] of [
        [{ INTERCOM_SCROLL_LOG_LEVEL: "loud" }, `INTERCOM_SCROLL_LOG_LEVEL takes one of all, trace, debug, info, warning, error, fatal, none; got "loud"`],
        [{ INTERCOM_SCROLL_LOG_FORMAT: "xml" }, `INTERCOM_SCROLL_LOG_FORMAT takes logfmt or json; got "xml"`]
      ] as const) {
        const { exit, stderr } = yield* cli(["fleet", "status", "--database", "sqlite:f.db"], env)
        expect(Failure.exitCode(exit)).toBe(1)
        expect(stderr).toBe(`${words}\n`)
      }
      const { exit, stderr } = yield* cli(["fleet", "status", "--log-format", "yaml"], {})
      expect(Failure.exitCode(exit)).toBe(1)
      expect(stderr).toBe(`--log-format takes logfmt or json; got "yaml"\n`)
    }))

  it.effect("INTERCOM_SCROLL_DATABASE for sync and every fleet command, never printed with its password; --database wins", () =>
    Effect.gen(function*() {
      const env = { INTERCOM_SCROLL_DATABASE: "mysql://root:hunter2@db/fleet", INTERCOM_ACCESS_TOKEN: "tok_0123456789abcdef" }
      for (const args of [["sync", "users"], ["fleet", "runner", "--port", "9000"], ["fleet", "status"], ["fleet", "prune", "--older-than", "90d"]]) {
        const { exit, stderr } = yield* cli(args, env)
        expect(Failure.exitCode(exit)).toBe(1)
        expect(stderr).toContain(`InvalidDatabaseUrl: Invalid database URL: the scheme "mysql" is neither sqlite nor postgres`)
        expect(stderr).not.toContain("hunter2")
      }
      const dir = yield* tempDir("cli-env-database-")
      const { stderr } = yield* cli(["fleet", "status", "--database", `sqlite:${dir}/typo.db`], env)
      expect(stderr).toContain(`There is no database at sqlite:${dir}/typo.db`)
      // Neither: the flag is missing, as before.
      const missing = yield* cli(["fleet", "status"], {})
      expect(Failure.exitCode(missing.exit)).toBe(1)
      expect(JSON.stringify(missing.exit)).toContain("--database")
    }).pipe(Effect.scoped))

  it.effect("with the JSON log, a command's last line is a JSON log line too: its failure, or its stop", () =>
    Effect.gen(function*() {
      for (const [args, env] of [
        [["fleet", "status", "--database", "mysql://root:hunter2@db/fleet"], { INTERCOM_SCROLL_LOG_FORMAT: "json" }],
        [["--log-format", "json", "fleet", "status", "--database", "mysql://root:hunter2@db/fleet"], {}]
      ] as const) {
        const { stderr } = yield* cli(args, env)
        const lines = stderr.trimEnd().split("\n")
        expect(lines).toHaveLength(1)
        const line = JSON.parse(lines[0]!) as { readonly message: string; readonly logLevel: string; readonly timestamp: string }
        expect(line.message).toMatch(/^InvalidDatabaseUrl: Invalid database URL: the scheme "mysql"/)
        expect(line.logLevel).toBe("ERROR")
        expect(Number.isNaN(Date.parse(line.timestamp))).toBe(false)
        expect(stderr).not.toContain("hunter2")
      }
      // logfmt's stays the plain line it was.
      const { stderr } = yield* cli(["fleet", "status", "--database", "mysql://db/fleet"], {})
      expect(stderr).toMatch(/^InvalidDatabaseUrl: /)
    }))

  it.effect("logfmt writes a DateTime annotation (ClusterCron's round lines) as its ISO time, not as JSON quoted again", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const console = yield* Effect.console
      yield* Effect.logInfo("Round").pipe(
        Effect.annotateLogs({ dateTime: DateTime.unsafeMake("2026-12-07T18:00:00Z"), workspace: "acme" }),
        Effect.provide(Logger.replace(Logger.defaultLogger, LogLevelFlag.logfmtToStderr)),
        Effect.withConsole({ ...console, unsafe: { ...console.unsafe, error: (...args) => void lines.push(args.map(String).join(" ")) } })
      )
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/ dateTime=2026-12-07T18:00:00\.000Z( |$)/)
      expect(lines[0]).toMatch(/ workspace=acme( |$)/)
    }))

  it.effect("--help shows the flags a variable may stand in for as needed, and names each variable", () =>
    Effect.gen(function*() {
      const runner = yield* cli(["fleet", "runner", "--help"], {})
      expect(runner.stdout).toContain("intercom-scroll fleet runner --database URL --port P [--host H]")
      expect(runner.stdout).toContain("Else INTERCOM_SCROLL_DATABASE, which keeps a password out of ps.")
      expect(runner.stdout).toContain("Else INTERCOM_SCROLL_HEALTH_PORT.")
      const sync = yield* cli(["sync", "--help"], {})
      for (const variable of ["INTERCOM_SCROLL_DATABASE", "INTERCOM_SCROLL_PAGES_PER_TRANSACTION", "INTERCOM_SCROLL_UNANSWERED_TIMEOUT"]) {
        expect(sync.stdout).toContain(`Else ${variable}`)
      }
      expect(runner.stdout).not.toContain("This option can be set from environment variables.")
      const top = yield* cli(["--help"], {})
      // Listed with the flags each needs, the rest left to its own help.
      expect(top.stdout).toContain("\nsync <users|leads|companies|all> --database URL [FLAG ...]\n")
      expect(top.stdout).toContain("\nfleet sync --database URL --workspaces FILE [FLAG ...]\n")
      expect(top.stdout).toContain("\nfleet runner --database URL --port P [FLAG ...]\n")
      const fleet = yield* cli(["fleet", "--help"], {})
      expect(fleet.stdout).toContain("\nsync --database URL --workspaces FILE [FLAG ...]\n")
      expect(fleet.stdout).toContain("\nprune --database URL --older-than DURATION\n")
    }))
})
