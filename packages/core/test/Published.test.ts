/**
 * Records and pages as Intercom publishes them, through the real client: each comes out whole, as it was sent.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { Models, Scroll } from "../src/index.js"
import { json, makeFake, type Seen } from "./support/fakeIntercom.js"

/** Serves `page`, then `end`. */
const twoPages = (page: unknown, end: unknown) =>
  makeFake({ fault: (seen: Seen) => json(seen.index === 1 ? page : end) })

describe("published examples", () => {
  it.effect("2.x companies scroll: Intercom-OpenAPI, descriptions/0/api.intercom.io.yaml (GET /companies/scroll, 200)", () => {
    // The Preview example: `notes` (no schema here names it), `app_id`, an empty plan, null pages and total_count.
    const page = {
      type: "list",
      data: [{
        type: "company",
        company_id: "remote_companies_scroll_2",
        id: "6762f0971bb69f9f2193bb2b",
        app_id: "this_is_an_id193_that_should_be_at_least_",
        name: "IntercomQATest1",
        remote_created_at: 1734537367,
        created_at: 1734537367,
        updated_at: 1734537367,
        monthly_spend: 0,
        session_count: 0,
        user_count: 4,
        tags: { type: "tag.list", tags: [] },
        segments: { type: "segment.list", segments: [] },
        notes: {
          type: "note.list",
          data: [],
          url: "/companies/6762f0971bb69f9f2193bb2b/notes",
          total_count: 0,
          has_more: false
        },
        plan: {},
        custom_attributes: {}
      }],
      pages: null,
      total_count: null,
      scroll_param: "69352cd2-ab5b-42ac-b004-a13d4e55e9b0"
    }
    const fake = twoPages(page, { ...page, data: [] })
    return Effect.gen(function*() {
      const companies = Chunk.toReadonlyArray(yield* Stream.runCollect(Scroll.companies()))
      expect(companies).toStrictEqual(page.data)
      expect(Models.unknownFields(companies[0])).toEqual({ app_id: page.data[0].app_id, notes: page.data[0].notes })
      expect(Models.planName(companies[0])).toBeUndefined()
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("1.x companies scroll with a plan object: intercom/intercom-ruby, spec/spec_helper.rb (companies_scroll, test_company)", () => {
    // The 1.x envelope, scroll_param before the list, and the company's plan an object, not a name.
    const company = {
      type: "company",
      id: "531ee472cce572a6ec000006",
      name: "company1",
      plan: { type: "plan", id: "1", name: "Paid" },
      company_id: "6",
      remote_created_at: 1394531169,
      created_at: 1394533506,
      updated_at: 1396874658,
      last_request_at: 1396874658,
      monthly_spend: 49,
      session_count: 26,
      user_count: 10,
      custom_attributes: { paid_subscriber: true, team_mates: 0 }
    }
    const fake = twoPages(
      { type: "company.list", scroll_param: "da6bbbac-25f6-4f07-866b-b911082d7", companies: [company] },
      { type: "company.list", scroll_param: "da6bbbac-25f6-4f07-866b-b911082d7", companies: [] }
    )
    return Effect.gen(function*() {
      const companies = Chunk.toReadonlyArray(yield* Stream.runCollect(Scroll.companies()))
      expect(companies).toStrictEqual([company])
      expect(Models.planName(companies[0])).toBe("Paid")
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("1.x users scroll: intercom/python-intercom, tests/unit/__init__.py (users_scroll, get_user)", () => {
    // Null social profile ids, latitude and longitude as strings, a company entry with fields of its own.
    const user = {
      type: "user",
      id: "aaaaaaaaaaaaaaaaaaaaaaaa",
      user_id: "id-from-customers-app",
      email: "user1@example.com",
      name: "Joe Schmoe",
      avatar: { type: "avatar", image_url: "https://graph.facebook.com/1/picture?width=24&height=24" },
      app_id: "the-app-id",
      created_at: 1401970114,
      custom_attributes: { a: "b", b: 2 },
      companies: {
        type: "company.list",
        companies: [{
          type: "company",
          company_id: "123",
          id: "bbbbbbbbbbbbbbbbbbbbbbbb",
          app_id: "the-app-id",
          name: "Company 1",
          remote_created_at: 1390936440,
          created_at: 1401970114,
          updated_at: 1401970114,
          last_request_at: 1401970113,
          monthly_spend: 0,
          session_count: 0,
          user_count: 1,
          tag_ids: [],
          custom_attributes: { category: "Tech" }
        }]
      },
      session_count: 123,
      unsubscribed_from_emails: true,
      last_request_at: 1401970113,
      remote_created_at: 1393613864,
      updated_at: 1401970114,
      user_agent_data: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_3)",
      social_profiles: {
        type: "social_profile.list",
        social_profiles: [
          { type: "social_profile", name: "twitter", url: "http://twitter.com/abc", username: "abc", id: null },
          { type: "social_profile", name: "facebook", url: "http://facebook.com/abc", username: "abc", id: "1234242" }
        ]
      },
      location_data: {
        type: "location_data",
        city_name: "Dublin",
        continent_code: "EU",
        country_name: "Ireland",
        latitude: "90",
        longitude: "10",
        postal_code: "IE",
        region_name: "Europe",
        timezone: "+1000",
        country_code: "IRL"
      }
    }
    const fake = twoPages(
      { type: "user.list", scroll_param: "da6bbbac-25f6-4f07-866b-b911082d7", users: [user] },
      { type: "user.list", scroll_param: "da6bbbac-25f6-4f07-866b-b911082d7", users: [] }
    )
    return Effect.gen(function*() {
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(Scroll.users()))).toStrictEqual([user])
    }).pipe(Effect.provide(fake.layer))
  })
})
