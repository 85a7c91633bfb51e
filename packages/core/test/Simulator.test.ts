/**
 * The core against the project's Intercom simulator, with either behaviour of the scroll_param (a new one every page,
 * or the same one for every page of a scroll) and compressed pages: in process under the TestClock (expiry, rate limits
 * and another client's scroll play out without real waits), and over real HTTP on a loopback port (cut bodies and
 * dropped connections need a real socket) through the platform's undici and fetch clients.
 */
import { HttpClient, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { Chunk, Duration, Effect, Fiber, HashMap, Layer, Logger, LogLevel, Option, Redacted, Schedule, Stream, TestClock } from "effect"
import * as Http from "node:http"
import { IntercomClient, type Resource, Scroll } from "../src/index.js"
import { scrollParamModes } from "./support/fakeIntercom.js"
import { withNeighbour } from "./support/neighbour.js"
import { clientAtServer, platformClients } from "./support/platformClients.js"

const TOKEN = "tok_simulated_workspace"

/** The simulator answering an HttpClient in process; any base URL reaches it. */
const inProcess = (options: Omit<Simulator.WorkspaceOptions, "token">, simulator: Partial<Simulator.SimulatorOptions> = {}) =>
  IntercomClient.layer({ accessToken: Redacted.make(TOKEN), baseUrl: "https://api.intercom.io" }).pipe(
    Layer.provideMerge(Simulator.layerClient({ ...simulator, workspaces: [{ token: TOKEN, ...options }] })),
    Layer.orDie
  )

/** The client over `http`, at the base URL of the server in context. */
const overHttp = (http: Layer.Layer<HttpClient.HttpClient>) => clientAtServer(http, { accessToken: Redacted.make(TOKEN) })

const stream = (resource: Resource.Resource, options?: Scroll.Options) =>
  Scroll.pages(resource, options).pipe(Stream.mapConcat((page) => page.records))

/** Scrolls `resource` and checks each record the workspace holds came out exactly once. */
const exactlyOnce = (resource: Resource.Resource, options?: Scroll.Options) =>
  Effect.gen(function*() {
    const simulator = yield* Simulator.Simulator
    const emitted = Chunk.toReadonlyArray(yield* Stream.runCollect(stream(resource, options))).map((r) => r.id)
    const expected = yield* simulator.ids(TOKEN, resource)
    expect(emitted.length).toBe(expected.length)
    expect([...emitted].sort()).toEqual([...expected].sort())
    return (yield* simulator.stats).workspaces[TOKEN]
  })

/** Runs `effect` while the TestClock moves on a second at a time, as a real clock would. */
const withTime = <A, E, R>(effect: Effect.Effect<A, E, R>, limit: Duration.DurationInput = "30 minutes") =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    for (let elapsed = 0; elapsed < Duration.toSeconds(limit); elapsed++) {
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) break
      yield* TestClock.adjust("1 second")
    }
    return yield* Fiber.join(fiber)
  })

it.effect("a page that dedupe empties (a restart resending, in the same order, what came out) is no chunk of the records' stream", () =>
  Effect.gen(function*() {
    const sizes = Chunk.toReadonlyArray(yield* withTime(Scroll.users().pipe(Stream.chunks, Stream.map(Chunk.size), Stream.runCollect)))
    const stats = (yield* (yield* Simulator.Simulator).stats).workspaces[TOKEN]
    // The restart at page 3 resent pages 1 and 2, whose records had come out: 10 pages of records, none empty.
    expect(stats.scrollsOpened).toBe(2)
    expect(sizes).toEqual(Array.from({ length: 10 }, () => 100))
  }).pipe(Effect.provide(inProcess({ users: 1000, faults: { restartAt: [3] } }, { restartOrder: "same" }))))

for (const scrollParam of scrollParamModes) {
  describe(`against the simulator, in process, ${scrollParam} scroll_param`, () => {
    const simulated = (options: Omit<Simulator.WorkspaceOptions, "token">) => inProcess(options, { scrollParam })

    for (const resource of ["users", "leads", "companies"] as const) {
      it.effect(`every one of the ${resource} comes out exactly once, every page compressed`, () =>
        Effect.gen(function*() {
          const stats = yield* exactlyOnce(resource)
          expect(stats.pagesCompressed).toBe(stats.pagesServed)
        }).pipe(Effect.provide(simulated({ users: 1234, leads: 456, companies: 321 }))))
    }

    // In the same order, each restart resends pages already emitted: with dedupe they come out empty.
    for (const restartOrder of ["varied", "same"] as const) {
      it.effect(`restarts after 500s and expiries, with each record once (a restart's order ${restartOrder})`, () =>
        Effect.gen(function*() {
          const stats = yield* withTime(exactlyOnce("users"))
          expect(stats.scrollsOpened).toBe(4)
          expect(stats.errorsByStatus[500]).toBe(2)
          expect(stats.errorsByCode["not_found"]).toBe(1)
        }).pipe(Effect.provide(inProcess({ users: 1000, faults: { restartAt: [3, 9], expireAt: [6] } }, { scrollParam, restartOrder }))))
    }

    it.effect("waits out another client's scroll", () =>
      Effect.gen(function*() {
        const stats = yield* withTime(exactlyOnce("users"))
        expect(stats.errorsByCode["scroll_exists"]).toBe(3)
      }).pipe(Effect.provide(simulated({ users: 500, faults: { foreignScroll: 25 } }))))

    it.effect("paces itself on a tight rate limit so that no 429 is needed", () =>
      Effect.gen(function*() {
        const stats = yield* withTime(exactlyOnce("users"))
        expect(stats.pagesServed).toBe(21)
        expect(stats.errorsByStatus[429] ?? 0).toBe(0)
      }).pipe(Effect.provide(simulated({ users: 2000, faults: { rateLimit: { limit: 5, windowSeconds: 10 } } }))))

    it.effect("a 429 (another app spent the workspace's budget) is waited out and the same request resent", () => {
      let tooMany = 0
      // Before the client's 3rd and 4th requests the neighbour spends the window: the 3rd meets a 429, and so does the
      // same request resent once the window is over; the next resend goes through.
      const neighbour = Layer.effect(
        HttpClient.HttpClient,
        Effect.map(HttpClient.HttpClient, (inner) =>
          withNeighbour(inner, (n) => n === 3 || n === 4, (response) => {
            if (response.status === 429) tooMany++
          }))
      )
      return Effect.gen(function*() {
        const stats = yield* withTime(exactlyOnce("users", { restart: Schedule.stop }))
        expect(tooMany).toBe(2)
        // No restart: the scroll went on from the page the 429s stood in the way of.
        expect(stats.scrollsOpened).toBe(1)
        expect(stats.pagesServed).toBe(7)
      }).pipe(Effect.provide(
        IntercomClient.layer({ accessToken: Redacted.make(TOKEN), baseUrl: "https://api.intercom.io" }).pipe(
          Layer.provide(neighbour),
          Layer.provideMerge(Simulator.layerClient({
            scrollParam,
            workspaces: [{ token: TOKEN, users: 600, faults: { rateLimit: { limit: 20, windowSeconds: 10 } } }]
          })),
          Layer.orDie
        )
      ))
    })

    it.effect("a body cut short restarts the scroll rather than asking again for what the server moved past", () =>
      Effect.gen(function*() {
        const stats = yield* withTime(exactlyOnce("users"))
        expect(stats.bodiesCut).toBe(1)
        expect(stats.scrollsOpened).toBe(2)
      }).pipe(Effect.provide(simulated({ users: 600, faults: { cutBodyAt: [3] } }))))

    it.effect("a consumer that takes 50 seconds a page keeps the scroll alive", () =>
      Effect.gen(function*() {
        const simulator = yield* Simulator.Simulator
        const slow = Scroll.users({ restart: Schedule.stop }).pipe(
          Stream.mapChunksEffect((chunk) => Effect.as(Effect.sleep("50 seconds"), chunk)),
          Stream.runCount
        )
        expect(yield* withTime(slow, "2 hours")).toBe(500)
        expect((yield* simulator.stats).workspaces[TOKEN].scrollsOpened).toBe(1)
      }).pipe(Effect.provide(simulated({ users: 500 }))))

    it.effect("a consumer that stalls past the expiry meets Expired, then a restart, with no duplicates", () => {
      let stalled = false
      const stallOnce = <A>(chunk: Chunk.Chunk<A>) =>
        stalled ? Effect.succeed(chunk) : Effect.as(Effect.sleep("61 seconds").pipe(Effect.tap(() => (stalled = true))), chunk)
      return Effect.gen(function*() {
        const simulator = yield* Simulator.Simulator
        const users = yield* withTime(
          Scroll.users({ prefetch: 0, restart: Schedule.recurs(1) }).pipe(Stream.mapChunksEffect(stallOnce), Stream.runCollect)
        )
        const ids = Chunk.toReadonlyArray(users).map((u) => u.id)
        expect(new Set(ids).size).toBe(ids.length)
        expect(ids.length).toBe(500)
        const stats = (yield* simulator.stats).workspaces[TOKEN]
        expect(stats.errorsByCode["not_found"]).toBe(1)
        expect(stats.scrollsOpened).toBe(2)
      }).pipe(Effect.provide(simulated({ users: 500 })))
    })

    it.effect("without a restart budget, the stalled consumer gets Expired after the records it had", () =>
      Effect.gen(function*() {
        const out = yield* withTime(
          Scroll.users({ prefetch: 0, restart: Schedule.stop }).pipe(
            Stream.mapChunksEffect((chunk) => Effect.as(Effect.sleep("61 seconds"), chunk)),
            Stream.either,
            Stream.runCollect
          ),
          "1 hour"
        )
        const last = Chunk.unsafeLast(out)
        expect(last._tag === "Left" && last.left._tag).toBe("Expired")
        expect(out.length).toBe(101)
      }).pipe(Effect.provide(simulated({ users: 500 }))))
  })
}

for (const [client, http] of platformClients) {
  for (const scrollParam of scrollParamModes) {
    describe(`against the simulator, over real HTTP, through ${client}, ${scrollParam} scroll_param`, () => {
      it.live("every user comes out exactly once, every page compressed, over connections kept alive", () => {
        let connections = 0
        // The simulator's app on a server of our own, which counts the connections it accepts.
        const server = Layer.unwrapEffect(Effect.map(Simulator.Simulator, (simulator) => HttpServer.serve(simulator.app)))
          .pipe(
            Layer.provideMerge(NodeHttpServer.layerServer(
              () => Http.createServer().on("connection", () => connections++),
              { port: 0, host: "127.0.0.1" }
            )),
            Layer.provideMerge(Simulator.layer({ scrollParam, workspaces: [{ token: TOKEN, users: 1500 }] }))
          )
        return Effect.gen(function*() {
          const stats = yield* exactlyOnce("users")
          // 15 pages of 100 users and the empty one, each asked for compressed and sent so.
          expect(stats.pagesServed).toBe(16)
          expect(stats.requestsAskingCompression).toBe(stats.requests)
          expect(stats.pagesCompressed).toBe(16)
          // ~160 kB of JSON a page, sent in ~16 kB.
          expect(stats.bytesSent / stats.pagesServed).toBeLessThan(40_000)
          // Kept alive, and one: each request waits a turn before it goes out, by which undici has taken back the
          // connection of the response just read (without that, a second one opened and the two took turns).
          expect(connections).toBe(1)
        }).pipe(Effect.provide(overHttp(http).pipe(Layer.provideMerge(server))))
      })

      // One fault a case, at the scroll's 3rd request: after it Intercom's side of the scroll stays open until it
      // expires, so the restart first meets scroll_exists (each answer a request of the simulator's count). With both
      // faults in one scroll the second had to land on a request counted after the first's recovery, and a loaded
      // machine that let the expiry pass between two pages moved it, or abandoned its request to restart for Expired.
      for (
        const [fault, words, counter] of [
          ["cutBodyAt", "response body cut short", "bodiesCut"],
          ["dropConnectionAt", "transport failure", "connectionsDropped"]
        ] as const
      ) {
        it.live(`${words} restarts the scroll, with each record once`, () =>
          Effect.gen(function*() {
            // The restart's warnings are collected, not printed into a passing run, and name the fault.
            const warnings: Array<string> = []
            const stats = yield* exactlyOnce("users", {
              restart: Schedule.recurs(5),
              concurrentScroll: Schedule.spaced("100 millis")
            }).pipe(Effect.provide(Logger.replace(
              Logger.defaultLogger,
              Logger.make(({ annotations, logLevel, message }) => {
                if (logLevel !== LogLevel.Warning) return
                warnings.push(`${String(message)}: ${String(Option.getOrUndefined(HashMap.get(annotations, "cause")))}`)
              })
            )))
            expect(warnings).toEqual(expect.arrayContaining([
              expect.stringMatching(new RegExp(`^Restarting the users scroll.*\\(${words}`, "s"))
            ]))
            expect(stats[counter]).toBe(1)
            expect(stats.pagesCompressed).toBe(stats.pagesServed)
            expect(stats.scrollsOpened).toBeGreaterThanOrEqual(2)
          }).pipe(Effect.provide(overHttp(http).pipe(Layer.provideMerge(Simulator.layerServer({
            scrollParam,
            expiry: "1 second",
            workspaces: [{ token: TOKEN, users: 800, faults: { [fault]: [3] } }]
          }))))))
      }
    })
  }
}
