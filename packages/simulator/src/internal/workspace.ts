/**
 * A token's state (its data sets, its faults, its counters) and its app's: the one scroll the app may have open and its
 * rate-limit window, shared by every token of the app (one seed), as Intercom locks one scroll per app.
 *
 * JavaScript runs one request step at a time, so each synchronous step below is atomic; the only suspension is the
 * injected latency, before any state is read.
 *
 * @internal
 */
import { type Clock, Duration, Effect } from "effect"
import type { FaultPlan } from "../FaultPlan.js"
import type { Resource } from "../Resource.js"
import type { RestartOrder, ScrollParamMode } from "../Simulator.js"
import * as ApiError from "./apiError.js"
import { Dataset } from "./dataset.js"
import { gcd, hash, hashString, Rng } from "./random.js"
import { Catalogue, type Major } from "./records.js"
import { Counters } from "./stats.js"

export interface Config {
  readonly token: string
  readonly seed: number
  readonly counts: Readonly<Record<Resource, number>>
  readonly faults: FaultPlan
  readonly defaultVersion: string
  readonly pageSize: number
  readonly expiry: Duration.Duration
  readonly defaultRateLimit: number
  readonly scrollParam: ScrollParamMode
  readonly restartOrder: RestartOrder
  /** Whether `GET /me` answers: the token's app may read admins. */
  readonly readAdmins: boolean
}

/** A transport fault the server applies while sending a page. */
export type TransportFault = "cutBody" | "dropConnection"

export interface Page {
  /** UTF-8 JSON. */
  readonly body: Uint8Array
  /** The records in `body`: counted as served once it is sent. */
  readonly records: number
  readonly transportFault: TransportFault | undefined
}

export interface RateLimitDecision {
  readonly allowed: boolean
  readonly headers: Readonly<Record<string, string>>
  /** The 429 of a request past the budget. */
  readonly refusal: () => ApiError.ApiError
}

/**
 * An open scroll walks the indices `offset + step * position (mod order.size)`, a permutation with no memory, then
 * those created after its order was drawn (`order.size` up to `universe`) in creation order.
 */
interface Scroll {
  /** The token that opened it: its scroll_param works for that token only, over that token's data set. */
  readonly owner: Workspace
  readonly resource: Resource
  readonly universe: number
  readonly order: Order
  param: string
  position: number
  cursor: number
  lastUsedAt: number
}

/** A permutation of the indices `[0, size)`; a resource's latest, so that the next scroll differs or repeats it. */
interface Order {
  readonly size: number
  readonly step: number
  readonly offset: number
}

const defaultRateWindowSeconds = 10

/** A scroll used less than this long ago is live: another client opening one means two scrolls at once. */
const liveScrollMillis = 500

const encoder = new TextEncoder()
const comma = encoder.encode(",")

/** The bytes of an envelope before its list and after it, up to the scroll_param. */
const envelope = (head: string, tail: string) => [encoder.encode(head), encoder.encode(tail)] as const

const envelopes: Record<Resource, Record<Major, ReturnType<typeof envelope>>> = (() => {
  const users = envelope('{"type":"user.list","users":[', '],"scroll_param":"')
  const leads = envelope('{"type":"contact.list","contacts":[', '],"scroll_param":"')
  return {
    users: { 1: users, 2: users },
    leads: { 1: leads, 2: leads },
    companies: {
      1: envelope('{"type":"company.list","companies":[', '],"scroll_param":"'),
      2: envelope('{"type":"list","data":[', '],"pages":null,"total_count":null,"scroll_param":"')
    }
  }
})()

/** Concatenates byte chunks: pages are cached records joined, never re-serialised. */
const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => {
  let length = 0
  for (const chunk of chunks) length += chunk.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

/**
 * What the tokens of one app share: its open scroll and its rate-limit window. A token rotated beside the old one, or
 * two apps' tokens of one seed, meet each other's scroll (`scroll_exists`) and spend one budget.
 */
export class App {
  scroll: Scroll | undefined = undefined
  rateWindow = { start: Number.NaN, used: 0 }
  /** Until when another client's scroll holds the app (the `foreignScroll` fault of any of its tokens). */
  foreignUntil = Number.NEGATIVE_INFINITY
}

export class Workspace {
  readonly counters = new Counters()
  readonly datasets: Readonly<Record<Resource, Dataset>>
  /** The app's `id_code`: in `GET /me`, and in the `app_id` of the records that carry one. */
  readonly appId: string
  private readonly rng: Rng
  private readonly lastOrder: Partial<Record<Resource, Order>> = {}
  private pageRequests = 0

  constructor(readonly config: Config, private readonly clock: Clock.Clock, private readonly app: App) {
    const catalogue = new Catalogue(config.seed, config.counts.companies)
    this.appId = catalogue.appId
    this.datasets = {
      users: new Dataset(catalogue, "users", config.counts.users),
      leads: new Dataset(catalogue, "leads", config.counts.leads),
      companies: new Dataset(catalogue, "companies", config.counts.companies)
    }
    this.rng = new Rng(hash(config.seed, hashString(config.token)))
    const startedAt = clock.unsafeCurrentTimeMillis()
    app.foreignUntil = Math.max(app.foreignUntil, startedAt + (config.faults.foreignScroll ?? 0) * 1000)
  }


  /**
   * Takes one request from the app's current window, which every token of the app spends, against this token's limit;
   * the headers go on every authenticated response.
   */
  admit(): RateLimitDecision {
    const limit = this.config.faults.rateLimit?.limit ?? this.config.defaultRateLimit
    const windowMillis = (this.config.faults.rateLimit?.windowSeconds ?? defaultRateWindowSeconds) * 1000
    const now = this.clock.unsafeCurrentTimeMillis()
    const start = Math.floor(now / windowMillis) * windowMillis
    if (start !== this.app.rateWindow.start) this.app.rateWindow = { start, used: 0 }
    const window = this.app.rateWindow
    const allowed = window.used < limit
    if (allowed) window.used++
    return {
      allowed,
      refusal: () => ApiError.rateLimited(limit, windowMillis / 1000),
      headers: {
        "x-ratelimit-limit": String(limit),
        "x-ratelimit-remaining": String(Math.max(0, limit - window.used)),
        "x-ratelimit-reset": String(Math.floor((start + windowMillis) / 1000))
      }
    }
  }

  /**
   * The body of `GET /me`: the token's admin, with the app (the workspace) it belongs to. The app's `id_code` follows
   * the data set's seed, so two tokens of one data set are two tokens of one app.
   */
  me(): object {
    const rng = new Rng(hash(this.config.seed, 0x6d65))
    const idCode = this.appId
    return {
      type: "admin",
      id: String(rng.int(9_000_000) + 1_000_000),
      name: "Simulated Admin",
      email: `admin@${idCode}.example.com`,
      email_verified: true,
      app: {
        type: "app",
        id_code: idCode,
        name: `Simulated workspace ${idCode}`,
        created_at: 1_600_000_000 + rng.int(100_000_000),
        secure: false,
        identity_verification: false,
        timezone: "Europe/Dublin",
        region: "US"
      }
    }
  }

  /** Answers one scroll request: the first page when `param` is undefined, else the page after `param`. */
  request(resource: Resource, param: string | undefined, major: Major): Effect.Effect<Page, ApiError.ApiError> {
    return Effect.suspend(() => {
      const page = ++this.pageRequests
      this.applyMutations(page)
      const latency = this.config.faults.latency
      const answer = Effect.suspend(() => this.answer(page, resource, param, major))
      return latency === undefined ? answer : Effect.zipRight(this.clock.sleep(latency), answer)
    })
  }

  private answer(
    page: number,
    resource: Resource,
    param: string | undefined,
    major: Major
  ): Effect.Effect<Page, ApiError.ApiError> {
    const now = this.clock.unsafeCurrentTimeMillis()
    const faults = this.config.faults
    this.forgetIdleScroll(now)
    if (major === 2 && resource !== "companies") return Effect.fail(ApiError.versionInvalid())
    // A fault of this token's plan closes this token's scroll, not another token's.
    if (faults.restartAt?.includes(page) || this.restartByRate(page)) {
      this.closeOwnScroll()
      return Effect.fail(ApiError.serverError())
    }
    // Only a scroll_param can expire: a request that opens a scroll carries none, so the fault passes it by.
    if (param !== undefined && faults.expireAt?.includes(page)) {
      this.closeOwnScroll()
      return Effect.fail(ApiError.scrollNotFound())
    }
    let scroll: Scroll
    const open = this.app.scroll
    if (param === undefined) {
      if (open !== undefined || now < this.app.foreignUntil) {
        if (open !== undefined && now - open.lastUsedAt < liveScrollMillis) {
          this.counters.counts.scrollExistsWhileLive++
        }
        return Effect.fail(ApiError.scrollExists(major))
      }
      scroll = this.open(resource, now)
    } else if (open !== undefined && open.owner === this && open.param === param && open.resource === resource) {
      scroll = open
    } else {
      return Effect.fail(ApiError.scrollNotFound())
    }
    return Effect.succeed({
      ...this.nextPage(scroll, major, now),
      transportFault: faults.cutBodyAt?.includes(page)
        ? "cutBody"
        : faults.dropConnectionAt?.includes(page)
        ? "dropConnection"
        : undefined
    })
  }

  /** A scroll unused for `expiry` is gone, and no longer holds the app. */
  private forgetIdleScroll(now: number): void {
    const open = this.app.scroll
    if (open !== undefined && now - open.lastUsedAt >= Duration.toMillis(this.config.expiry)) {
      this.app.scroll = undefined
    }
  }

  private closeOwnScroll(): void {
    if (this.app.scroll?.owner === this) this.app.scroll = undefined
  }

  private restartByRate(page: number): boolean {
    const rate = this.config.faults.restartRate ?? 0
    return rate > 0 && hash(this.config.seed, 0x500, page) / 4294967296 < rate
  }

  private applyMutations(page: number): void {
    for (const mutation of this.config.faults.mutations ?? []) {
      if (mutation.atPage !== page) continue
      const dataset = this.datasets[mutation.resource]
      dataset.remove(mutation.remove ?? 0, this.rng)
      dataset.add(mutation.add ?? 0)
    }
  }

  /**
   * Opens a scroll over the records created so far: in an order that differs from the previous scroll's, or with
   * `restartOrder: "same"` in the first scroll's order, records created since then coming last.
   */
  private open(resource: Resource, now: number): Scroll {
    const universe = this.datasets[resource].created
    const previous = this.lastOrder[resource]
    const order = this.config.restartOrder === "same" && previous !== undefined
      ? previous
      : this.drawOrder(universe, previous)
    this.lastOrder[resource] = order
    this.counters.counts.scrollsOpened++
    // A rotating scroll_param is drawn by each page; a stable one once, here.
    const param = this.config.scrollParam === "stable" ? this.rng.uuid() : ""
    const scroll: Scroll = { owner: this, resource, universe, order, param, position: 0, cursor: order.offset, lastUsedAt: now }
    this.app.scroll = scroll
    return scroll
  }

  /** A permutation of `[0, size)` other than `previous`. */
  private drawOrder(size: number, previous: Order | undefined): Order {
    let step = 1
    while (size > 2) {
      step = 1 + this.rng.int(size - 1)
      if (gcd(step, size) === 1) break
    }
    let offset = size === 0 ? 0 : this.rng.int(size)
    if (previous !== undefined && previous.step === step && previous.offset === offset && size > 1) {
      offset = (offset + 1) % size
    }
    return { size, step, offset }
  }

  /** The next page of `scroll`, with a fresh scroll_param unless it is stable; the empty page closes the scroll. */
  private nextPage(scroll: Scroll, major: Major, now: number): Pick<Page, "body" | "records"> {
    const dataset = this.datasets[scroll.resource]
    const [head, tail] = envelopes[scroll.resource][major]
    const chunks: Array<Uint8Array> = [head]
    let records = 0
    const { size, step } = scroll.order
    while (records < this.config.pageSize && scroll.position < scroll.universe) {
      const index = scroll.position < size ? scroll.cursor : scroll.position
      // Records removed since the scroll opened are skipped; records added since are outside its universe.
      if (dataset.has(index)) {
        if (records++ > 0) chunks.push(comma)
        chunks.push(dataset.json(index, major))
      }
      scroll.position++
      if (scroll.position < size) scroll.cursor = (scroll.cursor + step) % size
    }
    if (this.config.scrollParam === "rotating") scroll.param = this.rng.uuid()
    scroll.lastUsedAt = now
    if (records === 0) this.app.scroll = undefined
    chunks.push(tail, encoder.encode(`${scroll.param}"}`))
    return { body: concat(chunks), records }
  }
}
