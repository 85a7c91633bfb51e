import type { Headers } from "@effect/platform"
import { Clock, Effect } from "effect"
import type { Resource } from "../Resource.js"
import { RateLimited } from "../ScrollError.js"
import { rateLimitWait } from "./report.js"


interface Budget {
  readonly limit: number | undefined
  readonly remaining: number
  /** UNIX milliseconds, on our clock. */
  readonly resetAt: number
}

/** Intercom's windows are 10 seconds; a 429 without a reset header waits that long. */
const DEFAULT_WINDOW_MILLIS = 10_000
/** A reset already past by our clock still waits a little, or the resend meets the same 429. */
const MIN_WAIT_MILLIS = 1_000

const numberHeader = (headers: Headers.Headers, name: string): number | undefined => {
  const value = headers[name]
  if (value === undefined) return undefined
  const parsed = Number(value)
  return Number.isFinite(parsed) ? parsed : undefined
}

/** The headers of Intercom's rate limit, which tell its 429 from a proxy's. */
const intercomHeaders = ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"] as const

/** Clocks within this of each other agree: a Date header counts whole seconds. */
const CLOCK_TOLERANCE_MILLIS = 2_000

/**
 * X-RateLimit-Reset is a time on Intercom's clock. Read by ours as it is, a clock a minute behind would find every
 * reset too far away to wait for, and one ahead would find it past and resend at once. A response's Date header tells
 * how far Intercom's clock is from ours (`now`); the reset, moved by as much, is when ours will read it.
 */
const resetOnOurClock = (headers: Headers.Headers, reset: number, now: number): number => {
  const date = headers["date"]
  const theirs = date === undefined ? Number.NaN : Date.parse(date)
  const offset = Number.isFinite(theirs) && Math.abs(theirs - now) > CLOCK_TOLERANCE_MILLIS ? theirs - now : 0
  return reset * 1000 - offset
}

/**
 * A 429's `Retry-After` (RFC 9110 §10.2.3) as a reset in UNIX seconds on the server's clock, for an answer without
 * X-RateLimit-Reset: a proxy or CDN in front of Intercom that limits on its own says when to come back this way, in
 * seconds from now or as an HTTP-date. Seconds count from the answer (`now`): put on the server's clock only where
 * `resetOnOurClock` moves its times back (its Date more than the tolerance off), so that they land on `now` again. A
 * Date within the tolerance is not taken: it counts whole seconds, and `Date + N` would come up to a second early.
 */
const retryAfter = (headers: Headers.Headers, now: number): number | undefined => {
  const value = headers["retry-after"]?.trim()
  if (value === undefined || value === "") return undefined
  if (/^\d+$/.test(value)) {
    const date = headers["date"]
    const theirs = date === undefined ? Number.NaN : Date.parse(date)
    const offset = Number.isFinite(theirs) && Math.abs(theirs - now) > CLOCK_TOLERANCE_MILLIS ? theirs - now : 0
    return (now + offset) / 1000 + Number(value)
  }
  const at = Date.parse(value)
  return Number.isFinite(at) ? at / 1000 : undefined
}

const readBudget = (headers: Headers.Headers, now: number): Budget | undefined => {
  const remaining = numberHeader(headers, "x-ratelimit-remaining")
  const reset = numberHeader(headers, "x-ratelimit-reset")
  if (remaining === undefined || reset === undefined) return undefined
  return { limit: numberHeader(headers, "x-ratelimit-limit"), remaining, resetAt: resetOnOurClock(headers, reset, now) }
}

export interface RateLimiter {
  /** Before a request: waits when the budget runs low, so that 429s stay rare. */
  readonly pace: (resource: Resource) => Effect.Effect<void>
  /** After every response: remembers the budget Intercom reported. */
  readonly observe: (headers: Headers.Headers) => Effect.Effect<void>
  /** After the `attempt`-th 429 in a row: waits for the reset, or fails when that is too long or too often. */
  readonly backOff: (
    headers: Headers.Headers,
    where: { readonly resource: Resource; readonly page: number; readonly attempt: number }
  ) => Effect.Effect<void, RateLimited>
}

/** The client's `rateLimit` options, checked and with their defaults (internal/options.ts). */
export interface Settings {
  readonly lowWater: number
  readonly maxWaitMillis: number
  readonly maxRetries: number
}

export const make = ({ lowWater, maxRetries, maxWaitMillis: maxWait }: Settings): Effect.Effect<RateLimiter> =>
  Effect.gen(function*() {
    // Plain state, not a Ref: one client's requests are serial, and these run on every page.
    let budget: Budget | undefined

    const pace = (resource: Resource) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const current = budget
        if (current === undefined) return Effect.void
        const left = current.resetAt - now
        const threshold = Math.max(1, Math.floor((current.limit ?? 0) * lowWater))
        if (left <= 0 || current.remaining > threshold) return Effect.void
        // Spread what is left of the budget over what is left of the window.
        const millis = current.remaining <= 0 ? left : Math.ceil(left / (current.remaining + 1))
        // Not a wait longer than the client accepts, cut short either: by default that is Intercom's minute, which the
        // scroll_param in hand would not outlive. The request goes out, and a 429 that names a reset so far away is
        // RateLimited.
        if (millis > maxWait) return Effect.void
        return rateLimitWait(resource, "paced", now + millis, millis)
      })

    const observe = (headers: Headers.Headers) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          const next = readBudget(headers, now)
          if (next !== undefined) budget = next
        }))

    const backOff: RateLimiter["backOff"] = (headers, { attempt, page, resource }) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const reset = numberHeader(headers, "x-ratelimit-reset") ?? retryAfter(headers, now)
        const resetAt = reset === undefined ? now + DEFAULT_WINDOW_MILLIS : resetOnOurClock(headers, reset, now)
        const millis = Math.max(MIN_WAIT_MILLIS, resetAt - now)
        if (attempt > maxRetries || millis > maxWait) {
          // The reset as the server said it: that is the time its budget comes back.
          const said = reset === undefined ? resetAt : reset * 1000
          return yield* new RateLimited({
            resource,
            page,
            resetAt: said,
            limit: numberHeader(headers, "x-ratelimit-limit"),
            // Intercom sends these with every answer; a proxy that limits on its own does not.
            intercomHeaders: intercomHeaders.some((name) => headers[name] !== undefined)
          })
        }
        // The window is spent: nothing goes out before the reset.
        budget = undefined
        yield* rateLimitWait(resource, "429", now + millis, millis)
      })

    return { pace, observe, backOff }
  })
