import { HttpClient, HttpClientError } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  ConfigProvider,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  Redacted,
  Schedule,
  Schema,
  Stream,
  TestClock,
  type Tracer
} from "effect"
import { inspect } from "node:util"
import { IntercomClient, Progress, Scroll, ScrollError } from "../src/index.js"
import { errorList, type Fake, json, makeFake, type Seen, user } from "./support/fakeIntercom.js"
import { recordingTracer } from "./support/recordingTracer.js"

/** A token no fixture or message could contain by chance. */
const SECRET = "tok_redaction_canary_Zq8vX3kP9wLm2Rt7"
const BASE_URL = "https://api.intercom.test"

const paramOf = (seen: Seen) => seen.url.searchParams.get("scroll_param")

const text = (body: string, status: number, contentType: string, headers: Record<string, string> = {}) =>
  new Response(body, { status, headers: { "content-type": contentType, ...headers } })

const tooMany = (resetSeconds: number) =>
  json(
    { type: "error.list", request_id: "req_429", errors: [{ code: "rate_limit_exceeded", message: "Exceeded rate limit" }] },
    429,
    { "x-ratelimit-limit": "100", "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(resetSeconds) }
  )

/** Every way to render a value a logger, a tracer exporter or a user might use. */
const renderings = (value: unknown): Array<string> => {
  const out = [String(value), inspect(value, { depth: 8, showHidden: false })]
  try {
    out.push(JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) ?? "")
  } catch (error) {
    out.push(String(error))
  }
  return out
}

interface Captured {
  readonly texts: Array<string>
  /** The messages of every log line. */
  readonly logs: ReadonlyArray<string>
  readonly spans: ReadonlyArray<Tracer.Span>
  readonly errors: number
}

/**
 * Runs `effect` while capturing every log line (message, annotations, cause, spans), every span (name,
 * attributes, events, final status) and every progress event, and renders its failure every way there is.
 * The clock is moved on so that rate-limit waits and timeouts play out.
 */
const capture = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const texts: Array<string> = []
    const logs: Array<string> = []
    let errors = 0
    const logger = Logger.make(({ annotations, cause, logLevel, message, spans }) => {
      logs.push(String(message))
      texts.push(logLevel.label, ...renderings(message), ...renderings(Object.fromEntries(annotations)))
      texts.push(Cause.pretty(cause), ...renderings(cause))
      for (const span of spans) texts.push(span.label)
    })
    const { spans, tracer } = yield* recordingTracer
    const progress: Progress.Reporter = {
      report: (event) => Effect.sync(() => texts.push(...renderings(event)))
    }
    const fiber = yield* effect.pipe(
      Effect.withTracer(tracer),
      Effect.provideService(Progress.Progress, progress),
      Logger.withMinimumLogLevel(LogLevel.All),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Effect.exit,
      Effect.fork
    )
    for (let i = 0; i < 30; i++) yield* TestClock.adjust("10 seconds")
    const exit = yield* Fiber.join(fiber)
    if (Exit.isFailure(exit)) {
      texts.push(Cause.pretty(exit.cause), ...renderings(exit.cause))
      for (const error of Cause.failures(exit.cause)) {
        errors++
        texts.push(...renderings(error))
        if (error instanceof Error) texts.push(error.message, error.stack ?? "")
      }
    }
    // What a tracer exports: name, attributes, events, links and, for a failure, the cause. (A success value is
    // never exported; the platform's own http.client span ends with the response, which holds the request.)
    for (const span of spans) {
      texts.push(span.name, ...renderings(Object.fromEntries(span.attributes)), ...renderings(span.links))
      if ("events" in span) texts.push(...renderings(span.events))
      if (span.status._tag === "Ended" && Exit.isFailure(span.status.exit)) {
        const cause = span.status.exit.cause
        texts.push(Cause.pretty(cause))
        for (const error of Cause.failures(cause)) {
          texts.push(String(error))
          if (isScrollError(error)) texts.push(...renderings(error))
        }
      }
    }
    const captured: Captured = { texts, logs, spans, errors }
    return { exit, captured }
  })


/** One of the library's own errors, as opposed to the platform's (which carry the request they were about). */
const isScrollError = Schema.is(ScrollError.ScrollError)

/** Any 8 characters of the token in a row: a stretch of it (V8 quotes ~10 characters of a body) leaks too. */
const stretches = Array.from({ length: SECRET.length - 7 }, (_, i) => SECRET.slice(i, i + 8))
const leaks = (captured: Captured) => captured.texts.filter((t) => stretches.some((stretch) => t.includes(stretch)))

/** A fake answering with `fault` (for requests it picks), over the secret token. */
const fake = (
  fault: (seen: Seen) => Response | undefined,
  clientOptions: Partial<IntercomClient.Options> = {}
): Fake => makeFake({ token: SECRET, records: 250, fault, clientOptions })

/** A fault on the second page of every scroll (scroll_param `s<n>-1`), so that a page went well before it. */
const onSecondPage = (answer: (seen: Seen) => Response) => (seen: Seen) =>
  paramOf(seen)?.endsWith("-1") ? answer(seen) : undefined

const customClient = (client: HttpClient.HttpClient, clientOptions: Partial<IntercomClient.Options> = {}) =>
  IntercomClient.layer({ accessToken: Redacted.make(SECRET), baseUrl: BASE_URL, ...clientOptions }).pipe(
    Layer.provide(Layer.succeed(HttpClient.HttpClient, client)),
    Layer.orDie
  )

interface Scenario {
  readonly name: string
  readonly expected: string | undefined
  readonly make: () => { readonly layer: Layer.Layer<IntercomClient.IntercomClient>; readonly fake?: Fake }
}

const faked = (
  name: string,
  expected: string | undefined,
  fault: (seen: Seen) => Response | undefined,
  clientOptions: Partial<IntercomClient.Options> = {}
): Scenario => ({
  name,
  expected,
  make: () => {
    const f = fake(fault, clientOptions)
    return { layer: f.layer, fake: f }
  }
})

const whole = JSON.stringify({ type: "user.list", users: [user(1), user(2)], scroll_param: "x" })

const scenarios: ReadonlyArray<Scenario> = [
  faked("a successful scroll", undefined, () => undefined),
  faked("an expired scroll_param", "Expired", onSecondPage(() => errorList(404, "not_found", "scroll parameter not found"))),
  faked(
    "another scroll open",
    "ConcurrentScroll",
    (seen) => paramOf(seen) === null ? errorList(400, "scroll_exists", "scroll already exists for this workspace") : undefined
  ),
  faked(
    "a 500",
    "RestartRequired",
    onSecondPage(() => errorList(500, "server_error", "Request failed due to an internal network error."))
  ),
  faked("a 401", "Unauthorized", onSecondPage(() => errorList(401, "unauthorized", "Access Token Invalid"))),
  faked("a 403", "Unauthorized", onSecondPage(() => errorList(403, "token_unauthorized", "Not authorized"))),
  faked(
    "another 400",
    "ApiError",
    onSecondPage(() => errorList(400, "intercom_version_invalid", "Requested resource is not available"))
  ),
  faked("the wrong envelope", "InvalidResponse", onSecondPage(() => json({ type: "contact.list", contacts: [] }))),
  faked(
    "a record without id",
    "InvalidResponse",
    onSecondPage(() => json({ type: "user.list", users: [{ type: "user" }], scroll_param: "x" }))
  ),
  faked("a 200 text/html", "InvalidResponse", onSecondPage(() => text("<html>hi</html>", 200, "text/html"))),
  faked("a 502 text/html", "RestartRequired", onSecondPage(() => text("<html>Bad Gateway</html>", 502, "text/html"))),
  faked("JSON cut short", "RestartRequired", onSecondPage(() => text(whole.slice(0, 40), 200, "application/json"))),
  faked("malformed JSON", "InvalidResponse", onSecondPage(() => text(`{"type": user}`, 200, "application/json"))),
  faked(
    "a body over maxResponseBytes",
    "InvalidResponse",
    onSecondPage(() => text(whole, 200, "application/json")),
    { maxResponseBytes: 100 }
  ),
  faked(
    "a body that breaks off",
    "RestartRequired",
    onSecondPage(() =>
      new Response(
        new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new TextEncoder().encode(whole.slice(0, 20)))
            controller.error(new Error("other side closed"))
          }
        }),
        { status: 200, headers: { "content-type": "application/json" } }
      )
    )
  ),
  faked("a 429, then the page", undefined, (seen) => paramOf(seen) === "s1-1" && seen.index === 2 ? tooMany(5) : undefined),
  faked("429s past maxRetries", "RateLimited", onSecondPage(() => tooMany(5)), { rateLimit: { maxRetries: 1 } }),
  faked("a reset past maxWait", "RateLimited", onSecondPage(() => tooMany(600))),
  faked(
    "a paced wait",
    undefined,
    (seen) =>
      paramOf(seen) === null
        ? json({ type: "user.list", users: [user(1)], scroll_param: "s1-1" }, 200, {
          "x-ratelimit-limit": "100",
          "x-ratelimit-remaining": "1",
          "x-ratelimit-reset": "10"
        })
        : undefined
  ),
  faked(
    "an error that echoes the token back",
    "ApiError",
    onSecondPage(() => errorList(400, "bad_request", `Bearer ${SECRET} is not allowed here`))
  ),
  faked(
    "a 500 whose code and request id echo the token",
    "RestartRequired",
    onSecondPage(() =>
      json({ type: "error.list", request_id: `req_${SECRET}`, errors: [{ code: `bad_${SECRET}`, message: "m" }] }, 500)
    )
  ),
  faked(
    "an expired scroll_param whose request id echoes the token",
    "Expired",
    onSecondPage(() =>
      json({ type: "error.list", request_id: SECRET, errors: [{ code: "not_found", message: "scroll parameter not found" }] }, 404)
    )
  ),
  faked(
    "malformed JSON whose quotes do not pair up around the token",
    "InvalidResponse",
    onSecondPage(() => text(`{"a":1,"b" x"${SECRET}"}`, 200, "application/json"))
  ),
  faked(
    "an envelope issue that quotes the token",
    "InvalidResponse",
    onSecondPage(() => json({ type: SECRET, users: [] }))
  ),
  {
    name: "a transport failure",
    expected: "RestartRequired",
    make: () => ({
      layer: customClient(
        HttpClient.make((request) =>
          Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause: new Error("read ECONNRESET") }))
        )
      )
    })
  },
  {
    name: "a connection refused, whose message quotes the token, before any scroll opened",
    expected: "Unreachable",
    make: () => ({
      layer: customClient(
        HttpClient.make((request) =>
          Effect.fail(
            new HttpClientError.RequestError({
              request,
              reason: "Transport",
              cause: Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:4010 (Bearer ${SECRET})`), {
                code: "ECONNREFUSED",
                syscall: "connect"
              })
            })
          )
        )
      )
    })
  },
  {
    name: "a timeout",
    expected: "RestartRequired",
    make: () => ({ layer: customClient(HttpClient.make(() => Effect.never), { requestTimeout: "5 seconds" }) })
  }
]

describe("the access token appears in no error, log line, span or progress event", () => {
  for (const scenario of scenarios) {
    it.effect(scenario.name, () =>
      Effect.gen(function*() {
        const { fake, layer } = scenario.make()
        const { captured, exit } = yield* capture(
          Stream.runDrain(Scroll.users({ restart: Schedule.recurs(1), concurrentScroll: Schedule.stop })).pipe(
            Effect.provide(layer)
          )
        )
        // The scenario played out as named.
        if (scenario.expected === undefined) {
          expect(Exit.isSuccess(exit)).toBe(true)
        } else {
          expect(Exit.isFailure(exit) ? Option.map(Cause.failureOption(exit.cause), (e) => e._tag) : Option.none())
            .toEqual(Option.some(scenario.expected))
          expect(captured.errors).toBe(1)
        }
        // The token was in play: it went out on the wire, and the capture sees what holds it.
        if (fake !== undefined) {
          expect(fake.requests[0].headers["authorization"]).toBe(`Bearer ${SECRET}`)
          expect(renderings(fake.requests[0].headers).some((t) => t.includes(SECRET))).toBe(true)
        }
        expect(captured.spans.length).toBeGreaterThan(0)
        expect(leaks(captured)).toEqual([])
      }))
  }

  it.effect("restarts were logged, and those logs hold no token", () =>
    Effect.gen(function*() {
      const f = fake(onSecondPage(() => errorList(500, "server_error", "internal network error")))
      const { captured } = yield* capture(
        Stream.runDrain(Scroll.users({ restart: Schedule.recurs(2) })).pipe(Effect.provide(f.layer))
      )
      expect(captured.logs.filter((m) => m.includes("Restarting the users scroll"))).toHaveLength(2)
      expect(leaks(captured)).toEqual([])
    }))

  it.effect("nor in the errors of a layer that refuses its options or its configuration", () =>
    Effect.gen(function*() {
      const http = makeFake().httpClient
      const refused = yield* IntercomClient.layer({ accessToken: Redacted.make(SECRET), baseUrl: "http://example.com" }).pipe(
        Layer.provide(http),
        Layer.build,
        Effect.scoped,
        Effect.flip
      )
      expect(refused._tag).toBe("InvalidOptions")
      const badConfig = yield* IntercomClient.layerConfig().pipe(
        Layer.provide(http),
        Layer.build,
        Effect.scoped,
        Effect.flip,
        Effect.withConfigProvider(
          ConfigProvider.fromMap(new Map([["INTERCOM_ACCESS_TOKEN", SECRET], ["INTERCOM_REGION", "mars"]]))
        )
      )
      for (const error of [refused, badConfig]) {
        const texts = [...renderings(error), error.message, Cause.pretty(Cause.fail(error))]
        expect(texts.filter((t) => t.includes(SECRET))).toEqual([])
      }
    }))
})

/** Moves the clock on a tenth of a second at a time until `fiber` is done, as a real clock would. */
const untilDone = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  Effect.gen(function*() {
    for (let step = 0; step < 1_000 && Option.isNone(yield* Fiber.poll(fiber)); step++) yield* TestClock.adjust("100 millis")
    return yield* Fiber.join(fiber)
  })

describe("a short token, which no real Intercom token is", () => {
  /** What a scroll fails with over a client with `token`, when the server answers `fault`. */
  const failure = (token: string, fault: (seen: Seen) => Response | undefined) =>
    Stream.runDrain(Scroll.users({ restart: Schedule.stop, concurrentScroll: Schedule.stop })).pipe(
      Effect.flip,
      Effect.provide(makeFake({ token, records: 250, fault }).layer)
    )

  const faults: ReadonlyArray<readonly [string, (seen: Seen) => Response | undefined]> = [
    ["a 401", onSecondPage(() => errorList(401, "unauthorized", "Access Token Invalid"))],
    ["a 500", onSecondPage(() => errorList(500, "server_error", "Request failed due to an internal network error. Please restart the scroll operation."))],
    ["an expiry", onSecondPage(() => errorList(404, "not_found", "scroll parameter not found"))],
    ["another scroll", (seen) => paramOf(seen) === null ? errorList(400, "scroll_exists", "scroll already exists for this workspace") : undefined],
    ["a proxy's page", onSecondPage(() => text("<html>Bad Gateway</html>", 502, "text/html"))],
    ["an HTML answer", onSecondPage(() => text("<html>Temporary Error</html>", 200, "text/html"))],
    ["malformed JSON", onSecondPage(() => text(`{"type": user}`, 200, "application/json"))],
    ["the wrong envelope", onSecondPage(() => json({ type: "contact.list", contacts: [] }))]
  ]

  it.effect("never damages a message: where the server does not echo it, every error reads as with a token found nowhere", () =>
    Effect.gen(function*() {
      for (const [, fault] of faults) {
        const expected = (yield* failure("tok_found_nowhere_0123456789", fault)).message
        expect(expected).not.toContain("<redacted>")
        // One letter of many words, and words of ours, short and long: only what came from elsewhere is redacted.
        for (const token of ["T", "a", "HTTP", "users", "Intercom"]) {
          expect((yield* failure(token, fault)).message).toBe(expected)
        }
      }
    }))

  it.effect("is replaced where it stands alone in what a server sent, and nowhere inside a word", () =>
    Effect.gen(function*() {
      const error = yield* failure("T", onSecondPage((seen) => errorList(401, "unauthorized", `Access Token Invalid (${seen.headers["authorization"]})`)))
      expect(error).toMatchObject({ _tag: "Unauthorized", detail: "Access Token Invalid (Bearer <redacted>)" })
      const echoed = yield* failure("T", onSecondPage(() =>
        json({ type: "error.list", request_id: "req_T", errors: [{ code: "bad_T", message: "T-Rex in Transit" }] }, 400)
      ))
      expect(echoed).toMatchObject({ _tag: "ApiError", code: "bad_<redacted>", requestId: "req_<redacted>", detail: "<redacted>-Rex in Transit" })
    }))

  it.effect("leaves the transport's words whole: a connection refused reads the same with the README's old token `T`", () =>
    Effect.gen(function*() {
      const refused = (token: string) =>
        Stream.runDrain(Scroll.users()).pipe(
          Effect.flip,
          Effect.provide(
            IntercomClient.layer({ accessToken: Redacted.make(token), baseUrl: "http://127.0.0.1:4010" }).pipe(
              Layer.provide(Layer.succeed(
                HttpClient.HttpClient,
                HttpClient.make((request) =>
                  Effect.fail(
                    new HttpClientError.RequestError({
                      request,
                      reason: "Transport",
                      cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:4010"), { code: "ECONNREFUSED", syscall: "connect" })
                    })
                  )
                )
              )),
              Layer.orDie
            )
          ),
          Effect.fork,
          Effect.flatMap(untilDone)
        )
      const error = yield* refused("T")
      expect(error.message).toBe((yield* refused("tok_found_nowhere_0123456789")).message)
      expect(error.message).toMatch(/^Could not connect to http:\/\/127\.0\.0\.1:4010 for the users scroll: nothing is listening there \(connect ECONNREFUSED 127\.0\.0\.1:4010\)/)
    }))
})

describe("the page spans", () => {
  it.effect("carry resource and page (and Scroll.page also attempt and records)", () =>
    Effect.gen(function*() {
      const f = fake(() => undefined)
      const { captured } = yield* capture(Stream.runDrain(Scroll.users()).pipe(Effect.provide(f.layer)))
      const attrs = (name: string) =>
        captured.spans.filter((s) => s.name === name).map((s) => Object.fromEntries(s.attributes))
      // The first page opens the scroll with scrollPage; the others are received, then parsed (see Scroll.pages).
      expect(attrs("IntercomClient.scrollPage")).toEqual([expect.objectContaining({ resource: "users", page: 1 })])
      expect(attrs("IntercomClient.receivePage")).toEqual(
        [2, 3, 4].map((page) => expect.objectContaining({ resource: "users", page }))
      )
      expect(attrs("Scroll.page")).toEqual([
        { resource: "users", page: 1, attempt: 1, records: 100 },
        { resource: "users", page: 2, attempt: 1, records: 100 },
        { resource: "users", page: 3, attempt: 1, records: 50 },
        { resource: "users", page: 4, attempt: 1, records: 0 }
      ])
      expect(leaks(captured)).toEqual([])
    }))
})
