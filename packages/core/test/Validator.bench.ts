/**
 * `pnpm vitest bench --run packages/core/test/Validator.bench.ts`: the page validator on its own, on a page of 100
 * users from the simulator: JSON.parse for scale, the compiled check (closures over the AST) and `Schema.is`. Whether
 * the compiled check earns its keep in a whole scroll is for `pnpm bench`.
 */
import { HttpClient } from "@effect/platform"
import { Simulator } from "@intercom-scroll/simulator"
import { Effect, Schema } from "effect"
import { bench, describe } from "vitest"
import { Models } from "../src/index.js"
import { compileIs } from "../src/internal/compileIs.js"

const text = await Effect.gen(function*() {
  const client = yield* HttpClient.HttpClient
  const response = yield* client.get("http://simulator/users/scroll", {
    headers: { authorization: "Bearer T", "intercom-version": "1.4" }
  })
  return yield* response.text
}).pipe(
  Effect.provide(Simulator.layerClient({ workspaces: [{ token: "T", users: 300 }] })),
  Effect.scoped,
  Effect.runPromise
)
const page: unknown = JSON.parse(text)
const closures = compileIs(Models.UserPage.ast)
const reference = Schema.is(Models.UserPage)

describe("a page of 100 users", () => {
  bench("JSON.parse", () => {
    JSON.parse(text)
  })
  bench("compiled check, closures", () => {
    closures(page)
  })
  bench("Schema.is", () => {
    reference(page)
  })
})
