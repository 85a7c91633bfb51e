/**
 * The access token appears nowhere a CLI run writes or reports: not on stdout, not on stderr (the failure line, the
 * progress lines, the summary), in no log line (rendered as the CLI renders logs, and every other way), no span
 * (name, attributes, events, the failure it ended with), and not in the run's own failure. Every failure path is
 * driven with a token no fixture could contain by chance, and the paths where the server, a proxy or the transport
 * echo the token back are among them.
 */
import { HttpClient, HttpClientError } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ScrollError } from "@intercom-scroll/core"
import { Cause, Chunk, ConfigProvider, Effect, Exit, Fiber, Layer, Logger, LogLevel, Option, Schema, TestClock } from "effect"
import { inspect } from "node:util"
import { errorList, type Fake, json, makeFake, type Seen, user } from "../../core/test/support/fakeIntercom.js"
import { Cli, ExportError } from "../src/index.js"
import * as Failure from "../src/internal/failure.js"
import { makeCapture } from "./support/capture.js"
import { recordingTracer } from "../../core/test/support/recordingTracer.js"

/** A token no fixture or message could contain by chance. */
const SECRET = "tok_cli_canary_Hq3Zr8Vn2Kx6Wp4Ty9"
const BASE_URL = "https://api.intercom.test"
const ESC = String.fromCharCode(27)

const paramOf = (seen: Seen) => seen.url.searchParams.get("scroll_param")

/** On the second page of every scroll (scroll_param `s<n>-1`), so that a page went well before it. */
const onSecondPage = (answer: (seen: Seen) => Response) => (seen: Seen) =>
  paramOf(seen)?.endsWith("-1") === true ? answer(seen) : undefined

const text = (body: string, status: number, contentType: string) =>
  new Response(body, { status, headers: { "content-type": contentType } })

const client = (f: Parameters<typeof HttpClient.make>[0]) => Layer.succeed(HttpClient.HttpClient, HttpClient.make(f))

const tooMany = (resetSeconds: number) =>
  json(
    { type: "error.list", request_id: "req_429", errors: [{ code: "rate_limit_exceeded", message: `Exceeded rate limit for ${SECRET}` }] },
    429,
    { "x-ratelimit-limit": "100", "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(resetSeconds) }
  )

/** Every way a value may be rendered by a logger, an exporter or a person. */
const renderings = (value: unknown): Array<string> => {
  const out = [String(value), inspect(value, { depth: 10 })]
  try {
    out.push(JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) ?? "")
  } catch (error) {
    out.push(String(error))
  }
  return out
}


/** One of the library's or the CLI's errors, as opposed to the platform's. */
const isOwnError = Schema.is(
  Schema.Union(ScrollError.ScrollError, ScrollError.InvalidOptions, ExportError.InvalidConfig, ExportError.OutputError)
)

interface Scenario {
  readonly name: string
  readonly args?: ReadonlyArray<string>
  readonly env?: Record<string, string>
  /** The tag the failure line starts with; undefined for a run that succeeds. */
  readonly expected: string | undefined
  readonly fault?: (seen: Seen) => Response | undefined
  /** Replaces the fake's HTTP client. */
  readonly http?: (fake: Fake) => Layer.Layer<HttpClient.HttpClient>
  /** The token comes back in the text of the failure, and is scrubbed from it. */
  readonly echoed?: boolean
  /**
   * Minutes of waiting: run with plain progress only, since a live line is redrawn every 100 ms of the TestClock
   * and each redraw is a step of the clock.
   */
  readonly long?: boolean
  /** Interrupts the run once this many requests went out (a Ctrl-C). */
  readonly interruptAfter?: number
}

const scenarios: ReadonlyArray<Scenario> = [
  { name: "a successful export", expected: undefined },
  {
    name: "a 401 that echoes the Authorization header",
    expected: "Unauthorized",
    fault: onSecondPage((seen) => errorList(401, "unauthorized", `Access Token Invalid (${seen.headers["authorization"]})`)),
    echoed: true
  },
  {
    name: "a 403 whose code and message quote the token",
    expected: "Unauthorized",
    fault: onSecondPage(() => errorList(403, `token_unauthorized:${SECRET}`, `Token ${SECRET} may not read users`)),
    echoed: true
  },
  {
    name: "500s, echoing the token, until the restart budget is spent",
    args: ["--max-restarts", "2"],
    expected: "RestartRequired",
    fault: onSecondPage(() => errorList(500, "server_error", `Internal network error for Bearer ${SECRET}. Please restart the scroll operation.`)),
    echoed: true
  },
  {
    name: "a 502 HTML page from a proxy that prints the token",
    args: ["--max-restarts", "0"],
    expected: "RestartRequired",
    fault: onSecondPage(() => text(`<html><body>Bad Gateway for Authorization: Bearer ${SECRET}</body></html>`, 502, "text/html"))
  },
  {
    name: "a 429 whose reset is beyond the longest wait",
    expected: "RateLimited",
    fault: onSecondPage(() => tooMany(600))
  },
  {
    name: "429s past the retries allowed",
    expected: "RateLimited",
    fault: onSecondPage(() => tooMany(5)),
    long: true
  },
  {
    name: "malformed JSON that holds the token",
    expected: "InvalidResponse",
    fault: onSecondPage(() => text(`{"type": "user.list", "users": [], ${SECRET}}`, 200, "application/json"))
  },
  {
    name: "the wrong envelope, whose type is the token",
    expected: "InvalidResponse",
    fault: onSecondPage(() => json({ type: SECRET, users: [user(1)], scroll_param: "x" })),
    echoed: true
  },
  {
    name: "a 400 whose message quotes the token",
    expected: "ApiError",
    fault: onSecondPage(() => errorList(400, "bad_request", `Bearer ${SECRET} is not allowed here`)),
    echoed: true
  },
  {
    name: "an expired scroll_param, past the restart budget",
    args: ["--max-restarts", "1"],
    expected: "Expired",
    fault: onSecondPage(() => errorList(404, "not_found", "scroll parameter not found"))
  },
  {
    name: "another scroll that outlasts the wait for it",
    expected: "ConcurrentScroll",
    fault: (seen) => paramOf(seen) === null ? errorList(400, "scroll_exists", "scroll already exists for this workspace") : undefined,
    long: true
  },
  {
    name: "a transport failure",
    args: ["--max-restarts", "0"],
    expected: "RestartRequired",
    http: () =>
      client((request) =>
        Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause: new Error("read ECONNRESET") }))
      )
  },
  {
    name: "a transport failure whose own message quotes the token",
    args: ["--max-restarts", "0"],
    expected: "RestartRequired",
    http: () =>
      client((request) =>
        Effect.fail(
          new HttpClientError.RequestError({
            request,
            reason: "Transport",
            description: `socket hang up (Authorization: Bearer ${SECRET})`,
            cause: new Error(`read ECONNRESET while sending Bearer ${SECRET}`)
          })
        )
      ),
    echoed: true
  },
  {
    name: "a request that never answers",
    args: ["--max-restarts", "0"],
    expected: "RestartRequired",
    http: () => client(() => Effect.never),
    long: true
  },
  {
    name: "a plain-http base URL",
    env: { INTERCOM_BASE_URL: "http://intercom.example.com" },
    expected: "InvalidOptions"
  },
  {
    name: "an INTERCOM_REGION that is no region",
    env: { INTERCOM_REGION: "mars" },
    expected: "InvalidConfig"
  },
  {
    name: "Ctrl-C in the middle of the export",
    expected: "Interrupted",
    // Answers the first page, then hangs on the second until the run is interrupted.
    http: (fake) =>
      Layer.effect(
        HttpClient.HttpClient,
        Effect.map(HttpClient.HttpClient, (inner) =>
          HttpClient.make((request, url) => url.searchParams.has("scroll_param") ? Effect.never : inner.execute(request)))
      ).pipe(Layer.provide(fake.httpClient)),
    interruptAfter: 2
  }
]

/**
 * Runs the CLI to its end under the TestClock (moved straight to each pending wake-up: restart backoffs, rate-limit
 * waits, the wait for another scroll, timeouts, the progress lines), or interrupts it once `interruptAfter`
 * requests went out.
 */
const drive = <A, E>(fiber: Fiber.RuntimeFiber<A, E>, interrupt: (() => boolean) | undefined) =>
  Effect.gen(function*() {
    for (let step = 0; step < 2_000; step++) {
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return done.value
      if (interrupt?.() === true) return yield* Fiber.interrupt(fiber)
      const sleeps = yield* TestClock.sleeps()
      yield* Chunk.isEmpty(sleeps) ? TestClock.adjust(0) : TestClock.setTime(Math.min(...sleeps))
    }
    return yield* Effect.dieMessage("the CLI run did not end")
  })

const run = (scenario: Scenario, tty: boolean) =>
  Effect.gen(function*() {
    const fake = makeFake({ records: 250, token: SECRET, ...(scenario.fault === undefined ? {} : { fault: scenario.fault }) })
    const capture = makeCapture({ tty, columns: 120 })
    const texts: Array<string> = []
    const logs: Array<string> = []
    const logger = Logger.make((options) => {
      // As the CLI renders logs on stderr (logfmt), and every other way.
      logs.push(Logger.logfmtLogger.log(options))
      texts.push(Logger.stringLogger.log(options), Logger.jsonLogger.log(options))
      texts.push(...renderings(Logger.structuredLogger.log(options)))
      texts.push(...renderings(options.message), ...renderings(Object.fromEntries(options.annotations)))
      texts.push(Cause.pretty(options.cause), ...renderings(options.cause))
    })
    const { spans, tracer } = yield* recordingTracer
    const http = scenario.http === undefined ? fake.httpClient : scenario.http(fake)
    const env = { INTERCOM_ACCESS_TOKEN: SECRET, INTERCOM_BASE_URL: BASE_URL, ...scenario.env }
    const requests = { count: 0 }
    const counted = Layer.effect(
      HttpClient.HttpClient,
      Effect.map(HttpClient.HttpClient, (client) =>
        HttpClient.make((request) => Effect.suspend(() => {
          requests.count++
          return client.execute(request)
        })))
    ).pipe(Layer.provide(http))
    const fiber = yield* Cli.main(["node", "intercom-scroll", "export", "users", ...(scenario.args ?? [])]).pipe(
      Effect.provide(Layer.mergeAll(NodeContext.layer, counted, capture.layer)),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
      Effect.withTracer(tracer),
      Effect.provide(Logger.add(logger)),
      Logger.withMinimumLogLevel(LogLevel.All),
      Effect.fork
    )
    const limit = scenario.interruptAfter
    const exit = yield* drive(fiber, limit === undefined ? undefined : () => requests.count >= limit)
    if (Exit.isFailure(exit)) {
      // What a runtime reporting the failure would print.
      texts.push(Cause.pretty(exit.cause), ...renderings(exit.cause))
      for (const error of Cause.failures(exit.cause)) texts.push(...renderings(error))
    }
    // What a tracer exports: name, attributes, events, links and, for a failure, its message and stack (an
    // exporter does not serialise the platform's errors, which hold the request they were about; the CLI's and
    // the library's own errors are rendered every way).
    for (const span of spans) {
      texts.push(span.name, ...renderings(Object.fromEntries(span.attributes)), ...renderings(span.links))
      if ("events" in span) texts.push(...renderings(span.events))
      if (span.status._tag !== "Ended" || Exit.isSuccess(span.status.exit)) continue
      texts.push(Cause.pretty(span.status.exit.cause))
      for (const error of Cause.failures(span.status.exit.cause)) {
        texts.push(String(error))
        if (isOwnError(error)) texts.push(...renderings(error))
      }
    }
    const everything = [capture.stdout(), capture.stderr(), ...logs, ...texts]
    return { exit, fake, capture, spans, logs, everything }
  })

describe("a CLI run never shows the access token", () => {
  for (const scenario of scenarios) {
    for (const tty of scenario.long === true ? [false] : [false, true]) {
      it.effect(`${scenario.name} (${tty ? "terminal" : "plain"} progress)`, () =>
        Effect.gen(function*() {
          const result = yield* run(scenario, tty)
          const { capture, exit } = result

          // The scenario played out as named.
          if (scenario.expected === undefined) {
            expect(Failure.exitCode(exit)).toBe(0)
            expect(capture.stdout().split("\n").filter((line) => line !== "")).toHaveLength(250)
          } else {
            expect(Failure.exitCode(exit)).toBe(scenario.expected === "Interrupted" ? 130 : 1)
            // The last line, as a terminal shows it: what follows the last carriage return, without escapes.
            const lastLine = capture.stderr().trimEnd().split("\n").pop()?.split("\r").pop() ?? ""
            expect(lastLine.replace(new RegExp(`${ESC}\\[[0-9;]*[A-Za-z]`, "g"), "")).toMatch(
              new RegExp(`^${scenario.expected}: `)
            )
          }
          // The token was in play: it went out with the requests that reached the fake.
          if (result.fake.requests.length > 0) {
            expect(result.fake.requests[0].headers["authorization"]).toBe(`Bearer ${SECRET}`)
          }
          // Where the server or the transport sent the token back, the failure line shows where it was scrubbed.
          if (scenario.echoed === true) {
            expect(capture.stderr()).toContain("<redacted>")
          }
          // What was captured is real: spans for any run that got as far as exporting.
          if (scenario.expected !== "InvalidConfig" && scenario.expected !== "InvalidOptions") {
            expect(result.spans.map((s) => s.name)).toContain("Export.run")
          }

          expect(result.everything.filter((t) => t.includes(SECRET))).toEqual([])
        }))
    }
  }

  it.effect("restarts are logged, and those logs hold no token", () =>
    Effect.gen(function*() {
      const scenario = scenarios.find((s) => s.name.startsWith("500s"))
      if (scenario === undefined) return yield* Effect.dieMessage("no 500s scenario")
      const result = yield* run(scenario, false)
      expect(result.logs.filter((line) => line.includes("Restarting the users scroll"))).toHaveLength(2)
      expect(result.fake.opened()).toBe(3)
      expect(result.everything.filter((t) => t.includes(SECRET))).toEqual([])
    }))
})
