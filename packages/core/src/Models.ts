/**
 * Users, leads and companies as Intercom sends them.
 *
 * The known fields are typed, so that a misspelt one (`user.emial`) does not compile. `type` and `id` are always
 * there and never null; every other known field may be absent and may be null (Intercom leaves fields out across API
 * versions and sends null for what a record lacks), so test one with `!= null`, or filter with `hasValue`, never with
 * `!== null` alone.
 *
 * Records are validated in place, never copied: the object a stream emits is the parsed JSON itself, with every field
 * that came over the wire, named or not (an export keeps records whole). `unknownFields` gives the fields no schema
 * names. Custom attributes are the workspace's own: an open object here, or typed by a schema of yours through the
 * scroll's `customAttributes` option (`User<A>`).
 *
 * @example
 * import { Models, Scroll } from "@intercom-scroll/core"
 * import { Stream } from "effect"
 *
 * // Users that have an email: the filter narrows `email` to a string.
 * const withEmail = Scroll.users().pipe(Stream.filter(Models.hasValue("email")))
 *
 * // A company's plan, whether API 1.x sent "Pro" or 2.x sent { "name": "Pro" }.
 * const plans = Scroll.companies().pipe(Stream.map((company) => Models.planName(company) ?? "no plan"))
 *
 * // Fields Intercom added that no schema here names yet.
 * const added = Scroll.leads().pipe(Stream.map((lead) => Models.unknownFields(lead)))
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import type { Resource } from "./Resource.js"

/** May be absent, may be null. */
const maybe = <S extends Schema.Schema.Any>(schema: S) => Schema.optional(Schema.NullOr(schema))
const Text = maybe(Schema.String)

/**
 * A time as Intercom sends it: seconds since the UNIX epoch. Every timestamp field of the records is this schema (and
 * no other field is), so a consumer can tell them by it: the CLI's `--timestamps iso` does.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UnixSeconds = Schema.Number.annotations({ description: "A time in UNIX seconds" })

const Timestamp = maybe(UnixSeconds)

/**
 * A workspace's custom attributes as received: an object of any fields. The scroll's `customAttributes` option
 * types and decodes them with a schema of yours.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CustomAttributes = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/**
 * @since 0.1.0
 * @category models
 */
export type CustomAttributes = typeof CustomAttributes.Type

/**
 * An entry of a nested list: a company a user belongs to, a tag, a segment, a social profile. `type` may be absent;
 * `id` and `name` may be absent or null.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Reference = Schema.Struct({ type: Schema.optional(Schema.String), id: Text, name: Text })

/**
 * @since 0.1.0
 * @category models
 */
export type Reference = typeof Reference.Type

/** Intercom's nested lists, e.g. `{"type":"tag.list","tags":[…]}`: the list may be absent, never null. */
const NestedList = <const Key extends string>(key: Key) => {
  const entries = Schema.optional(Schema.Array(Reference))
  // A computed key widens to an index signature; the cast keeps `companies.companies` typed as a list.
  const list = { [key]: entries } as { readonly [K in Key]: typeof entries }
  return maybe(Schema.Struct({ type: Schema.optional(Schema.String), ...list }))
}

/**
 * @since 0.1.0
 * @category schemas
 */
export const Avatar = Schema.Struct({ type: Schema.optional(Schema.String), image_url: Text })

/**
 * @since 0.1.0
 * @category models
 */
export type Avatar = typeof Avatar.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const LocationData = Schema.Struct({
  type: Schema.optional(Schema.String),
  city_name: Text,
  country_name: Text,
  country_code: Text,
  region_name: Text,
  timezone: Text
})

/**
 * @since 0.1.0
 * @category models
 */
export type LocationData = typeof LocationData.Type

const utm = {
  utm_campaign: Text,
  utm_content: Text,
  utm_medium: Text,
  utm_source: Text,
  utm_term: Text
}

const contactFields = {
  id: Schema.String,
  user_id: Text,
  email: Text,
  phone: Text,
  name: Text,
  created_at: Timestamp,
  updated_at: Timestamp,
  last_request_at: Timestamp,
  unsubscribed_from_emails: maybe(Schema.Boolean),
  avatar: maybe(Avatar),
  location_data: maybe(LocationData),
  companies: NestedList("companies"),
  social_profiles: NestedList("social_profiles"),
  segments: NestedList("segments"),
  tags: NestedList("tags")
}

const customAttributes = { custom_attributes: maybe(CustomAttributes) }

/**
 * A record's `custom_attributes`: as received (an object, null or absent) when no schema types them, or decoded by
 * the scroll's `customAttributes` schema to `A` (and then always there).
 */
type WithCustomAttributes<A> = [A] extends [never] ? { readonly custom_attributes?: CustomAttributes | null | undefined }
  : { readonly custom_attributes: A }

const userFields = {
  type: Schema.Literal("user"),
  ...contactFields,
  signed_up_at: Timestamp,
  /** When the user was created in your app, as you told Intercom. */
  remote_created_at: Timestamp,
  last_seen_ip: Text,
  session_count: maybe(Schema.Number),
  pseudonym: Text,
  anonymous: maybe(Schema.Boolean),
  referrer: Text,
  owner_id: maybe(Schema.Union(Schema.Number, Schema.String)),
  ...utm
}

/**
 * A user (`type: "user"`). `type` and `id` are always there; every other field may be absent or null.
 *
 * @since 0.1.0
 * @category schemas
 */
export const User = Schema.Struct({ ...userFields, ...customAttributes }).annotations({ identifier: "User" })

/**
 * A user as received, or `User<A>` when the scroll's `customAttributes` schema decoded its custom attributes to `A`.
 * (Types show the first as `User<never>`: `never` stands for "no schema".)
 *
 * @since 0.1.0
 * @category models
 */
export type User<A = never> = Schema.Struct.Type<typeof userFields> & WithCustomAttributes<A>

const leadFields = { type: Schema.Literal("contact"), ...contactFields }

/**
 * A lead (`type: "contact"`), served by `/contacts/scroll`. `type` and `id` are always there; every other field may be
 * absent or null.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Lead = Schema.Struct({ ...leadFields, ...customAttributes }).annotations({ identifier: "Lead" })

/**
 * A lead as received, or `Lead<A>` when the scroll's `customAttributes` schema decoded its custom attributes to `A`.
 *
 * @since 0.1.0
 * @category models
 */
export type Lead<A = never> = Schema.Struct.Type<typeof leadFields> & WithCustomAttributes<A>

/**
 * A plan: a string in API 1.x, an object in 2.x, and `{}` for "no plan". Read it with `planName`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Plan = Schema.Union(
  Schema.String,
  Schema.Struct({ type: Schema.optional(Schema.String), id: Schema.optional(Schema.String), name: Text })
)

/**
 * @since 0.1.0
 * @category models
 */
export type Plan = typeof Plan.Type

const companyFields = {
  type: Schema.Literal("company"),
  id: Schema.String,
  company_id: Text,
  name: Text,
  created_at: Timestamp,
  remote_created_at: Timestamp,
  updated_at: Timestamp,
  last_request_at: Timestamp,
  session_count: maybe(Schema.Number),
  monthly_spend: maybe(Schema.Number),
  user_count: maybe(Schema.Number),
  plan: maybe(Plan),
  size: maybe(Schema.Number),
  website: Text,
  industry: Text,
  tags: NestedList("tags"),
  segments: NestedList("segments")
}

/**
 * A company (`type: "company"`). `type` and `id` are always there; every other field may be absent or null.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Company = Schema.Struct({ ...companyFields, ...customAttributes }).annotations({ identifier: "Company" })

/**
 * A company as received, or `Company<A>` when the scroll's `customAttributes` schema decoded its custom attributes
 * to `A`.
 *
 * @since 0.1.0
 * @category models
 */
export type Company<A = never> = Schema.Struct.Type<typeof companyFields> & WithCustomAttributes<A>

/**
 * The record type each resource's scroll emits, with custom attributes as received or decoded to `A`.
 *
 * @since 0.1.0
 * @category models
 */
export type RecordOf<R extends Resource, A = never> = {
  readonly users: User<A>
  readonly leads: Lead<A>
  readonly companies: Company<A>
}[R]

/**
 * The name of a company's plan, whatever the shape Intercom sent it in: the string of API 1.x, the `name` of 2.x's
 * object. Undefined for no plan: absent, null, `{}`, a plan without a name, or an empty string.
 *
 * @example
 * import { Models } from "@intercom-scroll/core"
 *
 * const v1: Models.Company = { type: "company", id: "1", plan: "Pro" }
 * const v2: Models.Company = { type: "company", id: "2", plan: { type: "plan", id: "269315", name: "Pro" } }
 * const none: Models.Company = { type: "company", id: "3", plan: {} }
 * console.log(Models.planName(v1), Models.planName(v2), Models.planName(none)) // Pro Pro undefined
 *
 * @since 0.1.0
 * @category accessors
 */
export const planName = (company: { readonly plan?: Plan | null | undefined }): string | undefined => {
  const plan = company.plan
  if (typeof plan === "string") return plan === "" ? undefined : plan
  return plan?.name ?? undefined
}

/**
 * A refinement that holds when a record has `key` with a value other than null: the right test for any known field,
 * which may be absent as well as null. It narrows the field's type (`string | null | undefined` to `string`).
 *
 * @example
 * import { Models, Scroll } from "@intercom-scroll/core"
 * import { Stream } from "effect"
 *
 * const emails = Scroll.users().pipe(
 *   Stream.filter(Models.hasValue("email")),
 *   Stream.map((user) => user.email.toLowerCase())
 * )
 *
 * @since 0.1.0
 * @category refinements
 */
export const hasValue = <const K extends string>(key: K) =>
<T extends { readonly [P in K]?: unknown }>(record: T): record is T & { readonly [P in K]: NonNullable<T[P]> } =>
  record[key] !== undefined && record[key] !== null

const namedBy = (fields: Schema.Struct.Fields): ReadonlySet<string> => new Set(Object.keys(fields))

const knownFields: { readonly [type: string]: ReadonlySet<string> } = {
  user: namedBy(User.fields),
  contact: namedBy(Lead.fields),
  company: namedBy(Company.fields)
}

const fieldsOutside = (value: object, known: ReadonlySet<string>): Readonly<Record<string, unknown>> =>
  Object.fromEntries(Object.entries(value).filter(([key]) => !known.has(key)))

/**
 * The fields of a record that no schema here names, as Intercom sent them: fields it added since, or that an app's
 * permissions show. They are in the record itself too (an export writes them); this gives them a type.
 *
 * With a struct schema, the fields of `value` that the schema does not name: e.g. the custom attributes a
 * `customAttributes` schema left untyped (they stay in the decoded object).
 *
 * @example
 * import { Models } from "@intercom-scroll/core"
 *
 * const user: Models.User = JSON.parse(`{ "type": "user", "id": "1", "email": null, "marked_email_as_spam": false }`)
 * console.log(Models.unknownFields(user)) // { marked_email_as_spam: false }
 *
 * @since 0.1.0
 * @category accessors
 */
export const unknownFields: {
  (record: { readonly type: "user" | "contact" | "company" }): Readonly<Record<string, unknown>>
  (value: object, schema: { readonly fields: Schema.Struct.Fields }): Readonly<Record<string, unknown>>
} = (value: object, schema?: { readonly fields: Schema.Struct.Fields }) =>
  fieldsOutside(
    value,
    schema === undefined ? knownFields[(value as { readonly type: string }).type] ?? new Set() : namedBy(schema.fields)
  )

const ScrollParam = maybe(Schema.String)

/**
 * `GET /users/scroll`.
 *
 * @since 0.1.0
 * @category envelopes
 */
export const UserPage = Schema.Struct({
  type: Schema.Literal("user.list"),
  users: Schema.Array(User),
  scroll_param: ScrollParam
})

/**
 * `GET /contacts/scroll`.
 *
 * @since 0.1.0
 * @category envelopes
 */
export const LeadPage = Schema.Struct({
  type: Schema.Literal("contact.list"),
  contacts: Schema.Array(Lead),
  scroll_param: ScrollParam
})

/**
 * `GET /companies/scroll` in API 2.x.
 *
 * @since 0.1.0
 * @category envelopes
 */
export const CompanyPage = Schema.Struct({
  type: Schema.Literal("list"),
  data: Schema.Array(Company),
  scroll_param: ScrollParam,
  pages: Schema.optional(Schema.Unknown),
  total_count: maybe(Schema.Number)
})

/**
 * `GET /companies/scroll` in API 1.x.
 *
 * @since 0.1.0
 * @category envelopes
 */
export const CompanyPageV1 = Schema.Struct({
  type: Schema.Literal("company.list"),
  companies: Schema.Array(Company),
  scroll_param: ScrollParam
})

/**
 * The app an access token belongs to: a workspace, in Intercom's words of old. `id_code` is what tells two workspaces
 * apart; a token rotated or made anew for the same app gives the same one.
 *
 * @since 0.1.0
 * @category models
 */
export const App = Schema.Struct({
  type: Schema.optional(Schema.String),
  id_code: Schema.String.pipe(Schema.nonEmptyString()),
  name: Text,
  region: Text
})

/**
 * @since 0.1.0
 * @category models
 */
export type App = typeof App.Type

/**
 * `GET /me`: the admin the access token acts for, with the app it belongs to.
 *
 * @since 0.1.0
 * @category envelopes
 */
export const Me = Schema.Struct({
  type: Schema.optional(Schema.String),
  id: maybe(Schema.String),
  app: App
})

/**
 * Intercom's error envelope.
 *
 * @since 0.1.0
 * @category envelopes
 */
export const ErrorList = Schema.Struct({
  type: Schema.Literal("error.list"),
  request_id: maybe(Schema.String),
  errors: Schema.Array(Schema.Struct({ code: Schema.String, message: Text }))
})
