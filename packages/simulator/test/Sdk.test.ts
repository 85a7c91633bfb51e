/**
 * The official Intercom Node SDKs, unchanged, against the simulator on a loopback port: they must work as they
 * would against Intercom.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { IntercomClient } from "intercom-client"
import { createRequire } from "node:module"
import { Simulator } from "../src/index.js"

/** The parts of intercom-client 2.11 (untyped CommonJS) that these tests use. */
interface ScrollResponse {
  readonly body: Readonly<Record<string, unknown>> & { readonly scroll_param: string }
}
interface LegacyScroll {
  each(params: object, f: (response: ScrollResponse) => void): PromiseLike<void>
}
interface LegacyClient {
  useRequestOpts(options: { readonly baseUrl: string }): LegacyClient
  readonly users: { readonly scroll: LegacyScroll }
  readonly leads: { readonly scroll: LegacyScroll }
}
const { Client: LegacyClient } = createRequire(import.meta.url)("intercom-client-v2") as {
  readonly Client: new(options: { readonly token: string }) => LegacyClient
}

const token = "sdk-token"
// intercom-client 2.11 sends no Intercom-Version header: like a real workspace, this one must default to 1.x for
// users and leads scroll to exist (a 2.x default answers intercom_version_invalid).
const onServer = Effect.provide(Simulator.layerServer({
  workspaces: [{ token, users: 1234, leads: 321, companies: 345, defaultVersion: "1.4" }]
}))

const ids = (records: unknown) => (records as ReadonlyArray<{ readonly id: string }>).map((record) => record.id)

describe("intercom-client 2.11 (API 1.x, HTTP Basic with the token as user name)", () => {
  for (const [resource, key] of [["users", "users"], ["leads", "contacts"]] as const) {
    it.live(`${resource}.scroll.each delivers every ${resource.slice(0, -1)} exactly once`, () =>
      Effect.gen(function*() {
        const simulator = yield* Simulator.Simulator
        const client = new LegacyClient({ token }).useRequestOpts({ baseUrl: yield* Simulator.baseUrl })
        const received: Array<string> = []
        yield* Effect.promise(() => client[resource].scroll.each({}, (response) => {
          received.push(...ids(response.body[key]))
        }))
        const expected = yield* simulator.ids(token, resource)
        expect(received).toHaveLength(expected.length)
        expect([...received].sort()).toEqual([...expected].sort())
        const stats = (yield* simulator.stats).workspaces[token]
        expect(stats.errorsByCode).toEqual({})
        expect(stats.pagesServed).toBe(Math.ceil(expected.length / 100) + 1) // the last page is empty
      }).pipe(onServer))
  }
})

describe("intercom-client 7 (generated)", () => {
  it.live("companies.scroll() delivers every company, then asks once more and gets 404", () =>
    Effect.gen(function*() {
      const simulator = yield* Simulator.Simulator
      const client = new IntercomClient({ token, baseUrl: yield* Simulator.baseUrl })
      const received: Array<string> = []
      const error = yield* Effect.promise(async () => {
        try {
          for await (const company of await client.companies.scroll()) received.push(company.id)
          return undefined
        } catch (error) {
          return error as { readonly statusCode?: number; readonly body?: unknown }
        }
      })
      const expected = yield* simulator.ids(token, "companies")
      expect([...received].sort()).toEqual([...expected].sort())
      expect(received).toHaveLength(345)
      // After the empty page the SDK still holds a scroll_param and sends it: Intercom (and the simulator) say 404.
      expect(error?.statusCode).toBe(404)
      expect(error?.body).toMatchObject({ type: "error.list", errors: [{ code: "not_found" }] })
      const stats = (yield* simulator.stats).workspaces[token]
      expect(stats.pagesServed).toBe(5) // 4 pages of companies and the empty one
      expect(stats.errorsByCode).toEqual({ not_found: 1 })
    }).pipe(onServer))
})
