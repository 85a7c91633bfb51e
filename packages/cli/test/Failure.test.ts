import { ValidationError } from "@effect/cli"
import { HelpDoc } from "@effect/cli"
import { describe, expect, it } from "@effect/vitest"
import { ScrollError } from "@intercom-scroll/core"
import { Cause, Exit, FiberId } from "effect"
import { ExportError } from "../src/index.js"
import * as Failure from "../src/internal/failure.js"

const TOKEN = "tok_secret_0123456789"

const errors = [
  new ScrollError.Expired({ resource: "users", page: 4, requestId: "req_1" }),
  new ScrollError.ConcurrentScroll({ resource: "leads" }),
  new ScrollError.RestartRequired({
    resource: "users",
    page: 9,
    cause: { _tag: "ServerError", status: 500, detail: "Request failed due to an internal network error.\nPlease restart." }
  }),
  new ScrollError.RateLimited({ resource: "companies", page: 2, resetAt: 0, limit: 1000 }),
  new ScrollError.Unauthorized({ resource: "users", status: 401, code: "unauthorized", detail: "Access Token Invalid" }),
  new ScrollError.ApiError({ resource: "users", page: 1, status: 400, code: "intercom_version_invalid", detail: "nope" }),
  new ScrollError.InvalidResponse({ resource: "users", page: 3, issue: "not JSON" }),
  new ScrollError.InvalidOptions({ detail: "base URL http://example.com is plain http" }),
  new ExportError.OutputError({ target: "/tmp/out.ndjson", detail: "ENOSPC: no space left on device" }),
  new ExportError.InvalidConfig({ variable: "INTERCOM_ACCESS_TOKEN", detail: "is not set" })
]

describe("Failure.line", () => {
  for (const error of errors) {
    it(`names ${error._tag} with its message, on one line`, () => {
      const line = Failure.line(Cause.fail(error), [TOKEN])
      expect(line).toBe(`${error._tag}: ${error.message.replace(/\s*\n\s*/g, " ")}`)
      expect(line).not.toMatch(/[\r\n]/)
      expect(line).not.toMatch(/\bat \S+ \(/) // no stack frame
    })
  }

  it("replaces the token wherever a message carries it", () => {
    const echoed = new ScrollError.Unauthorized({
      resource: "users",
      status: 401,
      code: "unauthorized",
      detail: `Access Token Invalid: Bearer ${TOKEN}`
    })
    const line = Failure.line(Cause.fail(echoed), [TOKEN])
    expect(line).not.toContain(TOKEN)
    expect(line).toContain("Bearer <redacted>")
  })

  it("names a defect by its error, without its stack", () => {
    const line = Failure.line(Cause.die(new TypeError("boom")))
    expect(line).toBe("TypeError: boom")
  })

  it("says the export was interrupted", () => {
    expect(Failure.line(Cause.interrupt(FiberId.none))).toMatch(/^Interrupted: /)
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
    expect(Failure.exitCode(Exit.void, "SIGTERM")).toBe(0)
    expect(Failure.exitCode(Exit.fail(new ExportError.StdoutClosed()))).toBe(141)
    expect(Failure.exitCode(Exit.fail(new ExportError.OutputError({ target: "stdout", detail: "EBADF" })))).toBe(1)
    expect(Failure.exitCode(Exit.fail(errors[0]))).toBe(1)
    expect(Failure.exitCode(Exit.die(new Error("boom")))).toBe(1)
  })
})
