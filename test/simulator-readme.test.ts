/**
 * packages/simulator/README.md's first example, kept here so that it runs: test/readme.test.ts holds the two together.
 */
import { it } from "@effect/vitest"
import { IntercomClient, Scroll } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Effect, Fiber, Layer, Redacted, Stream, TestClock } from "effect"
import { expect } from "vitest"

// The code under test: an app's own function over Scroll.
const countUsers = Scroll.users().pipe(Stream.runCount)

const token = "dG9rOjVmMWM5ZTJhXzdiM2RfNGU4Zl85YTAxXzJjM2Q0ZTVmNmE3YjoxOjA="
// The client over the simulator's in-process HttpClient: no socket, and any https base URL (the client refuses plain
// http but to localhost).
const Intercom = IntercomClient.layer({ accessToken: Redacted.make(token), baseUrl: "https://intercom.test" }).pipe(
  Layer.provideMerge(Simulator.layerClient({ workspaces: [{ token, users: 250, faults: { restartAt: [2] } }] }))
)

it.effect("reads every user once, though Intercom asked for a restart at page 2", () =>
  Effect.gen(function*() {
    // Restarts back off on the Clock: under the TestClock, run the scroll in a fiber and move time on until it ends.
    const fiber = yield* Effect.fork(countUsers)
    while ((yield* Fiber.poll(fiber))._tag === "None") yield* TestClock.adjust("1 second")
    expect(yield* Fiber.join(fiber)).toBe(250)
    const simulator = yield* Simulator.Simulator
    expect((yield* simulator.stats).total.scrollsOpened).toBe(2)
  }).pipe(Effect.provide(Intercom)))
