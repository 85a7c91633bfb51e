/**
 * The CLI as a process against the standalone simulator, through the faults Intercom throws: the slow test, in a
 * file of its own so that it runs beside the others. (Waiting out another client's scroll, a wait of the default
 * schedule's 10 s here, is tested in process under the TestClock: packages/cli/test/Cli.test.ts.)
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { cli, simulator } from "./support/processes.js"
import { env, expectedIds, ndjsonIds, workspaceFlags } from "./support/workspace.js"

describe("intercom-scroll export, through faults", () => {
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
      expect(result.stderr).toMatch(/Exported 1,200 users to stdout in .*, 3 restarts, \d+ rate-limit waits?, /)
      expect(result.exitCode).toBe(0)
      expect(ndjsonIds(result.stdout).sort()).toEqual(yield* expectedIds)
    }).pipe(Effect.provide(NodeContext.layer)), 60_000)
})
