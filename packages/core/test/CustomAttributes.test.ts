/**
 * A workspace's own custom attributes, typed and decoded by a schema of the user's (`customAttributes`): the record
 * type says `User<A>`, a transformation gives its decoded value, unnamed attributes and fields stay, and a record that
 * does not decode ends the stream with a typed error naming it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Layer, Option, Schema, Stream } from "effect"
import { IntercomClient, type Models, type Resource, Scroll, type ScrollError } from "../src/index.js"
import { json, makeFake, type Seen } from "./support/fakeIntercom.js"

/** Answers the first request with `page`, every later one with `end`. */
const onePage = (page: unknown, end: unknown) => makeFake({ fault: (seen: Seen) => json(seen.index === 1 ? page : end) })

const usersPage = (users: ReadonlyArray<unknown>) =>
  onePage({ type: "user.list", users, scroll_param: "p2" }, { type: "user.list", users: [], scroll_param: "p3" })

const Attributes = Schema.Struct({
  plan_tier: Schema.optional(Schema.String),
  seats: Schema.optional(Schema.NumberFromString)
})

const ada = {
  type: "user",
  id: "5714dd359a3fd47136000001",
  email: "ada@example.com",
  custom_attributes: { plan_tier: "gold", seats: "12", beta: true },
  x_extra: [1, 2]
}

describe("customAttributes", () => {
  it.effect("types and decodes them: a transformation gives its decoded value, typed as the schema says", () => {
    const fake = usersPage([ada])
    return Effect.gen(function*() {
      const users = Chunk.toReadonlyArray(yield* Stream.runCollect(Scroll.users({ customAttributes: Attributes })))
      const seats: number | undefined = users[0].custom_attributes.seats
      expect(seats).toBe(12)
      expect(users[0].custom_attributes.plan_tier).toBe("gold")
      // @ts-expect-error the schema names no `beta`.
      expect(users[0].custom_attributes.beta).toBe(true)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("keeps the attributes the schema does not name, and every other field of the record as received", () => {
    const fake = usersPage([ada])
    return Effect.gen(function*() {
      const [user] = Chunk.toReadonlyArray(yield* Stream.runCollect(Scroll.users({ customAttributes: Attributes })))
      expect(user).toStrictEqual({ ...ada, custom_attributes: { plan_tier: "gold", seats: 12, beta: true } })
      expect(Object.keys(user)).toEqual(Object.keys(ada))
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("an absent or null custom_attributes is decoded as {}", () => {
    const fake = usersPage([{ type: "user", id: "1" }, { type: "user", id: "2", custom_attributes: null }])
    return Effect.gen(function*() {
      const users = Chunk.toReadonlyArray(yield* Stream.runCollect(Scroll.users({ customAttributes: Attributes })))
      expect(users.map((user) => user.custom_attributes)).toStrictEqual([{}, {}])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a record whose attributes do not decode ends the stream with InvalidCustomAttributes naming its id and the path", () => {
    const fake = usersPage([ada, { ...ada, id: "5714dd359a3fd47136000002", custom_attributes: { seats: "many" } }])
    return Effect.gen(function*() {
      const out = yield* Scroll.users({ customAttributes: Attributes }).pipe(Stream.either, Stream.runCollect)
      // The page holds the bad record, so none of it comes out: a page is typed whole before it is emitted.
      const [only] = Chunk.toReadonlyArray(out)
      expect(out.length).toBe(1)
      if (only._tag !== "Left") throw new Error("expected the error")
      expect(only.left).toMatchObject({
        _tag: "InvalidCustomAttributes",
        resource: "users",
        id: "5714dd359a3fd47136000002",
        path: "custom_attributes.seats"
      })
      expect(only.left.message).toContain("users record 5714dd359a3fd47136000002")
      expect(only.left.message).toContain("custom_attributes.seats")
      expect(only.left.message).toContain("\"many\"")
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a wrong attribute of a megabyte, and a long id, are quoted in part, saying how much was left out", () => {
    const seats = "9".repeat(500_000) + "x"
    const fake = usersPage([{ ...ada, id: "i".repeat(100_000), custom_attributes: { seats } }])
    return Effect.gen(function*() {
      const error = yield* Scroll.users({ customAttributes: Attributes }).pipe(Stream.runDrain, Effect.flip)
      if (error._tag !== "InvalidCustomAttributes") throw new Error(`expected InvalidCustomAttributes, not ${error._tag}`)
      expect(error.issue).toMatch(/^Unable to decode "9{280,}… \(\d{6} more characters\)$/)
      expect(error.id).toBe("i".repeat(100_000))
      expect(error.message.length).toBeLessThan(1_500)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("the record's id and the attribute's name the server sent are printed with their control characters escaped", () => {
    const fake = usersPage([{ ...ada, id: "u1\u001b[2J\u001b]0;title\u0007", custom_attributes: { "tier\u001b[31m": "gold" } }])
    return Effect.gen(function*() {
      const error = yield* Scroll.users({ customAttributes: Schema.Record({ key: Schema.String, value: Schema.Number }) }).pipe(
        Stream.runDrain,
        Effect.flip
      )
      if (error._tag !== "InvalidCustomAttributes") throw new Error(`expected InvalidCustomAttributes, not ${error._tag}`)
      expect(error).toMatchObject({ id: "u1\\u001b[2J\\u001b]0;title\\u0007", path: "custom_attributes.tier\\u001b[31m" })
      // eslint-disable-next-line no-control-regex -- no control character may reach the terminal that prints it
      expect(error.message).not.toMatch(/[\u0000-\u001f]/)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("is a typed failure, never a defect, and no restart is spent on it", () => {
    const fake = usersPage([{ ...ada, custom_attributes: { plan_tier: 7 } }])
    return Effect.gen(function*() {
      const exit = yield* Effect.exit(Stream.runDrain(Scroll.users({ customAttributes: Attributes })))
      expect(Exit.isFailure(exit) && Option.map(Cause.failureOption(exit.cause), (e) => e._tag)).toEqual(
        Option.some("InvalidCustomAttributes")
      )
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(false)
      // One scroll opened: the first page's request, and the one sent ahead for the second.
      expect(fake.requests.filter((seen) => !seen.url.searchParams.has("scroll_param"))).toHaveLength(1)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("leaves the received record as it was: a double that hands out the same objects decodes them again", () => {
    const record = { type: "user" as const, id: "1", custom_attributes: { seats: "3" } }
    const firstPages: { readonly [R in Resource.Resource]: ReadonlyArray<Models.RecordOf<R>> } = {
      users: [record],
      leads: [],
      companies: []
    }
    const double: IntercomClient.Service = {
      baseUrl: "https://intercom.test",
      scrollPage: (resource, { page }) =>
        Effect.succeed({ records: page === 1 ? firstPages[resource] : [], scrollParam: "next" })
    }
    return Effect.gen(function*() {
      for (let run = 0; run < 2; run++) {
        const users = Chunk.toReadonlyArray(yield* Stream.runCollect(Scroll.users({ customAttributes: Attributes })))
        expect(users.map((user) => user.custom_attributes.seats)).toEqual([3])
      }
      expect(record.custom_attributes.seats).toBe("3")
    }).pipe(Effect.provide(Layer.succeed(IntercomClient.IntercomClient, double)))
  })

  it.effect("types leads and companies, and pages, alike", () => {
    const fake = onePage(
      { type: "list", data: [{ type: "company", id: "c1", custom_attributes: { seats: "40" } }], scroll_param: "p2" },
      { type: "list", data: [], scroll_param: "p3" }
    )
    return Effect.gen(function*() {
      const pages = Chunk.toReadonlyArray(yield* Stream.runCollect(Scroll.pages("companies", { customAttributes: Attributes })))
      const seats: ReadonlyArray<number | undefined> = pages.flatMap((page) => page.records.map((c) => c.custom_attributes.seats))
      expect(seats).toEqual([40])
      const leads: Stream.Stream<Models.Lead<typeof Attributes.Type>, unknown, IntercomClient.IntercomClient> = Scroll.leads({
        customAttributes: Attributes
      })
      expect(Stream.StreamTypeId in leads).toBe(true)
    }).pipe(Effect.provide(fake.layer))
  })

  it("without a schema, the records are as received and the stream fails with ScrollError alone", () => {
    const users: Stream.Stream<Models.User, ScrollError.ScrollError, IntercomClient.IntercomClient> = Scroll.users()
    const typed: Stream.Stream<
      Models.User<{ readonly seats?: number | undefined; readonly plan_tier?: string | undefined }>,
      ScrollError.ScrollError | ScrollError.InvalidCustomAttributes,
      IntercomClient.IntercomClient
    > = Scroll.users({ customAttributes: Attributes })
    // @ts-expect-error with a schema, InvalidCustomAttributes is in the error channel.
    const untypedError: Stream.Stream<unknown, ScrollError.ScrollError, IntercomClient.IntercomClient> = typed
    expect([users, typed, untypedError].every((stream) => Stream.StreamTypeId in stream)).toBe(true)
  })
})
