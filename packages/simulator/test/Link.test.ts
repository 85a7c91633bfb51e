import { describe, expect, it } from "@effect/vitest"
import { type HttpClientResponse, HttpServer } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Clock, Duration, Effect, Fiber, Layer, Option, Ref, Stream, TestClock, TestServices } from "effect"
import { Simulator } from "../src/index.js"
import { getBytes, send } from "./helpers.js"

const T = "T"

/** Milliseconds B bytes take at `megabits` per second: B × 8 / bandwidth seconds. */
const millisFor = (bytes: number, megabits: number) => bytes * 8 / (megabits * 1_000_000) * 1000

/** The size of the first companies page of a fresh simulator of these options (each serves the same one). */
const firstPageSize = (options: Simulator.SimulatorOptions, acceptEncoding?: string) =>
  getBytes("/companies/scroll", { token: T, ...(acceptEncoding === undefined ? {} : { acceptEncoding }) }).pipe(
    Effect.map((answer) => answer.bytes.length),
    Effect.provide(Simulator.layerClient(options))
  )

/** A microsecond: the times below are exact to it (they are sums of fractions of milliseconds in floating point). */
const epsilon = 0.001

/** Runs `request` in a fiber and says whether it is done a microsecond before `millis` on the TestClock, and after. */
const doneAround = <A, E, R>(request: Effect.Effect<A, E, R>, millis: number) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(request)
    yield* TestClock.adjust(Duration.millis(millis - epsilon))
    const before = Option.isSome(yield* Fiber.poll(fiber))
    yield* TestClock.adjust(Duration.millis(2 * epsilon))
    const after = Option.isSome(yield* Fiber.poll(fiber))
    return { before, after, answer: yield* Fiber.join(fiber) }
  })

describe("bandwidth in process", () => {
  const options = { workspaces: [{ token: T, companies: 250 }] }

  it.effect("a page of B bytes at 1 Mbit/s takes exactly B × 8 / 10^6 seconds on the Clock", () =>
    Effect.gen(function*() {
      const size = yield* firstPageSize(options)
      expect(size).toBeGreaterThan(30_000)
      const request = getBytes("/companies/scroll", { token: T })
      const { after, answer, before } = yield* doneAround(request, millisFor(size, 1))
      expect(answer.bytes.length).toBe(size)
      expect([before, after]).toEqual([false, true])
    }).pipe(Effect.provide(Simulator.layerClient({ ...options, bandwidth: 1 }))))

  it.effect("after the latency, and for the bytes as sent: compressed when compressed", () =>
    Effect.gen(function*() {
      const size = yield* firstPageSize(options, "gzip")
      expect(size).toBeLessThan(10_000)
      const request = getBytes("/companies/scroll", { token: T, acceptEncoding: "gzip" })
      const { after, before } = yield* doneAround(request, 250 + millisFor(size, 0.5))
      expect([before, after]).toEqual([false, true])
    }).pipe(Effect.provide(Simulator.layerClient({
      workspaces: [{ token: T, companies: 250, faults: { latency: Duration.millis(250) } }],
      bandwidth: 0.5
    }))))

  it.effect("every response costs its bytes, an error too", () =>
    Effect.gen(function*() {
      const refused = yield* getBytes("/companies/scroll", { token: "nope" }).pipe(
        Effect.provide(Simulator.layerClient(options))
      )
      expect(refused.status).toBe(401)
      const { after, before } = yield* doneAround(
        getBytes("/companies/scroll", { token: "nope" }),
        millisFor(refused.bytes.length, 0.01)
      )
      expect([before, after]).toEqual([false, true])
    }).pipe(Effect.provide(Simulator.layerClient({ ...options, bandwidth: 0.01 }))))

  it.effect("a cut body costs the bytes that were sent: half the page", () =>
    Effect.gen(function*() {
      // The second page of a fresh simulator without the fault, as the faulty one will promise it.
      const size = yield* Effect.gen(function*() {
        const first = yield* getBytes("/companies/scroll", { token: T })
        const param = JSON.parse(new TextDecoder().decode(first.bytes)).scroll_param
        return (yield* getBytes("/companies/scroll", { token: T, param })).bytes.length
      }).pipe(Effect.provide(Simulator.layerClient(options)))
      const first = yield* doneAround(getBytes("/companies/scroll", { token: T }), 1000)
      const param = JSON.parse(new TextDecoder().decode(first.answer.bytes)).scroll_param
      const cut = send("/companies/scroll", { token: T, param }).pipe(
        Effect.map((response) => response.headers["content-length"]),
        Effect.scoped
      )
      const { after, answer, before } = yield* doneAround(cut, millisFor(Math.floor(size / 2), 1))
      expect(answer).toBe(String(size))
      expect([before, after]).toEqual([false, true])
    }).pipe(Effect.provide(Simulator.layerClient({
      workspaces: [{ token: T, companies: 250, faults: { cutBodyAt: [2] } }],
      bandwidth: 1
    }))))
})

/** Reads a response's body in a fiber, counting the bytes that have arrived. */
const read = (response: HttpClientResponse.HttpClientResponse) =>
  Effect.gen(function*() {
    const received = yield* Ref.make(0)
    const reading = yield* Effect.fork(
      response.stream.pipe(Stream.runForEach((piece) => Ref.update(received, (n) => n + piece.length)))
    )
    /** Waits (for real: the bytes cross a socket) until `bytes` have arrived, and says how many have. */
    const arrived = (bytes: number) =>
      Effect.gen(function*() {
        for (let tries = 0; tries < 500 && (yield* Ref.get(received)) < bytes; tries++) {
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
        }
        return yield* Ref.get(received)
      })
    return { arrived, reading }
  })

describe("bandwidth on a port", () => {
  it.effect("the body is written in pieces at the bandwidth's pace, on the simulator's Clock", () =>
    Effect.gen(function*() {
      const response = yield* send("/companies/scroll", { token: T })
      const size = Number(response.headers["content-length"])
      expect(size).toBeGreaterThan(30_000)
      const { arrived, reading } = yield* read(response)
      // 1 Mbit/s is 125 bytes a millisecond, written every 10 ms: 1,250 bytes a piece.
      expect(yield* arrived(0)).toBe(0)
      for (const millis of [10, 20, 100, 250]) {
        yield* TestClock.adjust(Duration.millis(millis - (yield* Clock.currentTimeMillis)))
        expect(yield* arrived(millis * 125)).toBe(millis * 125)
      }
      yield* TestClock.adjust(Duration.millis(millisFor(size, 1) - 250 - epsilon))
      // Everything but the last piece, which leaves at exactly size × 8 / 10^6 seconds.
      const allButLast = Math.floor((size - 1) / 1250) * 1250
      expect(yield* arrived(allButLast)).toBe(allButLast)
      yield* TestClock.adjust(Duration.millis(2 * epsilon))
      expect(yield* arrived(size)).toBe(size)
      yield* Fiber.join(reading)
    }).pipe(
      Effect.scoped,
      Effect.provide(Simulator.layerTest({ workspaces: [{ token: T, companies: 250 }], bandwidth: 1 }))
    ))

  it.effect("a cut body's half arrives at the pace, then the connection closes", () =>
    Effect.gen(function*() {
      const first = yield* doneAround(getBytes("/companies/scroll", { token: T }), 1000)
      const param = JSON.parse(new TextDecoder().decode(first.answer.bytes)).scroll_param
      const response = yield* send("/companies/scroll", { token: T, param })
      const half = Math.floor(Number(response.headers["content-length"]) / 2)
      const { arrived, reading } = yield* read(response)
      yield* TestClock.adjust(Duration.millis(millisFor(half, 1) - epsilon))
      const allButLast = Math.floor((half - 1) / 1250) * 1250
      expect(yield* arrived(allButLast)).toBe(allButLast)
      yield* TestClock.adjust(Duration.millis(2 * epsilon))
      expect((yield* Effect.either(Fiber.join(reading)))._tag).toBe("Left")
      expect(yield* arrived(half)).toBe(half)
      expect((yield* (yield* Simulator.Simulator).stats).total.bytesSent).toBe(first.answer.bytes.length + half)
    }).pipe(
      Effect.scoped,
      Effect.provide(Simulator.layerTest({
        workspaces: [{ token: T, companies: 250, faults: { cutBodyAt: [2] } }],
        bandwidth: 1
      }))
    ))
})

describe("a new connection on a port", () => {
  /** The next turn of the event loop: undici takes a socket back for the next request only then. */
  const nextTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

  it.effect("its first response waits the handshake on the simulator's Clock; later ones on it do not; it is counted once", () =>
    Effect.gen(function*() {
      const first = yield* doneAround(getBytes("/companies/scroll", { token: T }), 80)
      expect([first.before, first.after]).toEqual([false, true])
      const param = JSON.parse(new TextDecoder().decode(first.answer.bytes)).scroll_param
      yield* nextTurn
      // The same connection, kept alive: answered without the clock moving.
      const second = yield* Effect.fork(getBytes("/companies/scroll", { token: T, param }))
      expect((yield* TestServices.provideLive(Fiber.join(second).pipe(Effect.timeout("10 seconds")))).status).toBe(200)
      const stats = yield* (yield* Simulator.Simulator).stats
      expect(stats.workspaces[T].connectionsOpened).toBe(1)
      expect(stats.workspaces[T].requests).toBe(2)
    }).pipe(Effect.provide(
      // Simulator.layerTest's client opens a connection a request; undici's keeps them alive.
      HttpServer.layerTestClient.pipe(
        Layer.provide(NodeHttpClient.layerUndici),
        Layer.provideMerge(Simulator.layerServer({ workspaces: [{ token: T, companies: 250 }], handshake: "80 millis" }))
      )
    )))

  it.effect("in process there are no connections: no handshake, none counted", () =>
    Effect.gen(function*() {
      const { after, before } = yield* doneAround(getBytes("/companies/scroll", { token: T }), 0.5)
      expect([before, after]).toEqual([true, true])
      expect((yield* (yield* Simulator.Simulator).stats).total.connectionsOpened).toBe(0)
    }).pipe(Effect.provide(Simulator.layerClient({ workspaces: [{ token: T, companies: 250 }], handshake: "80 millis" }))))
})
