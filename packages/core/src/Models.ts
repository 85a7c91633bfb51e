/**
 * Users, leads and companies as Intercom sends them. The known fields are typed (nullable where Intercom sends
 * null, optional where it may leave them out), and every record keeps all the fields that came over the wire:
 * workspaces add custom attributes and Intercom adds fields over time, and an export wants them all.
 *
 * Records are validated in place, never copied: the object a stream emits is the parsed JSON itself.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import type { Resource } from "./Resource.js"

/** Any further field, kept as received. */
const Rest = Schema.Record({ key: Schema.String, value: Schema.Unknown })

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

/** A nested object whose fields Intercom varies: typed where known, open otherwise. */
const Open = <Fields extends Schema.Struct.Fields>(fields: Fields) => Schema.Struct(fields, Rest)

/**
 * An entry of a nested list: a company a user belongs to, a tag, a segment, a social profile.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Reference = Open({ type: Schema.optional(Schema.String), id: Text, name: Text })

/** Intercom's nested lists, e.g. `{"type":"tag.list","tags":[…]}`. */
const NestedList = <const Key extends string>(key: Key) => {
  const entries = Schema.optional(Schema.Array(Reference))
  // A computed key widens to an index signature; the cast keeps `companies.companies` typed as a list.
  const list = { [key]: entries } as { readonly [K in Key]: typeof entries }
  return maybe(Open({ type: Schema.optional(Schema.String), ...list }))
}

/**
 * Custom attributes are the workspace's own.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CustomAttributes = maybe(Rest)

/**
 * @since 0.1.0
 * @category schemas
 */
export const Avatar = maybe(Open({ type: Schema.optional(Schema.String), image_url: Text }))

/**
 * @since 0.1.0
 * @category schemas
 */
export const LocationData = maybe(Open({
  type: Schema.optional(Schema.String),
  city_name: Text,
  country_name: Text,
  country_code: Text,
  region_name: Text,
  timezone: Text
}))

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
  custom_attributes: CustomAttributes,
  avatar: Avatar,
  location_data: LocationData,
  companies: NestedList("companies"),
  social_profiles: NestedList("social_profiles"),
  segments: NestedList("segments"),
  tags: NestedList("tags")
}

/**
 * A user (`type: "user"`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const User = Schema.Struct({
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
}, Rest)

/**
 * @since 0.1.0
 * @category models
 */
export interface User extends Schema.Schema.Type<typeof User> {}

/**
 * A lead (`type: "contact"`), served by `/contacts/scroll`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Lead = Schema.Struct({
  type: Schema.Literal("contact"),
  ...contactFields
}, Rest)

/**
 * @since 0.1.0
 * @category models
 */
export interface Lead extends Schema.Schema.Type<typeof Lead> {}

/**
 * A plan is a string in API 1.x and an object in 2.x.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Plan = maybe(Schema.Union(
  Schema.String,
  Open({ type: Schema.optional(Schema.String), id: Schema.optional(Schema.String), name: Text })
))

/**
 * A company (`type: "company"`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Company = Schema.Struct({
  type: Schema.Literal("company"),
  id: Schema.String,
  company_id: Text,
  name: Text,
  created_at: Timestamp,
  remote_created_at: Timestamp,
  updated_at: Timestamp,
  last_request_at: Timestamp,
  custom_attributes: CustomAttributes,
  session_count: maybe(Schema.Number),
  monthly_spend: maybe(Schema.Number),
  user_count: maybe(Schema.Number),
  plan: Plan,
  size: maybe(Schema.Number),
  website: Text,
  industry: Text,
  tags: NestedList("tags"),
  segments: NestedList("segments")
}, Rest)

/**
 * @since 0.1.0
 * @category models
 */
export interface Company extends Schema.Schema.Type<typeof Company> {}

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
}, Rest)

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
}, Rest)

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
}, Rest)

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
}, Rest)

/**
 * Intercom's error envelope.
 *
 * @since 0.1.0
 * @category envelopes
 */
export const ErrorList = Schema.Struct({
  type: Schema.Literal("error.list"),
  request_id: maybe(Schema.String),
  errors: Schema.Array(Schema.Struct({ code: Schema.String, message: Text }, Rest))
}, Rest)

/**
 * The record type each resource's scroll emits.
 *
 * @since 0.1.0
 * @category models
 */
export type RecordOf<R extends Resource> = { readonly users: User; readonly leads: Lead; readonly companies: Company }[R]
