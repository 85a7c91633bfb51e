/**
 * What the core's schemas say of a resource's fields, for the outputs: the columns they name, in their order, and
 * which fields are timestamps (`Models.UnixSeconds`).
 *
 * @since 0.1.0
 */
import { Models, type Resource } from "@intercom-scroll/core"
import type { SchemaAST } from "effect"
import type { JsonRecord } from "./format.js"

const schemas: { readonly [R in Resource.Resource]: { readonly ast: SchemaAST.AST } } = {
  users: Models.User,
  leads: Models.Lead,
  companies: Models.Company
}

/** The record's own fields: a schema of the three is a struct, whose AST is a type literal. */
const fieldsOf = (resource: Resource.Resource): ReadonlyArray<SchemaAST.PropertySignature> => {
  const ast = schemas[resource].ast
  return ast._tag === "TypeLiteral" ? ast.propertySignatures : []
}

/** The objects a field may hold, through the unions of `optional` and `NullOr` (`plan` is a string or an object). */
const objectsIn = (ast: SchemaAST.AST): ReadonlyArray<SchemaAST.TypeLiteral> => {
  switch (ast._tag) {
    case "TypeLiteral":
      return [ast]
    case "Union":
      return ast.types.flatMap(objectsIn)
    default:
      return []
  }
}

const columnsOf = (fields: ReadonlyArray<SchemaAST.PropertySignature>, prefix: string): ReadonlyArray<string> =>
  fields.flatMap((field) => {
    const column = prefix + String(field.name)
    return [column, ...objectsIn(field.type).flatMap((object) => columnsOf(object.propertySignatures, `${column}.`))]
  })

const known = new Map<Resource.Resource, ReadonlyArray<string>>()

/**
 * The dotted columns the resource's schema names, in the schema's order: each field, then the fields of the object
 * it may hold (`location_data`, `location_data.type`, `location_data.city_name`, …).
 *
 * @since 0.1.0
 * @category columns
 */
export const knownColumns = (resource: Resource.Resource): ReadonlyArray<string> => {
  let columns = known.get(resource)
  if (columns === undefined) {
    columns = [...new Set(columnsOf(fieldsOf(resource), ""))]
    known.set(resource, columns)
  }
  return columns
}

const holds = (ast: SchemaAST.AST, target: SchemaAST.AST): boolean =>
  ast === target || (ast._tag === "Union" && ast.types.some((member) => holds(member, target)))

/**
 * The resource's fields that hold a time in UNIX seconds: `created_at`, `updated_at`, …; never a custom attribute,
 * whose meaning only the workspace knows.
 *
 * @since 0.1.0
 * @category timestamps
 */
export const timestampFields = (resource: Resource.Resource): ReadonlyArray<string> =>
  fieldsOf(resource).filter((field) => holds(field.type, Models.UnixSeconds.ast)).map((field) => String(field.name))

/**
 * How timestamps are written: `unix` as Intercom sends them (seconds since 1970), `iso` as ISO 8601 in UTC.
 *
 * @since 0.1.0
 * @category timestamps
 */
export const timestampStyles = ["unix", "iso"] as const

/**
 * @since 0.1.0
 * @category timestamps
 */
export type TimestampStyle = (typeof timestampStyles)[number]

/** `2024-05-01T12:00:00Z`, with a fraction only when the time has one. Anything but a time stays as it is. */
const iso = (value: unknown): unknown => {
  if (typeof value !== "number") return value
  const date = new Date(value * 1000)
  return Number.isNaN(date.getTime()) ? value : date.toISOString().replace(".000Z", "Z")
}

/**
 * Rewrites a record's timestamp fields (`timestampFields`) in ISO 8601; null, absent and custom attributes are left
 * as they are. A record with a timestamp is copied, not changed.
 *
 * @since 0.1.0
 * @category timestamps
 */
export const isoTimestamps = (resource: Resource.Resource): (record: JsonRecord) => JsonRecord => {
  const fields = timestampFields(resource)
  return (record) => {
    let copy: Record<string, unknown> | undefined
    for (const field of fields) {
      const value = record[field]
      const written = iso(value)
      if (written !== value) (copy ??= { ...record })[field] = written
    }
    return copy ?? record
  }
}
