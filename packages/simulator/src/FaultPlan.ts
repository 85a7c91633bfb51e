/**
 * The faults a workspace injects, declared up front so that a test (or a command line) says exactly what goes wrong
 * and when.
 *
 * Page faults are keyed by page request number: the Nth scroll request the workspace accepts (1-based, counted after
 * authentication and the rate limit, across scrolls and resources). Numbers only grow, so each fires once and a
 * restarted scroll gets past it.
 *
 * @example
 * ```ts
 * import { HttpClient } from "@effect/platform"
 * import { type FaultPlan, Simulator } from "@intercom-scroll/simulator"
 * import { Effect } from "effect"
 *
 * // The first page request answers 500 "Please restart the scroll operation"; the restarted scroll gets past it.
 * const faults: FaultPlan.FaultPlan = { restartAt: [1], rateLimit: { limit: 100, windowSeconds: 10 } }
 *
 * const statuses = Effect.gen(function*() {
 *   const open = HttpClient.get("/companies/scroll", { headers: { authorization: "Bearer T" } })
 *   const first = yield* open
 *   const again = yield* open
 *   return [first.status, again.status, first.headers["x-ratelimit-limit"]]
 * }).pipe(Effect.provide(Simulator.layerClient({ workspaces: [{ token: "T", faults }] })))
 *
 * Effect.runPromise(statuses).then((result) => assert.deepStrictEqual(result, [500, 200, "100"]))
 * ```
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { Resource } from "./Resource.js"

const PageNumbers = Schema.Array(Schema.Int.pipe(Schema.positive()))

/**
 * Records added to or removed from a data set when a given page request arrives.
 *
 * @since 0.1.0
 * @category models
 */
export const Mutation = Schema.Struct({
  atPage: Schema.Int.pipe(Schema.positive()),
  resource: Resource,
  add: Schema.optional(Schema.NonNegativeInt),
  remove: Schema.optional(Schema.NonNegativeInt)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Mutation = typeof Mutation.Type

/**
 * A request budget per window. Every authenticated response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
 * `X-RateLimit-Reset`; past the budget the answer is 429 `rate_limit_exceeded`.
 *
 * @since 0.1.0
 * @category models
 */
export const RateLimit = Schema.Struct({
  limit: Schema.Int.pipe(Schema.positive()),
  windowSeconds: Schema.optional(Schema.Int.pipe(Schema.positive()))
})

/**
 * @since 0.1.0
 * @category models
 */
export type RateLimit = typeof RateLimit.Type

/**
 * @since 0.1.0
 * @category models
 */
export const FaultPlan = Schema.Struct({
  /** 500 "Please restart the scroll operation" at these page requests; the scroll is closed. */
  restartAt: Schema.optional(PageNumbers),
  /** 500 on this fraction of page requests (seeded, so the same requests fail on every run). */
  restartRate: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  /**
   * 404 `not_found` at these page requests, as if the scroll_param had expired; the scroll is gone. A request that
   * opens a scroll has no scroll_param to expire, so one of these numbers falling on it does nothing.
   */
  expireAt: Schema.optional(PageNumbers),
  /** Another client's scroll holds the workspace for this many seconds from the simulator's start. */
  foreignScroll: Schema.optional(Schema.Finite.pipe(Schema.nonNegative())),
  rateLimit: Schema.optional(RateLimit),
  /** Added to every page request. */
  latency: Schema.optional(Schema.DurationFromSelf),
  /** The page's body is cut short: Content-Length promises more than is sent, then the connection closes. */
  cutBodyAt: Schema.optional(PageNumbers),
  /** The connection is destroyed before any response. */
  dropConnectionAt: Schema.optional(PageNumbers),
  mutations: Schema.optional(Schema.Array(Mutation))
})

/**
 * @since 0.1.0
 * @category models
 */
export type FaultPlan = typeof FaultPlan.Type

/**
 * The plan without faults.
 *
 * @since 0.1.0
 * @category constructors
 */
export const none: FaultPlan = {}
