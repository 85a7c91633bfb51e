import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Http from "node:http"
import { Simulator } from "../src/index.js"
import { scroll, scrollAll, send } from "./helpers.js"

const T = "T"

/**
 * A plain client (node:http, keep-alive) that measures the server rather than itself: it counts a page's users and
 * finds its scroll_param without parsing the whole body (this process also runs the server, on one thread).
 */
const plainScroll = async (baseUrl: string, token: string): Promise<number> => {
  const agent = new Http.Agent({ keepAlive: true })
  const get = (path: string) =>
    new Promise<{ users: number; scrollParam: string }>((resolve, reject) =>
      Http.get(`${baseUrl}${path}`, { agent, headers: { authorization: `Bearer ${token}` } }, (response) => {
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("end", () => {
          const body = Buffer.concat(chunks).toString("latin1")
          let users = 0
          for (let at = body.indexOf('{"type":"user"'); at !== -1; at = body.indexOf('{"type":"user"', at + 1)) users++
          const scrollParam = /"scroll_param":"([^"]+)"}$/.exec(body.slice(-100))?.[1]
          if (scrollParam === undefined) reject(new Error(`no scroll_param in ${body.slice(0, 200)}`))
          else resolve({ users, scrollParam })
        })
      }).on("error", reject)
    )
  let users = 0
  for (let page = await get("/users/scroll"); page.users > 0;) {
    users += page.users
    page = await get(`/users/scroll?scroll_param=${page.scrollParam}`)
  }
  agent.destroy()
  return users
}
const overHttp = (faults: Simulator.WorkspaceOptions["faults"] = {}) =>
  Effect.provide(Simulator.layerTest({ workspaces: [{ token: T, users: 230, companies: 150, faults }] }))


describe("over real HTTP", () => {
  it.effect("a scroll delivers every record once, with Intercom's headers", () =>
    Effect.gen(function*() {
      const { records } = yield* scrollAll("users", { token: T })
      const ids = yield* (yield* Simulator.Simulator).ids(T, "users")
      expect(records.map((user) => user.id).sort()).toEqual([...ids].sort())
      const answer = yield* scroll("companies", { token: T })
      expect(answer.headers["content-type"]).toBe("application/json; charset=utf-8")
      expect(answer.headers["x-ratelimit-limit"]).toBe("10000")
    }).pipe(overHttp()))

  it.effect("cutBodyAt: Content-Length promises more than arrives, then the connection closes", () =>
    Effect.gen(function*() {
      const first = yield* scroll("companies", { token: T })
      const response = yield* send("/companies/scroll", { token: T, param: first.body.scroll_param })
      expect(response.status).toBe(200)
      expect(Number(response.headers["content-length"])).toBeGreaterThan(1000)
      const error = yield* Effect.flip(response.text)
      expect(error._tag).toBe("ResponseError")
      // The server moved on: the scroll is open, so a restart meets scroll_exists.
      expect((yield* scroll("companies", { token: T })).body.errors[0].code).toBe("scroll_exists")
      expect((yield* (yield* Simulator.Simulator).stats).total.bodiesCut).toBe(1)
    }).pipe(Effect.scoped, overHttp({ cutBodyAt: [2] })))

  it.effect("dropConnectionAt: the connection is destroyed before any response", () =>
    Effect.gen(function*() {
      const first = yield* scroll("companies", { token: T })
      const error = yield* Effect.flip(send("/companies/scroll", { token: T, param: first.body.scroll_param }))
      expect(error).toMatchObject({ _tag: "RequestError", reason: "Transport" })
      expect((yield* scroll("companies", { token: T })).body.errors[0].code).toBe("scroll_exists")
      // The server is unharmed: the next connection works.
      expect((yield* scroll("companies", { token: T, param: first.body.scroll_param })).status).toBe(404)
    }).pipe(Effect.scoped, overHttp({ dropConnectionAt: [2] })))

  it.live("serves at least 20k records/s to a plain client over loopback (records cached after first use)", () =>
    Effect.gen(function*() {
      const url = yield* Simulator.baseUrl
      const scrollUsers = Effect.promise(() => plainScroll(url, T))
      expect(yield* scrollUsers).toBe(20_000) // the first scroll generates and caches the records
      const started = performance.now()
      expect(yield* scrollUsers).toBe(20_000)
      const perSecond = 20_000 / ((performance.now() - started) / 1000)
      expect(perSecond).toBeGreaterThan(20_000)
    }).pipe(Effect.provide(Simulator.layerServer({ workspaces: [{ token: T, users: 20_000, defaultVersion: "1.4" }] }))))
})
