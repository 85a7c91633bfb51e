import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Option, TestClock } from "effect"
import { type FaultPlan, Simulator } from "../src/index.js"
import { scroll, scrollAll, send } from "./helpers.js"

const T = "T"
const withFaults = (faults: FaultPlan.FaultPlan, sizes: Partial<Simulator.WorkspaceOptions> = {}) =>
  Effect.provide(Simulator.layerClient({ workspaces: [{ token: T, companies: 250, ...sizes, faults }] }))

const restartMessage = "Request failed due to an internal network error. Please restart the scroll operation."

/** Opens a companies scroll and follows it for `pages` pages, returning the latest answer. */
const follow = (pages: number) =>
  Effect.gen(function*() {
    let answer = yield* scroll("companies", { token: T })
    for (let page = 1; page < pages; page++) {
      answer = yield* scroll("companies", { token: T, param: answer.body.scroll_param })
    }
    return answer
  })

describe("restartAt and restartRate", () => {
  it.effect("the page request answers 500 'restart the scroll', the scroll is closed, and a restart gets past it", () =>
    Effect.gen(function*() {
      const first = yield* follow(1)
      const failed = yield* scroll("companies", { token: T, param: first.body.scroll_param })
      expect(failed.status).toBe(500)
      expect(failed.body.errors).toEqual([{ code: "server_error", message: restartMessage }])
      expect((yield* scroll("companies", { token: T, param: first.body.scroll_param })).status).toBe(404)
      const { records } = yield* scrollAll("companies", { token: T })
      expect(records).toHaveLength(250)
    }).pipe(withFaults({ restartAt: [2] })))

  it.effect("restartRate fails that fraction of page requests, the same ones on every run", () =>
    Effect.gen(function*() {
      const statuses = (rate: number) =>
        Effect.gen(function*() {
          const out: Array<number> = []
          for (let i = 0; i < 200; i++) {
            // With no companies the first page is also the last: each request opens and ends a scroll.
            out.push((yield* scroll("companies", { token: T })).status)
          }
          return out
        }).pipe(withFaults({ restartRate: rate }, { companies: 0 }))
      const once = yield* statuses(0.25)
      expect(yield* statuses(0.25)).toEqual(once)
      const failures = once.filter((status) => status === 500).length
      expect(failures).toBeGreaterThan(25)
      expect(failures).toBeLessThan(75)
      expect((yield* statuses(0)).every((status) => status === 200)).toBe(true)
    }))
})

describe("expireAt", () => {
  it.effect("the page request answers 404 not_found and the scroll is gone", () =>
    Effect.gen(function*() {
      const first = yield* follow(1)
      const expired = yield* scroll("companies", { token: T, param: first.body.scroll_param })
      expect(expired.status).toBe(404)
      expect(expired.body.errors).toEqual([{ code: "not_found", message: "scroll parameter not found" }])
      expect((yield* scroll("companies", { token: T })).status).toBe(200)
    }).pipe(withFaults({ expireAt: [2] })))

  it.effect("passes by a request that opens a scroll: it has no scroll_param to expire", () =>
    Effect.gen(function*() {
      const first = yield* scroll("companies", { token: T })
      expect(first.status).toBe(200)
      expect((yield* scroll("companies", { token: T, param: first.body.scroll_param })).status).toBe(200)
    }).pipe(withFaults({ expireAt: [1] })))
})

describe("foreignScroll", () => {
  it.effect("another client's scroll holds the workspace for S seconds from the start", () =>
    Effect.gen(function*() {
      expect((yield* scroll("companies", { token: T })).body.errors[0].code).toBe("scroll_exists")
      yield* TestClock.adjust("29 seconds")
      expect((yield* scroll("companies", { token: T })).status).toBe(400)
      yield* TestClock.adjust("1 second")
      expect((yield* scroll("companies", { token: T })).status).toBe(200)
    }).pipe(withFaults({ foreignScroll: 30 })))
})

describe("rateLimit", () => {
  it.effect("every authenticated response carries the budget; past it 429, and the scroll_param survives", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("3 seconds")
      const answers = [yield* follow(1)]
      for (let i = 0; i < 3; i++) {
        answers.push(yield* scroll("companies", { token: T, param: answers[0].body.scroll_param }))
      }
      expect(answers.map((answer) => answer.headers["x-ratelimit-remaining"])).toEqual(["2", "1", "0", "0"])
      expect(answers.every((answer) => answer.headers["x-ratelimit-limit"] === "3")).toBe(true)
      expect(answers.every((answer) => answer.headers["x-ratelimit-reset"] === "10")).toBe(true)
      // The Date header says when, by the same clock as the reset (the TestClock here), so a client can tell skew.
      expect(answers.map((answer) => answer.headers["date"])).toEqual(Array(4).fill(new Date(3000).toUTCString()))
      // The second request used the first param and got a page: its param is now the live one.
      const live = answers[1].body.scroll_param
      expect(answers[2].status).toBe(404)
      expect(answers[3].status).toBe(429)
      // Worded as Intercom's: the budget and its window.
      expect(answers[3].body.errors).toEqual([{ code: "rate_limit_exceeded", message: "Exceeded rate limit of 3 in 10_seconds" }])
      const refused = yield* scroll("companies", { token: T, param: live })
      expect(refused.status).toBe(429)
      yield* TestClock.adjust("7 seconds") // the window ends at 10 s
      const next = yield* scroll("companies", { token: T, param: live })
      expect(next.status).toBe(200)
      expect(next.headers["x-ratelimit-remaining"]).toBe("2")
      expect(next.headers["x-ratelimit-reset"]).toBe("20")
    }).pipe(withFaults({ rateLimit: { limit: 3 } })))

  it.effect("the window length is configurable, and without a plan the default budget is generous", () =>
    Effect.gen(function*() {
      const answer = yield* scroll("companies", { token: T })
      expect(answer.headers["x-ratelimit-reset"]).toBe("60")
      const unlimited = yield* scroll("companies", { token: T }).pipe(withFaults({}))
      expect(unlimited.headers["x-ratelimit-limit"]).toBe("10000")
      expect(unlimited.headers["x-ratelimit-remaining"]).toBe("9999")
      expect(unlimited.headers["x-ratelimit-reset"]).toBe("10")
    }).pipe(withFaults({ rateLimit: { limit: 100, windowSeconds: 60 } })))
})

describe("latency", () => {
  it.effect("delays every page on the Clock", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(scroll("companies", { token: T }))
      yield* TestClock.adjust("1999 millis")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 milli")
      expect((yield* Fiber.join(fiber)).status).toBe(200)
    }).pipe(withFaults({ latency: Duration.seconds(2) })))
})

describe("transport faults in process", () => {
  it.effect("cutBodyAt: the body fails part-way; the scroll moved on and stays open", () =>
    Effect.gen(function*() {
      const first = yield* follow(1)
      const response = yield* send("/companies/scroll", { token: T, param: first.body.scroll_param })
      expect(response.status).toBe(200)
      expect(Number(response.headers["content-length"])).toBeGreaterThan(1000)
      const error = yield* Effect.flip(response.text)
      expect(error._tag).toBe("ResponseError")
      expect((yield* scroll("companies", { token: T, param: first.body.scroll_param })).status).toBe(404)
      expect((yield* scroll("companies", { token: T })).body.errors[0].code).toBe("scroll_exists")
      yield* TestClock.adjust("60 seconds")
      expect((yield* scroll("companies", { token: T })).status).toBe(200)
      expect((yield* (yield* Simulator.Simulator).stats).total.bodiesCut).toBe(1)
    }).pipe(Effect.scoped, withFaults({ cutBodyAt: [2] })))

  it.effect("dropConnectionAt: the request fails with a transport error; the scroll moved on and stays open", () =>
    Effect.gen(function*() {
      const first = yield* follow(1)
      const error = yield* Effect.flip(send("/companies/scroll", { token: T, param: first.body.scroll_param }))
      expect(error).toMatchObject({ _tag: "RequestError", reason: "Transport" })
      expect((yield* scroll("companies", { token: T, param: first.body.scroll_param })).status).toBe(404)
      expect((yield* scroll("companies", { token: T })).body.errors[0].code).toBe("scroll_exists")
      // Nothing was sent: the dropped page is not counted as served.
      expect((yield* (yield* Simulator.Simulator).stats).total).toMatchObject({
        connectionsDropped: 1,
        pagesServed: 1,
        recordsServed: first.body.data.length
      })
    }).pipe(Effect.scoped, withFaults({ dropConnectionAt: [2] })))
})

describe("mutations", () => {
  it.effect("removed records are never served after their removal; added ones join the data set", () =>
    Effect.gen(function*() {
      const simulator = yield* Simulator.Simulator
      const before = new Set(yield* simulator.ids(T, "users"))
      const first = yield* scroll("users", { token: T, version: "1.4" }) // page request 1
      const rest = yield* Effect.iterate(
        { param: first.body.scroll_param as string, ids: [] as Array<string>, done: false },
        {
          while: (state) => !state.done,
          body: (state) =>
            Effect.map(scroll("users", { token: T, version: "1.4", param: state.param }), (answer) => ({
              param: answer.body.scroll_param,
              ids: [...state.ids, ...answer.body.users.map((user: { id: string }) => user.id)],
              done: answer.body.users.length === 0
            }))
        }
      )
      const changes = yield* simulator.changes(T, "users")
      expect(changes.removed).toHaveLength(30)
      expect(changes.added).toHaveLength(12)
      expect(changes.removed.every((id) => before.has(id))).toBe(true)
      expect(changes.added.every((id) => !before.has(id))).toBe(true)
      expect(rest.ids.filter((id) => changes.removed.includes(id))).toEqual([])
      const now = yield* simulator.ids(T, "users")
      expect(now).toHaveLength(300 - 30 + 12)
      expect(now.filter((id) => changes.removed.includes(id))).toEqual([])
      // The next scroll delivers exactly the records present now.
      const again = (yield* scrollAll("users", { token: T })).records.map((user) => user.id)
      expect([...again].sort()).toEqual([...now].sort())
    }).pipe(withFaults({
      mutations: [{ atPage: 2, resource: "users", remove: 30, add: 12 }]
    }, { users: 300 })))

  it.effect("mutations are deterministic", () =>
    Effect.gen(function*() {
      const removed = Effect.gen(function*() {
        yield* scroll("leads", { token: T, version: "1.4" })
        return (yield* (yield* Simulator.Simulator).changes(T, "leads")).removed
      }).pipe(withFaults({ mutations: [{ atPage: 1, resource: "leads", remove: 5 }] }))
      expect(yield* removed).toEqual(yield* removed)
    }))
})

describe("the plan", () => {
  it.effect("is validated", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Simulator.make({ workspaces: [{ token: T, faults: { restartRate: 2 } }] }))
      expect(exit._tag).toBe("Failure")
    }))

  it.effect("refuses another client's scroll for ever", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Simulator.make({ workspaces: [{ token: T, faults: { foreignScroll: Infinity } }] }))
      expect(exit._tag).toBe("Failure")
    }))
})
