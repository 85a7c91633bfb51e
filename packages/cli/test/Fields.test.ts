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
    expect(users.at(-1)).toBe("utm_term")
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
