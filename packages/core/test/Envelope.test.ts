import { HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { Arbitrary, Effect, FastCheck as fc, Schema } from "effect"
import { compileIs } from "../src/internal/compileIs.js"
import { scrollParamAhead } from "../src/internal/envelope.js"
import { Models } from "../src/index.js"

/**
 * A valid value damaged at one place, at any depth: a field or element swapped for other JSON, a key dropped or
 * added, an element added or removed. Near misses are where a validator errs.
 */
const damaged = (value: unknown, replacement: unknown, pick: number): unknown => {
  if (typeof value !== "object" || value === null) return replacement
  const keys = Object.keys(value)
  if (keys.length === 0) return replacement
  const key = keys[pick % keys.length]!
  const copy: Record<string, unknown> = Array.isArray(value) ? [...value] as unknown as Record<string, unknown> : { ...value }
  switch (Math.floor(pick / 7) % 4) {
    case 0:
      copy[key] = replacement
      break
    case 1:
      // A key dropped, or one no schema names added (which every check must ignore); an element added or removed.
      if (!Array.isArray(copy)) {
        if (Math.floor(pick / 28) % 2 === 0) delete copy[key]
        else copy[`x_${key}`] = replacement
      } else if (Math.floor(pick / 28) % 2 === 0) copy.push(replacement)
      else copy.pop()
      break
    default:
      copy[key] = damaged(copy[key], replacement, Math.floor(pick / 28))
  }
  return copy
}

/** Any JSON, with more of the numbers a refinement or a literal tells apart. */
const replacements = fc.oneof(fc.jsonValue(), fc.integer({ min: -2, max: 2 }), fc.double({ noNaN: true, noDefaultInfinity: true }))

interface Tree {
  readonly value: number
  readonly children: ReadonlyArray<Tree>
}
const Tree: Schema.Schema<Tree> = Schema.Struct({
  value: Schema.Number,
  children: Schema.Array(Schema.suspend(() => Tree))
})

/** What the models do not use but a compiled check must still answer right: tuples, refinements, recursion, … */
const Others = Schema.Struct({
  pair: Schema.Tuple(Schema.String, Schema.optionalElement(Schema.Number)),
  headAndTail: Schema.Tuple([Schema.String], Schema.Number, Schema.Boolean),
  count: Schema.Number.pipe(Schema.int(), Schema.positive()),
  mixed: Schema.Literal(1, "a", true, null),
  tree: Tree,
  scores: Schema.Record({ key: Schema.String, value: Schema.Number }),
  exactlyMaybe: Schema.optionalWith(Schema.String, { exact: true }),
  orUndefined: Schema.UndefinedOr(Schema.String),
  constructor: Schema.optional(Schema.String),
  empty: Schema.Struct({})
})

const schemas = {
  Others,
  User: Models.User,
  Lead: Models.Lead,
  Company: Models.Company,
  UserPage: Models.UserPage,
  CompanyPage: Models.CompanyPage,
  CompanyPageV1: Models.CompanyPageV1,
  ErrorList: Models.ErrorList
} as const

const compilers = { closures: compileIs } as const

describe("compileIs", () => {
  for (const [compiler, compile] of Object.entries(compilers)) {
    for (const [name, schema] of Object.entries(schemas)) {
      const compiled = compile(schema.ast)
      const reference = Schema.is(schema as Schema.Schema<unknown>, { exact: true })
      const valid = Arbitrary.make(schema as Schema.Schema<unknown>)

      it(`${compiler}, ${name}: the same answer as Schema.is on valid values, near misses and any JSON`, () => {
        const inputs = fc.oneof(
          valid,
          fc.tuple(valid, replacements, fc.nat()).map(([value, replacement, pick]) => damaged(value, replacement, pick)),
          fc.jsonValue()
        )
        fc.assert(fc.property(inputs, (input) => compiled(input) === reference(input)), { numRuns: name === "Others" ? 2000 : 400 })
        // The generator does reach both answers: the property is not vacuous.
        const sample = fc.sample(inputs, 400)
        expect(sample.some(reference)).toBe(true)
        expect(sample.some((input) => !reference(input))).toBe(true)
      })
    }
  }

  it("needs no code generation: where the runtime refuses it (a CSP without unsafe-eval), it checks the same", () => {
    const user = fc.sample(Arbitrary.make(Models.User), 1)[0]
    const Allowed = globalThis.Function
    globalThis.Function = function Disallowed() {
      throw new EvalError("Code generation from strings disallowed for this context")
    } as unknown as FunctionConstructor
    try {
      const compiled = compileIs(Models.User.ast)
      expect(compiled(user)).toBe(true)
      expect(compiled({ ...user, id: 1 })).toBe(false)
    } finally {
      globalThis.Function = Allowed
    }
  })
})

describe("compileIs on the simulator's pages", () => {
  /** A first page of each resource and envelope, an error list, and a record of each type, as the simulator sends them. */
  const simulatorPages = Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const get = (path: string, version: string, token = "T") =>
      Effect.flatMap(
        client.get(`http://simulator${path}`, { headers: { authorization: `Bearer ${token}`, "intercom-version": version } }),
        (response) => response.json
      )
    const samples: Record<string, unknown> = {}
    for (const [name, path, version, key] of [
      ["UserPage", "/users/scroll", "1.4", "users"],
      ["LeadPage", "/contacts/scroll", "1.4", "contacts"],
      ["CompanyPage", "/companies/scroll", "2.14", "data"],
      ["CompanyPageV1", "/companies/scroll", "1.4", "companies"]
    ] as const) {
      const first = (yield* get(path, version)) as Record<string, ReadonlyArray<unknown>>
      samples[name] = first
      samples[name.replace("Page", "").replace("V1", "")] ??= first[key][0]
      // Scroll to the end, which closes the scroll, so that the next resource may open one.
      for (let page = first; page[key].length > 0;) {
        page = (yield* get(`${path}?scroll_param=${String(page.scroll_param)}`, version)) as typeof first
      }
    }
    samples.ErrorList = yield* get("/users/scroll", "1.4", "not-a-token")
    return samples
  }).pipe(Effect.provide(Simulator.layerClient({ workspaces: [{ token: "T", users: 150, leads: 150, companies: 150 }] })))

  it.effect("gives Schema.is's answer on real pages and records and on copies damaged at up to three places", () =>
    Effect.gen(function*() {
      const samples = yield* simulatorPages
      const named = { ...schemas, LeadPage: Models.LeadPage } as Record<string, Schema.Schema<unknown>>
      const sources = Object.values(samples)
      for (const [name, sample] of Object.entries(samples)) {
        const schema = named[name]
        const reference = Schema.is(schema, { exact: true })
        expect(reference(sample)).toBe(true)
        // Mostly this schema's own sample, sometimes another's (a page where a record is expected, an error list).
        const source = fc.oneof({ weight: 4, arbitrary: fc.constant(sample) }, { weight: 1, arbitrary: fc.constantFrom(...sources) })
        const inputs = fc.tuple(source, fc.array(fc.tuple(replacements, fc.nat()), { minLength: 1, maxLength: 3 }))
          .map(([value, damages]) => damages.reduce((input, [replacement, pick]) => damaged(input, replacement, pick), value))
        for (const compile of Object.values(compilers)) {
          const compiled = compile(schema.ast)
          fc.assert(fc.property(inputs, (input) => compiled(input) === reference(input)), { numRuns: 150 })
        }
        // Damaged copies are valid and invalid both: the property is not vacuous.
        const drawn = fc.sample(inputs, 100)
        expect([drawn.some(reference), drawn.some((input) => !reference(input))]).toEqual([true, true])
      }
    }))
})

describe("scrollParamAhead", () => {
  const record = { type: "user", id: "0123456789abcdef01234567" }
  const encoder = new TextEncoder()
  const ahead = (text: string, resource: "users" | "leads" | "companies" = "users") =>
    scrollParamAhead(encoder.encode(text), resource)

  it("reads the scroll_param of a page of records in each envelope, however the JSON is spaced", () => {
    const pages = [
      ["users", { type: "user.list", users: [record], scroll_param: "p-1" }],
      ["leads", { type: "contact.list", contacts: [record], scroll_param: "p-1" }],
      ["companies", { type: "list", data: [record], pages: null, total_count: null, scroll_param: "p-1" }],
      ["companies", { type: "company.list", companies: [record], scroll_param: "p-1" }]
    ] as const
    for (const [resource, page] of pages) {
      for (const indent of [undefined, 2, "\t"]) {
        expect(ahead(JSON.stringify(page, null, indent), resource)).toBe("p-1")
      }
    }
  })

  it("reads nothing where the text leaves a doubt", () => {
    const page = (fields: object) => JSON.stringify({ type: "user.list", users: [record], scroll_param: "p-1", ...fields })
    // The empty page ends the scroll: its scroll_param is dead.
    expect(ahead(JSON.stringify({ type: "user.list", users: [], scroll_param: "p-1" }))).toBe(undefined)
    // The list is not the root's first nested value, or comes under another key.
    expect(ahead(JSON.stringify({ type: "user.list", pages: { next: null }, users: [record], scroll_param: "p-1" })))
      .toBe(undefined)
    expect(ahead(JSON.stringify({ type: "user[list]", users: [record], scroll_param: "p-1" }))).toBe(undefined)
    expect(ahead(JSON.stringify({ type: "contact.list", contacts: [record], scroll_param: "p-1" }), "users")).toBe(undefined)
    // A record's scroll_param is never read, with or without the page's own.
    expect(ahead(page({ users: [{ ...record, scroll_param: "p-0" }] }))).toBe("p-1")
    const withoutOwn = { type: "user.list", users: [record, { ...record, scroll_param: "p-0" }] }
    expect(ahead(JSON.stringify(withoutOwn))).toBe(undefined)
    expect(ahead(JSON.stringify(withoutOwn).replace(/}]}$/, "}] }"))).toBe(undefined)
    // Nor a scroll_param that is not the root's last key, nor one whose quote is inside a string.
    expect(ahead(JSON.stringify({ type: "user.list", scroll_param: "p-1", users: [record] }))).toBe(undefined)
    expect(ahead(JSON.stringify({ type: "user.list", users: [record], "a\"scroll_param": "p-1" }))).toBe(undefined)
    // A value with escapes or beyond ASCII, null, or none at all.
    expect(ahead(page({ scroll_param: "p\"1" }))).toBe(undefined)
    expect(ahead(page({ scroll_param: "p\\1" }))).toBe(undefined)
    expect(ahead(page({ scroll_param: "p-é" }))).toBe(undefined)
    expect(ahead(page({ scroll_param: null }))).toBe(undefined)
    expect(ahead(JSON.stringify({ type: "user.list", users: [record] }))).toBe(undefined)
    // A body cut short, or not JSON.
    expect(ahead(page({}).slice(0, -4))).toBe(undefined)
    expect(ahead(page({}).replace(/}$/, "]"))).toBe(undefined)
    expect(ahead("")).toBe(undefined)
    expect(ahead("<html>502 Bad Gateway</html>")).toBe(undefined)
  })

  it("never disagrees with the parse: it reads the page's own scroll_param, never the empty page's", () => {
    // Envelopes with keys before and after the list, and records that may carry keys named like the envelope's,
    // with any JSON in them.
    const anyJson = fc.oneof(fc.string(), fc.jsonValue())
    const confusing = fc.record({
      before: fc.dictionary(fc.constantFrom("type", "pages", "users", "scroll_param", "x\"users"), anyJson, { maxKeys: 2 }),
      users: fc.array(
        fc.tuple(Arbitrary.make(Models.User), fc.constantFrom("scroll_param", "users", "type", "other"), anyJson, fc.boolean())
          .map(([user, key, value, add]) => add ? { ...user, [key]: value } : user),
        { maxLength: 4 }
      ),
      after: fc.dictionary(fc.constantFrom("pages", "total_count", "scroll_param"), anyJson, { maxKeys: 2 }),
      scroll_param: fc.oneof(fc.string(), fc.stringMatching(/^[\w-]{1,40}$/), fc.constant(null), fc.constant(undefined)),
      indent: fc.constantFrom(undefined, 1, " \n ")
    })
    const read: Array<string> = []
    fc.assert(
      fc.property(confusing, ({ after, before, indent, scroll_param, users }) => {
        const { scroll_param: _, users: __, ...head } = before
        const { scroll_param: ___, ...tail } = after
        const page = { ...head, users, ...tail, scroll_param }
        const text = JSON.stringify(page, null, indent)
        const read_ = ahead(text)
        if (read_ !== undefined) read.push(read_)
        // What JSON.parse makes of the text is what the page says.
        const parsed = JSON.parse(text) as { readonly users: ReadonlyArray<unknown>; readonly scroll_param?: unknown }
        return read_ === undefined || (parsed.users.length > 0 && read_ === parsed.scroll_param)
      }),
      { numRuns: 1000 }
    )
    // It does read some: the property is not vacuous.
    expect(read.length).toBeGreaterThan(50)
  })
})
