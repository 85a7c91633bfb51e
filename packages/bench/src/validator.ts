/**
 * `pnpm --filter @intercom-scroll/bench validator`: the compiled page validator on its own. First the equivalence
 * check the bench also runs (more cases), then a microbenchmark on a page of 100 users: JSON.parse, the compiled
 * check (generated code, and the closures it falls back to) and `Schema.is`.
 */
import { HttpClient } from "@effect/platform"
import { Models } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Effect, Schema } from "effect"
import { compileIs, compileIsWithoutCodegen } from "../../core/src/internal/compileIs.js"
import * as ValidatorCheck from "./lib/validatorCheck.js"

const speed = Effect.gen(function*() {
  const client = yield* HttpClient.HttpClient
  const response = yield* client.get("http://simulator/users/scroll", { headers: { authorization: "Bearer T", "intercom-version": "1.4" } })
  const text = yield* response.text
  const json: unknown = JSON.parse(text)
  const compiled = compileIs(Models.UserPage.ast)
  const closures = compileIsWithoutCodegen(Models.UserPage.ast)
  const reference = Schema.is(Models.UserPage)
  const time = (n: number, f: () => unknown) => {
    for (let i = 0; i < 100; i++) f()
    const started = performance.now()
    for (let i = 0; i < n; i++) f()
    return ((performance.now() - started) / n) * 1000
  }
  return {
    "JSON.parse": time(300, () => JSON.parse(text)),
    "compiled check": time(3000, () => compiled(json)),
    "as closures": time(3000, () => closures(json)),
    "Schema.is": time(100, () => reference(json))
  }
}).pipe(Effect.provide(Simulator.layerClient({ workspaces: [{ token: "T", users: 300 }] })))

const checked = await ValidatorCheck.check(30_000)
console.log(`The compiled check agrees with Schema.is on ${checked.checked.toLocaleString("en-US")} inputs (${checked.valid.toLocaleString("en-US")} valid).`)
for (const [name, micros] of Object.entries(await Effect.runPromise(speed))) {
  console.log(`${name.padEnd(16)} ${micros.toFixed(0).padStart(5)} µs a page of 100 users`)
}
