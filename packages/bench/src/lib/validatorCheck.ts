/**
 * The core validates pages with a compiled form of `Schema.is` (see core/src/internal/compileIs.ts). Before timing
 * anything, the bench checks that it gives `Schema.is`'s answer on real pages from the simulator and on many
 * randomly damaged copies of them (fields removed, retyped, nulled; lists cut; envelopes swapped).
 */
import { HttpClient } from "@effect/platform"
import { Models } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Effect, Schema } from "effect"
import { compileIs } from "../../../core/src/internal/compileIs.js"

interface Tree {
  readonly id: string
  readonly children: ReadonlyArray<Tree>
}
const Tree: Schema.Schema<Tree> = Schema.Struct({ id: Schema.String, children: Schema.Array(Schema.suspend(() => Tree)) })

/** The core's schemas, and a few more that exercise what they do not (exact optional keys, tuples, refinements, …). */
const schemas: Record<string, Schema.Schema.Any> = {
  UserPage: Models.UserPage,
  LeadPage: Models.LeadPage,
  CompanyPage: Models.CompanyPage,
  CompanyPageV1: Models.CompanyPageV1,
  ErrorList: Models.ErrorList,
  User: Models.User,
  Lead: Models.Lead,
  Company: Models.Company,
  Other: Schema.Struct({
    type: Schema.optionalWith(Schema.Literal("user", "contact", 1, true), { exact: true }),
    id: Schema.NonEmptyString,
    constructor: Schema.optional(Schema.String),
    toString: Schema.Unknown,
    maybe: Schema.Union(Schema.Undefined, Schema.Number),
    pair: Schema.optional(Schema.Tuple(Schema.String, Schema.optionalElement(Schema.Number))),
    rest: Schema.optional(Schema.Tuple([Schema.Boolean], Schema.String, Schema.Number)),
    counts: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Number })),
    tree: Schema.optional(Tree)
  })
}

const odd: ReadonlyArray<unknown> = [
  null, undefined, 0, 1.5, "", "x", true, false, [], {}, [1], { a: 1 }, Number.NaN, "user", "user.list", [null], [{}],
  { type: "user" }, { id: "1" }
]

/** A small seeded generator, so that a failure can be reproduced. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) >>> 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const damage = (value: unknown, next: () => number, depth = 0): unknown => {
  if (next() < 0.12 || depth > 6) return odd[Math.floor(next() * odd.length)]
  if (Array.isArray(value)) {
    const copy = value.map((item) => (next() < 0.1 ? damage(item, next, depth + 1) : item))
    if (next() < 0.05) copy.pop()
    return copy
  }
  if (typeof value === "object" && value !== null) {
    const copy: Record<string, unknown> = { ...value }
    const keys = Object.keys(copy)
    const touches = 1 + Math.floor(next() * 3)
    for (let i = 0; i < touches && keys.length > 0; i++) {
      const key = keys[Math.floor(next() * keys.length)]
      if (next() < 0.3) delete copy[key]
      else copy[key] = damage(copy[key], next, depth + 1)
    }
    return copy
  }
  return value
}

const samplePages = Effect.gen(function*() {
  const client = yield* HttpClient.HttpClient
  const get = (path: string, version: string, token = "T") =>
    Effect.flatMap(
      client.get(`http://simulator${path}`, { headers: { authorization: `Bearer ${token}`, "intercom-version": version } }),
      (response) => response.json
    )
  const pages: Record<string, unknown> = {}
  for (const [name, path, version, key] of [
    ["UserPage", "/users/scroll", "1.4", "users"],
    ["LeadPage", "/contacts/scroll", "1.4", "contacts"],
    ["CompanyPage", "/companies/scroll", "2.14", "data"],
    ["CompanyPageV1", "/companies/scroll", "1.4", "companies"]
  ] as const) {
    const first = (yield* get(path, version)) as Record<string, unknown>
    pages[name] = first
    pages[name.replace("Page", "").replace("V1", "")] ??= (first[key] as ReadonlyArray<unknown>)[0]
    // Scroll to the end, which closes the scroll, so that the next resource may open one.
    for (let page = first; (page[key] as ReadonlyArray<unknown>).length > 0;) {
      page = (yield* get(`${path}?scroll_param=${String(page.scroll_param)}`, version)) as Record<string, unknown>
    }
  }
  pages.ErrorList = yield* get("/users/scroll", "1.4", "not-a-token")
  pages.Other = {
    type: "user",
    id: "x",
    toString: 1,
    maybe: 2,
    pair: ["a", 1],
    rest: [true, "a", "b", 3],
    counts: { a: 1, b: 2 },
    tree: { id: "r", children: [{ id: "a", children: [] }, { id: "b", children: [{ id: "c", children: [] }] }] }
  }
  return pages
}).pipe(Effect.provide(Simulator.layerClient({ workspaces: [{ token: "T", users: 150, leads: 150, companies: 150 }] })))

/** Throws on the first input where the two disagree; returns how many inputs were checked and how many were valid. */
export const check = async (casesPerSchema = 4000): Promise<{ readonly checked: number; readonly valid: number }> => {
  const pages = await Effect.runPromise(samplePages)
  const sources = Object.values(pages)
  const next = random(20_240_601)
  let checked = 0
  let valid = 0
  for (const [name, schema] of Object.entries(schemas)) {
    const reference = Schema.is(schema)
    const compiled = compileIs(schema.ast)
    for (let i = 0; i < casesPerSchema; i++) {
      const source = i < sources.length ? sources[i] : next() < 0.7 ? pages[name] : sources[Math.floor(next() * sources.length)]
      let input = i < sources.length ? source : damage(source, next)
      for (let extra = Math.floor(next() * 3); extra > 0; extra--) input = damage(input, next)
      const expected = reference(input)
      if (compiled(input) !== expected) {
        throw new Error(`the compiled validator disagrees with Schema.is for ${name} (Schema.is says ${expected}) on ${JSON.stringify(input).slice(0, 2000)}`)
      }
      checked++
      if (expected) valid++
    }
  }
  return { checked, valid }
}
