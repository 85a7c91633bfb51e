import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "@effect/vitest"
import { SyncError } from "../src/index.js"

describe("SyncError.explain", () => {
  it("follows a statement's failure with what the driver said", () => {
    const error = new SqlError({ message: "Failed to execute statement", cause: new Error("database is locked") })
    expect(SyncError.explain(error)).toBe("Failed to execute statement: database is locked")
  })

  it("says a message once: a cause that says nothing more, or is no Error, adds nothing", () => {
    const message = "connect ECONNREFUSED 127.0.0.1:5432"
    expect(SyncError.explain(new SqlError({ message, cause: new Error(message) }))).toBe(message)
    expect(SyncError.explain(new SqlError({ message, cause: new Error("") }))).toBe(message)
    expect(SyncError.explain(new SqlError({ message, cause: "a string" }))).toBe(message)
  })
})
