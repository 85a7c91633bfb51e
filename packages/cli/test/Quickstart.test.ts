import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { IntercomClient } from "@intercom-scroll/core"
import { Embedded, Simulator } from "@intercom-scroll/simulator"
import { ConfigProvider, Effect, Layer } from "effect"
import * as Quickstart from "../src/internal/quickstart.js"
import { makeCapture } from "./support/capture.js"
import { ClockSteps } from "@intercom-scroll/testing"

/** The simulator answers over real HTTP, so each step also lets a little real time pass for the sockets. */
const runToEnd = ClockSteps.runToEnd({ step: "100 millis", maxSteps: 2_000, realPause: "5 millis" })

const token = "dG9rOmV4YW1wbGU6MTIzNA=="

const environment = (variables: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(variables))))

describe("Quickstart", () => {
  it.scoped("without a token, exports every simulated user once to the file, through a restart and the rate limit", () => {
    const capture = makeCapture()
    return Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "quickstart-test-" })
      const simulator = {
        workspaces: [{ token, users: 1_000, faults: { restartAt: [5], rateLimit: { limit: 6, windowSeconds: 10 } } }]
      }

      const summary = yield* Quickstart.run({ simulator, out: path.join(directory, "out", "users.ndjson") }).pipe(
        environment({}),
        Effect.fork,
        Effect.flatMap(runToEnd)
      )

      const ids = (yield* fs.readFileString(path.join(directory, "out", "users.ndjson")))
        .split("\n").filter((line) => line !== "").map((line) => (JSON.parse(line) as { id: string }).id)
      expect(ids).toHaveLength(1_000)
      expect(new Set(ids).size).toBe(1_000)
      expect(summary).toMatchObject({ records: 1_000, restarts: 1 })
      expect(summary.rateLimitWaits).toBeGreaterThan(0)
      expect(capture.stderr()).toMatch(/^No INTERCOM_ACCESS_TOKEN: exporting from the embedded simulator at http:\/\/127\.0\.0\.1:\d+ \(1,000 users, a 500 at page request 5, 6 requests per 10 s\)\.\n/)
      expect(capture.stderr()).toMatch(/starting over from the first page \(attempt 2\)/)
      expect(capture.stderr()).toMatch(/Exported 1,000 users to .*users\.ndjson in .*: \d+ pages, 1 restart, \d+ rate-limit waits?, /)
    }).pipe(Effect.provide(Layer.merge(NodeContext.layer, capture.layer)))
  }, 60_000)

  it.scoped("with a token, exports from the workspace at INTERCOM_BASE_URL and says so", () => {
    const capture = makeCapture()
    return Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "quickstart-test-" })
      // A simulator of the test's own stands in for Intercom; the quickstart's would have another token and size.
      const baseUrl = yield* Simulator.baseUrl
      const out = path.join(directory, "out", "users.ndjson")
      const summary = yield* Quickstart.run({ simulator: { workspaces: [{ token, users: 1_000 }] }, out }).pipe(
        environment({ INTERCOM_ACCESS_TOKEN: "dG9rOm90aGVyOjU2Nzg=", INTERCOM_BASE_URL: baseUrl }),
        Effect.fork,
        Effect.flatMap(runToEnd)
      )
      expect(summary).toMatchObject({ records: 250, restarts: 0 })
      expect(capture.stderr()).toMatch(new RegExp(`^Exporting from ${baseUrl}\\.\\n`))
      const lines = (yield* fs.readFileString(out)).split("\n")
      expect(lines.filter((line) => line !== "")).toHaveLength(250)
    }).pipe(Effect.provide(Layer.mergeAll(
      NodeContext.layer,
      capture.layer,
      Simulator.layerServer({ workspaces: [{ token: "dG9rOm90aGVyOjU2Nzg=", users: 250 }] })
    )))
  }, 60_000)
})

describe("Quickstart.layer", () => {
  const simulator = { workspaces: [{ token, users: 10 }] }
  const where = Effect.all({ target: Embedded.Target, client: IntercomClient.IntercomClient }).pipe(
    Effect.map(({ client, target }) => ({
      target: target._tag,
      baseUrl: client.baseUrl,
      simulator: target._tag === "Simulated" ? target.baseUrl : undefined
    })),
    Effect.provide(Quickstart.layer(simulator))
  )

  it.scoped("without INTERCOM_ACCESS_TOKEN, or with a blank one, the client points at the embedded simulator", () =>
    Effect.gen(function*() {
      for (const variables of [{}, { INTERCOM_ACCESS_TOKEN: " " }, { INTERCOM_ACCESS_TOKEN: "", INTERCOM_REGION: "eu" }]) {
        const seen = yield* where.pipe(environment(variables))
        expect(seen.target).toBe("Simulated")
        expect(seen.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
        expect(seen.baseUrl).toBe(seen.simulator)
      }
    }))

  it.scoped("a variable the client refuses: InvalidConfig, naming it, as the CLI's export says it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(where.pipe(environment({ INTERCOM_ACCESS_TOKEN: token, INTERCOM_REGION: "xx" })))
      expect(error._tag).toBe("InvalidConfig")
      expect(error.message).toMatch(/^INTERCOM_REGION is "xx"; /)
    }))

  it.scoped("with a token, the client is the environment's: its region or base URL, and no simulator", () =>
    Effect.gen(function*() {
      expect(yield* where.pipe(environment({ INTERCOM_ACCESS_TOKEN: token, INTERCOM_REGION: "eu" }))).toEqual({
        target: "Intercom",
        baseUrl: "https://api.eu.intercom.io",
        simulator: undefined
      })
      expect(yield* where.pipe(environment({ INTERCOM_ACCESS_TOKEN: token }))).toEqual({
        target: "Intercom",
        baseUrl: "https://api.intercom.io",
        simulator: undefined
      })
    }))
})
