/**
 * Record i of a data set, computed from (seed, resource, i) alone: a workspace of millions of records holds none of
 * them. The shapes follow Intercom's API 1.x users and leads and 1.x/2.x companies, with the untidiness of real data:
 * nulls, unicode, custom attributes whose keys vary, nested lists and fields that no schema names.
 *
 * @internal
 */
import type { Resource } from "../Resource.js"
import { hash, Rng } from "./random.js"

/** The API generation a record is rendered for: companies differ between the two. */
export type Major = 1 | 2

const resourceCode: Record<Resource, number> = { users: 1, leads: 2, companies: 3 }

const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, "0")

/**
 * A 24-hex id, unique per workspace: the last 8 digits are a bijection of the index (an odd multiplier is
 * invertible modulo 2^32) and the low bits of the first 8 name the resource.
 */
export const idOf = (seed: number, resource: Resource, index: number): string => {
  const code = resourceCode[resource]
  const prefix = (0x5a000000 | (hash(seed, code) & 0x00fffffc) | code) >>> 0
  const unique = (Math.imul(index, 0x2c1b3c6d) ^ hash(seed, code, 0xface)) >>> 0
  return hex8(prefix) + hex8(hash(seed, code, index)) + hex8(unique)
}

const firstNames = [
  "Ada", "José", "Zoë", "Łukasz", "Søren", "Anaïs", "Björk", "Chloé", "Dmitri", "Amélie", "Nguyễn", "Oluwaseun",
  "Siobhán", "Mårten", "Renée", "Aleksandra", "Иван", "Анна", "Ελένη", "さくら", "李", "Fatima", "محمد", "Priya", "Kai"
]
const lastNames = [
  "Lovelace", "García", "Müller", "O'Brien", "Kowalski", "Ødegaard", "Núñez", "Dvořák", "Smith", "Nakamura",
  "Петрова", "Παπαδόπουλος", "王", "Achebe", "Sharma", "Ångström", "Þórsson", "Fernández", "Nguyen", "Schrödinger"
]
const domains = ["example.com", "example.org", "exämple.de", "例え.jp", "mail.example.co.uk", "correo.example.es"]
const companyWords = [
  "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Soylent", "Stark", "Wayne", "Tyrell", "Åkerlund",
  "Société Générale des Gâteaux", "北京科技", "Zürich Rück", "Crème", "Ωmega"
]
const companySuffixes = ["Inc.", "GmbH", "Ltd", "S.A.", "K.K.", "LLC", "& Co", "AB"]
const industries = ["Software", "Retail", "Manufacturing", "Healthcare", "Éducation", "Finance", null]
const plans = ["Free", "Starter", "Pro", "Premium", "Enterprise"]
const cities = [
  { city_name: "Dublin", country_name: "Ireland", country_code: "IRL", continent_code: "EU", region_name: "Leinster",
    timezone: "Europe/Dublin", latitude: 53.3498, longitude: -6.2603, postal_code: "D02" },
  { city_name: "São Paulo", country_name: "Brazil", country_code: "BRA", continent_code: "SA",
    region_name: "São Paulo", timezone: "America/Sao_Paulo", latitude: -23.5505, longitude: -46.6333, postal_code: null },
  { city_name: "Zürich", country_name: "Switzerland", country_code: "CHE", continent_code: "EU", region_name: "Zürich",
    timezone: "Europe/Zurich", latitude: 47.3769, longitude: 8.5417, postal_code: "8001" },
  { city_name: "東京", country_name: "Japan", country_code: "JPN", continent_code: "AS", region_name: "Tokyo",
    timezone: "Asia/Tokyo", latitude: 35.6762, longitude: 139.6503, postal_code: "100-0001" },
  { city_name: "San Francisco", country_name: "United States", country_code: "USA", continent_code: "NA",
    region_name: "California", timezone: "America/Los_Angeles", latitude: 37.7749, longitude: -122.4194,
    postal_code: "94103" }
]
const tagNames = ["vip", "beta", "churn-risk", "trial", "ünïcödé", "enterprise", "newsletter"]
const segmentNames = ["Active", "New", "Slipping away", "Power users", "Paying"]
const socialNetworks = ["Twitter", "Facebook", "LinkedIn", "GitHub"]
const utmSources = ["google", "newsletter", "twitter", "partner", null]

const epochStart = 1_400_000_000
const epochSpan = 300_000_000

const timestamp = (rng: Rng): number => epochStart + rng.int(epochSpan)

/** Custom attributes: a varying subset of keys with values of varying types. */
const customAttributes = (rng: Rng): Record<string, unknown> => {
  const attributes: Record<string, unknown> = {}
  if (rng.chance(0.6)) attributes.plan_tier = rng.pick(plans)
  if (rng.chance(0.5)) attributes.nps = rng.orNull(0.2, () => rng.int(11))
  if (rng.chance(0.4)) attributes.beta_user = rng.chance(0.5)
  if (rng.chance(0.3)) attributes.lifetime_value = Math.round(rng.next() * 1e6) / 100
  if (rng.chance(0.3)) attributes["favourite colour"] = rng.pick(["vert", "rød", "青", "azul"])
  if (rng.chance(0.2)) attributes.notes = `Spoke on ${timestamp(rng)} — “café ☕” follow-up`
  if (rng.chance(0.2)) attributes.last_order_at = timestamp(rng)
  if (rng.chance(0.1)) attributes.ünïcödé_kéy = null
  // A number kept as a string, as Intercom's attributes often hold one: what `Schema.NumberFromString` is for
  if (rng.chance(0.3)) attributes.seats = String(1 + rng.int(500))
  return attributes
}


const someOf = <A>(rng: Rng, count: number, max: number, f: (i: number) => A): Array<A> => {
  const out: Array<A> = []
  for (let i = 0; i < count; i++) {
    if (out.length < max && rng.chance(0.3)) out.push(f(i))
  }
  return out
}

const tags = (rng: Rng, catalogue: Catalogue) => ({
  type: "tag.list",
  tags: someOf(rng, catalogue.tags.length, 3, (i) => catalogue.tags[i])
})
const segments = (rng: Rng, catalogue: Catalogue) => ({
  type: "segment.list",
  segments: someOf(rng, catalogue.segments.length, 2, (i) => catalogue.segments[i])
})

const socialProfiles = (rng: Rng, handle: string) => ({
  type: "social_profile.list",
  social_profiles: someOf(rng, socialNetworks.length, 2, (i) => ({
    type: "social_profile",
    name: socialNetworks[i],
    id: rng.orNull(0.5, () => String(rng.int(1e9))),
    username: handle,
    url: `https://${socialNetworks[i].toLowerCase()}.com/${encodeURIComponent(handle)}`
  }))
})

const locationData = (rng: Rng) =>
  rng.chance(0.15) ? {} : { type: "location_data", ...rng.pick(cities) }

const avatar = (rng: Rng, id: string) => ({
  type: "avatar",
  image_url: rng.orNull(0.6, () => `https://static.example.com/avatars/${id}.png`)
})

/**
 * Shapes Intercom has published that a reading of its docs alone would not expect, drawn from a generator of their own
 * (the record's other draws, and so the rest of the data set, stay as they were): a person's `avatar` null, as the
 * OpenAPI description's contacts have it (`avatar` nullable, examples with null).
 */
const publishedShapes = (record: Record<string, unknown>, rng: Rng): Record<string, unknown> => {
  if (rng.chance(0.05)) record.avatar = null
  return record
}

/** The generator of `publishedShapes` for a record: its own, apart from the record's. */
const shapeRng = (seed: number, resource: Resource, index: number) =>
  new Rng(hash(seed, resourceCode[resource] | 0x5a00, index))

/** The workspace's companies a person belongs to (references into the company data set). */
const memberships = (rng: Rng, catalogue: Catalogue) => {
  const list: Array<unknown> = []
  if (catalogue.companies > 0) {
    const count = rng.pick([0, 0, 1, 1, 1, 2])
    const picked = new Set<number>()
    for (let i = 0; i < count; i++) {
      // Each company once, as Intercom lists them: a company drawn again gives way to the next one, so that the draws,
      // and so the rest of the data set, stay as they were.
      let index = rng.int(catalogue.companies)
      while (picked.has(index) && picked.size < catalogue.companies) index = (index + 1) % catalogue.companies
      if (picked.has(index)) continue
      picked.add(index)
      list.push(catalogue.companyStub(index))
    }
  }
  return { type: "company.list", companies: list }
}

const personName = (rng: Rng) => `${rng.pick(firstNames)} ${rng.pick(lastNames)}`

const email = (name: string, index: number, rng: Rng) =>
  `${name.toLowerCase().replace(/[\s']/g, ".")}.${index}@${rng.pick(domains)}`

const phone = (rng: Rng) => `+${rng.between(1, 99)} ${rng.between(100, 999)} ${rng.between(100000, 9999999)}`

const companyName = (seed: number, index: number): string => {
  const rng = new Rng(hash(seed, 0xc0, index))
  return `${rng.pick(companyWords)} ${rng.pick(companySuffixes)} ${index}`
}

/**
 * What every record of a workspace shares, computed once: its seed, app id, tag and segment catalogues, and the
 * companies people can belong to.
 */
export class Catalogue {
  readonly appId: string
  readonly tags: ReadonlyArray<object>
  readonly segments: ReadonlyArray<object>
  private readonly companyStubs = new Map<number, object>()

  constructor(readonly seed: number, readonly companies: number) {
    this.appId = hex8(hash(seed, 0xa99))
    this.tags = tagNames.map((name, i) => ({
      type: "tag",
      id: String(1_000_000 + (hash(seed, 0x7a6, i) % 9_000_000)),
      name
    }))
    this.segments = segmentNames.map((name, i) => ({
      type: "segment",
      id: hex8(hash(seed, 0x5e6, i)) + hex8(hash(seed, 0x5e7, i)) + hex8(hash(seed, 0x5e8, i)),
      name
    }))
  }

  /** A company as it appears in a person's `companies` list. */
  companyStub(index: number): object {
    let stub = this.companyStubs.get(index)
    if (stub === undefined) {
      stub = {
        type: "company",
        company_id: `company-${index}`,
        id: idOf(this.seed, "companies", index),
        name: companyName(this.seed, index)
      }
      this.companyStubs.set(index, stub)
    }
    return stub
  }
}

const user = (catalogue: Catalogue, index: number): object => {
  const { seed } = catalogue
  const rng = new Rng(hash(seed, resourceCode.users, index))
  const id = idOf(seed, "users", index)
  const fullName = personName(rng)
  const created = timestamp(rng)
  const record: Record<string, unknown> = {
    type: "user",
    id,
    user_id: rng.orNull(0.1, () => `u-${index}`),
    anonymous: false,
    email: rng.orNull(0.05, () => email(fullName, index, rng)),
    phone: rng.orNull(0.7, () => phone(rng)),
    name: rng.orNull(0.1, () => fullName),
    pseudonym: rng.chance(0.9) ? null : `${rng.pick(["Orange", "Teal", "Ivory"])} Falcon`,
    avatar: avatar(rng, id),
    app_id: catalogue.appId,
    companies: memberships(rng, catalogue),
    location_data: locationData(rng),
    last_request_at: rng.orNull(0.2, () => created + rng.int(1e7)),
    last_seen_ip: rng.orNull(0.3, () => `${rng.int(256)}.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}`),
    created_at: created,
    remote_created_at: rng.orNull(0.5, () => created - rng.int(1e6)),
    signed_up_at: rng.orNull(0.3, () => created),
    updated_at: created + rng.int(1e7),
    session_count: rng.int(500),
    social_profiles: socialProfiles(rng, fullName.split(" ")[0]),
    owner_id: rng.orNull(0.7, () => rng.between(100000, 999999)),
    unsubscribed_from_emails: rng.chance(0.1),
    marked_email_as_spam: false,
    has_hard_bounced: rng.chance(0.02),
    tags: tags(rng, catalogue),
    segments: segments(rng, catalogue),
    custom_attributes: customAttributes(rng),
    referrer: rng.orNull(0.6, () => "https://www.example.com/pricing?ref=ünï"),
    utm_campaign: rng.orNull(0.7, () => "spring_launch"),
    utm_content: null,
    utm_medium: rng.orNull(0.7, () => "email"),
    utm_source: rng.pick(utmSources),
    utm_term: null,
    do_not_track: null
  }
  // Intercom adds fields over time: an export must keep what no schema names.
  if (rng.chance(0.2)) record.x_internal_flag = rng.chance(0.5)
  return publishedShapes(record, shapeRng(seed, "users", index))
}

const lead = (catalogue: Catalogue, index: number): object => {
  const { seed } = catalogue
  const rng = new Rng(hash(seed, resourceCode.leads, index))
  const id = idOf(seed, "leads", index)
  const fullName = personName(rng)
  const created = timestamp(rng)
  const record: Record<string, unknown> = {
    type: "contact",
    id,
    user_id: rng.uuid(),
    email: rng.orNull(0.4, () => email(fullName, index, rng)),
    phone: rng.orNull(0.8, () => phone(rng)),
    name: rng.orNull(0.5, () => fullName),
    created_at: created,
    updated_at: created + rng.int(1e7),
    last_request_at: rng.orNull(0.3, () => created + rng.int(1e6)),
    custom_attributes: customAttributes(rng),
    avatar: avatar(rng, id),
    unsubscribed_from_emails: rng.chance(0.05),
    location_data: locationData(rng),
    companies: memberships(rng, catalogue),
    social_profiles: socialProfiles(rng, fullName.split(" ")[1]),
    segments: segments(rng, catalogue),
    tags: tags(rng, catalogue)
  }
  if (rng.chance(0.2)) record.x_internal_flag = rng.chance(0.5)
  return publishedShapes(record, shapeRng(seed, "leads", index))
}

const company = (catalogue: Catalogue, index: number, major: Major): object => {
  const { seed } = catalogue
  const rng = new Rng(hash(seed, resourceCode.companies, index))
  const id = idOf(seed, "companies", index)
  const created = timestamp(rng)
  const plan = rng.int(plans.length + 1)
  const planName = plan < plans.length ? plans[plan] : null
  const record: Record<string, unknown> = {
    type: "company",
    id,
    company_id: `company-${index}`,
    app_id: catalogue.appId,
    name: companyName(seed, index),
    created_at: created,
    remote_created_at: rng.orNull(0.4, () => created - rng.int(1e7)),
    updated_at: created + rng.int(1e7),
    last_request_at: rng.orNull(0.3, () => created + rng.int(1e7)),
    custom_attributes: customAttributes(rng),
    session_count: rng.int(10_000),
    monthly_spend: rng.chance(0.3) ? 0 : Math.round(rng.next() * 1e6) / 100,
    user_count: rng.int(5000),
    // 1.x names the plan; 2.x gives an object (empty when there is none).
    plan: major === 1
      ? planName
      : planName === null
      ? {}
      : planObject(seed, plan, planName),
    size: rng.orNull(0.3, () => rng.int(10_000)),
    website: rng.orNull(0.3, () => `https://www.example-${index}.com`),
    industry: rng.pick(industries),
    tags: tags(rng, catalogue),
    segments: segments(rng, catalogue)
  }
  if (rng.chance(0.2)) record.x_internal_flag = rng.chance(0.5)
  const shapes = shapeRng(seed, "companies", index)
  // 1.x too may give the plan as an object: the 1.x-era companies of intercom/intercom-ruby (spec/spec_helper.rb,
  // test_company) and intercom/python-intercom (tests/unit/__init__.py, get_company) have `{"type":"plan",…}`.
  const objectPlan = shapes.chance(0.3)
  if (major === 1 && planName !== null && objectPlan) record.plan = planObject(seed, plan, planName)
  return record
}

const planObject = (seed: number, plan: number, name: string) => ({
  type: "plan",
  id: String(hash(seed, 0x9a, plan) % 1e6),
  name
})

/** Record `index` of a resource, serialised. */
export const recordJson = (catalogue: Catalogue, resource: Resource, index: number, major: Major): string =>
  JSON.stringify(
    resource === "users"
      ? user(catalogue, index)
      : resource === "leads"
      ? lead(catalogue, index)
      : company(catalogue, index, major)
  )
