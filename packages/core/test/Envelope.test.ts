import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, FastCheck as fc, Schema } from "effect"
import { compileIs, compileIsWithoutCodegen } from "../src/internal/compileIs.js"
import { Models } from "../src/index.js"

/**
 * A valid value damaged at one place, at any depth: a field or element swapped for other JSON, a key dropped, an
 * element added or removed. Near misses are where a validator errs.
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
      if (!Array.isArray(copy)) delete copy[key]
      else if (Math.floor(pick / 28) % 2 === 0) copy.push(replacement)
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

const compilers = { "generated code": compileIs, closures: compileIsWithoutCodegen } as const

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

  it("generates code where the runtime allows it, and falls back to the closures where it does not", () => {
    const user = fc.sample(Arbitrary.make(Models.User), 1)[0]
    expect(compileIs(Models.User.ast).name).toBe("is")
    const Allowed = globalThis.Function
    globalThis.Function = function Disallowed() {
      throw new EvalError("Code generation from strings disallowed for this context")
    } as unknown as FunctionConstructor
    try {
      const fallback = compileIs(Models.User.ast)
      expect(fallback.name).not.toBe("is")
      expect(fallback(user)).toBe(true)
      expect(fallback({ ...user, id: 1 })).toBe(false)
    } finally {
      globalThis.Function = Allowed
    }
  })
})
