/**
 * What happens before a scroll opens, and how it is told: a base URL that cannot be reached (`Unreachable`, fast, with
 * no restart), a first page that fails (a retry, not a restart), and another scroll of the workspace in the way (this
 * process's own, cut short, or one it knows nothing of), with how long the wait for it can last.
 */
import { FetchHttpClient, HttpClient, HttpClientError } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { Cause, Deferred, Effect, Exit, Fiber, Layer, Logger, Metric, Option, Redacted, Schedule, Stream, TestClock } from "effect"
import * as Net from "node:net"
import { IntercomClient, Progress, Scroll, ScrollError, ScrollMetrics } from "../src/index.js"
import { errorList, makeFake, type Seen } from "./support/fakeIntercom.js"
import { settle } from "./support/settle.js"

const BASE_URL = "http://127.0.0.1:4010"
const TOKEN = "tok_opening_0123456789abcdef"

const paramOf = (seen: Seen) => seen.url.searchParams.get("scroll_param")

/** A loopback port nothing listens on: one the system just gave out, closed again. */
const closedPort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** What a real HTTP client fails with, as the platform hands it over, when nothing listens at the address. */
const refusedBy = (client: Layer.Layer<HttpClient.HttpClient>) =>
  Effect.flatMap(closedPort, (port) =>
    HttpClient.get(`http://127.0.0.1:${port}/users/scroll`).pipe(Effect.flip, Effect.provide(client))).pipe(
      Effect.map((error) => error.cause)
    )

/** What undici fails with when an https:// URL reaches a port that answers in plain HTTP (a TLS hello it cannot read). */
const plainHttpAnswer = Effect.acquireUseRelease(
  Effect.async<Net.Server>((resume) => {
    // Destroyed at once: undici leaves its side of the failed handshake open, which `close` would wait on.
    const server = Net.createServer((socket) => socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n", () => socket.destroy()))
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) =>
    HttpClient.get(`https://127.0.0.1:${(server.address() as Net.AddressInfo).port}/users/scroll`).pipe(
      Effect.flip,
      Effect.map((error) => error.cause),
      Effect.provide(NodeHttpClient.layerUndici)
    ),
  (server) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

/** Node's error for a host name that does not resolve, as `getaddrinfo` gives it (undici passes it on as is). */
const notFound = Object.assign(new Error("getaddrinfo ENOTFOUND api.intercom.invalid"), {
  errno: -3008,
  code: "ENOTFOUND",
  syscall: "getaddrinfo",
  hostname: "api.intercom.invalid"
})

/** Node's error for a certificate past its date, from the TLS handshake. */
const expiredCertificate = Object.assign(new Error("certificate has expired"), { code: "CERT_HAS_EXPIRED" })

/** A client whose every request fails as the transport did with `cause`, for the requests `fails` picks. */
const failing = (cause: unknown, fails: (url: URL) => boolean = () => true) => {
  const fake = makeFake({ records: 250 })
  const requests: Array<URL> = []
  const http = Layer.effect(
    HttpClient.HttpClient,
    Effect.map(HttpClient.HttpClient, (inner) =>
      HttpClient.make((request, url) =>
        Effect.suspend(() => {
          requests.push(url)
          return fails(url)
            ? Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause }))
            : inner.execute(request)
        })
      ))
  ).pipe(Layer.provide(fake.httpClient))
  const layer = IntercomClient.layer({ accessToken: Redacted.make(TOKEN), baseUrl: BASE_URL }).pipe(
    Layer.provide(http),
    Layer.orDie
  )
  return { requests, layer }
}

/** Every progress event and log line of `effect`, and what the restarts counter gained meanwhile. */
const observed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const events: Array<Progress.ProgressEvent> = []
    const logs: Array<string> = []
    const restarts = Metric.value(ScrollMetrics.forResource(ScrollMetrics.restarts, "users"))
    const before = (yield* restarts).count
    const fiber = yield* effect.pipe(
      Effect.provideService(Progress.Progress, { report: (event) => Effect.sync(() => events.push(event)) }),
      Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => logs.push(String(message))))),
      Effect.exit,
      Effect.fork
    )
    return {
      fiber,
      events,
      logs,
      restarts: Effect.map(restarts, (state) => state.count - before)
    }
  })

/** The failure `exit` ended with; a test that expected one fails here if there was none. */
const failureOf = <A, E>(exit: Exit.Exit<A, E>): E =>
  Option.getOrThrow(Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none())

const tagsOf = (events: ReadonlyArray<Progress.ProgressEvent>) => events.map((event) => event._tag)

const waitsOf = (events: ReadonlyArray<Progress.ProgressEvent>) =>
  events.flatMap((event) => event._tag === "Waiting" ? [{ reason: event.reason, untilMillis: event.untilMillis }] : [])

describe("a base URL where nothing listens", () => {
  const clients = [["undici", NodeHttpClient.layerUndici], ["fetch", FetchHttpClient.layer]] as const
  for (const [name, client] of clients) {
    it.effect(`(${name}) fails with Unreachable after 3 connections in 1.5 s, neither a restart nor a retry`, () =>
      Effect.gen(function*() {
        const refused = failing(yield* refusedBy(client))
        const run = yield* observed(Stream.runDrain(Scroll.users()).pipe(Effect.provide(refused.layer)))
        // Half a second, then a second more: no 31 seconds of restarts.
        yield* settle(() => waitsOf(run.events).length > 0)
        yield* TestClock.adjust("1499 millis")
        expect(Option.isNone(yield* Fiber.poll(run.fiber))).toBe(true)
        yield* TestClock.adjust("1 millis")
        const error = failureOf(yield* Fiber.join(run.fiber))
        expect(error).toBeInstanceOf(ScrollError.Unreachable)
        expect(error).toMatchObject({ resource: "users", baseUrl: BASE_URL, reason: "refused", attempts: 3 })
        expect(error.message).toMatch(
          /^Could not connect to http:\/\/127\.0\.0\.1:4010 for the users scroll: nothing is listening there \(.*connect ECONNREFUSED 127\.0\.0\.1:\d+\); gave up after 3 attempts\. Check the baseUrl or region option/
        )
        expect(refused.requests).toHaveLength(3)
        // No page was ever fetched: nothing started over, and nothing says so.
        expect(tagsOf(run.events).filter((tag) => tag === "Restart" || tag === "Retry")).toEqual([])
        expect(waitsOf(run.events).map((wait) => wait.reason)).toEqual(["connect", "connect"])
        expect(yield* run.restarts).toBe(0)
        expect(run.logs.filter((line) => /Restart|first page/.test(line))).toEqual([])
        expect(run.logs.filter((line) => line.startsWith(`Could not connect to ${BASE_URL}`))).toHaveLength(2)
      }))
  }

  it.effect("a host name that does not resolve is Unreachable too, as an unknown host", () =>
    Effect.gen(function*() {
      const unknown = failing(notFound)
      const run = yield* observed(Stream.runDrain(Scroll.users()).pipe(Effect.provide(unknown.layer)))
      yield* settle(() => waitsOf(run.events).length > 0)
      yield* TestClock.adjust("1500 millis")
      const error = failureOf(yield* Fiber.join(run.fiber))
      expect(error).toMatchObject({ _tag: "Unreachable", reason: "unknown-host", attempts: 3 })
      expect(error.message).toContain("no such host (getaddrinfo ENOTFOUND api.intercom.invalid)")
    }))

  it.effect("a certificate refused is Unreachable at once: waiting does not change it", () =>
    Effect.gen(function*() {
      const tls = failing(new TypeError("fetch failed", { cause: expiredCertificate }))
      const error = yield* Effect.flip(Stream.runDrain(Scroll.users()).pipe(Effect.provide(tls.layer)))
      expect(error).toMatchObject({ _tag: "Unreachable", reason: "tls", attempts: 1 })
      expect(error.message).toContain("the TLS handshake failed (fetch failed: certificate has expired); gave up after 1 attempt.")
      expect(tls.requests).toHaveLength(1)
    }))

  it.effect("https:// to a port that speaks plain HTTP: OpenSSL's reason and the likely cause, not its source file", () =>
    Effect.gen(function*() {
      const tls = failing(yield* plainHttpAnswer)
      const error = yield* Effect.flip(Stream.runDrain(Scroll.users()).pipe(Effect.provide(tls.layer)))
      expect(error).toMatchObject({ _tag: "Unreachable", reason: "tls", attempts: 1 })
      expect(error.message).toContain(
        "the TLS handshake failed (wrong version number (the server there may speak plain HTTP, not TLS)); gave up after 1 attempt."
      )
      expect(error.message).not.toMatch(/ssl3_|\.c:\d+|0A00010B/)
    }))

  it.effect("a failure on the way to the proxy in between is said of the proxy, which the transport's error names", () =>
    Effect.gen(function*() {
      const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:3128"), { code: "ECONNREFUSED", syscall: "connect" })
      const atProxy = failing(Object.assign(new Error(refused.message, { cause: refused }), { proxy: "http://127.0.0.1:3128" }))
      const run = yield* observed(Stream.runDrain(Scroll.users()).pipe(Effect.provide(atProxy.layer)))
      yield* settle(() => waitsOf(run.events).length > 0)
      yield* TestClock.adjust("1500 millis")
      const error = failureOf(yield* Fiber.join(run.fiber))
      expect(error).toMatchObject({ _tag: "Unreachable", reason: "refused", proxy: "http://127.0.0.1:3128", attempts: 3 })
      expect(error.message).toBe(
        "Could not connect to http://127.0.0.1:4010 through the proxy http://127.0.0.1:3128 for the users scroll: nothing is listening at the proxy (connect ECONNREFUSED 127.0.0.1:3128); gave up after 3 attempts. Check the proxy setting, that the proxy at http://127.0.0.1:3128 is running, and that it lets this program through to http://127.0.0.1:4010."
      )
    }))

  it.effect("a tunnel the proxy would not open (a socket's error of its own) is a connect failure, reason proxy: never a restart", () =>
    Effect.gen(function*() {
      const closed = Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" })
      const tunnel = failing(
        Object.assign(new Error("the proxy closed the connection before answering CONNECT", { cause: closed }), {
          proxy: "http://127.0.0.1:3128"
        })
      )
      const run = yield* observed(Stream.runDrain(Scroll.users()).pipe(Effect.provide(tunnel.layer)))
      yield* settle(() => waitsOf(run.events).length > 0)
      yield* TestClock.adjust("1500 millis")
      const error = failureOf(yield* Fiber.join(run.fiber))
      expect(error).toMatchObject({ _tag: "Unreachable", reason: "proxy", proxy: "http://127.0.0.1:3128", attempts: 3 })
      expect(error.message).toContain(
        "the proxy did not open a tunnel to it (the proxy closed the connection before answering CONNECT: other side closed)"
      )
      expect(yield* run.restarts).toBe(0)
    }))

  it.effect("once a scroll has opened, a connection that fails is sent again twice with its scroll_param, then left to the restart schedule", () =>
    Effect.gen(function*() {
      const cause = yield* refusedBy(NodeHttpClient.layerUndici)
      let opened = false
      // The first page comes back; from then on nothing listens.
      const gone = failing(cause, () => {
        const fail = opened
        opened = true
        return fail
      })
      const run = yield* observed(
        Stream.runDrain(Scroll.users({ restart: Schedule.recurs(1) })).pipe(Effect.provide(gone.layer))
      )
      for (let wait = 1; wait <= 2; wait++) {
        yield* settle(() => waitsOf(run.events).length >= wait)
        yield* TestClock.adjust("1 second")
      }
      const error = failureOf(yield* Fiber.join(run.fiber))
      expect(error).toMatchObject({ _tag: "RestartRequired", page: 1, cause: { _tag: "ConnectFailed", reason: "refused" } })
      expect(waitsOf(run.events).map((wait) => wait.reason)).toEqual(["connect", "connect"])
      expect(tagsOf(run.events).filter((tag) => tag === "Restart" || tag === "Retry")).toEqual(["Restart"])
      expect(yield* run.restarts).toBe(1)
    }))
})

describe("a first page that fails before the scroll opened", () => {
  const serverErrorOnFirstPage = (times: number) => {
    let answered = 0
    return makeFake({
      records: 250,
      fault: (seen) =>
        paramOf(seen) === null && answered++ < times ? errorList(500, "server_error", "internal network error") : undefined
    })
  }

  it.effect("is asked for again: a retry, not a restart, in progress events, logs and metrics", () =>
    Effect.gen(function*() {
      const fake = serverErrorOnFirstPage(1)
      const tracker = yield* Progress.makeTracker
      const restart = Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(1)))
      const run = yield* observed(Stream.runCount(Scroll.users({ restart })).pipe(Effect.provide(fake.layer)))
      yield* settle(() => waitsOf(run.events).length > 0)
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.join(run.fiber)
      expect(exit).toEqual(Exit.succeed(250))
      for (const event of run.events) yield* tracker.reporter.report(event)
      expect(tagsOf(run.events).filter((tag) => tag === "Restart" || tag === "Retry")).toEqual(["Retry"])
      const retry = run.events.find((event) => event._tag === "Retry")
      expect(retry).toMatchObject({ attempt: 2, cause: expect.stringMatching(/^The users scroll did not open: its first page failed \(HTTP 500/) })
      expect(waitsOf(run.events).map((wait) => wait.reason)).toEqual(["retry"])
      expect((yield* tracker.snapshot).restarts).toBe(0)
      expect(yield* run.restarts).toBe(0)
      expect(run.logs).toEqual(["Asking again for the first page of the users scroll, which did not open"])
    }))

  it.effect("that keeps failing ends with RestartRequired saying the scroll did not open", () =>
    Effect.gen(function*() {
      const fake = serverErrorOnFirstPage(Infinity)
      const error = yield* Effect.flip(Stream.runDrain(Scroll.users({ restart: Schedule.recurs(2) })).pipe(Effect.provide(fake.layer)))
      expect(error).toMatchObject({ _tag: "RestartRequired", page: 1 })
      expect(error.message).toMatch(/^The users scroll did not open: its first page failed \(HTTP 500 server_error: internal network error.*\)\. The restart option decides/)
      expect(fake.requests).toHaveLength(3)
    }))
})

describe("another scroll of the workspace open on Intercom's side", () => {
  const scrollExists = () => errorList(400, "scroll_exists", "scroll already exists for this workspace")

  it.effect("one this process knows nothing of is waited on as concurrent-scroll, until the schedule gives up", () =>
    Effect.gen(function*() {
      let answered = 0
      // A workspace of its own: no scroll of it was left open by this process.
      const fake = makeFake({
        records: 250,
        token: "tok_another_app_scrolls_0123456789",
        fault: (seen) => paramOf(seen) === null && answered++ < 2 ? scrollExists() : undefined
      })
      const run = yield* observed(Stream.runCount(Scroll.users()).pipe(Effect.provide(fake.layer)))
      yield* settle(() => waitsOf(run.events).length > 0)
      yield* TestClock.adjust("20 seconds")
      expect(yield* Fiber.join(run.fiber)).toEqual(Exit.succeed(250))
      // Every 10 s, 12 times: the wait ends by 2 minutes after the first scroll_exists (at 0 on the TestClock).
      expect(waitsOf(run.events)).toEqual([
        { reason: "concurrent-scroll", untilMillis: 120_000 },
        { reason: "concurrent-scroll", untilMillis: 120_000 }
      ])
    }))

  it.effect("the wait can last as long as waitForOtherScroll's schedule would go on; one of your own is not stepped ahead", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        token: "tok_another_app_scrolls_for_ever_0123",
        fault: (seen) => paramOf(seen) === null ? scrollExists() : undefined
      })
      const waitWith = (concurrentScroll: Schedule.Schedule<unknown, ScrollError.ConcurrentScroll>) =>
        Effect.gen(function*() {
          const run = yield* observed(Stream.runDrain(Scroll.users({ concurrentScroll })).pipe(Effect.provide(fake.layer)))
          yield* settle(() => waitsOf(run.events).length > 0)
          yield* Fiber.interrupt(run.fiber)
          return waitsOf(run.events)[0]
        })
      const now = yield* TestClock.currentTimeMillis
      expect(yield* waitWith(Scroll.waitForOtherScroll("5 minutes"))).toEqual({
        reason: "concurrent-scroll",
        untilMillis: now + 300_000
      })
      // A schedule of one's own may have effects at each step: its end is not found by stepping it ahead.
      expect(yield* waitWith(Schedule.spaced("10 seconds").pipe(Schedule.upTo("5 minutes")))).toEqual({
        reason: "concurrent-scroll",
        untilMillis: undefined
      })
    }))

  it.effect("waitForOtherScroll waits no longer than it is given when that is no multiple of its 10 s tries", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        token: "tok_another_app_scrolls_15_seconds_0123",
        fault: (seen) => paramOf(seen) === null ? scrollExists() : undefined
      })
      const start = yield* TestClock.currentTimeMillis
      const run = yield* observed(
        Stream.runDrain(Scroll.users({ concurrentScroll: Scroll.waitForOtherScroll("15 seconds") })).pipe(
          Effect.provide(fake.layer)
        )
      )
      yield* settle(() => waitsOf(run.events).length > 0)
      expect(waitsOf(run.events)[0]).toEqual({ reason: "concurrent-scroll", untilMillis: start + 15_000 })
      // Tries at 0, 10 and 15 s, then it gives up: at 15 s, not at the next 10 s step (20 s).
      yield* TestClock.adjust("10 seconds")
      yield* settle(() => waitsOf(run.events).length > 1)
      yield* TestClock.adjust("5 seconds")
      yield* settle(() => run.fiber.unsafePoll() !== null)
      expect(failureOf(yield* Fiber.join(run.fiber))._tag).toBe("ConcurrentScroll")
    }))

  it.effect("a concurrentScroll schedule of one's own is stepped once a wait: its effects run as often as it waits", () =>
    Effect.gen(function*() {
      let answered = 0
      const fake = makeFake({
        records: 250,
        token: "tok_another_app_scrolls_tapped_0123",
        fault: (seen) => paramOf(seen) === null && answered++ < 3 ? scrollExists() : undefined
      })
      const steps: Array<string> = []
      const concurrentScroll = Schedule.spaced("1 second").pipe(
        Schedule.upTo("1 minute"),
        Schedule.tapInput((error: ScrollError.ConcurrentScroll) => Effect.sync(() => steps.push(error._tag)))
      )
      const run = yield* observed(Stream.runCount(Scroll.users({ concurrentScroll })).pipe(Effect.provide(fake.layer)))
      yield* settle(() => waitsOf(run.events).length > 0)
      yield* TestClock.adjust("5 seconds")
      expect(yield* Fiber.join(run.fiber)).toEqual(Exit.succeed(250))
      // Three scroll_exists, three waits, three steps (stepped ahead to find its end, it ran thousands of times).
      expect(waitsOf(run.events)).toHaveLength(3)
      expect(steps).toEqual(["ConcurrentScroll", "ConcurrentScroll", "ConcurrentScroll"])
    }))

  /** The simulator in process: its scrolls expire a minute after their last use, on the TestClock. */
  const USERS = 1_000
  const simulated = IntercomClient.layer({ accessToken: Redacted.make(TOKEN), baseUrl: "https://api.intercom.io" }).pipe(
    Layer.provideMerge(Simulator.layerClient({ workspaces: [{ token: TOKEN, users: USERS }] })),
    Layer.orDie
  )

  /** Runs the next scroll of the workspace while the clock moves on a second at a time, and gives its waits. */
  const nextScroll = Effect.gen(function*() {
    const run = yield* observed(Stream.runCount(Scroll.users()))
    for (let second = 0; second < 200 && Option.isNone(yield* Fiber.poll(run.fiber)); second++) {
      yield* TestClock.adjust("1 second")
    }
    expect(yield* Fiber.join(run.fiber)).toEqual(Exit.succeed(USERS))
    return waitsOf(run.events)
  })

  it.effect("one this process stopped early is waited on as own-scroll, until Intercom drops it", () =>
    Effect.gen(function*() {
      // Two pages, then the consumer has enough: the scroll stays open on Intercom's side.
      yield* Stream.runDrain(Scroll.users().pipe(Stream.take(150)))
      const startedAt = yield* TestClock.currentTimeMillis
      const waits = yield* nextScroll
      expect(waits.length).toBeGreaterThan(0)
      expect(waits.every((wait) => wait.reason === "own-scroll")).toBe(true)
      expect(waits[0].untilMillis).toBe(startedAt + 120_000)
      // About a minute after its last use, it was gone.
      expect((yield* TestClock.currentTimeMillis) - startedAt).toBeLessThanOrEqual(70_000)
    }).pipe(Effect.provide(simulated)))

  it.effect("giving up on one this process stopped early, the error says the scroll is its own and when to try again", () =>
    Effect.gen(function*() {
      yield* Stream.runDrain(Scroll.users().pipe(Stream.take(150)))
      const error = yield* Effect.flip(Stream.runDrain(Scroll.users({ concurrentScroll: Schedule.stop })))
      expect(error).toMatchObject({ _tag: "ConcurrentScroll", resource: "users", ownScroll: true })
      expect(error.message).toMatch(/^This program's own scroll of this workspace, cut short a moment ago, is still open .* Try again in about a minute/)
    }).pipe(Effect.provide(simulated)))

  it.effect("one this process interrupted is own-scroll too; one that reached its end leaves nothing behind", () =>
    Effect.gen(function*() {
      const firstPage = yield* Deferred.make<void>()
      const interrupted = yield* Stream.runDrain(Scroll.users({ prefetch: 0 })).pipe(
        Effect.provideService(Progress.Progress, {
          report: (event) => event._tag === "Page" ? Deferred.succeed(firstPage, undefined) : Effect.void
        }),
        Effect.fork
      )
      yield* Deferred.await(firstPage)
      yield* Fiber.interrupt(interrupted)
      expect((yield* nextScroll).map((wait) => wait.reason)).toContain("own-scroll")
      // The scroll just run reached its end: a scroll_exists now would be someone else's.
      expect(yield* nextScroll).toEqual([])
    }).pipe(Effect.provide(simulated)))

  it.effect("a first page cut short on its way back opened the scroll all the same: the next try waits on it as its own", () =>
    Effect.gen(function*() {
      const run = yield* observed(Stream.runCount(Scroll.users()))
      for (let second = 0; second < 200 && Option.isNone(yield* Fiber.poll(run.fiber)); second++) {
        yield* TestClock.adjust("1 second")
      }
      expect(yield* Fiber.join(run.fiber)).toEqual(Exit.succeed(USERS))
      const reasons = waitsOf(run.events).map((wait) => wait.reason)
      expect(reasons).toContain("own-scroll")
      expect(reasons).not.toContain("concurrent-scroll")
    }).pipe(Effect.provide(
      IntercomClient.layer({ accessToken: Redacted.make(TOKEN), baseUrl: "https://api.intercom.io" }).pipe(
        Layer.provideMerge(Simulator.layerClient({ workspaces: [{ token: TOKEN, users: USERS, faults: { cutBodyAt: [1] } }] })),
        Layer.orDie
      )
    )))

  it.effect("a scroll that opened since the one cut short means that one is gone: a scroll_exists after it is another's", () =>
    Effect.gen(function*() {
      let busy = false
      const fake = makeFake({
        records: 250,
        token: "tok_cut_then_whole_0123456789",
        fault: (seen) => {
          if (!busy || paramOf(seen) !== null) return undefined
          busy = false
          return scrollExists()
        }
      })
      const run = Effect.gen(function*() {
        // Cut short after its first page, then one that opens (Intercom had dropped the first) and runs to its end.
        yield* Stream.runDrain(Scroll.users({ prefetch: 0 }).pipe(Stream.take(100)))
        yield* Stream.runDrain(Scroll.users())
        busy = true
        const next = yield* observed(Stream.runDrain(Scroll.users()))
        yield* settle(() => waitsOf(next.events).length > 0)
        yield* TestClock.adjust("10 seconds")
        yield* Fiber.join(next.fiber)
        return waitsOf(next.events).map((wait) => wait.reason)
      })
      expect(yield* run.pipe(Effect.provide(fake.layer))).toEqual(["concurrent-scroll"])
    }))

  it.effect("a scroll that broke off and meets its own scroll when it starts over waits on own-scroll", () =>
    Effect.gen(function*() {
      let stage = 0
      const fake = makeFake({
        records: 250,
        fault: (seen) => {
          if (stage === 0 && paramOf(seen) === "s1-1") {
            stage = 1
            return errorList(500, "server_error", "internal network error")
          }
          if (stage === 1 && paramOf(seen) === null) {
            stage = 2
            return scrollExists()
          }
          return undefined
        }
      })
      const run = yield* observed(
        Stream.runCount(Scroll.users({ restart: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(1))) })).pipe(
          Effect.provide(fake.layer)
        )
      )
      yield* settle(() => waitsOf(run.events).length > 0)
      yield* TestClock.adjust("1 second")
      yield* settle(() => waitsOf(run.events).length > 1)
      yield* TestClock.adjust("10 seconds")
      expect(yield* Fiber.join(run.fiber)).toEqual(Exit.succeed(250))
      expect(waitsOf(run.events).map((wait) => wait.reason)).toEqual(["restart", "own-scroll"])
    }))
})

/**
 * A scroll over `client`, with a few quick restarts to spend: what it reported, and whether it died at once saying
 * `words` (a defect of the program's wiring, no restart or retry spent on it).
 */
const diesAtOnce = (client: IntercomClient.Service, words: string) =>
  Effect.gen(function*() {
    const said: Array<string> = []
    const exit = yield* Stream.runDrain(Scroll.users({ restart: Schedule.spaced("1 millis").pipe(Schedule.intersect(Schedule.recurs(3))) })).pipe(
      Effect.provideService(IntercomClient.IntercomClient, client),
      Effect.provideService(Progress.Progress, { report: (event) => Effect.sync(() => said.push(event._tag)) }),
      Effect.exit
    )
    expect(said).toEqual([])
    expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
    expect(Exit.isFailure(exit) && Cause.pretty(exit.cause)).toContain(words)
  })

describe("an HTTP client that cannot send the IntercomClient's requests", () => {
  // `Simulator.layerTest`'s client prefixes every URL with the server's (for a test's relative URLs): the
  // IntercomClient's absolute URLs become `Invalid URL`, every one of them, so a restart budget spent on it only delays
  // the end (~30 s by the default schedule) and a transport failure would send the user to check a network.
  it.live("dies at once, saying the client changed the requests, instead of restarting", () =>
    Effect.gen(function*() {
      const client = yield* IntercomClient.make({ accessToken: Redacted.make(TOKEN), baseUrl: BASE_URL })
      yield* diesAtOnce(client, "The HTTP client the IntercomClient was built on could not send its request (Invalid URL")
      const identified = yield* Effect.exit(client.identify!)
      expect(Exit.isFailure(identified) && Cause.isDie(identified.cause)).toBe(true)
      expect(Exit.isFailure(identified) && Cause.pretty(identified.cause)).toContain("Simulator.layerServer")
    }).pipe(Effect.provide(Simulator.layerTest({ workspaces: [{ token: TOKEN }] }))))
})

describe("an HTTP client closed beneath the IntercomClient", () => {
  // As `Effect.provide(NodeHttpClient.layerUndici)` around `make` leaves it, or a server's response stream still
  // scrolling when the layers shut down: undici refuses every request after (`UND_ERR_DESTROYED`), so starting over
  // cannot help, and a restart budget spent on it only delays the end (31 s by the default schedule).
  it.live("dies at once, naming the closed client, instead of restarting", () =>
    Effect.gen(function*() {
      const client = yield* IntercomClient.make({ accessToken: Redacted.make(TOKEN), baseUrl: BASE_URL }).pipe(
        Effect.provide(NodeHttpClient.layerUndici)
      )
      yield* diesAtOnce(client, "The HTTP client the IntercomClient was built on is closed (")
    }))
})
