/**
 * The simulator on a loopback port, in the test process, with one more counter than its stats have yet: a
 * `scroll_exists` answered while the workspace's open scroll was used less than 500 ms before. That is a second owner
 * trying to scroll a workspace whose first owner is alive and scrolling (a dead owner's scroll sits idle until it
 * expires). (The simulator is gaining this counter in its own stats; this stands in until then.)
 */
import { HttpServer, HttpServerRequest, type HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Simulator } from "@intercom-scroll/simulator"
import { Effect, Layer, type Scope } from "effect"
import { createServer } from "node:http"

export interface Served {
  readonly baseUrl: string
  readonly stats: Effect.Effect<Simulator.Stats>
  /** Per token: `scroll_exists` answers given while the open scroll was in use (see above). */
  readonly liveScrollClashes: Readonly<Record<string, number>>
}

const clashWindowMillis = 500

export const serve = (options: Simulator.SimulatorOptions): Effect.Effect<Served, never, Scope.Scope> =>
  Effect.gen(function*() {
    const lastPageServed = new Map<string, number>()
    const clashes: Record<string, number> = {}
    const observed = (app: Simulator.Simulator["Type"]["app"]) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const token = (request.headers.authorization ?? "").replace(/^Bearer /, "")
        const response = yield* app
        const now = Date.now()
        if (response.status === 200) {
          lastPageServed.set(token, now)
        } else if (response.status === 400 && bodyText(response).includes("scroll_exists")) {
          if (now - (lastPageServed.get(token) ?? -Infinity) < clashWindowMillis) clashes[token] = (clashes[token] ?? 0) + 1
        }
        return response
      })
    const layer = Layer.unwrapEffect(Effect.map(Simulator.Simulator, (simulator) => HttpServer.serve(observed(simulator.app)))).pipe(
      Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
      Layer.provideMerge(Simulator.layer(options))
    )
    const context = yield* Layer.build(layer).pipe(Effect.orDie)
    const simulator = yield* Effect.provide(Simulator.Simulator, context)
    const baseUrl = yield* Effect.provide(Simulator.baseUrl, context)
    return { baseUrl, stats: simulator.stats, liveScrollClashes: clashes }
  })

const decoder = new TextDecoder()
const bodyText = (response: HttpServerResponse.HttpServerResponse) =>
  response.body._tag === "Uint8Array" ? decoder.decode(response.body.body) : ""
