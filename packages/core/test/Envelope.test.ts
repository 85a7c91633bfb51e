import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, FastCheck as fc, Schema } from "effect"
import { compileIs } from "../src/internal/envelope.js"
import { Models } from "../src/index.js"

/** A valid value with one field, at any depth, swapped for arbitrary JSON: near misses are where a validator errs. */
const damaged = (value: unknown, replacement: unknown, pick: number): unknown => {
  if (typeof value !== "object" || value === null) return replacement
  const keys = Object.keys(value)
  if (keys.length === 0) return replacement
  const key = keys[pick % keys.length]!
  const copy: Record<string, unknown> = Array.isArray(value) ? [...value] as unknown as Record<string, unknown> : { ...value }
  copy[key] = pick % 3 === 0 ? replacement : damaged(copy[key], replacement, Math.floor(pick / 3))
  return copy
}

const schemas = {
  User: Models.User,
  Lead: Models.Lead,
  Company: Models.Company,
  UserPage: Models.UserPage,
  CompanyPage: Models.CompanyPage,
  CompanyPageV1: Models.CompanyPageV1,
  ErrorList: Models.ErrorList
} as const

describe("compileIs", () => {
  for (const [name, schema] of Object.entries(schemas)) {
    const compiled = compileIs(schema.ast)
    const reference = Schema.is(schema as Schema.Schema<unknown>, { exact: true })
    const valid = Arbitrary.make(schema as Schema.Schema<unknown>)

    it(`${name}: the same answer as Schema.is on valid values, near misses and any JSON`, () => {
      const inputs = fc.oneof(
        valid,
        fc.tuple(valid, fc.jsonValue(), fc.nat()).map(([value, replacement, pick]) => damaged(value, replacement, pick)),
        fc.jsonValue()
      )
      fc.assert(fc.property(inputs, (input) => compiled(input) === reference(input)), { numRuns: 400 })
      // The generator does reach both answers: the property is not vacuous.
      const sample = fc.sample(inputs, 400)
      expect(sample.some(reference)).toBe(true)
      expect(sample.some((input) => !reference(input))).toBe(true)
    })
  }
})
