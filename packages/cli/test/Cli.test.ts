import { FileSystem, HttpClient, HttpClientError, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import * as Migrator from "@effect/sql/Migrator"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { ScrollError } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Sync } from "@intercom-scroll/sync"
import { Chunk, Clock, ConfigProvider, Deferred, Duration, Effect, Either, Exit, Fiber, Layer, Redacted, Schedule, TestClock, TestServices } from "effect"
import { stripVTControlCharacters } from "node:util"
import * as Zlib from "node:zlib"
import * as WorkspaceLock from "../../core/src/internal/workspaceLock.js"
import * as Migrations from "../../sync/src/internal/migrations.js"
import { errorList, type Fake, json, makeFake, type Seen, TOKEN } from "../../core/test/support/fakeIntercom.js"
import { Cli } from "../src/index.js"
import * as Failure from "../src/internal/failure.js"
import * as ScrollFlags from "../src/internal/scrollFlags.js"
import * as ScrollOptions from "../src/internal/scrollOptions.js"
import { ClockSteps, PostgresDatabase, Settle } from "@intercom-scroll/testing"
import { type Capture, makeCapture } from "./support/capture.js"

interface Run {
  readonly fake: Fake
  readonly capture: Capture
  readonly env?: Record<string, string>
  /** Replaces the fake's HTTP client, e.g. to hang on a page. */
  readonly http?: Layer.Layer<HttpClient.HttpClient>
}

const cli = (args: ReadonlyArray<string>, run: Run) =>
  Cli.main(["node", "intercom-scroll", ...args]).pipe(
    Effect.provide(Layer.mergeAll(NodeContext.layer, run.http ?? run.fake.httpClient, run.capture.layer)),
    Effect.withConfigProvider(
      ConfigProvider.fromMap(new Map(Object.entries(run.env ?? { INTERCOM_ACCESS_TOKEN: TOKEN })))
    ),
    Effect.exit
  )

/**
 * Arguments the CLI refuses before it asks Intercom anything: its exit code and what it said on stderr (`env` as `cli`
 * takes it).
 */
const refused = (args: ReadonlyArray<string>, env?: Record<string, string>) =>
  Effect.gen(function*() {
    const run: Run = { fake: makeFake(), capture: makeCapture(), ...(env === undefined ? {} : { env }) }
    const exit = yield* cli(args, run)
    expect(run.fake.requests).toHaveLength(0)
    return { code: Failure.exitCode(exit), stderr: run.capture.stderr() }
  })

/** Restarts back off for a jittered second or more. */
const runToEnd = ClockSteps.runToEnd({ step: "1 second", maxSteps: 100 })

/** The fake's HTTP client, but for the second page, which hangs until interrupted; `hanging` is done once it does. */
const hangingOnPage2 = (fake: Fake) =>
  Effect.map(Deferred.make<void>(), (hanging) => ({
    hanging,
    http: Layer.effect(
      HttpClient.HttpClient,
      Effect.map(HttpClient.HttpClient, (client) =>
        HttpClient.make((request, url) =>
          url.searchParams.has("scroll_param")
            ? Deferred.succeed(hanging, undefined).pipe(Effect.zipRight(Effect.never))
            : client.execute(request)
        ))
    ).pipe(Layer.provide(fake.httpClient))
  }))

const lines = (text: string) => text.split("\n").filter((line) => line !== "")

const tempDirectory = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "cli-test-" }))

/** One page of these users, as a workspace sends them (their fields in Intercom's order, not the schema's), then the end. */
const workspaceOf = (users: ReadonlyArray<object>) =>
  makeFake({
    fault: (seen) =>
      json(seen.index === 1 ? { type: "user.list", users, scroll_param: "p2" } : { type: "user.list", users: [], scroll_param: "p3" })
  })

describe("intercom-scroll export", () => {
  it.effect("writes every user to stdout as NDJSON and the summary to stderr", () => {
    const run = { fake: makeFake({ records: 250 }), capture: makeCapture() }
    return Effect.gen(function*() {
      const exit = yield* cli(["export", "users"], run)
      expect(exit).toEqual(Exit.void)
      const users = lines(run.capture.stdout()).map((line) => JSON.parse(line))
      expect(users).toHaveLength(250)
      expect(users[0]).toEqual({ type: "user", id: "000000000000000000000000", email: "u0@example.com", name: "User 0" })
      expect(run.capture.stderr()).toMatch(/^Exported 250 users to stdout in .*: 3 pages, 0 restarts, .*\n$/)
    })
  })

  it.scoped("--out - is stdout, as for most Unix tools: no file named -", () => {
    const run = { fake: makeFake({ records: 120 }), capture: makeCapture() }
    return Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const exit = yield* cli(["export", "users", "--out", "-"], run)
      expect(exit).toEqual(Exit.void)
      expect(lines(run.capture.stdout())).toHaveLength(120)
      expect(run.capture.stderr()).toMatch(/^Exported 120 users to stdout in /)
      expect(yield* fs.exists("-")).toBe(false)
    }).pipe(Effect.provide(NodeContext.layer))
  })

  it.scoped("writes --out in the format asked for, and nothing to stdout", () => {
    const run = { fake: makeFake({ records: 120 }), capture: makeCapture() }
    return Effect.gen(function*() {
      const directory = yield* tempDirectory
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const env = { INTERCOM_ACCESS_TOKEN: TOKEN }
      const exit = yield* cli(["export", "users", "--format", "json", "--out", path.join(directory, "users.json")], { ...run, env })
      expect(exit).toEqual(Exit.void)
      const written = JSON.parse(yield* fs.readFileString(path.join(directory, "users.json")))
      expect(written).toHaveLength(120)
      expect(run.capture.stdout()).toBe("")
    }).pipe(Effect.provide(NodeContext.layer))
  })

  it.scoped("makes --out's directory and its parents when they are missing, as sync --database makes its file's", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const fs = yield* FileSystem.FileSystem
      const exported = { fake: makeFake({ records: 120 }), capture: makeCapture() }
      const out = `${directory}/exports/2026-12/users.ndjson`
      expect(yield* cli(["export", "users", "--out", out], exported)).toEqual(Exit.void)
      expect(lines(yield* fs.readFileString(out))).toHaveLength(120)
      expect(exported.capture.stderr()).toMatch(new RegExp(`^Exported 120 users to ${out} in `))
      // The same of sync, beside it.
      const synced = { fake: makeFake({ records: 120 }), capture: makeCapture() }
      const copy = `${directory}/copies/2026-12/intercom.sqlite`
      expect(yield* cli(["sync", "users", "--database", `sqlite:${copy}`], synced)).toEqual(Exit.void)
      expect(yield* fs.exists(copy)).toBe(true)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("without --format, writes the format --out's name ends with (.csv, .json), else NDJSON; --format beats the name", () => {
    const env = { INTERCOM_ACCESS_TOKEN: TOKEN }
    return Effect.gen(function*() {
      const directory = yield* tempDirectory
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const written = (file: string, flags: ReadonlyArray<string> = []) =>
        Effect.gen(function*() {
          const out = path.join(directory, file)
          const capture = makeCapture()
          expect(yield* cli(["export", "users", "--out", out, ...flags], { fake: makeFake({ records: 3 }), capture, env })).toEqual(Exit.void)
          expect(capture.stdout()).toBe("")
          return yield* fs.readFileString(out)
        })
      const csv = yield* written("users.CSV")
      expect(csv.split("\r\n")[0]).toMatch(/^type,id,/)
      expect(csv.split("\r\n").filter((line) => line !== "")).toHaveLength(4)
      expect([...(yield* fs.readFile(path.join(directory, "users.CSV"))).subarray(0, 3)]).not.toEqual([0xef, 0xbb, 0xbf])
      expect(JSON.parse(yield* written("users.json"))).toHaveLength(3)
      for (const file of ["users.ndjson", "users.jsonl", "users"]) {
        expect(lines(yield* written(file)).map((line) => (JSON.parse(line) as { type: string }).type)).toEqual(["user", "user", "user"])
      }
      expect(lines(yield* written("users.csv", ["--format", "ndjson"]))).toHaveLength(3)
      // A file named for CSV takes the byte-order mark without --format csv.
      yield* written("users.csv", ["--csv-bom"])
      expect([...(yield* fs.readFile(path.join(directory, "users.csv"))).subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf])
      // A name of a format or compression the export does not write is refused, not filled with NDJSON; --format decides.
      for (const file of ["users.tsv", "users.csv.zst", "users.XLSX"]) {
        const capture = makeCapture()
        const out = path.join(directory, file)
        const exit = yield* cli(["export", "users", "--out", out], { fake: makeFake({ records: 3 }), capture, env })
        expect(Failure.exitCode(exit)).toBe(1)
        expect(capture.stderr()).toContain(`names a .${file.split(".").at(-1)!.toLowerCase()} file, which the export does not write`)
        expect(yield* fs.exists(out)).toBe(false)
      }
      expect((yield* written("users.tsv", ["--format", "csv"])).split("\r\n")[0]).toMatch(/^type,id,/)
    }).pipe(Effect.provide(NodeContext.layer))
  })

  it.scoped("an --out named .gz is compressed with gzip, in the format the name before .gz says", () => {
    const env = { INTERCOM_ACCESS_TOKEN: TOKEN }
    return Effect.gen(function*() {
      const directory = yield* tempDirectory
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const unzipped = (file: string) =>
        Effect.gen(function*() {
          const out = path.join(directory, file)
          const exit = yield* cli(["export", "users", "--out", out], { fake: makeFake({ records: 3 }), capture: makeCapture(), env })
          expect(exit).toEqual(Exit.void)
          const bytes = yield* fs.readFile(out)
          expect([...bytes.subarray(0, 2)]).toEqual([0x1f, 0x8b])
          return Zlib.gunzipSync(bytes).toString("utf8")
        })
      expect(lines(yield* unzipped("users.ndjson.gz")).map((line) => (JSON.parse(line) as { type: string }).type)).toEqual(
        ["user", "user", "user"]
      )
      expect((yield* unzipped("users.csv.GZ")).split("\r\n")[0]).toMatch(/^type,id,/)
      expect(JSON.parse(yield* unzipped("users.json.gz"))).toHaveLength(3)
    }).pipe(Effect.provide(NodeContext.layer))
  })

  it.scoped("an --out named .gz is left as it was when the export fails, from its first page or part-way", () => {
    const env = { INTERCOM_ACCESS_TOKEN: TOKEN }
    return Effect.gen(function*() {
      const directory = yield* tempDirectory
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const out = path.join(directory, "users.ndjson.gz")
      const earlier = Zlib.gzipSync("an earlier export\n")
      yield* fs.writeFile(out, earlier)
      const failures = [
        { args: [], fault: (seen: Seen) => seen.index === 1 ? errorList(401, "unauthorized", "Access Token Invalid") : undefined, error: /^Unauthorized: / },
        // Two pages written, and the third a 500 with no restart allowed.
        { args: ["--max-restarts", "0"], fault: (seen: Seen) => seen.index === 3 ? errorList(500, "server_error", "boom") : undefined, error: /^RestartRequired: / }
      ]
      for (const failure of failures) {
        const capture = makeCapture()
        const exit = yield* cli(["export", "users", "--out", out, ...failure.args], { fake: makeFake({ records: 500, fault: failure.fault }), capture, env })
        expect(capture.stderr()).toMatch(failure.error)
        expect(Failure.exitCode(exit)).toBe(1)
        expect(capture.stderr()).not.toContain("Exported")
        expect(Buffer.from(yield* fs.readFile(out)).toString("hex")).toBe(earlier.toString("hex"))
        expect(yield* fs.readDirectory(directory)).toEqual(["users.ndjson.gz"])
      }
    }).pipe(Effect.provide(NodeContext.layer))
  })

  describe("--format csv", () => {
    const users = [
      {
        custom_attributes: { "plan_tier": "pro", "ünïcödé_kéy": null },
        x_new_field: "later",
        name: "São Paulo",
        created_at: 1700000000,
        id: "a1",
        type: "user",
        phone: null
      },
      { type: "user", id: "a2", custom_attributes: { "favourite colour": "blue" }, email: "b@example.com", name: null }
    ]

    it.effect("known columns first in the schema's order, custom attributes together and sorted, then the rest; none empty throughout", () => {
      const run = { fake: workspaceOf(users), capture: makeCapture() }
      return Effect.gen(function*() {
        expect(yield* cli(["export", "users", "--format", "csv"], run)).toEqual(Exit.void)
        expect(run.capture.stdout()).toBe(
          "type,id,email,name,created_at,custom_attributes.favourite colour,custom_attributes.plan_tier,x_new_field\r\n" +
            "user,a1,,São Paulo,1700000000,,pro,later\r\n" +
            "user,a2,b@example.com,,,blue,,\r\n"
        )
      })
    })

    it.scoped("--csv-bom starts the file with UTF-8's byte-order mark, for Excel; without it there is none", () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const directory = yield* tempDirectory
        const bytesOf = (flags: ReadonlyArray<string>) =>
          cli(["export", "users", "--format", "csv", "--out", `${directory}/users.csv`, ...flags], {
            fake: workspaceOf(users),
            capture: makeCapture()
          }).pipe(
            Effect.zipRight(fs.readFile(`${directory}/users.csv`))
          )
        const marked = yield* bytesOf(["--csv-bom"])
        expect([...marked.subarray(0, 7)]).toEqual([0xef, 0xbb, 0xbf, ...new TextEncoder().encode("type")])
        expect(new TextDecoder().decode(marked)).toContain("São Paulo")
        expect([...(yield* bytesOf([])).subarray(0, 4)]).toEqual([...new TextEncoder().encode("type")])
      }).pipe(Effect.provide(NodeContext.layer)))
  })

  it.effect("--timestamps iso writes the records' times in ISO 8601 in every format, custom attributes as they came", () => {
    const user = {
      type: "user",
      id: "a1",
      created_at: 1700000000,
      signed_up_at: null,
      session_count: 3,
      custom_attributes: { last_order_at: 1700000000 }
    }
    const exportAs = (format: string, timestamps: ReadonlyArray<string>) => {
      const run = { fake: workspaceOf([user]), capture: makeCapture() }
      return cli(["export", "users", "--format", format, ...timestamps], run).pipe(Effect.map(() => run.capture.stdout()))
    }
    const iso = { ...user, created_at: "2023-11-14T22:13:20Z" }
    return Effect.gen(function*() {
      expect(yield* exportAs("ndjson", ["--timestamps", "iso"])).toBe(`${JSON.stringify(iso)}\n`)
      expect(JSON.parse(yield* exportAs("json", ["--timestamps", "iso"]))).toEqual([iso])
      expect(yield* exportAs("csv", ["--timestamps", "iso"])).toBe(
        "type,id,created_at,session_count,custom_attributes.last_order_at\r\nuser,a1,2023-11-14T22:13:20Z,3,1700000000\r\n"
      )
      // By default, as Intercom sent them.
      expect(yield* exportAs("ndjson", [])).toBe(`${JSON.stringify(user)}\n`)
      expect(yield* exportAs("ndjson", ["--timestamps", "unix"])).toBe(`${JSON.stringify(user)}\n`)
    })
  })

  it.effect("on a terminal, a live progress line, but plain lines when the records go to the same terminal", () =>
    Effect.gen(function*() {
      const liveLine = "\r\x1b[2K"
      const progressOn = (stdoutTty: boolean, out: ReadonlyArray<string>) => {
        const run = { fake: makeFake({ records: 120 }), capture: makeCapture({ tty: true, stdoutTty, columns: 200 }) }
        return cli(["export", "users", ...out], run).pipe(Effect.map(() => run.capture.stderr()))
      }
      const directory = yield* tempDirectory
      const path = yield* Path.Path
      expect(yield* progressOn(false, [])).toContain(liveLine)
      expect(yield* progressOn(true, ["--out", path.join(directory, "users.ndjson")])).toContain(liveLine)
      const beside = yield* progressOn(true, [])
      expect(beside).not.toContain(liveLine)
      expect(beside).toMatch(/^Exported 120 users to stdout/m)
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))

  describe("--help", () => {
    const help = (args: ReadonlyArray<string>, options: { readonly stdoutTty?: boolean; readonly env?: Record<string, string> } = {}) => {
      const run = { fake: makeFake(), capture: makeCapture({ stdoutTty: options.stdoutTty ?? false }), env: options.env ?? {} }
      return cli(args, run).pipe(Effect.map((exit) => ({ exit, stdout: run.capture.stdout(), requests: run.fake.requests.length })))
    }
    const escape = "\x1b["

    it.effect("into a pipe: plain text, the usage from the program's name, each flag's own words and nothing generic", () =>
      Effect.gen(function*() {
        const { exit, stdout, requests } = yield* help(["export", "--help"])
        expect(exit).toEqual(Exit.void)
        expect(requests).toBe(0)
        expect(stdout).not.toContain(escape)
        expect(stdout).toMatch(/^USAGE\n\nintercom-scroll export \[--out FILE\] /m)
        expect(stdout).not.toMatch(/\$ export/)
        expect(stdout).toContain("Write to FILE (atomically: a failed export leaves it as it was) instead of stdout; compressed with gzip where FILE ends with .gz.")
        expect(stdout).toContain("What to export: users, leads or companies.")
        for (const generic of ["A user-defined piece of text", "This setting is optional", "A true or false value", "An integer", "One of the following"]) {
          expect(stdout).not.toContain(generic)
        }
      }))

    it.effect("of export and sync: where the token comes from, and --log-format beside --log-level, with their variables", () =>
      Effect.gen(function*() {
        for (const subcommand of ["export", "sync", "fleet runner"]) {
          const { stdout } = yield* help([...subcommand.split(" "), "--help"])
          if (subcommand !== "fleet runner") {
            expect(stdout, subcommand).toContain("The access token comes from INTERCOM_ACCESS_TOKEN, never from a flag")
          }
          expect(stdout, subcommand).toMatch(/^--log-level all \| trace .*\n\n {2}The least level of the log lines on stderr, anywhere on the line \(default error[^\n]*Else INTERCOM_SCROLL_LOG_LEVEL\.\n\n--log-format logfmt \| json\n\n {2}logfmt \(the default\) or json: [^\n]*Else INTERCOM_SCROLL_LOG_FORMAT\.\n/m)
          expect(stdout, subcommand).not.toContain("Sets the minimum log level")
        }
      }))

    /** The lines of a section that start at the margin: a list's terms, and the paragraphs after it. */
    const termsOf = (stdout: string, heading: string) =>
      stdout.split(`\n${heading}\n\n`)[1]!.split(/\n[A-Z]+\n\n/)[0]!.split("\n").filter((line) => line !== "" && !line.startsWith(" "))

    it.effect("of the whole command, in a pipe: how it is called, each command with its argument and the flags it needs, and how to get its help", () =>
      Effect.gen(function*() {
        const { exit, stdout } = yield* help(["--help"])
        expect(exit).toEqual(Exit.void)
        expect(stdout).not.toContain(escape)
        expect(stdout).toMatch(/^USAGE\n\nintercom-scroll COMMAND \[FLAG \.\.\.\]\n\nDESCRIPTION\n\nExport Intercom users, leads and companies/m)
        expect(termsOf(stdout, "COMMANDS")).toEqual([
          "export <users|leads|companies> [FLAG ...]",
          "sync <users|leads|companies|all> --database URL [FLAG ...]",
          "fleet COMMAND",
          "fleet runner --database URL --port P [FLAG ...]",
          "fleet sync --database URL --workspaces FILE [FLAG ...]",
          "fleet prune --database URL --older-than DURATION",
          "fleet status --database URL [FLAG ...]",
          "intercom-scroll COMMAND --help describes a command and each of its flags: intercom-scroll export --help, intercom-scroll fleet runner --help."
        ])
        // Each with what it does, in its own help's first sentence.
        expect(stdout).toContain(
          "\nexport <users|leads|companies> [FLAG ...]\n\n  Export every user, lead or company of an Intercom workspace over the Scroll API.\n\n"
        )
        expect(stdout).toContain("\nfleet runner --database URL --port P [FLAG ...]\n\n  Serve a runner until SIGTERM (it then finishes or hands back its syncs).\n\n")
        // The commands before the flags every command takes; a command's own flags only in its own help.
        expect(stdout.indexOf("\nCOMMANDS\n")).toBeLessThan(stdout.indexOf("\nOPTIONS\n"))
        expect(stdout).toContain("\n--log-level all | trace")
        expect(stdout).not.toContain("[--csv-bom]")
        expect(stdout).not.toContain("This setting is optional")
      }))

    it.effect("of fleet, in a pipe: the same, its subcommands by their names after fleet", () =>
      Effect.gen(function*() {
        const { exit, stdout } = yield* help(["fleet", "--help"])
        expect(exit).toEqual(Exit.void)
        expect(stdout).toMatch(/^USAGE\n\nintercom-scroll fleet COMMAND \[FLAG \.\.\.\]\n\nDESCRIPTION\n\nSync many workspaces on a fleet/m)
        expect(termsOf(stdout, "COMMANDS")).toEqual([
          "runner --database URL --port P [FLAG ...]",
          "sync --database URL --workspaces FILE [FLAG ...]",
          "prune --database URL --older-than DURATION",
          "status --database URL [FLAG ...]",
          "intercom-scroll fleet COMMAND --help describes a command and each of its flags: intercom-scroll fleet runner --help."
        ])
      }))

    it.effect("of the whole command, on a terminal: its headings and commands styled", () =>
      Effect.gen(function*() {
        const { stdout } = yield* help(["--help"], { stdoutTty: true })
        expect(stdout).toContain(escape)
        expect(stripVTControlCharacters(stdout)).toBe((yield* help(["--help"])).stdout)
      }))

    it.effect("with no subcommand (the command alone, or fleet alone): its help, as --help prints it, plain in a pipe", () =>
      Effect.gen(function*() {
        const alone = yield* help([])
        expect(alone.exit).toEqual(Exit.void)
        expect(alone.stdout).toBe((yield* help(["--help"])).stdout)
        const fleet = yield* help(["fleet"])
        expect(fleet.exit).toEqual(Exit.void)
        expect(fleet.stdout).not.toContain(escape)
        expect(fleet.stdout).toBe((yield* help(["fleet", "--help"])).stdout)
      }))

    it.effect("an unknown or misplaced flag before a subcommand: a usage error, exit 1, not the help", () =>
      Effect.gen(function*() {
        for (const args of [["--bogus"], ["--verison"], ["fleet", "--max-syncs=3"], ["fleet", "--max-syncs", "3"]]) {
          const run = { fake: makeFake(), capture: makeCapture({ stdoutTty: false }), env: {} }
          const exit = yield* cli(args, run)
          expect(Failure.exitCode(exit), args.join(" ")).toBe(1)
          expect(run.capture.stdout()).not.toContain("USAGE")
          expect(run.capture.stderr()).not.toBe("")
        }
      }))

    it.effect("--version prints the version on one line, nothing else", () =>
      Effect.gen(function*() {
        const { exit, stdout, requests } = yield* help(["--version"])
        expect(exit).toEqual(Exit.void)
        expect(requests).toBe(0)
        expect(stdout).toBe(`${Cli.version}\n`)
      }))

    it.effect("on a terminal: styled, unless NO_COLOR is set to anything but the empty string", () =>
      Effect.gen(function*() {
        expect((yield* help(["export", "-h"], { stdoutTty: true })).stdout).toContain(escape)
        expect((yield* help(["export", "-h"], { stdoutTty: true, env: { NO_COLOR: "" } })).stdout).toContain(escape)
        const noColor = yield* help(["export", "-h"], { stdoutTty: true, env: { NO_COLOR: "1" } })
        expect(noColor.stdout).not.toContain(escape)
        expect(noColor.stdout).toContain("intercom-scroll export [--out FILE]")
      }))
  })

  it.effect("without INTERCOM_ACCESS_TOKEN, prints one line naming it and sends no request", () => {
    const run = { fake: makeFake(), capture: makeCapture(), env: {} }
    return Effect.gen(function*() {
      const exit = yield* cli(["export", "users"], run)
      expect(Failure.exitCode(exit)).toBe(1)
      expect(run.capture.stderr()).toMatch(/^InvalidConfig: INTERCOM_ACCESS_TOKEN is not set[^\n]*\n$/)
      expect(run.fake.requests).toHaveLength(0)
    })
  })

  it.effect("with a blank INTERCOM_ACCESS_TOKEN, prints one line saying it is blank, and sends no request", () =>
    Effect.gen(function*() {
      for (const blank of ["", "  "]) {
        const run = { fake: makeFake(), capture: makeCapture(), env: { INTERCOM_ACCESS_TOKEN: blank } }
        const exit = yield* cli(["export", "users"], run)
        expect(Failure.exitCode(exit)).toBe(1)
        expect(run.capture.stderr()).toMatch(/^InvalidConfig: INTERCOM_ACCESS_TOKEN is blank: create an access token[^\n]*\n$/)
        expect(run.fake.requests).toHaveLength(0)
      }
    }))

  it.effect("refuses an INTERCOM_BASE_URL that is not a URL in one line naming it", () => {
    const run = { fake: makeFake(), capture: makeCapture(), env: { INTERCOM_ACCESS_TOKEN: TOKEN, INTERCOM_BASE_URL: "nowhere" } }
    return Effect.gen(function*() {
      const exit = yield* cli(["export", "users"], run)
      expect(Failure.exitCode(exit)).toBe(1)
      expect(run.capture.stderr()).toBe(
        "InvalidConfig: INTERCOM_BASE_URL \"nowhere\" is not a URL: use https://… (plain http only for this machine)\n"
      )
      expect(run.fake.requests).toHaveLength(0)
    })
  })

  it.effect("refuses an INTERCOM_BASE_URL without its scheme saying what to write, once", () => {
    const env = { INTERCOM_ACCESS_TOKEN: TOKEN, INTERCOM_BASE_URL: "localhost:4010" }
    const run = { fake: makeFake(), capture: makeCapture(), env }
    return Effect.gen(function*() {
      const exit = yield* cli(["export", "users"], run)
      expect(Failure.exitCode(exit)).toBe(1)
      // `localhost:4010` parses, with "localhost:" as its scheme: it is not an http(s) URL, said once.
      expect(run.capture.stderr()).toBe(
        "InvalidConfig: INTERCOM_BASE_URL \"localhost:4010\" is not an http(s) URL: use https://… (plain http only for this machine)\n"
      )
      expect(run.fake.requests).toHaveLength(0)
    })
  })

  it.effect("refuses flags that cannot work in words that name them, and sends no request", () =>
    Effect.gen(function*() {
      const refusals: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [["--max-restarts", "-1"], "--max-restarts must be a whole number, 0 or more"],
        [["--max-restarts", "1.5"], "--max-restarts must be a whole number, 0 or more"],
        [["--prefetch", "abc"], "--prefetch must be a whole number, 0 or more: how many pages"],
        [["--csv-bom"], "--csv-bom is for --format csv"],
        [["--format", "json", "--csv-bom"], "--csv-bom is for --format csv"],
        [["--wait-for-other-scroll", "soon"], "--wait-for-other-scroll: \\\"soon\\\" is not a duration: use a number and a unit, such as 90s, 10m or 1h"],
        [["--wait-for-other-scroll", "5 fortnights"], "is not a duration"],
        [["--out", ""], "--out must name a file: it is empty"],
        // A choice refused naming its flag and what it got: several may be on one line.
        [["--format", "xml"], "--format takes ndjson, json or csv; got \\\"xml\\\""],
        [["--region", "eu2"], "--region takes us, eu or au; got \\\"eu2\\\""],
        [["--timestamps", "utc"], "--timestamps takes unix or iso; got \\\"utc\\\""],
        // A scheme left out: named by the flag, not as the client's options.
        ...["localhost:4010", "api.intercom.io", "ftp://api.intercom.io"].map((url) =>
          [["--base-url", url], "--base-url must be an http(s) URL, such as https://api.eu.intercom.io"] as const
        ),
        [["--request-timeout", "0s"], "--request-timeout: \\\"0s\\\" must be longer than zero"],
        // What the HTTP client and Effect's clock would not do: wait that long.
        [["--request-timeout", "2h"], "--request-timeout: \\\"2h\\\" is longer than 1h: the HTTP client stops waiting"],
        [["--request-timeout", "25d"], "--request-timeout: \\\"25d\\\" is longer than 1h"],
        ...["0", "0.5", "abc", "64T", "-1M", ""].map((size) =>
          [["--max-response-bytes", size], "--max-response-bytes must be a size of a byte or more"] as const
        )
      ]
      for (const [flags, words] of refusals) {
        const run = { fake: makeFake(), capture: makeCapture() }
        const exit = yield* cli(["export", "users", ...flags], run)
        expect(Failure.exitCode(exit)).toBe(1)
        // Not the schema's tree (`NonNegativeInt └─ From side refinement failure …`).
        expect(JSON.stringify(exit)).toContain(words)
        // Said on the command's own stderr (its Stdio), not on the process's behind it.
        expect(run.capture.stderr()).toContain(words.replaceAll("\\\"", "\""))
        expect(run.fake.requests).toHaveLength(0)
      }
    }))

  it.effect("a flag typed wrong is named wherever it stands; a value that looks like a flag, or what follows --, is not", () =>
    Effect.gen(function*() {
      const misspelt = "intercom-scroll export has no flag --prefetc: did you mean --prefetch? (intercom-scroll export --help lists its flags)\n"
      // Before the argument, after it, and in its --flag=VALUE form.
      for (const args of [["export", "--prefetc", "2", "users"], ["export", "users", "--prefetc", "2"], ["export", "users", "--prefetc=2"]]) {
        expect(yield* refused(args), args.join(" ")).toEqual({ code: 1, stderr: misspelt })
      }
      expect(yield* refused(["export", "users", "--prefetch", "--out", "x.ndjson"])).toEqual({
        code: 1,
        stderr: "--prefetch is missing its value (--prefetch N): the next argument, --out, is a flag.\n"
      })
      // A flag in another case: @effect/cli ran the export without it, neither taking nor refusing it.
      expect((yield* refused(["export", "users", "--REGION", "eu"])).stderr).toBe(
        "intercom-scroll export has no flag --REGION: did you mean --region? (intercom-scroll export --help lists its flags)\n"
      )
      // A nested subcommand's own flags.
      expect((yield* refused(["fleet", "status", "--databse", "sqlite:x"])).stderr).toBe(
        "intercom-scroll fleet status has no flag --databse: did you mean --database? (intercom-scroll fleet status --help lists its flags)\n"
      )
      // A negative number is a value, which its flag refuses in its own words; a flag's =VALUE is its value.
      expect((yield* refused(["export", "users", "--max-restarts", "-1"])).stderr).toContain("--max-restarts must be a whole number, 0 or more")
      expect((yield* refused(["export", "users", "--max-restarts=--out"])).stderr).toContain("--max-restarts must be a whole number, 0 or more")
      // After `--`, nothing is a flag: @effect/cli's word on an argument too many stands.
      expect((yield* refused(["export", "users", "--", "--bogus"])).stderr).toBe("Received unknown argument: '--bogus'\n\n")
    }))

  it.effect("an argument of a few choices given another is named, with what was typed and the choice closest to it", () =>
    Effect.gen(function*() {
      // @effect/cli said `Expected one of the following cases: users, leads, companies, all`, naming neither.
      expect(yield* refused(["sync", "userz", "--database", "sqlite:x.db"])).toEqual({
        code: 1,
        stderr:
          "intercom-scroll sync <resource> is users, leads, companies or all, not \"userz\": did you mean users? (intercom-scroll sync --help says what each does).\n"
      })
      // Among the flags and their values, wherever it stands; nothing close: no guess.
      expect((yield* refused(["export", "--out", "x.ndjson", "comapnies"])).stderr).toBe(
        "intercom-scroll export <resource> is users, leads or companies, not \"comapnies\": did you mean companies? (intercom-scroll export --help says what each does).\n"
      )
      expect((yield* refused(["export", "bogus", "--region", "eu"])).stderr).toBe(
        "intercom-scroll export <resource> is users, leads or companies, not \"bogus\" (intercom-scroll export --help says what each does).\n"
      )
    }))

  it.effect("a flag the command needs, missing with its variable unset, is named with the variable and what it takes", () =>
    Effect.gen(function*() {
      const database =
        "intercom-scroll sync needs --database URL (sqlite:PATH, or postgres://USER@HOST:PORT/DATABASE), or INTERCOM_SCROLL_DATABASE set to one.\n"
      expect(yield* refused(["sync", "users"])).toEqual({ code: 1, stderr: database })
      // What follows `--` is no flag.
      expect(yield* refused(["sync", "users", "--", "--database"])).toEqual({ code: 1, stderr: database })
      expect(yield* refused(["fleet", "status"])).toEqual({
        code: 1,
        stderr: "intercom-scroll fleet status needs --database URL (sqlite:PATH, or postgres://USER@HOST:PORT/DATABASE), or INTERCOM_SCROLL_DATABASE set to one.\n"
      })
      expect(yield* refused(["fleet", "runner", "--database", "sqlite:x.sqlite"])).toEqual({
        code: 1,
        stderr: "intercom-scroll fleet runner needs --port P, or INTERCOM_SCROLL_RUNNER_PORT set to one (intercom-scroll fleet runner --help says what it takes).\n"
      })
      // The variable stands in for the flag: the command goes on to what else it lacks (here the workspaces file).
      expect((yield* refused(["fleet", "sync"], { INTERCOM_SCROLL_DATABASE: "sqlite:x.sqlite" })).stderr).toBe(
        "intercom-scroll fleet sync needs --workspaces FILE, or INTERCOM_SCROLL_WORKSPACES set to one (intercom-scroll fleet sync --help says what it takes).\n"
      )
    }))

  it.effect("--wizard: refused in one line when stdin is not a terminal", () =>
    Effect.gen(function*() {
      const run = { fake: makeFake(), capture: makeCapture({ stdinTty: false }) }
      const exit = yield* cli(["export", "--wizard"], run)
      expect(Failure.exitCode(exit)).toBe(1)
      expect(run.capture.stderr()).toMatch(/^--wizard asks its questions on a terminal, and stdin is not one: [^\n]*\n$/)
    }))

  it.effect("--log-level after the subcommand: taken, and a usage error beside it said once", () =>
    Effect.gen(function*() {
      const run = { fake: makeFake(), capture: makeCapture() }
      const exit = yield* cli(["export", "users", "--log-level", "warning", "--max-restarts", "-1"], run)
      expect(Failure.exitCode(exit)).toBe(1)
      expect(run.capture.stderr().match(/--max-restarts must be a whole number, 0 or more/g)).toHaveLength(1)
      expect(run.capture.stderr()).not.toContain("--log-level")
    }))

  it.effect("--prefetch N: N pages fetched ahead of a reader that has stopped reading; 0 only the page being written", () => {
    /**
     * The requests sent while stdout takes nothing, once there are `expected` and then no more come through 20 turns
     * of the event loop; then the reader resumes and the export ends well.
     */
    const whileStalled = (flags: ReadonlyArray<string>, expected: number) =>
      Effect.gen(function*() {
        const reading = yield* Deferred.make<void>()
        const run = { fake: makeFake({ records: 1000 }), capture: makeCapture({ stdoutWaits: Deferred.await(reading) }) }
        const fiber = yield* Effect.fork(cli(["export", "users", ...flags], run))
        yield* Settle.until(`${expected} requests`, () => run.fake.requests.length >= expected)
        const requests = yield* Settle.untilStill(() => run.fake.requests.length)
        yield* Deferred.succeed(reading, undefined)
        expect(yield* Fiber.join(fiber)).toEqual(Exit.void)
        expect(lines(run.capture.stdout())).toHaveLength(1000)
        return requests
      })
    return Effect.gen(function*() {
      // The page being written, N in the buffer, one in the producer's hand that waits to enter it, and the request
      // after it, sent as soon as that page's body was in (the README's prefetch + 2 pages of memory); with 0, none.
      expect(yield* whileStalled(["--prefetch", "0"], 1)).toBe(1)
      expect(yield* whileStalled([], 4)).toBe(4)
      expect(yield* whileStalled(["--prefetch", "4"], 7)).toBe(7)
    })
  })

  it.effect("refuses an INTERCOM_REGION other than us, eu or au in one line", () => {
    const run = { fake: makeFake(), capture: makeCapture(), env: { INTERCOM_ACCESS_TOKEN: TOKEN, INTERCOM_REGION: "mars" } }
    return Effect.gen(function*() {
      const exit = yield* cli(["export", "users"], run)
      expect(Failure.exitCode(exit)).toBe(1)
      expect(run.capture.stderr()).toBe("InvalidConfig: INTERCOM_REGION is \"mars\"; use us, eu or au\n")
    })
  })

  it.effect("with the README's old one-letter token T, its lines stay whole: no `IN<redacted>ERCOM_REGION`", () =>
    Effect.gen(function*() {
      const region = { fake: makeFake(), capture: makeCapture(), env: { INTERCOM_ACCESS_TOKEN: "T", INTERCOM_REGION: "mars" } }
      yield* cli(["export", "users"], region)
      expect(region.capture.stderr()).toBe("InvalidConfig: INTERCOM_REGION is \"mars\"; use us, eu or au\n")
      // A 401 that echoes the header: the token goes where it stood alone, and only there.
      const echoed = makeFake({
        records: 250,
        fault: (seen) => errorList(401, "unauthorized", `Access Token Invalid (${seen.headers["authorization"]})`)
      })
      const refused = { fake: echoed, capture: makeCapture(), env: { INTERCOM_ACCESS_TOKEN: "T" } }
      yield* cli(["export", "users"], refused)
      expect(refused.capture.stderr()).toBe(
        "Unauthorized: Intercom refused the access token for users (HTTP 401 unauthorized: Access Token Invalid (Bearer <redacted>)) (request req_1). Check INTERCOM_ACCESS_TOKEN, the workspace's region (--region or INTERCOM_REGION: us, eu or au), and that the app may read users.\n"
      )
    }))

  it.scoped("on a refused token mid-export: exit 1, one line without the token, the previous file intact", () => {
    // A proxy that echoes the Authorization header back in its error is what the redaction is for.
    const fake = makeFake({
      records: 250,
      fault: (seen) =>
        seen.url.searchParams.has("scroll_param")
          ? errorList(401, "unauthorized", `Access Token Invalid (${seen.headers["authorization"]})`)
          : undefined
    })
    const run = { fake, capture: makeCapture() }
    return Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* tempDirectory
      const target = `${directory}/users.ndjson`
      yield* fs.writeFileString(target, "previous export\n")
      const exit = yield* cli(["export", "users", "--out", target], run)
      expect(Failure.exitCode(exit)).toBe(1)
      expect(lines(run.capture.stderr())).toHaveLength(1)
      expect(run.capture.stderr()).toMatch(/^Unauthorized: Intercom refused the access token for users \(HTTP 401 unauthorized/)
      expect(run.capture.stderr()).toContain("Bearer <redacted>")
      expect(run.capture.stderr()).not.toContain(TOKEN)
      expect(yield* fs.readFileString(target)).toBe("previous export\n")
      expect(yield* fs.readDirectory(directory)).toEqual(["users.ndjson"])
    }).pipe(Effect.provide(NodeContext.layer))
  })

  describe("before the scroll opens", () => {
    /** Node's error when nothing listens at the address, as undici passes it on. */
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:4010"), {
      errno: -111,
      code: "ECONNREFUSED",
      syscall: "connect",
      address: "127.0.0.1",
      port: 4010
    })
    const unreachable = Layer.succeed(
      HttpClient.HttpClient,
      HttpClient.make((request) => Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause: refused })))
    )

    it.effect("a base URL where nothing listens fails in 1.5 s, in one line saying so and what to check, with no restart", () => {
      const run = { fake: makeFake(), capture: makeCapture(), http: unreachable }
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(cli(["export", "users", "--base-url", "http://127.0.0.1:4010"], run))
        // The core's tests time the 1.5 s; here the steps only need to get there.
        const exit = yield* ClockSteps.runToEnd({ step: "100 millis", maxSteps: 100 })(fiber)
        expect(Failure.exitCode(exit)).toBe(1)
        expect(lines(run.capture.stderr())).toEqual([
          "Unreachable: Could not connect to http://127.0.0.1:4010 for the users scroll: nothing is listening there (connect ECONNREFUSED 127.0.0.1:4010); gave up after 3 attempts. Check --base-url (or INTERCOM_BASE_URL, or --region), that the server there is running, and the network or proxy in between."
        ])
      })
    })

    /** A workspace whose first page is `scroll_exists` the first `times` times it is asked for (every time by default). */
    const scrollExists = (run: { count: number }, times = Infinity) =>
      makeFake({
        records: 250,
        fault: (seen) => {
          if (seen.url.searchParams.has("scroll_param") || run.count >= times) return undefined
          run.count++
          return errorList(400, "scroll_exists", "scroll already exists for this workspace")
        }
      })

    for (const [flags, opened, most] of [
      [[], 13, "2 min 00 s"],
      [["--wait-for-other-scroll", "30s"], 4, "30 s"],
      [["--wait-for-other-scroll", "0"], 1, undefined]
    ] as const) {
      it.effect(`another scroll open on Intercom's side: ${flags.join(" ") || "by default"} waits up to ${most ?? "nothing"}, says whose it may be, then says what to do`, () => {
        const tries = { count: 0 }
        // A workspace of its own: no scroll of it was cut short in this process, so whose scroll it is nobody knows.
        const run = { fake: scrollExists(tries), capture: makeCapture(), env: { INTERCOM_ACCESS_TOKEN: `tok_other_scroll_${flags.join("_")}` } }
        return Effect.gen(function*() {
          const fiber = yield* Effect.fork(cli(["export", "users", ...flags], run))
          const exit = yield* ClockSteps.runToEnd({ step: "1 second", maxSteps: 200 })(fiber)
          expect(Failure.exitCode(exit)).toBe(1)
          expect(tries.count).toBe(opened)
          const stderr = lines(run.capture.stderr())
          expect(stderr.at(-1)).toMatch(
            /^ConcurrentScroll: Another scroll of this workspace is open on Intercom's side, so the users scroll could not start \(request req_1\): .* wait longer for it with --wait-for-other-scroll DURATION/
          )
          const explained = stderr.filter((line) => line.includes("another scroll of this workspace is open on Intercom's side (another app's"))
          expect(explained).toEqual(most === undefined ? [] : [expect.stringContaining(`Waiting up to ${most} for it to close`)])
        })
      })
    }

    /**
     * Waits in real time until the program forked as `fiber` has made its first request (or ended): what comes before
     * it (reading the note an earlier export left) is real file I/O, during which a test clock moved on in steps would
     * let the program's time run on by as many seconds as the machine is slow.
     */
    const firstRequest = <A, E>(tries: { readonly count: number }, fiber: Fiber.RuntimeFiber<A, E>) =>
      Effect.gen(function*() {
        while (tries.count === 0 && (yield* Fiber.poll(fiber))._tag === "None") {
          yield* TestServices.provideLive(Effect.sleep("10 millis"))
        }
      })

    /**
     * An export told not to wait (`--wait-for-other-scroll 0`) that meets an open scroll of the workspace: it fails,
     * and its last line says whose scroll it took that to be. Its stderr whole, for what else it said.
     */
    const impatientExport = (env: Record<string, string>) =>
      Effect.gen(function*() {
        const refusals = { count: 0 }
        const impatient = { fake: scrollExists(refusals), capture: makeCapture(), env }
        const refused = yield* Effect.fork(cli(["export", "users", "--wait-for-other-scroll", "0"], impatient))
        // The CLI reads the note in real time: the clock moves only once its first request has met the scroll.
        yield* firstRequest(refusals, refused)
        expect(Failure.exitCode(yield* ClockSteps.runToEnd({ step: "1 second", maxSteps: 10 })(refused))).toBe(1)
        const stderr = impatient.capture.stderr()
        return { stderr, lastLine: lines(stderr).at(-1) }
      })

    it.scoped("after an export cut its scroll short, the next (as in a process of its own) says the scroll is its own, and how long it stays", () => {
      const token = "tok_own_scroll_0123456789abcdef"
      return Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const env = { INTERCOM_ACCESS_TOKEN: token, TMPDIR: yield* tempDirectory }
        // The first export gets its first page, then is interrupted while it waits for the second: its scroll stays open.
        const first = makeFake({ records: 250 })
        const { hanging, http } = yield* hangingOnPage2(first)
        const cut = yield* Effect.fork(cli(["export", "users"], { fake: first, capture: makeCapture(), env, http }))
        yield* Deferred.await(hanging)
        expect(Failure.exitCode(yield* Fiber.interrupt(cut))).toBe(130)
        // A new process remembers nothing of the old one but what that one wrote down.
        WorkspaceLock.locks.clear()

        // Told not to wait, the next export fails saying whose scroll it is and when to run again.
        expect((yield* impatientExport(env)).lastLine).toMatch(
          /^ConcurrentScroll: This program's own scroll of this workspace, cut short a moment ago, is still open on Intercom's side, .* Run again in about a minute/
        )

        yield* TestClock.adjust("5 seconds")
        // Intercom answers scroll_exists until it drops the scroll, a minute after its last use.
        const tries = { count: 0 }
        const next = { fake: scrollExists(tries, 6), capture: makeCapture(), env }
        const fiber = yield* Effect.fork(cli(["export", "users"], next))
        // As above: a clock moved on while the note is read would make the scroll older than it is.
        yield* firstRequest(tries, fiber)
        expect(yield* ClockSteps.runToEnd({ step: "1 second", maxSteps: 200 })(fiber)).toEqual(Exit.void)
        // Said once, when the wait begins (the clock moves on in steps meanwhile, so to within a few seconds).
        const explained = lines(next.capture.stderr()).filter((line) => line.includes("Intercom keeps it open"))
        expect(explained).toHaveLength(1)
        const [, ago, more] = /^users: the scroll is this tool's own: an earlier export or sync of this workspace cut it short (\d) s ago \(interrupted, stopped by a failure, or its reader closed the pipe\), and Intercom keeps it open about a minute after its last use, so about (\d\d) s more\. Waiting up to 2 min 00 s for it to close \(--wait-for-other-scroll\)\.$/
          .exec(explained[0]) ?? []
        expect(Number(ago) + Number(more)).toBe(60)
        expect(Number(ago)).toBeLessThan(10)
        expect(tries.count).toBe(6)
        // This one reached its end and left no scroll open: an export after it has nothing to say.
        expect(yield* fs.readDirectory(`${env.TMPDIR}/intercom-scroll-${process.getuid?.() ?? ""}`)).toEqual([])
      }).pipe(Effect.provide(NodeContext.layer))
    })

    it.scoped("a first page that came and could not be taken (over --max-response-bytes) opened the scroll: the next export says it is its own", () => {
      const token = "tok_own_scroll_invalid_first_page"
      return Effect.gen(function*() {
        const env = { INTERCOM_ACCESS_TOKEN: token, TMPDIR: yield* tempDirectory }
        const refusedPage = makeCapture()
        const first = yield* cli(["export", "users", "--max-response-bytes", "1k"], { fake: makeFake({ records: 250 }), capture: refusedPage, env })
        expect(Failure.exitCode(first)).toBe(1)
        expect(refusedPage.stderr()).toMatch(/^InvalidResponse: /m)
        WorkspaceLock.locks.clear()
        expect((yield* impatientExport(env)).lastLine).toMatch(/^ConcurrentScroll: This program's own scroll of this workspace, cut short a moment ago, is still open/)
      }).pipe(Effect.provide(NodeContext.layer))
    })

    it.scoped("a sync that fails after its scroll's end (its deletion pass refused by the database) leaves no scroll noted open: the next run takes another app's scroll for another app's", () => {
      const token = "tok_sync_failed_after_its_end"
      return Effect.gen(function*() {
        const directory = yield* tempDirectory
        const env = { INTERCOM_ACCESS_TOKEN: token, TMPDIR: directory }
        const filename = `${directory}/intercom.sqlite`
        const synced = { fake: makeFake({ records: 120 }), capture: makeCapture(), env }
        expect(yield* cli(["sync", "users", "--database", `sqlite:${filename}`], synced)).toEqual(Exit.void)
        // A trigger of the operator's refuses every deletion: the next sync's pass, after its scroll's end, fails.
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql.unsafe(`CREATE TRIGGER refused_deletion BEFORE UPDATE OF deleted_at ON intercom_users_records
            WHEN NEW.deleted_at IS NOT NULL BEGIN SELECT RAISE(ABORT, 'deletions refused by the operator'); END`)
        }).pipe(Effect.provide(SqliteClient.layer({ filename })), Effect.orDie)
        WorkspaceLock.locks.clear()
        // 20 users fewer: the scroll ends, then the pass marks them deleted, and the trigger refuses it.
        const failed = { fake: makeFake({ records: 100 }), capture: makeCapture(), env }
        expect(Failure.exitCode(yield* cli(["sync", "users", "--database", `sqlite:${filename}`], failed))).toBe(1)
        expect(failed.capture.stderr()).toContain("deletions refused by the operator")
        WorkspaceLock.locks.clear()

        // Another app's scroll holds the workspace: the next export says so, not that the scroll is its own.
        const { lastLine, stderr } = yield* impatientExport(env)
        expect(lastLine).toMatch(/^ConcurrentScroll: .* Another app may be scrolling the workspace/)
        expect(stderr).not.toContain("own scroll")
      }).pipe(Effect.provide(NodeContext.layer))
    })

    it.effect("waits out another client's scroll of the workspace (the default schedule), then exports everything", () => {
      // The simulator in process, on the TestClock: another client's scroll holds the workspace for its first 8 s, and
      // the default schedule looks again 10 s after it met it. (Was a process test that waited those 10 s.)
      const workspace = { token: "tok_foreign_scroll_waited_out", seed: 7, users: 1_200, faults: { foreignScroll: 8 } }
      const simulator = Simulator.layerClient({ workspaces: [workspace], pageSize: 50 })
      const run = { fake: makeFake({ records: 0 }), capture: makeCapture(), env: { INTERCOM_ACCESS_TOKEN: workspace.token } }
      return Effect.gen(function*() {
        const served = yield* Simulator.Simulator
        const requests = Effect.map(served.stats, (stats) => stats.workspaces[workspace.token]?.requests ?? 0)
        const fiber = yield* Effect.fork(cli(["export", "users"], { ...run, http: Layer.succeedContext(yield* Effect.context<HttpClient.HttpClient>()) }))
        // The CLI reads its files in real time: the clock moves only once its first request has met the other scroll.
        while ((yield* requests) === 0) yield* TestServices.provideLive(Effect.sleep("10 millis"))
        expect(yield* ClockSteps.runToEnd({ step: "1 second", maxSteps: 100 })(fiber)).toEqual(Exit.void)
        // Plain progress prints every 5 s; the wait spans that line.
        expect(run.capture.stderr()).toContain("waiting for another scroll of the workspace to close on Intercom's side")
        const ids = lines(run.capture.stdout()).map((line) => (JSON.parse(line) as { readonly id: string }).id)
        expect(ids.sort()).toEqual([...yield* served.ids(workspace.token, "users")].sort())
        expect((yield* served.stats).workspaces[workspace.token]).toMatchObject({ scrollsOpened: 1, errorsByCode: { scroll_exists: 1 } })
      }).pipe(Effect.provide(simulator))
    })

    it("ScrollFlags.parseDuration reads seconds, minutes, hours and days as a person types them", () => {
      const read = (text: string) => Either.map(ScrollFlags.parseDuration(text), Duration.toMillis)
      expect(read("90")).toEqual(Either.right(90_000))
      expect(read("90s")).toEqual(Either.right(90_000))
      expect(read("2 minutes")).toEqual(Either.right(120_000))
      expect(read("1.5h")).toEqual(Either.right(5_400_000))
      expect(read("90d")).toEqual(Either.right(90 * 86_400_000))
      expect(Either.isLeft(read("10 parsecs"))).toBe(true)
      expect(read("36500d")).toEqual(Either.right(36_500 * 86_400_000))
      expect(ScrollFlags.parseDuration("36501d")).toEqual(Either.left(`"36501d" is longer than 100 years`))
      expect(Either.isLeft(read("9".repeat(400)))).toBe(true)
    })

    it("ScrollFlags.parseSize reads bytes, and KiB, MiB and GiB by their letter, as curl and ulimit do", () => {
      expect(["1", "512", "64k", "64K", "64KB", "64KiB", "64M", "64mib", "1.5G", "2 GB", "100b"].map(ScrollFlags.parseSize))
        .toEqual([1, 512, 65_536, 65_536, 65_536, 65_536, 67_108_864, 67_108_864, 1_610_612_736, 2_147_483_648, 100])
      expect(["0", "0.4", "", "M", "1T", "-1", "1e6", "1 024"].map(ScrollFlags.parseSize)).toEqual(Array(8).fill(undefined))
    })
  })

  describe("restarts", () => {
    const serverErrorOnce = () => {
      let failed = false
      return makeFake({
        records: 250,
        fault: (seen) => {
          if (failed || seen.url.searchParams.get("scroll_param") !== "s1-1") return undefined
          failed = true
          return errorList(500, "server_error", "Request failed due to an internal network error. Please restart the scroll operation.")
        }
      })
    }

    it.effect("--request-timeout bounds a page that never arrives: a transport failure at that time, not the client's 30 s", () =>
      Effect.gen(function*() {
        const fake = makeFake({ records: 250 })
        const capture = makeCapture()
        const { hanging, http } = yield* hangingOnPage2(fake)
        const fiber = yield* Effect.fork(cli(["export", "users", "--request-timeout", "5s", "--max-restarts", "0"], { fake, capture, http }))
        yield* Deferred.await(hanging)
        yield* TestClock.adjust("4999 millis")
        expect(fiber.unsafePoll()).toBeNull()
        yield* TestClock.adjust("1 millis")
        expect(Failure.exitCode(yield* Fiber.join(fiber))).toBe(1)
        expect(lines(capture.stderr()).at(-1)).toMatch(/^RestartRequired: .*no whole response within 5000 ms \(its body included\)/)
        // The advice is the timeout's: more restarts of pages that are all that slow would not help.
        expect(lines(capture.stderr()).at(-1)).toMatch(/give it longer with --request-timeout DURATION, such as --request-timeout 2m; else run again later\.$/)
        expect(lines(capture.stderr()).at(-1)).not.toContain("--max-restarts")
      }))

    it.effect("--max-response-bytes: a page over it is refused as InvalidResponse naming the flag; raised, the same pages pass", () =>
      Effect.gen(function*() {
        const small = { fake: makeFake({ records: 250 }), capture: makeCapture() }
        expect(Failure.exitCode(yield* cli(["export", "users", "--max-response-bytes", "1k"], small))).toBe(1)
        expect(lines(small.capture.stderr()).at(-1)).toMatch(
          /^InvalidResponse: Page 1 of the users scroll .*over the 1024-byte limit .*raise the limit with --max-response-bytes SIZE/
        )
        expect(small.capture.stdout()).toBe("")
        const raised = { fake: makeFake({ records: 250 }), capture: makeCapture() }
        expect(yield* cli(["export", "users", "--max-response-bytes", "2MiB"], raised)).toEqual(Exit.void)
        expect(lines(raised.capture.stdout())).toHaveLength(250)
      }))

    it.effect("a record nested 5,000 levels deep ends an export as InvalidResponse naming it, in every format; 1,000 deep is written whole", () =>
      Effect.gen(function*() {
        // As text: JSON.stringify overflows on the deep one, which is the point.
        const nested = (levels: number) => `${"{\"a\":".repeat(levels - 1)}{}${"}".repeat(levels - 1)}`
        const deepUser = (levels: number) =>
          `{"type":"user","id":"deep1","email":"d@example.com","custom_attributes":${nested(levels - 1)}}`
        const serving = (levels: number) =>
          makeFake({
            fault: (seen) =>
              new Response(
                seen.index === 1
                  ? `{"type":"user.list","users":[{"type":"user","id":"u1"},${deepUser(levels)}],"scroll_param":"p2"}`
                  : `{"type":"user.list","users":[],"scroll_param":"p3"}`,
                { status: 200, headers: { "content-type": "application/json" } }
              )
          })
        for (const format of ["ndjson", "json", "csv"]) {
          const run = { fake: serving(5_000), capture: makeCapture() }
          const exit = yield* cli(["export", "users", "--format", format], run)
          expect(Failure.exitCode(exit)).toBe(1)
          expect(lines(run.capture.stderr()).at(-1)).toMatch(
            /^InvalidResponse: Page 1 of the users scroll is not a valid Intercom response: at users\.1\.custom_attributes: objects and arrays nested more than 1000 levels deep .*\(in the record with id "deep1"\)/
          )
        }
        const whole = { fake: serving(1_000), capture: makeCapture() }
        expect(yield* cli(["export", "users"], whole)).toEqual(Exit.void)
        const written = lines(whole.capture.stdout())
        expect(written).toHaveLength(2)
        expect(written[1]).toBe(deepUser(1_000))
      }))

    it.effect("--max-restarts 0 never starts over", () => {
      const run = { fake: serverErrorOnce(), capture: makeCapture() }
      return Effect.gen(function*() {
        const exit = yield* cli(["export", "users", "--max-restarts", "0"], run)
        expect(Failure.exitCode(exit)).toBe(1)
        expect(run.capture.stderr()).toMatch(
          /^RestartRequired: The users scroll broke off at page 2 .* Run again later, or try again more often with --max-restarts N/
        )
        expect(run.fake.opened()).toBe(1)
      })
    })

    it.effect("restarts, writing each record once by default", () => {
      const run = { fake: serverErrorOnce(), capture: makeCapture() }
      return Effect.gen(function*() {
        const exit = yield* Effect.fork(cli(["export", "users", "--max-restarts", "1"], run)).pipe(Effect.flatMap(runToEnd))
        expect(exit).toEqual(Exit.void)
        expect(run.fake.opened()).toBe(2)
        expect(lines(run.capture.stdout())).toHaveLength(250)
        expect(run.capture.stderr()).toContain("users: starting over from the first page (attempt 2)")
        expect(run.capture.stderr()).toMatch(/Exported 250 users .*: \d+ pages, 1 restart,/)
      })
    })

    it.effect("--no-dedupe writes again what a restart delivers again", () => {
      const run = { fake: serverErrorOnce(), capture: makeCapture() }
      return Effect.gen(function*() {
        const exit = yield* Effect.fork(cli(["export", "users", "--max-restarts", "1", "--no-dedupe"], run)).pipe(
          Effect.flatMap(runToEnd)
        )
        expect(exit).toEqual(Exit.void)
        expect(lines(run.capture.stdout())).toHaveLength(350)
      })
    })

    it.effect("--max-restarts N starts over at most N times", () => {
      const fake = makeFake({
        records: 250,
        fault: (seen) =>
          seen.url.searchParams.get("scroll_param")?.endsWith("-1") === true
            ? errorList(500, "server_error", "Request failed due to an internal network error.")
            : undefined
      })
      const run = { fake, capture: makeCapture() }
      return Effect.gen(function*() {
        const exit = yield* Effect.fork(cli(["export", "users", "--max-restarts", "3"], run)).pipe(Effect.flatMap(runToEnd))
        expect(Failure.exitCode(exit)).toBe(1)
        expect(fake.opened()).toBe(4)
      })
    })

    it("ScrollOptions.restartAtMost waits about a second before the first restart", () => {
      const expired = new ScrollError.Expired({ resource: "users", page: 2 })
      const delays = Effect.runSync(Schedule.run(Schedule.delays(ScrollOptions.restartAtMost(2)), 0, [expired]))
      const first = Duration.toMillis(Chunk.unsafeGet(delays, 0))
      expect(first).toBeGreaterThanOrEqual(800)
      expect(first).toBeLessThanOrEqual(1200)
    })

    it("ScrollOptions.restartAtMost backs off exponentially, but never much over a minute, however many restarts it allows", () => {
      const expired = new ScrollError.Expired({ resource: "users", page: 2 })
      const delays = Effect.runSync(
        Schedule.run(Schedule.delays(ScrollOptions.restartAtMost(20)), 0, Array.from({ length: 25 }, () => expired))
      ).pipe(Chunk.toReadonlyArray, (all) => all.slice(0, 20).map((delay) => Duration.toSeconds(delay)))
      // 1, 2, 4 … 32 s with ±20 % jitter, then a minute (±20 %) each.
      expect(delays[5]).toBeGreaterThanOrEqual(32 * 0.8)
      expect(Math.max(...delays)).toBeLessThanOrEqual(60 * 1.2)
      expect(delays.slice(6).every((delay) => delay >= 60 * 0.8)).toBe(true)
    })
  })

  describe("where requests go", () => {
    const origin = (args: ReadonlyArray<string>, env: Record<string, string>) => {
      const run = { fake: makeFake({ records: 0 }), capture: makeCapture(), env: { INTERCOM_ACCESS_TOKEN: TOKEN, ...env } }
      return cli(["export", "users", ...args], run).pipe(Effect.map(() => run.fake.requests[0]?.url.origin))
    }

    it.effect("INTERCOM_BASE_URL, then INTERCOM_REGION, then the US", () =>
      Effect.gen(function*() {
        expect(yield* origin([], {})).toBe("https://api.intercom.io")
        expect(yield* origin([], { INTERCOM_REGION: "au" })).toBe("https://api.au.intercom.io")
        expect(yield* origin([], { INTERCOM_BASE_URL: "https://proxy.test", INTERCOM_REGION: "au" })).toBe("https://proxy.test")
      }))

    it.effect("--base-url and --region flags win over the environment", () =>
      Effect.gen(function*() {
        const env = { INTERCOM_BASE_URL: "https://proxy.test", INTERCOM_REGION: "au" }
        expect(yield* origin(["--base-url", "https://flag.test"], env)).toBe("https://flag.test")
        expect(yield* origin(["--region", "eu"], env)).toBe("https://api.eu.intercom.io")
        // In any case, as INTERCOM_REGION is read.
        expect(yield* origin(["--region", "EU"], env)).toBe("https://api.eu.intercom.io")
      }))
  })

  it.scoped("Ctrl-C: exit 130, the previous file intact, no temporary file, the workspace free again", () => {
    const fake = makeFake({ records: 250 })
    const capture = makeCapture()
    return Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* tempDirectory
      const target = `${directory}/users.ndjson`
      yield* fs.writeFileString(target, "previous export\n")
      const { hanging, http } = yield* hangingOnPage2(fake)

      const fiber = yield* Effect.fork(cli(["export", "users", "--out", target], { fake, capture, http }))
      yield* Deferred.await(hanging)
      expect(yield* fs.readDirectory(directory)).toHaveLength(2)
      const exit = yield* Fiber.interrupt(fiber)

      expect(Failure.exitCode(exit)).toBe(130)
      expect(capture.stderr()).toMatch(/^Interrupted: /)
      expect(yield* fs.readFileString(target)).toBe("previous export\n")
      expect(yield* fs.readDirectory(directory)).toEqual(["users.ndjson"])
      // A lock left behind would make this wait forever.
      const again = yield* cli(["export", "users", "--out", target], { fake, capture: makeCapture() })
      expect(again).toEqual(Exit.void)
      expect(lines(yield* fs.readFileString(target))).toHaveLength(250)
    }).pipe(Effect.provide(NodeContext.layer))
  })
})

describe("intercom-scroll sync", () => {
  it.scopedLive("on a machine whose clock is an hour ahead, sync stamps its run and records with the database's time", () => {
    const run = { fake: makeFake({ records: 120 }), capture: makeCapture() }
    return Effect.gen(function*() {
      const url = Redacted.value(yield* Effect.orDie(PostgresDatabase.make))
      const aheadByAnHour = Effect.map(Effect.clock, (base): Clock.Clock => ({
        [Clock.ClockTypeId]: Clock.ClockTypeId,
        unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis() + 3_600_000,
        unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos() + 3_600_000_000_000n,
        currentTimeMillis: Effect.map(base.currentTimeMillis, (millis) => millis + 3_600_000),
        currentTimeNanos: Effect.map(base.currentTimeNanos, (nanos) => nanos + 3_600_000_000_000n),
        sleep: (duration) => base.sleep(duration)
      }))
      const exit = yield* Effect.flatMap(aheadByAnHour, (clock) => Effect.withClock(cli(["sync", "users", "--database", url], run), clock))
      expect(Exit.isSuccess(exit)).toBe(true)
      const [row] = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        return yield* sql<{ readonly run: number | string; readonly seen: number | string }>`SELECT
          (SELECT EXTRACT(EPOCH FROM now() - started_at) FROM ${sql(Sync.runsTable)}) AS run,
          (SELECT EXTRACT(EPOCH FROM now() - max(last_seen_at)) FROM ${sql("intercom_users_seen")}) AS seen`
      }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url) })), Effect.orDie)
      // Seconds ago by the database's clock, not an hour ahead of it.
      for (const ago of [Number(row?.run), Number(row?.seen)]) {
        expect(ago).toBeGreaterThanOrEqual(-1)
        expect(ago).toBeLessThan(60)
      }
    })
  }, 60_000)

  it.scoped("sync --table-lock-timeout 0 is refused as the flag is read, in the sync's words: no database file made, no request sent", () => {
    const run = { fake: makeFake(), capture: makeCapture() }
    return Effect.gen(function*() {
      const filename = `${yield* tempDirectory}/intercom.sqlite`
      const exit = yield* cli(["sync", "users", "--database", `sqlite:${filename}`, "--table-lock-timeout", "0"], run)
      expect(Failure.exitCode(exit)).toBe(1)
      // The sync refuses it as "tableLockTimeout must be longer than zero", but only once it has begun.
      expect(run.capture.stderr()).toContain("--table-lock-timeout: \"0\" must be longer than zero")
      expect(yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.exists(filename))).toBe(false)
      expect(run.fake.requests).toHaveLength(0)
    }).pipe(Effect.provide(NodeContext.layer))
  })

  it.scopedLive("sync --unanswered-timeout takes a duration, and refuses zero or one past 24.8 days as the flag is read: no database file made, no request sent", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* tempDirectory
      for (
        const [value, words] of [
          ["0", "--unanswered-timeout: \"0\" must be longer than zero"],
          ["25d", "--unanswered-timeout: \"25d\" is longer than 24d 20h 31m 23s 647ms: a timer waits at most 2147483647 ms (about 24.8 days)"],
          ["soon", "--unanswered-timeout"]
        ] as const
      ) {
        const run = { fake: makeFake(), capture: makeCapture() }
        const filename = `${directory}/refused.sqlite`
        const exit = yield* cli(["sync", "users", "--database", `sqlite:${filename}`, "--unanswered-timeout", value], run)
        expect(Failure.exitCode(exit)).toBe(1)
        expect(run.capture.stderr()).toContain(words)
        expect(yield* fs.exists(filename)).toBe(false)
        expect(run.fake.requests).toHaveLength(0)
      }
      const run = { fake: makeFake({ records: 30 }), capture: makeCapture() }
      const exit = yield* cli(["sync", "users", "--database", `sqlite:${directory}/taken.sqlite`, "--unanswered-timeout", "30s"], run)
      expect(exit).toEqual(Exit.void)
      expect(run.fake.requests.length).toBeGreaterThan(0)
      const helped = { fake: makeFake(), capture: makeCapture() }
      expect(yield* cli(["sync", "--help"], helped)).toEqual(Exit.void)
      expect(helped.capture.stdout()).toContain("--unanswered-timeout DURATION")
      expect(helped.capture.stdout()).toContain(
        "while a statement of the sync waits for its answer, before the sync fails with LockLost, such as 30s or 10m (default 2m)."
      )
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("sync --lock-timeout refuses one past 24.8 days as the flag is read (no database file made), and takes 0: one try, no wait", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* tempDirectory
      const refused = { fake: makeFake(), capture: makeCapture() }
      const filename = `${directory}/refused.sqlite`
      const exit = yield* cli(["sync", "users", "--database", `sqlite:${filename}`, "--lock-timeout", "25d"], refused)
      expect(Failure.exitCode(exit)).toBe(1)
      expect(refused.capture.stderr()).toContain(
        "--lock-timeout: \"25d\" is longer than 24d 20h 31m 23s 647ms: the sync waits at most 2147483647 ms (about 24.8 days) for another's lock; leave the flag out to wait as long as it takes"
      )
      expect(yield* fs.exists(filename)).toBe(false)
      expect(refused.fake.requests).toHaveLength(0)
      const run = { fake: makeFake({ records: 30 }), capture: makeCapture() }
      expect(yield* cli(["sync", "users", "--database", `sqlite:${directory}/taken.sqlite`, "--lock-timeout", "0"], run)).toEqual(Exit.void)
      expect(run.fake.requests.length).toBeGreaterThan(0)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a table of the sync's dropped by hand: exit 1 before any scroll opens, and its line says what the database said and what to do", () => {
    const run = { fake: makeFake(), capture: makeCapture() }
    return Effect.gen(function*() {
      const filename = `${yield* tempDirectory}/intercom.sqlite`
      yield* Effect.gen(function*() {
        yield* Sync.migrate
        const sql = yield* SqlClient.SqlClient
        yield* sql`DROP TABLE intercom_users_seen`
      }).pipe(Effect.provide(SqliteClient.layer({ filename })), Effect.orDie)
      const exit = yield* cli(["sync", "users", "--database", `sqlite:${filename}`], run)
      expect(Failure.exitCode(exit)).toBe(1)
      // Nothing asked of Intercom: no scroll left open for the next run to wait out.
      expect(run.fake.requests).toHaveLength(0)
      expect(lines(run.capture.stderr())).toHaveLength(1)
      expect(run.capture.stderr()).toMatch(
        /^TablesAltered: The sync of workspace "default" met a table, view, column or key of its own missing: no such table: (main\.)?intercom_users_seen\. The sync's tables are not as its migrations made them \(a table, view, column or key dropped or renamed by hand\)\. One renamed: give it its name back\. A view dropped: create it again .* A table or column dropped, what it held is gone: sync into a new database \(or, in PostgreSQL, a schema of its own\), where the first sync copies every record again \(.*\)\.\n$/
      )
    }).pipe(Effect.provide(NodeContext.layer))
  })

  it.scoped("a migration that fails: exit 1, and its line says what the database said, not only that a statement failed", () => {
    const run = { fake: makeFake(), capture: makeCapture() }
    return Effect.gen(function*() {
      const filename = `${yield* tempDirectory}/intercom.sqlite`
      // At 8, with a column of the user's own where migration 9 adds one.
      yield* Effect.gen(function*() {
        yield* Migrator.make({})({
          loader: Migrator.fromRecord(Object.fromEntries(Object.entries(Migrations.migrations).slice(0, 8))),
          table: Sync.migrationsTable
        })
        const sql = yield* SqlClient.SqlClient
        yield* sql`ALTER TABLE intercom_sync_runs ADD COLUMN alive_at TEXT`
      }).pipe(Effect.provide(SqliteClient.layer({ filename })), Effect.orDie)
      const exit = yield* cli(["sync", "users", "--database", `sqlite:${filename}`], run)
      expect(Failure.exitCode(exit)).toBe(1)
      expect(lines(run.capture.stderr())).toHaveLength(1)
      expect(run.capture.stderr()).toMatch(
        /^MigrationError: Migration "9_run_alive_at" failed: Failed to (prepare|execute) statement: duplicate column name: alive_at\n$/
      )
    }).pipe(Effect.provide(NodeContext.layer))
  })
})
