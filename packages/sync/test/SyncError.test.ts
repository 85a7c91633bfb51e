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

  it("goes down the chain, with PostgreSQL's detail, which names what stands in the way", () => {
    const driver = Object.assign(new Error("cannot drop table intercom_users because other objects depend on it"), {
      detail: "view my_users depends on table intercom_users"
    })
    const statement = new SqlError({ message: "Failed to execute statement", cause: driver })
    const migration = new Error("Migration \"2_split_seen\" failed: Failed to execute statement", { cause: statement })
    expect(SyncError.explain(migration)).toBe(
      "Migration \"2_split_seen\" failed: Failed to execute statement: cannot drop table intercom_users because other objects depend on it (view my_users depends on table intercom_users)"
    )
  })

  it("says each refusal of a connection to a name of several addresses (Node's AggregateError, whose message is empty)", () => {
    const refused = new AggregateError([
      new Error("connect ECONNREFUSED ::1:5432"),
      new Error("connect ECONNREFUSED 127.0.0.1:5432")
    ], "")
    expect(SyncError.explain(new SqlError({ message: "Failed to acquire connection", cause: refused }))).toBe(
      "Failed to acquire connection: connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432"
    )
  })
})
