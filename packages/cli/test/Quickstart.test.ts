import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import * as Quickstart from "../src/internal/quickstart.js"
import { makeCapture } from "./support/capture.js"
import * as Clock from "./support/clock.js"

/** The simulator answers over real HTTP, so each step also lets a little real time pass for the sockets. */
const runToEnd = Clock.runToEnd({ step: "100 millis", maxSteps: 2_000, realPause: "5 millis" })

describe("Quickstart", () => {
  it.scoped("without a token, exports every simulated user once to out/users.ndjson under INIT_CWD, through a restart and the rate limit", () => {
    const capture = makeCapture()
    return Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "quickstart-test-" })
      const simulator = {
        workspaces: [{ token: "quickstart", users: 1_000, faults: { restartAt: [5], rateLimit: { limit: 6, windowSeconds: 10 } } }]
      }

      const summary = yield* Quickstart.run({ simulator }).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["INIT_CWD", directory]]))),
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
})
