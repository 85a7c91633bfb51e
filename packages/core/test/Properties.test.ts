/**
 * Property tests of the promise the library makes: each record comes out exactly once (with dedupe) or at least
 * once (without), or the stream ends with a typed error that names the cause once the budget for that cause is
 * spent. Never a defect, never a silent loss.
 *
 * Every case draws a data set (size, seed, page size), whether the scroll_param changes from page to page or stays the
 * same, whether pages come compressed, and a fault plan for the in-process simulator: 500s, cut-off bodies, dropped
 * connections, another client's scroll, records added and removed mid-scroll, a tight rate limit, 429 bursts (another
 * app of the workspace spending its budget), and expiries (404s at drawn page requests, and a consumer that stalls past
 * the scroll_param's lifetime, itself drawn). It runs under the TestClock, moved straight
 * to the next pending wake-up, so minutes of backoff, rate-limit waits and expiry take no real time.
 */
import { HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import {
  Cause,
  Chunk,
  Duration,
  Effect,
  Exit,
  FastCheck as fc,
  Fiber,
  Layer,
  Option,
  Redacted,
  Schedule,
  Stream,
  TestClock
} from "effect"
import { IntercomClient, Progress, Scroll, type ScrollError } from "../src/index.js"
import { withNeighbour } from "./support/neighbour.js"

const BASE_URL = "https://api.intercom.io"

/** Page-request numbers (1-based, as the simulator counts them) where a fault fires. */
const requestNumbers = fc.uniqueArray(fc.integer({ min: 1, max: 30 }), { maxLength: 2 })

/** Mostly a generous budget, sometimes a short one that a plan can exhaust. */
const budget = (generous: number, short: number) =>
  fc.oneof({ weight: 3, arbitrary: fc.constant(generous) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: short }) })

const Case = fc.record({
  /** A new scroll_param every page, or the same one for every page of a scroll. */
  scrollParam: fc.constantFrom("rotating" as const, "stable" as const),
  /** A restart in another order, or in the first scroll's: then its pages up to the break are all sent before. */
  restartOrder: fc.constantFrom("varied" as const, "same" as const),
  /** Whether the simulator compresses the pages the client asks compressed. */
  compression: fc.boolean(),
  users: fc.integer({ min: 0, max: 240 }),
  pageSize: fc.integer({ min: 7, max: 100 }),
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  /** How long the simulator keeps an unused scroll_param. */
  expirySeconds: fc.integer({ min: 20, max: 60 }),
  prefetch: fc.integer({ min: 0, max: 2 }),
  /** The restart budget. */
  restarts: budget(8, 3),
  /** Waits of 10 seconds for another scroll to go away. */
  concurrentWaits: budget(12, 11),
  /** 429s in a row the client accepts on one request. */
  maxRetries: budget(10, 4),
  restartAt: requestNumbers,
  expireAt: requestNumbers,
  cutBodyAt: requestNumbers,
  dropConnectionAt: requestNumbers,
  /** Seconds another client's scroll holds the workspace from the start. */
  foreignScroll: fc.oneof(fc.constant(undefined), fc.integer({ min: 1, max: 90 })),
  rateLimit: fc.record({ limit: fc.integer({ min: 2, max: 30 }), windowSeconds: fc.integer({ min: 1, max: 10 }) }),
  mutations: fc.array(
    fc.record({
      atPage: fc.integer({ min: 1, max: 30 }),
      add: fc.integer({ min: 0, max: 15 }),
      remove: fc.integer({ min: 0, max: 15 })
    }),
    { maxLength: 3 }
  ),
  /** From the client's `atRequest`-th HTTP request on, `length` requests in a row find the window spent. */
  bursts: fc.array(
    fc.record({ atRequest: fc.integer({ min: 1, max: 40 }), length: fc.integer({ min: 1, max: 6 }) }),
    { maxLength: 2 }
  ),
  /** The consumer stalls this long on its `atPage`-th page, past the scroll_param's lifetime. */
  stalls: fc.array(
    fc.record({ atPage: fc.integer({ min: 1, max: 25 }), seconds: fc.integer({ min: 61, max: 130 }) }),
    { maxLength: 2 }
  )
})

type Case = typeof Case extends fc.Arbitrary<infer A> ? A : never

/** What the client saw on the wire, beyond what the simulator counts. */
interface Wire {
  /** The longest run of 429s in a row the client received. */
  longest429Run: number
  current429Run: number
}

let workspaces = 0

/** The simulator in process, a client over it with the neighbour in front, and the case's options. */
const world = (c: Case, token: string, wire: Wire) =>
  Layer.effect(
    IntercomClient.IntercomClient,
    Effect.gen(function*() {
      const inner = yield* HttpClient.HttpClient
      return yield* IntercomClient.make({
        accessToken: Redacted.make(token),
        baseUrl: BASE_URL,
        rateLimit: { maxRetries: c.maxRetries },
        // The simulator in process never leaves a request hanging: a timeout longer than any case never cuts one
        // short, whatever the clock is moved by.
        requestTimeout: "1 hour"
      }).pipe(Effect.provideService(
        HttpClient.HttpClient,
        withNeighbour(
          inner,
          (n) => c.bursts.some((burst) => n >= burst.atRequest && n < burst.atRequest + burst.length),
          (response) => {
            wire.current429Run = response.status === 429 ? wire.current429Run + 1 : 0
            wire.longest429Run = Math.max(wire.longest429Run, wire.current429Run)
          }
        )
      ))
    })
  ).pipe(
    Layer.provideMerge(Simulator.layerClient({
      scrollParam: c.scrollParam,
      restartOrder: c.restartOrder,
      compression: c.compression,
      pageSize: c.pageSize,
      expiry: Duration.seconds(c.expirySeconds),
      workspaces: [{
        token,
        seed: c.seed,
        users: c.users,
        leads: 0,
        companies: 0,
        faults: {
          restartAt: c.restartAt,
          expireAt: c.expireAt,
          cutBodyAt: c.cutBodyAt,
          dropConnectionAt: c.dropConnectionAt,
          rateLimit: c.rateLimit,
          mutations: c.mutations.map((m) => ({ ...m, resource: "users" as const })),
          ...(c.foreignScroll === undefined ? {} : { foreignScroll: c.foreignScroll })
        }
      }]
    })),
    Layer.orDie
  )

/**
 * Runs `effect` to its end under the TestClock: lets every fiber run until it waits, then moves the clock straight
 * to the earliest pending wake-up. Dies if the program is neither done, nor waiting on the clock, nor getting on
 * (`progress()`, a count of what it did, unchanged) for 5 s of real time (real time, not a count of rounds: a client's
 * layer digests its token on libuv's thread pool, late on a loaded machine; and a machine loaded far past its cores
 * stretched one case's work between two waits past 5 s, in a full run beside other work).
 */
const runUnderTestClock = <A, E, R>(effect: Effect.Effect<A, E, R>, progress: () => number) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    for (let idleSince = Date.now(), done = progress(); Date.now() - idleSince < 5_000;) {
      const exit = yield* Fiber.poll(fiber)
      if (Option.isSome(exit)) return exit.value
      const sleeps = yield* TestClock.sleeps()
      if (Chunk.isEmpty(sleeps)) {
        if (progress() !== done) {
          done = progress()
          idleSince = Date.now()
        }
        yield* TestClock.adjust(0)
        continue
      }
      idleSince = Date.now()
      yield* TestClock.setTime(Math.min(...sleeps))
    }
    return yield* Effect.dieMessage("the scroll neither finished nor waited on the clock")
  })

interface Outcome {
  readonly exit: Exit.Exit<void, ScrollError.ScrollError>
  readonly emitted: ReadonlyArray<string>
  readonly restarts: number
  /** The records the pages' progress events counted. */
  readonly reported: number
  /** Ids present through the whole scroll, and those that mutations added or removed. */
  readonly stable: ReadonlyArray<string>
  readonly changed: ReadonlySet<string>
  readonly scrollExists: number
  readonly wire: Wire
}

const scroll = (c: Case, dedupe: boolean) =>
  Effect.gen(function*() {
    const token = `tok_property_${++workspaces}`
    const wire: Wire = { longest429Run: 0, current429Run: 0 }
    const emitted: Array<string> = []
    let restarts = 0
    let reported = 0
    let pages = 0
    // Every progress event and every record that came out: what the scroll has done so far.
    let events = 0
    const options: Scroll.Options = {
      dedupe,
      prefetch: c.prefetch,
      restart: Schedule.exponential("1 second").pipe(Schedule.intersect(Schedule.recurs(c.restarts))),
      concurrentScroll: Schedule.spaced("10 seconds").pipe(Schedule.intersect(Schedule.recurs(c.concurrentWaits)))
    }
    const program = Scroll.pages("users", options).pipe(
      Stream.runForEach((page) =>
        Effect.gen(function*() {
          emitted.push(...page.records.map((record) => record.id))
          const stall = c.stalls.find((s) => s.atPage === ++pages)
          if (stall !== undefined) yield* Effect.sleep(Duration.seconds(stall.seconds))
        })
      ),
      Effect.provideService(Progress.Progress, {
        // A retry of a first page that failed (the scroll had not opened) spends the restart budget too.
        report: (event) =>
          Effect.sync(() => {
            events++
            if (event._tag === "Restart" || event._tag === "Retry") restarts++
            if (event._tag === "Page") reported += event.records
          })
      })
    )
    return yield* Effect.gen(function*() {
      const exit = yield* runUnderTestClock(program, () => events + emitted.length)
      const simulator = yield* Simulator.Simulator
      const present = yield* simulator.ids(token, "users")
      const { added, removed } = yield* simulator.changes(token, "users")
      const changed = new Set([...added, ...removed])
      const stats = (yield* simulator.stats).workspaces[token]
      const outcome: Outcome = {
        exit,
        emitted,
        restarts,
        reported,
        stable: present.filter((id) => !changed.has(id)),
        changed,
        scrollExists: stats.errorsByCode["scroll_exists"] ?? 0,
        wire
      }
      return outcome
    }).pipe(Effect.provide(world(c, token, wire)))
  })

const countsOf = (ids: ReadonlyArray<string>) => {
  const counts = new Map<string, number>()
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1)
  return counts
}

/** A failure is one of the typed errors a fault explains, raised only once the budget for it was spent. */
const expectSpentBudget = (c: Case, outcome: Outcome) => {
  const { exit } = outcome
  if (Exit.isSuccess(exit)) return
  // A typed failure, not a defect or an interruption.
  expect(Cause.isFailType(exit.cause) ? exit.cause.error._tag : Cause.pretty(exit.cause)).toMatch(
    /^(RestartRequired|Expired|ConcurrentScroll|RateLimited)$/
  )
  const error = Option.getOrThrow(Cause.failureOption(exit.cause))
  switch (error._tag) {
    case "RestartRequired":
    case "Expired":
      expect(outcome.restarts).toBe(c.restarts)
      break
    case "ConcurrentScroll":
      expect(outcome.scrollExists).toBeGreaterThan(c.concurrentWaits)
      break
    case "RateLimited":
      expect(outcome.wire.longest429Run).toBeGreaterThan(c.maxRetries)
      break
  }
}

/** Every id emitted is one of the workspace's records (present throughout, or added or removed on the way). */
const expectOnlyRealRecords = (outcome: Outcome) => {
  const stable = new Set(outcome.stable)
  expect(outcome.emitted.filter((id) => !stable.has(id) && !outcome.changed.has(id))).toEqual([])
}

// 50 cases take some 13 s of CPU for each property: more than vitest's default 30 s once the machine is loaded past its
// cores (78 s and 68 s of wall time at load 15-18).
const runs = { timeout: 120_000, fastCheck: { numRuns: 50 } }

describe("a scroll through random faults", () => {
  it.effect.prop("with dedupe: each record once, or a typed error once the budget is spent", [Case], ([c]) =>
    Effect.gen(function*() {
      const outcome = yield* scroll(c, true)
      expectSpentBudget(c, outcome)
      expectOnlyRealRecords(outcome)
      const counts = countsOf(outcome.emitted)
      // Progress counts what came out, a record sent again not twice.
      expect(outcome.reported).toBe(outcome.emitted.length)
      // No duplicates, whether the scroll finished or not.
      expect([...counts].filter(([, n]) => n > 1)).toEqual([])
      if (Exit.isSuccess(outcome.exit)) {
        // Every record present through the whole scroll came out.
        expect(outcome.stable.filter((id) => !counts.has(id))).toEqual([])
      }
    }), runs)

  it.effect.prop("without dedupe: each record at least once, or a typed error once the budget is spent", [Case], ([c]) =>
    Effect.gen(function*() {
      const outcome = yield* scroll(c, false)
      expectSpentBudget(c, outcome)
      expectOnlyRealRecords(outcome)
      const counts = countsOf(outcome.emitted)
      // A record comes out at most once per attempt.
      const attempts = outcome.restarts + 1
      expect([...counts].filter(([, n]) => n > attempts)).toEqual([])
      if (Exit.isSuccess(outcome.exit)) {
        expect(outcome.stable.filter((id) => !counts.has(id))).toEqual([])
      }
    }), runs)
})
