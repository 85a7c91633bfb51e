import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Simulator } from "../src/index.js"
import { scroll, scrollAll } from "./helpers.js"

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- records are arbitrary JSON
type Json = any

const everything = (seed: number) =>
  Effect.gen(function*() {
    const users: Array<Json> = (yield* scrollAll("users", { token: "T" })).records
    const leads: Array<Json> = (yield* scrollAll("leads", { token: "T" })).records
    const companies: Array<Json> = (yield* scrollAll("companies", { token: "T" })).records
    return { users, leads, companies }
  }).pipe(Effect.provide(Simulator.layerClient({ workspaces: [{ token: "T", seed, users: 300, leads: 200, companies: 80 }] })))

const byId = (records: ReadonlyArray<Json>) => new Map(records.map((record) => [record.id, record]))

describe("data sets", () => {
  it.effect("are deterministic from the seed, and differ between seeds", () =>
    Effect.gen(function*() {
      const once = yield* everything(7)
      const again = yield* everything(7)
      const other = yield* everything(8)
      for (const resource of ["users", "leads", "companies"] as const) {
        expect(byId(again[resource])).toEqual(byId(once[resource]))
        const otherIds = new Set(other[resource].map((record: Json) => record.id))
        expect(once[resource].filter((record: Json) => otherIds.has(record.id))).toEqual([])
      }
    }))

  it.effect("ids are 24 lowercase hex digits, unique across the workspace's resources", () =>
    Effect.gen(function*() {
      const { companies, leads, users } = yield* everything(1)
      const ids = [...users, ...leads, ...companies].map((record: Json) => record.id)
      expect(ids.every((id) => /^[0-9a-f]{24}$/.test(id))).toBe(true)
      expect(new Set(ids).size).toBe(580)
    }))

  it.effect("carry the fields Intercom sends, and fields no schema names", () =>
    Effect.gen(function*() {
      const { companies, leads, users } = yield* everything(1)
      expect(Object.keys(users[0])).toEqual(expect.arrayContaining([
        "type", "id", "user_id", "email", "phone", "name", "created_at", "updated_at", "signed_up_at",
        "last_request_at", "last_seen_ip", "unsubscribed_from_emails", "session_count", "pseudonym", "anonymous",
        "referrer", "owner_id", "utm_campaign", "utm_content", "utm_medium", "utm_source", "utm_term",
        "custom_attributes", "avatar", "location_data", "social_profiles", "companies", "segments", "tags"
      ]))
      expect(Object.keys(leads[0])).toEqual(expect.arrayContaining([
        "type", "id", "user_id", "email", "phone", "name", "created_at", "updated_at", "last_request_at",
        "custom_attributes", "avatar", "unsubscribed_from_emails", "location_data", "companies", "social_profiles",
        "segments", "tags"
      ]))
      expect(Object.keys(companies[0])).toEqual(expect.arrayContaining([
        "type", "id", "company_id", "name", "created_at", "remote_created_at", "updated_at", "last_request_at",
        "custom_attributes", "session_count", "monthly_spend", "user_count", "plan", "size", "website", "industry",
        "tags", "segments"
      ]))
      for (const records of [users, leads, companies]) {
        expect(records.some((record: Json) => "x_internal_flag" in record)).toBe(true)
      }
    }))

  it.effect("are untidy as real data: nulls, unicode, varied custom attributes, nested lists", () =>
    Effect.gen(function*() {
      const { companies, leads, users } = yield* everything(1)
      const people = [...users, ...leads]
      expect(people.some((person: Json) => person.email === null)).toBe(true)
      expect(people.some((person: Json) => person.name === null)).toBe(true)
      expect(people.some((person: Json) => /[^ -~]/.test(person.name ?? ""))).toBe(true)
      expect(people.some((person: Json) => /[^ -~]/.test(person.email ?? ""))).toBe(true)
      expect(companies.some((company: Json) => company.website === null)).toBe(true)
      const keySets = new Set(people.map((person: Json) => Object.keys(person.custom_attributes).sort().join()))
      expect(keySets.size).toBeGreaterThan(20)
      const timestamps = users.map((user: Json) => user.created_at)
      expect(timestamps.every((t: number) => Number.isInteger(t) && t > 1e9 && t < 2e9)).toBe(true)
      const some = (f: (person: Json) => boolean) => expect(people.some(f)).toBe(true)
      some((person) => person.companies.type === "company.list" && person.companies.companies.length > 0)
      some((person) => person.tags.type === "tag.list" && person.tags.tags.length > 0)
      some((person) => person.segments.type === "segment.list" && person.segments.segments.length > 0)
      some((person) => person.social_profiles.social_profiles.length > 0)
      some((person) => person.location_data.type === "location_data" && typeof person.location_data.city_name === "string")
      // People belong to companies of the same workspace.
      const companyIds = new Set(companies.map((company: Json) => company.id))
      const memberships = people.flatMap((person: Json) => person.companies.companies.map((c: Json) => c.id))
      expect(memberships.every((id: string) => companyIds.has(id))).toBe(true)
      // Each company once in a person's list (drawn at random, two picks of a person could meet).
      expect(people.filter((person: Json) => {
        const ids = person.companies.companies.map((c: Json) => c.id)
        return new Set(ids).size !== ids.length
      })).toEqual([])
      expect(people.some((person: Json) => person.companies.companies.length === 2)).toBe(true)
    }))

  it.effect("carry shapes Intercom has published beside the usual: a null avatar", () =>
    Effect.gen(function*() {
      const { leads, users } = yield* everything(1)
      // The OpenAPI description's contacts: `avatar` nullable, and null in its examples.
      for (const people of [users, leads]) {
        expect(people.some((person: Json) => person.avatar === null)).toBe(true)
        expect(people.some((person: Json) => person.avatar?.type === "avatar")).toBe(true)
      }
    }))

  it.effect("millions of records cost nothing until served", () =>
    Effect.gen(function*() {
      const first = yield* scroll("users", { token: "T", version: "1.4" })
      expect(first.body.users).toHaveLength(100)
      const second = yield* scroll("users", { token: "T", version: "1.4", param: first.body.scroll_param })
      expect(second.body.users).toHaveLength(100)
      const stats = yield* (yield* Simulator.Simulator).stats
      expect(stats.total.recordsServed).toBe(200)
    }).pipe(Effect.provide(Simulator.layerClient({ workspaces: [{ token: "T", users: 5_000_000 }] }))))
})
