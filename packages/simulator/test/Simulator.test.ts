import { describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Duration, Effect, TestClock } from "effect"
import { Simulator } from "../src/index.js"
import * as Zlib from "node:zlib"
import { get, getBytes, scroll, scrollAll, send } from "./helpers.js"

const T = "token-t"
const U = "token-u"
const options: Simulator.SimulatorOptions = {
  workspaces: [{ token: T, users: 250, leads: 130, companies: 120 }, { token: U, users: 40, leads: 10, companies: 5 }]
}
const withSimulator = (opts: Simulator.SimulatorOptions = options) => Effect.provide(Simulator.layerClient(opts))
const uuidLike = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

const errorCode = (answer: { readonly body: { readonly errors?: ReadonlyArray<{ readonly code: string }> } }) =>
  answer.body.errors?.[0].code

describe("envelopes", () => {
  it.effect("users: user.list with users and a scroll_param", () =>
    Effect.gen(function*() {
      const { status, body } = yield* scroll("users", { token: T, version: "1.4" })
      expect(status).toBe(200)
      expect(Object.keys(body)).toEqual(["type", "users", "scroll_param"])
      expect(body.type).toBe("user.list")
      expect(body.users).toHaveLength(100)
      expect(body.users.every((user: { type: string }) => user.type === "user")).toBe(true)
      expect(body.scroll_param).toMatch(uuidLike)
    }).pipe(withSimulator()))

  it.effect("leads: contact.list with contacts", () =>
    Effect.gen(function*() {
      const { status, body } = yield* scroll("leads", { token: T, version: "1.4" })
      expect(status).toBe(200)
      expect(Object.keys(body)).toEqual(["type", "contacts", "scroll_param"])
      expect(body.type).toBe("contact.list")
      expect(body.contacts.every((lead: { type: string }) => lead.type === "contact")).toBe(true)
    }).pipe(withSimulator()))

  it.effect("companies under 2.x (and by default): list with data, null pages and total_count, plan objects", () =>
    Effect.gen(function*() {
      for (const call of [{ token: T, version: "2.14" }, { token: T }]) {
        const { body } = yield* scroll("companies", call)
        expect(Object.keys(body)).toEqual(["type", "data", "pages", "total_count", "scroll_param"])
        expect(body).toMatchObject({ type: "list", pages: null, total_count: null })
        expect(body.data.every((company: { type: string }) => company.type === "company")).toBe(true)
        expect(body.data.every((company: { plan: unknown }) => typeof company.plan === "object")).toBe(true)
        expect(body.data.some((company: { plan: { type?: string } }) => company.plan.type === "plan")).toBe(true)
        yield* TestClock.adjust("60 seconds")
      }
    }).pipe(withSimulator()))

  it.effect("companies under 1.x: company.list with companies, plan names (sometimes plan objects)", () =>
    Effect.gen(function*() {
      const { body } = yield* scroll("companies", { token: T, version: "1.4" })
      expect(Object.keys(body)).toEqual(["type", "companies", "scroll_param"])
      expect(body.type).toBe("company.list")
      const plans = body.companies.map((company: { plan: unknown }) => company.plan)
      // A name mostly; sometimes an object, as the 1.x-era companies of intercom/intercom-ruby (spec/spec_helper.rb,
      // test_company) and intercom/python-intercom (tests/unit/__init__.py, get_company) have it.
      const isPlanObject = (plan: unknown) =>
        typeof plan === "object" && plan !== null && (plan as { type?: unknown }).type === "plan"
      expect(plans.every((plan: unknown) => plan === null || typeof plan === "string" || isPlanObject(plan))).toBe(true)
      expect(plans.some((plan: unknown) => typeof plan === "string")).toBe(true)
      expect(plans.some(isPlanObject)).toBe(true)
    }).pipe(withSimulator()))

  it.effect("users and leads under 2.x (header or workspace default) get 400 intercom_version_invalid", () =>
    Effect.gen(function*() {
      // 10.0 is no 1.x.
      for (const call of [{ token: T, version: "2.14" }, { token: T }, { token: T, version: "2.0" }, { token: T, version: "10.0" }]) {
        for (const resource of ["users", "leads"] as const) {
          const answer = yield* scroll(resource, call)
          expect(answer.status).toBe(400)
          expect(answer.body.errors).toEqual([{
            code: "intercom_version_invalid",
            message: "Requested resource is not available in current API version"
          }])
        }
      }
    }).pipe(withSimulator()))

  it.effect("a workspace whose default version is 1.x serves users without a header", () =>
    Effect.gen(function*() {
      const { status, body } = yield* scroll("users", { token: T })
      expect(status).toBe(200)
      expect(body.type).toBe("user.list")
      yield* TestClock.adjust("60 seconds")
      expect((yield* scroll("companies", { token: T })).body.type).toBe("company.list")
    }).pipe(withSimulator({ workspaces: [{ token: T, users: 10, defaultVersion: "1.4" }] })))
})

describe("authentication", () => {
  const basic = (user: string, password = "") => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`

  it.effect("accepts Bearer and HTTP Basic with the token as user name", () =>
    Effect.gen(function*() {
      expect((yield* scroll("companies", { authorization: `Bearer ${T}` })).status).toBe(200)
      expect((yield* scroll("companies", { authorization: basic(U) })).status).toBe(200)
    }).pipe(withSimulator()))

  it.effect("anything else is 401 unauthorized in an error.list, without rate-limit headers", () =>
    Effect.gen(function*() {
      const refused = [undefined, "Bearer nope", `Token ${T}`, basic(T, "secret"), basic("nope"), "Basic !!!", "Bearer"]
      for (const authorization of refused) {
        const answer = yield* scroll("companies", authorization === undefined ? {} : { authorization })
        expect(answer.status).toBe(401)
        expect(answer.body).toEqual({
          type: "error.list",
          request_id: expect.stringMatching(/^[0-9a-f]{20}$/),
          errors: [{ code: "unauthorized", message: "Access Token Invalid" }]
        })
        expect(answer.headers["x-ratelimit-limit"]).toBeUndefined()
      }
    }).pipe(withSimulator()))

  it.effect("an unknown path is 404 not_found", () =>
    Effect.gen(function*() {
      const answer = yield* get("/admins", { token: T })
      expect(answer.status).toBe(404)
      expect(answer.body.errors).toEqual([{ code: "not_found", message: "Resource Not Found" }])
      expect(answer.headers["x-ratelimit-limit"]).toBe("10000")
    }).pipe(withSimulator()))
})

describe("workspaces", () => {
  it.effect("each token has its own data set and its own scroll", () =>
    Effect.gen(function*() {
      const t = yield* scroll("companies", { token: T })
      const u = yield* scroll("companies", { token: U })
      expect(u.status).toBe(200)
      const ids = (body: { data: ReadonlyArray<{ id: string }> }) => body.data.map((company) => company.id)
      expect(ids(u.body).filter((id) => ids(t.body).includes(id))).toEqual([])
      const simulator = yield* Simulator.Simulator
      expect((yield* simulator.ids(U, "companies")).length).toBe(5)
    }).pipe(withSimulator()))

  it.effect("a scroll_param works only in the workspace that opened it", () =>
    Effect.gen(function*() {
      const t = yield* scroll("companies", { token: T })
      const foreign = yield* scroll("companies", { token: U, param: t.body.scroll_param })
      expect(foreign.status).toBe(404)
      expect(foreign.body.errors).toEqual([{ code: "not_found", message: "scroll parameter not found" }])
      expect((yield* scroll("companies", { token: T, param: t.body.scroll_param })).status).toBe(200)
    }).pipe(withSimulator()))
})

describe("tokens of one app", () => {
  // Two tokens of one seed: a token rotated beside the old one, or two apps' tokens installed on one workspace.
  const A = "token-a"
  const B = "token-b"
  const oneApp = (faults: Simulator.FaultPlan = {}): Simulator.SimulatorOptions => ({
    workspaces: [{ token: A, seed: 7, companies: 150, faults }, { token: B, seed: 7, companies: 150, faults }, {
      token: U,
      seed: 8,
      companies: 150,
      faults
    }]
  })

  it.effect("share one open scroll: the other token meets scroll_exists until the scroll ends, and counts it live", () =>
    Effect.gen(function*() {
      const first = yield* scroll("companies", { token: A })
      expect(first.status).toBe(200)
      const refused = yield* scroll("companies", { token: B })
      expect(refused.status).toBe(400)
      expect(errorCode(refused)).toBe("scroll_exists")
      // Another app is not held.
      expect((yield* scroll("companies", { token: U })).status).toBe(200)
      // The scroll_param is its opener's.
      expect((yield* scroll("companies", { token: B, param: first.body.scroll_param })).status).toBe(404)
      let param = first.body.scroll_param
      for (;;) {
        const page = yield* scroll("companies", { token: A, param })
        expect(page.status).toBe(200)
        if (page.body.data.length === 0) break
        param = page.body.scroll_param
      }
      expect((yield* scroll("companies", { token: B })).status).toBe(200)
      const simulator = yield* Simulator.Simulator
      const stats = yield* simulator.stats
      expect(stats.workspaces[B]).toMatchObject({ scrollsOpened: 1, scrollExistsWhileLive: 1, errorsByCode: { scroll_exists: 1 } })
      expect(stats.workspaces[A]).toMatchObject({ scrollsOpened: 1, scrollExistsWhileLive: 0 })
      // By app: A and B are one, U another.
      const me = yield* get("/me", { token: A })
      expect(Object.keys(stats.apps)).toHaveLength(2)
      expect(stats.apps[me.body.app.id_code]).toMatchObject({
        scrollsOpened: 2,
        scrollExistsWhileLive: 1,
        requests: stats.workspaces[A].requests + stats.workspaces[B].requests
      })
    }).pipe(withSimulator(oneApp())))

  it.effect("an abandoned scroll of one token holds the other until it expires", () =>
    Effect.gen(function*() {
      expect((yield* scroll("companies", { token: A })).status).toBe(200)
      yield* TestClock.adjust("59 seconds")
      expect(errorCode(yield* scroll("users", { token: B, version: "1.4" }))).toBe("scroll_exists")
      yield* TestClock.adjust("1 second")
      expect((yield* scroll("users", { token: B, version: "1.4" })).status).toBe(200)
      const simulator = yield* Simulator.Simulator
      expect((yield* simulator.stats).workspaces[B].scrollExistsWhileLive).toBe(0)
    }).pipe(withSimulator(oneApp())))

  it.effect("share one rate-limit window", () =>
    Effect.gen(function*() {
      expect((yield* get("/me", { token: A })).headers["x-ratelimit-remaining"]).toBe("2")
      expect((yield* get("/me", { token: B })).headers["x-ratelimit-remaining"]).toBe("1")
      expect((yield* get("/me", { token: U })).headers["x-ratelimit-remaining"]).toBe("2")
      expect((yield* get("/me", { token: A })).headers["x-ratelimit-remaining"]).toBe("0")
      expect(errorCode(yield* get("/me", { token: B }))).toBe("rate_limit_exceeded")
    }).pipe(withSimulator(oneApp({ rateLimit: { limit: 3 } }))))

  it.effect("a foreign scroll in one token's plan holds the app", () =>
    Effect.gen(function*() {
      expect(errorCode(yield* scroll("companies", { token: B }))).toBe("scroll_exists")
      yield* TestClock.adjust("30 seconds")
      expect((yield* scroll("companies", { token: B })).status).toBe(200)
    }).pipe(withSimulator({
      workspaces: [{ token: A, seed: 7, faults: { foreignScroll: 30 } }, { token: B, seed: 7 }]
    })))

  it.effect("a fault of one token's plan closes that token's scroll only", () =>
    Effect.gen(function*() {
      const opened = yield* scroll("companies", { token: A })
      expect(errorCode(yield* scroll("companies", { token: B }))).toBe("server_error") // B's first page request
      expect((yield* scroll("companies", { token: A, param: opened.body.scroll_param })).status).toBe(200)
    }).pipe(withSimulator({
      workspaces: [{ token: A, seed: 7 }, { token: B, seed: 7, faults: { restartAt: [1] } }]
    })))
})

describe("scroll lifecycle", () => {
  it.effect("one open scroll per workspace, whatever the resource: 400 scroll_exists", () =>
    Effect.gen(function*() {
      expect((yield* scroll("companies", { token: T })).status).toBe(200)
      for (const resource of ["companies", "users"] as const) {
        const second = yield* scroll(resource, { token: T, version: "1.4" })
        expect(second.status).toBe(400)
        expect(second.body.errors).toEqual([{ code: "scroll_exists", message: "scroll already exists for this workspace" }])
      }
      // Worded as 2.x's companies docs word it: per app.
      const under2 = yield* scroll("companies", { token: T, version: "2.14" })
      expect(under2.body.errors).toEqual([{ code: "scroll_exists", message: "scroll already exists for this app" }])
    }).pipe(withSimulator()))

  it.effect("a scroll_param unused for 60 s expires (404), and the workspace is free again", () =>
    Effect.gen(function*() {
      const first = yield* scroll("companies", { token: T })
      yield* TestClock.adjust("59 seconds")
      const second = yield* scroll("companies", { token: T, param: first.body.scroll_param })
      expect(second.status).toBe(200)
      yield* TestClock.adjust("60 seconds")
      const late = yield* scroll("companies", { token: T, param: second.body.scroll_param })
      expect(late.status).toBe(404)
      expect(errorCode(late)).toBe("not_found")
      expect((yield* scroll("companies", { token: T })).status).toBe(200)
    }).pipe(withSimulator()))

  it.effect("the expiry is configurable", () =>
    Effect.gen(function*() {
      const first = yield* scroll("companies", { token: T })
      yield* TestClock.adjust("5 seconds")
      expect((yield* scroll("companies", { token: T, param: first.body.scroll_param })).status).toBe(404)
    }).pipe(withSimulator({ ...options, expiry: "5 seconds" })))

  it.effect("each page hands out a new scroll_param and the previous one dies", () =>
    Effect.gen(function*() {
      const first = yield* scroll("companies", { token: T })
      const second = yield* scroll("companies", { token: T, param: first.body.scroll_param })
      expect(second.body.scroll_param).toMatch(uuidLike)
      expect(second.body.scroll_param).not.toBe(first.body.scroll_param)
      expect((yield* scroll("companies", { token: T, param: first.body.scroll_param })).status).toBe(404)
      expect((yield* scroll("companies", { token: T, param: second.body.scroll_param })).status).toBe(200)
    }).pipe(withSimulator()))

  it.effect("the empty page ends the scroll: its scroll_param is expired and the workspace is free", () =>
    Effect.gen(function*() {
      const { lastParam, pages, records } = yield* scrollAll("companies", { token: T })
      expect(records).toHaveLength(120)
      expect(pages).toBe(3) // 100, 20, then the empty page
      expect(lastParam).toMatch(uuidLike)
      const after = yield* scroll("companies", { token: T, param: lastParam })
      expect(after.status).toBe(404)
      expect(errorCode(after)).toBe("not_found")
      expect((yield* scroll("companies", { token: T })).status).toBe(200)
    }).pipe(withSimulator()))

  it.effect("a scroll delivers every record exactly once; a restart delivers them in another order", () =>
    Effect.gen(function*() {
      const simulator = yield* Simulator.Simulator
      for (const resource of ["users", "leads", "companies"] as const) {
        const first = (yield* scrollAll(resource, { token: T })).records.map((record) => record.id)
        const second = (yield* scrollAll(resource, { token: T })).records.map((record) => record.id)
        const ids = yield* simulator.ids(T, resource)
        expect(new Set(first).size).toBe(first.length)
        expect([...first].sort()).toEqual([...ids].sort())
        expect([...second].sort()).toEqual([...ids].sort())
        expect(second).not.toEqual(first)
      }
    }).pipe(withSimulator()))

  it.effect("pageSize sets the records per page", () =>
    Effect.gen(function*() {
      const { pages, records } = yield* scrollAll("users", { token: U })
      expect(records).toHaveLength(40)
      expect(pages).toBe(7) // 5 full pages of 7, one of 5, then the empty page
    }).pipe(withSimulator({ ...options, pageSize: 7 })))
})

describe("restartOrder", () => {
  const ids = (records: ReadonlyArray<{ readonly id: string }>) => records.map((record) => record.id)

  it.effect("same: every scroll of a resource, restarted or not, sends the first one's order; varied (the default) does not", () =>
    Effect.gen(function*() {
      for (const [restartOrder, repeats] of [["same", true], ["varied", false], [undefined, false]] as const) {
        const orders = yield* Effect.gen(function*() {
          const first = ids((yield* scrollAll("users", { token: T })).records) // page requests 1-4: 100, 100, 50, empty
          const opened = yield* scroll("users", { token: T, version: "1.4" })
          // Page request 6 answers 500 "restart the scroll" and closes it.
          expect((yield* scroll("users", { token: T, version: "1.4", param: opened.body.scroll_param })).status).toBe(500)
          const restarted = ids((yield* scrollAll("users", { token: T })).records)
          yield* scrollAll("companies", { token: T }) // another resource's scroll between two of users
          const third = ids((yield* scrollAll("users", { token: T })).records)
          const present = [...yield* (yield* Simulator.Simulator).ids(T, "users")].sort()
          for (const order of [first, restarted, third]) expect([...order].sort()).toEqual(present)
          expect(ids(opened.body.users)).toEqual(repeats ? first.slice(0, 100) : expect.not.arrayContaining(first.slice(0, 100)))
          return [first, restarted, third]
        }).pipe(withSimulator({ workspaces: [{ token: T, users: 250, faults: { restartAt: [6] } }], restartOrder }))
        expect(orders[1].join() === orders[0].join()).toBe(repeats)
        expect(orders[2].join() === orders[0].join()).toBe(repeats)
      }
    }))

  it.effect("same: records added after the first scroll come last, removed ones are left out", () =>
    Effect.gen(function*() {
      const first = ids((yield* scrollAll("users", { token: T })).records) // page requests 1-4
      const second = ids((yield* scrollAll("users", { token: T })).records) // 10 added, 5 removed at request 5
      const { added, removed } = yield* (yield* Simulator.Simulator).changes(T, "users")
      expect(added).toHaveLength(10)
      expect(second).toEqual([...first.filter((id) => !removed.includes(id)), ...added])
    }).pipe(withSimulator({
      workspaces: [{ token: T, users: 250, faults: { mutations: [{ atPage: 5, resource: "users", add: 10, remove: 5 }] } }],
      restartOrder: "same"
    })))
})

describe("a stable scroll_param", () => {
  const stable = (faults: Simulator.WorkspaceOptions["faults"] = {}) =>
    withSimulator({ workspaces: [{ token: T, companies: 250, faults }], scrollParam: "stable" })
  const ids = (answer: { readonly body: { readonly data: ReadonlyArray<{ readonly id: string }> } }) =>
    answer.body.data.map((company) => company.id)

  it.effect("every page of a scroll carries the one it opened with, and the server moves on page by page", () =>
    Effect.gen(function*() {
      const first = yield* scroll("companies", { token: T })
      const param = first.body.scroll_param
      expect(param).toMatch(uuidLike)
      const pages = [first]
      while (pages[pages.length - 1].body.data.length > 0) pages.push(yield* scroll("companies", { token: T, param }))
      expect(pages.map((page) => page.body.scroll_param)).toEqual(Array(4).fill(param)) // 100, 100, 50, empty
      const delivered = pages.flatMap(ids)
      expect([...delivered].sort()).toEqual([...yield* (yield* Simulator.Simulator).ids(T, "companies")].sort())
      // The empty page ended the scroll: its scroll_param is gone and the workspace free; the next scroll has another.
      expect(errorCode(yield* scroll("companies", { token: T, param }))).toBe("not_found")
      const next = yield* scroll("companies", { token: T })
      expect(next.status).toBe(200)
      expect(next.body.scroll_param).not.toBe(param)
    }).pipe(stable()))

  it.effect("it expires unused for 60 s, and another scroll meets scroll_exists while it lives", () =>
    Effect.gen(function*() {
      const param = (yield* scroll("companies", { token: T })).body.scroll_param
      expect(errorCode(yield* scroll("companies", { token: T }))).toBe("scroll_exists")
      yield* TestClock.adjust("59 seconds")
      expect((yield* scroll("companies", { token: T, param })).status).toBe(200)
      yield* TestClock.adjust("60 seconds")
      expect(errorCode(yield* scroll("companies", { token: T, param }))).toBe("not_found")
      expect((yield* scroll("companies", { token: T })).status).toBe(200)
    }).pipe(stable()))

  it.effect("a 500 closes the scroll; a cut body leaves it moved on, so the same scroll_param gets the next page", () =>
    Effect.gen(function*() {
      const first = yield* scroll("companies", { token: T })
      const param = first.body.scroll_param
      const cut = yield* send("/companies/scroll", { token: T, param }).pipe(
        Effect.flatMap((response) => Effect.flip(response.text)),
        Effect.scoped
      )
      expect(cut._tag).toBe("ResponseError")
      const third = yield* scroll("companies", { token: T, param })
      expect(third.body.data).toHaveLength(50) // the third page: the cut one's records are not sent again
      expect(ids(third).filter((id) => ids(first).includes(id))).toEqual([])
      expect((yield* scroll("companies", { token: T, param })).status).toBe(500) // restartAt: [4]
      expect(errorCode(yield* scroll("companies", { token: T, param }))).toBe("not_found")
      expect((yield* scrollAll("companies", { token: T })).records).toHaveLength(250)
    }).pipe(stable({ cutBodyAt: [2], restartAt: [4] })))
})

describe("stats", () => {
  it.effect("count requests, scrolls, pages, records and errors per workspace and in total", () =>
    Effect.gen(function*() {
      yield* scrollAll("companies", { token: T }) // 3 pages
      yield* scroll("users", { token: T }) // 400 intercom_version_invalid
      yield* scroll("users", { token: U, version: "1.4" }) // opens
      yield* scroll("users", { token: U, version: "1.4" }) // 400 scroll_exists
      yield* scroll("users", { token: "nope" }) // 401
      const stats = yield* (yield* Simulator.Simulator).stats
      expect(stats.workspaces[T]).toEqual({
        requests: 4,
        requestsAskingCompression: 0,
        requestsNotAskingCompression: 4,
        scrollsOpened: 1,
        pagesServed: 3,
        pagesCompressed: 0,
        recordsServed: 120,
        bytesSent: expect.any(Number),
        bodiesCut: 0,
        connectionsOpened: 0,
        connectionsDropped: 0,
        scrollExistsWhileLive: 0,
        errorsByCode: { intercom_version_invalid: 1 },
        errorsByStatus: { 400: 1 }
      })
      expect(stats.workspaces[U]).toMatchObject({
        requests: 2,
        scrollsOpened: 1,
        pagesServed: 1,
        recordsServed: 40,
        scrollExistsWhileLive: 1
      })
      expect(stats.total).toEqual({
        requests: 7,
        requestsAskingCompression: 0,
        requestsNotAskingCompression: 7,
        scrollsOpened: 2,
        pagesServed: 4,
        pagesCompressed: 0,
        recordsServed: 160,
        bytesSent: expect.any(Number),
        bodiesCut: 0,
        connectionsOpened: 0,
        connectionsDropped: 0,
        scrollExistsWhileLive: 1,
        errorsByCode: { intercom_version_invalid: 1, scroll_exists: 1, unauthorized: 1 },
        errorsByStatus: { 400: 2, 401: 1 }
      })
    }).pipe(withSimulator()))

  it.effect("bytesSent counts the bodies' bytes as sent, and each request asks for compression or not", () =>
    Effect.gen(function*() {
      const first = yield* getBytes("/companies/scroll", { token: T, acceptEncoding: "gzip" })
      const param = JSON.parse(Zlib.gunzipSync(first.bytes).toString("utf8")).scroll_param
      const second = yield* getBytes("/companies/scroll", { token: T, param, acceptEncoding: "identity" })
      const refused = yield* getBytes("/users/scroll", { token: T }) // 400 intercom_version_invalid
      const other = yield* getBytes("/companies/scroll", { token: U, acceptEncoding: "br;q=0.9, gzip;q=0.8" })
      const unknown = yield* getBytes("/companies/scroll", { token: "nope", acceptEncoding: "gzip" })
      expect([first, other].map((answer) => answer.headers["content-encoding"])).toEqual(["gzip", "br"])
      const stats = yield* (yield* Simulator.Simulator).stats
      const t = first.bytes.length + second.bytes.length + refused.bytes.length
      const u = other.bytes.length
      expect(stats.workspaces[T]).toMatchObject({
        bytesSent: t,
        requestsAskingCompression: 1,
        requestsNotAskingCompression: 2,
        pagesCompressed: 1
      })
      expect(stats.workspaces[U]).toMatchObject({ bytesSent: u, requestsAskingCompression: 1, pagesCompressed: 1 })
      expect(stats.total).toMatchObject({
        bytesSent: t + u + unknown.bytes.length,
        requests: 5,
        requestsAskingCompression: 3,
        requestsNotAskingCompression: 2,
        pagesServed: 3,
        pagesCompressed: 2
      })
    }).pipe(withSimulator()))

  it.effect("scrollExistsWhileLive counts scroll_exists while the open scroll was used less than 500 ms before", () =>
    Effect.gen(function*() {
      const live = () => Effect.map(Simulator.Simulator, (simulator) => simulator.stats).pipe(
        Effect.flatten,
        Effect.map((stats) => stats.workspaces[T].scrollExistsWhileLive)
      )
      const opened = yield* scroll("companies", { token: T })
      expect(errorCode(yield* scroll("companies", { token: T }))).toBe("scroll_exists")
      expect(yield* live()).toBe(1)
      yield* TestClock.adjust("499 millis")
      expect(errorCode(yield* scroll("companies", { token: T }))).toBe("scroll_exists")
      expect(yield* live()).toBe(2)
      yield* TestClock.adjust("1 milli") // 500 ms since its last use: abandoned, or between pages
      expect(errorCode(yield* scroll("companies", { token: T }))).toBe("scroll_exists")
      expect(yield* live()).toBe(2)
      yield* scroll("companies", { token: T, param: opened.body.scroll_param }) // used again
      yield* TestClock.adjust("499 millis")
      expect(errorCode(yield* scroll("users", { token: T, version: "1.4" }))).toBe("scroll_exists")
      expect(yield* live()).toBe(3)
      // Another client's scroll from the fault plan is no scroll the simulator served.
      const foreign = yield* scroll("companies", { token: T }).pipe(
        Effect.zipRight(Effect.flatMap(Simulator.Simulator, (simulator) => simulator.stats)),
        withSimulator({ workspaces: [{ token: T, faults: { foreignScroll: 30 } }] })
      )
      expect(foreign.workspaces[T]).toMatchObject({ scrollExistsWhileLive: 0, errorsByCode: { scroll_exists: 1 } })
    }).pipe(withSimulator()))

  it.effect("ids and changes of an unknown token fail with WorkspaceNotFound", () =>
    Effect.gen(function*() {
      const simulator = yield* Simulator.Simulator
      const error = yield* Effect.flip(simulator.ids("nope", "users"))
      expect(error).toBeInstanceOf(Simulator.WorkspaceNotFound)
      expect((yield* Effect.flip(simulator.changes("nope", "users")))._tag).toBe("WorkspaceNotFound")
    }).pipe(withSimulator()))
})

describe("options", () => {
  it.effect("a test's mistakes die at make, each in words, instead of serving scrolls that end at once", () =>
    Effect.gen(function*() {
      const workspace = { token: "tok" }
      const mistakes: ReadonlyArray<readonly [Simulator.SimulatorOptions, string]> = [
        [{ workspaces: [workspace], pageSize: 0 }, "the page size must be a whole number of records, at least 1, not 0"],
        [{ workspaces: [workspace], pageSize: 2.5 }, "the page size must be a whole number of records, at least 1, not 2.5"],
        [{ workspaces: [workspace], expiry: 0 }, "the expiry must be longer than 0, not 0"],
        [{ workspaces: [workspace], bandwidth: -1 }, "the bandwidth must be a positive number of megabits per second, not -1"],
        [{ workspaces: [{ token: "" }] }, "a workspace's token is empty"],
        [{ workspaces: [workspace, workspace] }, "the token tok names two workspaces"],
        [{ workspaces: [{ token: "tok", users: -1 }] }, "the users of workspace tok must be a whole number, at least 0, not -1"],
        [{ workspaces: [{ token: "tok", companies: NaN }] }, "the companies of workspace tok must be a whole number, at least 0, not NaN"],
        [{ workspaces: [{ token: "a b" }] }, "the token \"a b\" holds whitespace, which no Authorization header can carry"],
        [{ workspaces: [{ token: "tok", seed: 1.5 }] }, "the seed of workspace tok must be a whole number, not 1.5"],
        [{ workspaces: [{ token: "tok", seed: NaN }] }, "the seed of workspace tok must be a whole number, not NaN"],
        // Longer than a timer holds: the page would never come.
        [{ workspaces: [{ token: "tok", faults: { latency: Duration.infinity } }] }, "the latency of workspace tok must be at most 24d 20h 31m 23s 647ms, not Infinity"],
        [{ workspaces: [workspace], handshake: Duration.days(30) }, "the handshake must be at most 24d 20h 31m 23s 647ms, not 30d"],
        // A misspelt fault, as JSON would bring it, would never fire.
        [{ workspaces: [{ token: "tok", faults: JSON.parse(`{"cutBodyat":[2]}`) }] }, "the faults of workspace tok: cutBodyat is unexpected, expected: \"restartAt\" | \"restartRate\""]
      ]
      for (const [options, mistake] of mistakes) {
        const exit = yield* Effect.exit(Simulator.make(options))
        expect(exit._tag === "Failure" && Cause.isDie(exit.cause) && Cause.pretty(exit.cause)).toContain(`Simulator: ${mistake}`)
      }
      expect((yield* Effect.exit(Simulator.make({ workspaces: [{ token: "tok", users: 0 }], pageSize: 1 })))._tag).toBe("Success")
    }))

  it.effect("an option given as undefined is the default, as under exactOptionalPropertyTypes an app passes its own", () => {
    const seed: number | undefined = undefined
    const options: Simulator.SimulatorOptions = {
      workspaces: [{ token: "tok", seed, users: 250, leads: undefined, faults: undefined, defaultVersion: undefined }],
      pageSize: undefined,
      expiry: undefined,
      scrollParam: undefined,
      restartOrder: undefined,
      compression: undefined,
      bandwidth: undefined,
      handshake: undefined
    }
    return Effect.gen(function*() {
      const simulator = yield* Simulator.make(options)
      expect((yield* simulator.ids("tok", "users")).length).toBe(250)
      expect(yield* simulator.ids("tok", "users")).toEqual(yield* (yield* Simulator.make({ workspaces: [{ token: "tok", users: 250 }] })).ids("tok", "users"))
    })
  })
})

describe("time", () => {
  it.effect("the Date header is by the simulator's clock, as its rate-limit windows are, not the request's", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("3 seconds")
      // A request under another clock (the real one) is still stamped by the TestClock the simulator was made under.
      const answer = yield* scroll("users", { token: T }).pipe(Effect.withClock(Clock.make()))
      expect(answer.headers["date"]).toBe(new Date(3000).toUTCString())
    }).pipe(withSimulator()))
})

describe("GET /me", () => {
  it.effect("names the token's app, whose id_code is the app_id of its records; a workspace of another seed is another app", () =>
    Effect.gen(function*() {
      const me = yield* get("/me", { token: T })
      expect(me.status).toBe(200)
      expect(me.body).toMatchObject({ type: "admin", app: { type: "app", id_code: expect.stringMatching(/^[0-9a-f]{8}$/) } })
      const { body } = yield* scroll("companies", { token: T })
      expect(body.data[0].app_id).toBe(me.body.app.id_code)
      expect((yield* get("/me", { token: U })).body.app.id_code).not.toBe(me.body.app.id_code)
    }).pipe(withSimulator()))

  it.effect("a token whose app may not read admins: 403 token_unauthorized, in Intercom's error list", () =>
    Effect.gen(function*() {
      const refused = yield* get("/me", { token: "no-admins" })
      expect(refused.status).toBe(403)
      expect(errorCode(refused)).toBe("token_unauthorized")
    }).pipe(withSimulator({ workspaces: [{ token: "no-admins", readAdmins: false }] })))
})
