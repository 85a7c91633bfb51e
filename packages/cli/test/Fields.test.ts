import { describe, expect, it } from "@effect/vitest"
import * as Fields from "../src/internal/fields.js"

describe("Fields.knownColumns", () => {
  it("names the schema's fields in its order, each nested object's fields after it", () => {
    const users = Fields.knownColumns("users")
    expect(users.slice(0, 6)).toEqual(["type", "id", "user_id", "email", "phone", "name"])
    const at = (column: string) => users.indexOf(column)
    expect(at("location_data")).toBeLessThan(at("location_data.type"))
    expect(users.slice(at("location_data.type"), at("location_data.timezone") + 1)).toEqual([
      "location_data.type",
      "location_data.city_name",
      "location_data.country_name",
      "location_data.country_code",
      "location_data.region_name",
      "location_data.timezone"
    ])
    expect(users).toContain("tags.tags")
    // The schema names custom_attributes last; its own columns (`custom_attributes.*`) are a group of their own.
    expect(users.slice(-2)).toEqual(["utm_term", "custom_attributes"])
  })

  it("follows a field that is a string or an object (a company's plan) into the object", () => {
    const companies = Fields.knownColumns("companies")
    const plan = companies.indexOf("plan")
    expect(companies.slice(plan, plan + 4)).toEqual(["plan", "plan.type", "plan.id", "plan.name"])
  })
})

describe("Fields.timestampFields", () => {
  it("are the fields the schema types as UNIX seconds, not every number", () => {
    expect(Fields.timestampFields("users")).toEqual(["created_at", "updated_at", "last_request_at", "signed_up_at", "remote_created_at"])
    expect(Fields.timestampFields("leads")).toEqual(["created_at", "updated_at", "last_request_at"])
    expect(Fields.timestampFields("companies")).toEqual(["created_at", "remote_created_at", "updated_at", "last_request_at"])
  })
})

describe("Fields.isoTimestamps", () => {
  const toIso = Fields.isoTimestamps("users")

  it("writes the schema's timestamps in ISO 8601, UTC, with a fraction only when there is one", () => {
    const record = {
      id: "1",
      created_at: 1700000000,
      updated_at: 0,
      signed_up_at: 1.5,
      remote_created_at: 1700000000,
      last_request_at: null,
      session_count: 1700000000,
      custom_attributes: { last_order_at: 1700000000 }
    }
    expect(toIso(record)).toEqual({
      id: "1",
      created_at: "2023-11-14T22:13:20Z",
      updated_at: "1970-01-01T00:00:00Z",
      signed_up_at: "1970-01-01T00:00:01.500Z",
      remote_created_at: "2023-11-14T22:13:20Z",
      last_request_at: null,
      session_count: 1700000000,
      custom_attributes: { last_order_at: 1700000000 }
    })
    // A copy: the record itself is as it came.
    expect(record.created_at).toBe(1700000000)
  })

  it("leaves what is not a time as it is: no field, a string, a number no date can hold", () => {
    const record = { id: "1", created_at: "yesterday", updated_at: 1e20 }
    expect(toIso(record)).toBe(record)
    expect(toIso({ id: "2" })).toEqual({ id: "2" })
  })
})
