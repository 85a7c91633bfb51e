import { describe, expect, it } from "@effect/vitest"
import { NodeContext } from "@effect/platform-node"
import { Effect, Option, Stream } from "effect"
import { Cli } from "../src/index.js"
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { fileURLToPath } from "node:url"
import type { Answer } from "./helpers.js"

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
      child.kill("SIGINT")
      const [code] = yield* Effect.promise(() => once(child, "exit"))
      expect(code).toBe(0)
    }).pipe(Effect.scoped), 20_000)
})

describe("Cli.run", () => {
  it.live("refuses a count, a page size, a rate limit or a rate out of range in words naming the flag, and serves nothing", () =>
    Effect.gen(function*() {
      const refusals: Array<string> = []
      for (const flag of [["--users", "-5"], ["--page-size", "0"], ["--rate-limit", "0"], ["--restart-rate", "2"]]) {
        const exit = yield* Cli.run(["node", "intercom-simulator", "--port", "0", "--token", "T", ...flag]).pipe(
          // Served, it would run until stopped.
          Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => `${flag.join(" ")} was served` }),
          Effect.exit
        )
        refusals.push(JSON.stringify(exit))
      }
      expect(refusals[0]).toContain("--users must be 0 or more")
      expect(refusals[1]).toContain("--page-size must be 1 or more")
      expect(refusals[2]).toContain("--rate-limit must be 1 or more")
      expect(refusals[3]).toContain("--restart-rate must be between 0 and 1")
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)
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
