import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Simulator } from "../src/index.js"
import { scroll, scrollAll, send } from "./helpers.js"

const T = "T"

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
})
