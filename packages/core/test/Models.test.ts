import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Option, Schema, Stream } from "effect"
import { Models, Scroll } from "../src/index.js"
import { type FakeOptions, json, makeFake, type Seen } from "./support/fakeIntercom.js"

/** Answers the first request with `page`, every later one with `end`, and records what was asked. */
const onePage = (page: unknown, end: unknown, options: FakeOptions = {}) =>
  makeFake({ ...options, fault: (seen: Seen) => json(seen.index === 1 ? page : end) })

const failureOf = <A, E>(exit: Exit.Exit<A, E>) => Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()

/** A user as a real workspace sends it: custom attributes, nested lists, and a field no schema names. */
const richUser = {
  type: "user",
  id: "5714dd359a3fd47136000001",
  user_id: "25",
  anonymous: false,
  email: "ada@example.com",
  phone: "+1123456789",
  name: "Ada",
  pseudonym: null,
  avatar: { type: "avatar", image_url: "https://example.org/ada.jpg" },
  app_id: "abc123",
  companies: { type: "company.list", companies: [{ type: "company", company_id: "6", id: "5714dd35", name: "Intercom" }] },
  location_data: {
    type: "location_data",
    city_name: "Dublin",
    continent_code: "EU",
    country_name: "Ireland",
    latitude: 53.159233,
    longitude: -6.723,
    postal_code: null,
    region_name: "Dublin",
    timezone: "Europe/Dublin",
    country_code: "IRL"
  },
  last_request_at: 1397574667,
  created_at: 1311206400,
  remote_created_at: 1311206400,
  signed_up_at: 1311206400,
  updated_at: 1460926395,
  session_count: 13,
  social_profiles: {
    type: "social_profile.list",
    social_profiles: [{ type: "social_profile", name: "twitter", url: "http://twitter.com/ada", username: "ada", id: null }]
  },
  owner_id: 42,
  unsubscribed_from_emails: false,
  marked_email_as_spam: false,
  has_hard_bounced: false,
  tags: { type: "tag.list", tags: [{ type: "tag", id: "202", name: "VIP" }] },
  segments: { type: "segment.list", segments: [{ type: "segment", id: "5310d8e7598c9a0b24000002" }] },
  custom_attributes: {
    plan_tier: "gold",
    seats: 12,
    beta: true,
    last_invoice: null,
    nested: { deep: ["a", { b: 1 }] }
  },
  referrer: "https://example.org/buy",
  utm_campaign: null,
  utm_content: null,
  utm_medium: "email",
  utm_source: "newsletter",
  utm_term: null,
  x_extra: { added: "by Intercom later", list: [1, 2, 3] }
}

describe("records keep every field that came over the wire", () => {
  it.effect("a user with custom_attributes, nested lists and an unknown field comes out whole", () => {
    const fake = onePage(
      { type: "user.list", users: [richUser], scroll_param: "p2" },
      { type: "user.list", users: [], scroll_param: "p3" }
    )
    return Effect.gen(function*() {
      const users = Chunk.toReadonlyArray(yield* Stream.runCollect(Scroll.users()))
      expect(users).toHaveLength(1)
      // Every field, the unknown one included, with nothing added and nothing transformed.
      expect(users[0]).toStrictEqual(richUser)
      expect(Object.keys(users[0])).toEqual(Object.keys(richUser))
      expect((users[0] as Record<string, unknown>)["x_extra"]).toEqual(richUser.x_extra)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("null is accepted in every nullable field of a user", () => {
    const nullUser = {
      type: "user",
      id: "5714dd359a3fd47136000002",
      ...Object.fromEntries(
        [
          "user_id",
          "email",
          "phone",
          "name",
          "created_at",
          "updated_at",
          "signed_up_at",
          "remote_created_at",
          "last_request_at",
          "last_seen_ip",
          "unsubscribed_from_emails",
          "session_count",
          "pseudonym",
          "anonymous",
          "referrer",
          "owner_id",
          "utm_campaign",
          "utm_content",
          "utm_medium",
          "utm_source",
          "utm_term",
          "custom_attributes",
          "avatar",
          "location_data",
          "social_profiles",
          "companies",
          "segments",
          "tags"
        ].map((key) => [key, null])
      )
    }
    const fake = onePage(
      { type: "user.list", users: [nullUser], scroll_param: "p2" },
      { type: "user.list", users: [], scroll_param: null }
    )
    return Effect.gen(function*() {
      const users = Chunk.toReadonlyArray(yield* Stream.runCollect(Scroll.users()))
      expect(users).toStrictEqual([nullUser])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a known field of the wrong type is refused with InvalidResponse naming it", () => {
    const fake = onePage(
      { type: "user.list", users: [{ ...richUser, created_at: "yesterday" }], scroll_param: "p2" },
      { type: "user.list", users: [], scroll_param: "p3" }
    )
    return Effect.gen(function*() {
      const exit = yield* Effect.exit(Stream.runCollect(Scroll.users()))
      const error = failureOf(exit)
      expect(Option.map(error, (e) => e._tag)).toEqual(Option.some("InvalidResponse"))
      expect(Option.map(error, (e) => e.message.includes("users.0.created_at"))).toEqual(Option.some(true))
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("leads come from contact.list / contacts, whole and with nulls", () => {
    const lead = {
      type: "contact",
      id: "5811f6f1fa1b0a6e3bb0c4d9",
      user_id: "4bfbe6d3-1d74-4a8e-bd1c-3d1a1bf3cc4c",
      email: null,
      phone: null,
      name: "Visitor 1",
      created_at: 1477572337,
      updated_at: 1477572337,
      last_request_at: null,
      avatar: { type: "avatar", image_url: null },
      unsubscribed_from_emails: false,
      custom_attributes: { source: "chat" },
      location_data: null,
      companies: { type: "company.list", companies: [] },
      social_profiles: { type: "social_profile.list", social_profiles: [] },
      segments: { type: "segment.list", segments: [] },
      tags: { type: "tag.list", tags: [] },
      pseudonym: "Green Bird from Dublin",
      x_lead_only: 7
    }
    const fake = onePage(
      { type: "contact.list", contacts: [lead], scroll_param: "p2" },
      { type: "contact.list", contacts: [], scroll_param: "p3" }
    )
    return Effect.gen(function*() {
      const leads = Chunk.toReadonlyArray(yield* Stream.runCollect(Scroll.leads()))
      expect(leads).toStrictEqual([lead])
      expect(fake.requests.map((seen) => seen.url.pathname)).toEqual(["/contacts/scroll", "/contacts/scroll"])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a user.list envelope on the leads scroll is refused", () => {
    const fake = onePage(
      { type: "user.list", users: [richUser], scroll_param: "p2" },
      { type: "user.list", users: [], scroll_param: "p3" }
    )
    return Effect.gen(function*() {
      const exit = yield* Effect.exit(Stream.runCollect(Scroll.leads()))
      expect(Option.map(failureOf(exit), (e) => e._tag)).toEqual(Option.some("InvalidResponse"))
    }).pipe(Effect.provide(fake.layer))
  })
})

describe("companies", () => {
  const company = {
    type: "company",
    id: "531ee472cce572a6ec000006",
    company_id: "6",
    app_id: "abc123",
    name: "Blue Sun",
    created_at: 1394533506,
    remote_created_at: 1394532000,
    updated_at: 1396874658,
    last_request_at: null,
    monthly_spend: 49.5,
    session_count: 0,
    user_count: 1,
    size: null,
    website: null,
    industry: "Manufacturing",
    tags: { type: "tag.list", tags: [] },
    segments: { type: "segment.list", segments: [] },
    custom_attributes: { paid_subscriber: true, team_mates: 0 }
  }

  it.effect("1.x: company.list / companies with plan as a string", () => {
    const v1 = { ...company, plan: "Pro" }
    const fake = onePage(
      { type: "company.list", companies: [v1], scroll_param: "p2" },
      { type: "company.list", companies: [], scroll_param: "p3" },
      { clientOptions: { versions: { companies: "1.4" } } }
    )
    return Effect.gen(function*() {
      const companies = Chunk.toReadonlyArray(yield* Stream.runCollect(Scroll.companies()))
      expect(companies).toStrictEqual([v1])
      expect(companies[0].plan).toBe("Pro")
      expect(fake.requests.map((seen) => seen.headers["intercom-version"])).toEqual(["1.4", "1.4"])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("2.x: list / data (pages and total_count null) with plan as an object", () => {
    const v2 = { ...company, plan: { type: "plan", id: "269315", name: "Pro", x_plan_extra: 1 } }
    const fake = onePage(
      { type: "list", data: [v2], pages: null, total_count: null, scroll_param: "p2" },
      { type: "list", data: [], pages: null, total_count: null, scroll_param: "p3" }
    )
    return Effect.gen(function*() {
      const companies = Chunk.toReadonlyArray(yield* Stream.runCollect(Scroll.companies()))
      expect(companies).toStrictEqual([v2])
      expect(companies[0].plan).toEqual({ type: "plan", id: "269315", name: "Pro", x_plan_extra: 1 })
      expect(fake.requests.map((seen) => seen.url.pathname)).toEqual(["/companies/scroll", "/companies/scroll"])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("plan may be null, and a 1.x envelope may carry an empty plan object", () => {
    const nullPlan = { ...company, id: "531ee472cce572a6ec000007", plan: null }
    const emptyPlan = { ...company, id: "531ee472cce572a6ec000008", plan: {} }
    const fake = onePage(
      { type: "company.list", companies: [nullPlan, emptyPlan], scroll_param: "p2" },
      { type: "company.list", companies: [], scroll_param: "p3" }
    )
    return Effect.gen(function*() {
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(Scroll.companies()))).toStrictEqual([nullPlan, emptyPlan])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a company without an id is refused", () => {
    const { id: _id, ...noId } = company
    const fake = onePage(
      { type: "list", data: [noId], pages: null, total_count: null, scroll_param: "p2" },
      { type: "list", data: [], pages: null, total_count: null, scroll_param: "p3" }
    )
    return Effect.gen(function*() {
      const exit = yield* Effect.exit(Stream.runCollect(Scroll.companies()))
      const error = failureOf(exit)
      expect(Option.map(error, (e) => e._tag)).toEqual(Option.some("InvalidResponse"))
      expect(Option.map(error, (e) => e.message.includes("data.0.id"))).toEqual(Option.some(true))
    }).pipe(Effect.provide(fake.layer))
  })
})

describe("record types", () => {
  it("a misspelt field does not compile, a known one is typed, and a record stays a plain JSON object", () => {
    const user: Models.User = { type: "user", id: "1", email: "ada@example.com" }
    // @ts-expect-error `emial` is no field of a user: the type has no index signature to hide the typo.
    expect(user.emial).toBeUndefined()
    // @ts-expect-error nor of a nested object.
    expect(user.location_data?.city_nmae).toBeUndefined()
    const email: string | null | undefined = user.email
    expect(email).toBe("ada@example.com")
    // Custom attributes as received are an open object; records pass where any JSON object is taken.
    const attribute: unknown = user.custom_attributes?.["plan_tier"]
    expect(attribute).toBeUndefined()
    const asJson: { readonly [field: string]: unknown } = user
    expect(asJson).toBe(user)
  })
})

describe("hasValue", () => {
  it("keeps the records whose field is there and not null, and narrows the field's type", () => {
    const users: ReadonlyArray<Models.User> = [
      { type: "user", id: "1", email: "ada@example.com" },
      { type: "user", id: "2", email: null },
      { type: "user", id: "3" },
      { type: "user", id: "4", email: "" }
    ]
    const withEmail = users.filter(Models.hasValue("email"))
    expect(withEmail.map((user) => user.id)).toEqual(["1", "4"])
    // Narrowed: no `?.` and no `!` needed.
    const lower: ReadonlyArray<string> = withEmail.map((user) => user.email.toLowerCase())
    expect(lower).toEqual(["ada@example.com", ""])
  })

  it.effect("filters a stream of records to the ones with the field", () => {
    const fake = onePage(
      { type: "user.list", users: [{ type: "user", id: "1", email: "a@example.com" }, { type: "user", id: "2", email: null }, { type: "user", id: "3" }], scroll_param: "p2" },
      { type: "user.list", users: [], scroll_param: "p3" }
    )
    return Effect.gen(function*() {
      const emails = yield* Scroll.users().pipe(
        Stream.filter(Models.hasValue("email")),
        Stream.map((user) => user.email.toUpperCase()),
        Stream.runCollect
      )
      expect(Chunk.toReadonlyArray(emails)).toEqual(["A@EXAMPLE.COM"])
    }).pipe(Effect.provide(fake.layer))
  })
})

describe("planName", () => {
  const company = (plan?: unknown): Models.Company =>
    (plan === undefined ? { type: "company", id: "1" } : { type: "company", id: "1", plan }) as Models.Company

  it("reads the plan's name from API 1.x's string and 2.x's object", () => {
    expect(Models.planName(company("Pro"))).toBe("Pro")
    expect(Models.planName(company({ type: "plan", id: "269315", name: "Pro" }))).toBe("Pro")
  })

  it("is undefined for no plan: {}, null, absent, a nameless plan, an empty string", () => {
    for (const plan of [{}, null, undefined, { type: "plan", id: "1" }, { type: "plan", name: null }, ""]) {
      expect(Models.planName(company(plan))).toBeUndefined()
    }
  })

  it.effect("reads each shape as it comes out of a scroll", () => {
    const shapes = [{ plan: "Pro" }, { plan: { type: "plan", id: "2", name: "Team" } }, { plan: {} }, { plan: null }, {}]
    const fake = onePage(
      { type: "company.list", companies: shapes.map((shape, i) => ({ type: "company", id: `c${i}`, ...shape })), scroll_param: "p2" },
      { type: "company.list", companies: [], scroll_param: "p3" }
    )
    return Effect.gen(function*() {
      const names = yield* Scroll.companies().pipe(Stream.map(Models.planName), Stream.runCollect)
      expect(Chunk.toReadonlyArray(names)).toEqual(["Pro", "Team", undefined, undefined, undefined])
    }).pipe(Effect.provide(fake.layer))
  })
})

describe("unknownFields", () => {
  it("gives a record's fields that no schema names, as received", () => {
    expect(Models.unknownFields(richUser as Models.User)).toStrictEqual({
      app_id: "abc123",
      marked_email_as_spam: false,
      has_hard_bounced: false,
      x_extra: { added: "by Intercom later", list: [1, 2, 3] }
    })
    const lead = { type: "contact", id: "1", pseudonym: "Green Bird", email: null } as Models.Lead
    expect(Models.unknownFields(lead)).toStrictEqual({ pseudonym: "Green Bird" })
    const company = { type: "company", id: "1", app_id: "abc", plan: "Pro" } as Models.Company
    expect(Models.unknownFields(company)).toStrictEqual({ app_id: "abc" })
    expect(Models.unknownFields({ type: "user", id: "2", email: null } as Models.User)).toStrictEqual({})
  })

  it("with a struct schema, gives the fields of a value it does not name", () => {
    const Attributes = Schema.Struct({ plan_tier: Schema.String })
    expect(Models.unknownFields(richUser.custom_attributes, Attributes)).toStrictEqual({
      seats: 12,
      beta: true,
      last_invoice: null,
      nested: { deep: ["a", { b: 1 }] }
    })
    expect(Models.unknownFields(richUser.location_data, Models.LocationData)).toStrictEqual({
      continent_code: "EU",
      latitude: 53.159233,
      longitude: -6.723,
      postal_code: null
    })
  })
})
