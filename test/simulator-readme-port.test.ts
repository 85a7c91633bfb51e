/**
 * packages/simulator/README.md's test over a real port (its second and third code blocks are in this file, which
 * test/readme.test.ts checks), and the same with a latency and a restart: a server built under the TestClock would
 * wait for the test to move it, and the test would hang until vitest's timeout.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { layer } from "@effect/vitest"
import { IntercomClient, Scroll } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Duration, Effect, Layer, Redacted, Stream } from "effect"
import { expect } from "vitest"

const token = "dG9rOjVmMWM5ZTJhXzdiM2RfNGU4Zl85YTAxXzJjM2Q0ZTVmNmE3YjoxOjA="

const Client = Layer.unwrapEffect(Effect.map(Simulator.baseUrl, (baseUrl) =>
  IntercomClient.layer({ accessToken: Redacted.make(token), baseUrl }))).pipe(
  Layer.provide(NodeHttpClient.layerUndici),
  Layer.provideMerge(Simulator.layerServer({ workspaces: [{ token, users: 1000 }] }))
)

// On the real clock: @effect/vitest's `layer` otherwise builds Client, the server's clock included, under the TestClock.
layer(Client, { excludeTestServices: true })("over HTTP", (it) => {
  it.effect("reads every user", () => Effect.map(Scroll.users().pipe(Stream.runCount), (count) => expect(count).toBe(1000)))
})

// The same client over a server with a latency of 50 ms a page and a 500 at its third page request.
const Faulty = Layer.unwrapEffect(Effect.map(Simulator.baseUrl, (baseUrl) =>
  IntercomClient.layer({ accessToken: Redacted.make(token), baseUrl }))).pipe(
  Layer.provide(NodeHttpClient.layerUndici),
  Layer.provideMerge(Simulator.layerServer({
    workspaces: [{ token, users: 1000, faults: { latency: Duration.millis(50), restartAt: [3] } }]
  }))
)

layer(Faulty, { excludeTestServices: true })("over HTTP, through a latency and a restart", (it) => {
  it.effect("reads every user, in real time", () =>
    Effect.gen(function*() {
      expect(yield* Scroll.users().pipe(Stream.runCount)).toBe(1000)
      const simulator = yield* Simulator.Simulator
      expect((yield* simulator.stats).total.scrollsOpened).toBe(2)
    }), 20_000)
})
