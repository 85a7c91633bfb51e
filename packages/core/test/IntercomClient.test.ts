import { HttpClient, HttpClientError, type HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import * as Zlib from "node:zlib"
import {
  Chunk,
  Clock,
  Config,
  ConfigError,
  ConfigProvider,
  Duration,
  Effect,
  Either,
  Fiber,
  FiberRef,
  Layer,
  Metric,
  Option,
  Redacted,
  Schedule,
  Stream,
  TestClock
} from "effect"
import { IntercomClient, type Resource, Scroll, ScrollError, ScrollMetrics } from "../src/index.js"
import { gzipBomb } from "./support/bomb.js"
import {
  asked,
  compressedJson,
  errorList,
  json,
  makeFake,
  scrollParamModes,
  type Seen,
  TOKEN,
  user
} from "./support/fakeIntercom.js"
import { settle } from "./support/settle.js"

type AnyError = ScrollError.ScrollError

const paramOf = (seen: Seen) => seen.url.searchParams.get("scroll_param")

/** One page through the client service; the first page when `scrollParam` is undefined. */
const scrollPage = <R extends Resource.Resource>(resource: R, scrollParam: string | undefined, page = 1) =>
  Effect.flatMap(IntercomClient.IntercomClient, (client) => client.scrollPage(resource, { scrollParam, page }))

/** Narrows a scroll error to the tag the test expects, failing the test otherwise. */
const expectTag = <T extends AnyError["_tag"]>(error: AnyError, tag: T): Extract<AnyError, { readonly _tag: T }> => {
  expect(error._tag).toBe(tag)
  if (error._tag !== tag) throw new Error(`expected ${tag}, got ${error._tag}`)
  return error as Extract<AnyError, { readonly _tag: T }>
}

/** The error a request for page 2 of a users scroll fails with when the server answers every request with `answer`. */
const failureOf = (
  answer: () => Response,
  options: { readonly resource?: Resource.Resource; readonly scrollParam?: string | undefined; readonly page?: number } = {},
  clientOptions: Partial<IntercomClient.Options> = {}
) => {
  const fake = makeFake({ fault: () => answer(), clientOptions })
  const scrollParam = "scrollParam" in options ? options.scrollParam : "s1-1"
  return scrollPage(options.resource ?? "users", scrollParam, options.page ?? 2).pipe(
    Effect.flip,
    Effect.provide(fake.layer)
  )
}

/** A client over `http`, with `options` (a 5-second timeout, say). */
const clientOver = (http: HttpClient.HttpClient, options: Partial<IntercomClient.Options> = {}) =>
  IntercomClient.layer({ accessToken: Redacted.make(TOKEN), baseUrl: "https://api.intercom.test", ...options }).pipe(
    Layer.provide(Layer.succeed(HttpClient.HttpClient, http)),
    Layer.orDie
  )

/** A page of one user, numbered `n`, whose scroll_param leads on. */
const pageOf = (request: HttpClientRequest.HttpClientRequest, n: number) =>
  HttpClientResponse.fromWeb(request, json({ type: "user.list", users: [user(n)], scroll_param: `s1-${n}` }))

const text = (body: string, status: number, contentType: string, headers: Record<string, string> = {}) =>
  new Response(body, { status, headers: { "content-type": contentType, ...headers } })

const rateLimitHeaders = (resetSeconds: number, remaining: number, limit = 1000) => ({
  "x-ratelimit-limit": String(limit),
  "x-ratelimit-remaining": String(remaining),
  "x-ratelimit-reset": String(resetSeconds)
})

/** A Date header for `seconds` after the epoch: where Intercom's clock stands, which need not be where ours does. */
const dateAt = (seconds: number) => ({ date: new Date(seconds * 1000).toUTCString() })

const tooMany = (resetSeconds: number, headers: Record<string, string> = {}) =>
  json(
    {
      type: "error.list",
      request_id: "req_429",
      errors: [{ code: "rate_limit_exceeded", message: "Exceeded rate limit of 1000 in 10_seconds" }]
    },
    429,
    { ...rateLimitHeaders(resetSeconds, 0), ...headers }
  )

describe("request shape", () => {
  const resources: ReadonlyArray<readonly [Resource.Resource, string, string]> = [
    ["users", "/users/scroll", "1.4"],
    ["leads", "/contacts/scroll", "1.4"],
    ["companies", "/companies/scroll", "2.14"]
  ]

  for (const [resource, path, version] of resources) {
    it.effect(`${resource}: GET ${path} with bearer auth, JSON, compression and Intercom-Version ${version}`, () => {
      const fake = makeFake({ fault: () => json({ type: "error.list", errors: [{ code: "x", message: "stop" }] }, 418) })
      return Effect.gen(function*() {
        yield* Effect.flip(scrollPage(resource, undefined))
        yield* Effect.flip(scrollPage(resource, "next-param", 2))
        expect(fake.requests).toHaveLength(2)
        const [first, second] = fake.requests
        for (const seen of fake.requests) {
          expect(seen.url.origin).toBe("https://api.intercom.test")
          expect(seen.url.pathname).toBe(path)
          expect(seen.headers["authorization"]).toBe(`Bearer ${TOKEN}`)
          expect(seen.headers["accept"]).toBe("application/json")
          expect(seen.headers["intercom-version"]).toBe(version)
          expect(seen.headers["accept-encoding"]).toBe("gzip, deflate, br")
        }
        // The first page asks nothing; the next one passes the scroll_param and nothing else.
        expect(first.url.search).toBe("")
        expect([...second.url.searchParams]).toEqual([["scroll_param", "next-param"]])
      }).pipe(Effect.provide(fake.layer))
    })
  }

  it.effect("the Intercom-Version of each resource can be overridden, the others keep their default", () => {
    const fake = makeFake({
      fault: () => json({ type: "error.list", errors: [{ code: "x", message: "stop" }] }, 418),
      clientOptions: { versions: { users: "1.1", companies: "1.4" } }
    })
    return Effect.gen(function*() {
      for (const resource of ["users", "leads", "companies"] as const) yield* Effect.flip(scrollPage(resource, undefined))
      expect(fake.requests.map((seen) => seen.headers["intercom-version"])).toEqual(["1.1", "1.4", "1.4"])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a scroll_param full of URL syntax reaches the server as exactly one scroll_param, path unchanged", () => {
    const nasty = "a&b=c/d#e?f=g h+i%41j/../k;l ünï©ødé 🚀"
    const fake = makeFake({
      fault: (seen) =>
        paramOf(seen) === null
          ? json({ type: "user.list", users: [user(1)], scroll_param: nasty })
          : json({ type: "user.list", users: [], scroll_param: "end" })
    })
    return Effect.gen(function*() {
      expect(yield* Stream.runCount(Scroll.users())).toBe(1)
      expect(fake.requests).toHaveLength(2)
      const next = fake.requests[1].url
      expect(next.pathname).toBe("/users/scroll")
      expect(next.hash).toBe("")
      expect([...next.searchParams]).toEqual([["scroll_param", nasty]])
    }).pipe(Effect.provide(fake.layer))
  })
})

describe("base URL", () => {
  const hostOf = (clientOptions: Partial<IntercomClient.Options>) => {
    const fake = makeFake({ clientOptions })
    return Effect.gen(function*() {
      const client = yield* IntercomClient.IntercomClient
      yield* scrollPage("users", undefined)
      return { baseUrl: client.baseUrl, requested: fake.requests[0].url.href }
    }).pipe(Effect.provide(fake.layer))
  }

  it.effect("defaults to the US host", () =>
    Effect.gen(function*() {
      expect(yield* hostOf({ baseUrl: undefined })).toEqual({
        baseUrl: "https://api.intercom.io",
        requested: "https://api.intercom.io/users/scroll"
      })
    }))

  it.effect("follows the region: eu and au", () =>
    Effect.gen(function*() {
      expect((yield* hostOf({ baseUrl: undefined, region: "eu" })).requested).toBe("https://api.eu.intercom.io/users/scroll")
      expect((yield* hostOf({ baseUrl: undefined, region: "au" })).requested).toBe("https://api.au.intercom.io/users/scroll")
      expect(IntercomClient.regionBaseUrls).toEqual({
        us: "https://api.intercom.io",
        eu: "https://api.eu.intercom.io",
        au: "https://api.au.intercom.io"
      })
    }))

  it.effect("baseUrl overrides the region, keeping its path and dropping a trailing slash", () =>
    Effect.gen(function*() {
      expect(yield* hostOf({ baseUrl: "https://proxy.example.com/intercom/", region: "eu" })).toEqual({
        baseUrl: "https://proxy.example.com/intercom",
        requested: "https://proxy.example.com/intercom/users/scroll"
      })
    }))

  const build = (baseUrl: string) =>
    Effect.gen(function*() {
      const client = yield* IntercomClient.IntercomClient
      return client.baseUrl
    }).pipe(
      Effect.provide(
        IntercomClient.layer({ accessToken: Redacted.make(TOKEN), baseUrl }).pipe(Layer.provide(makeFake().httpClient))
      )
    )

  it.effect("refuses plain http to a host that is not this machine: the layer fails with InvalidOptions", () =>
    Effect.gen(function*() {
      for (const baseUrl of ["http://api.intercom.io", "HTTP://proxy.example.com:8080/", "http://127.0.0.1.nip.io"]) {
        const error = yield* Effect.flip(build(baseUrl))
        expect(error._tag).toBe("InvalidOptions")
        expect(error.message).toContain("https")
      }
    }))

  it.effect("refuses a base URL that is not a URL, or not http(s)", () =>
    Effect.gen(function*() {
      for (const baseUrl of ["not a url", "ftp://api.intercom.io", "localhost:4010"]) {
        const refused = yield* Effect.flip(build(baseUrl))
        expect(refused._tag).toBe("InvalidOptions")
        // Named as given: the URL's origin would be "null" for the last two.
        expect(refused.message).toContain(JSON.stringify(baseUrl))
      }
    }))

  it.effect("allows plain http to loopback: 127.0.0.1, localhost and [::1]", () =>
    Effect.gen(function*() {
      expect(yield* build("http://127.0.0.1:4010")).toBe("http://127.0.0.1:4010")
      expect(yield* build("http://localhost:4010/")).toBe("http://localhost:4010")
      expect(yield* build("http://[::1]:4010")).toBe("http://[::1]:4010")
    }))

  it.effect("isThisMachine is the rule plain http is allowed by", () =>
    Effect.gen(function*() {
      const urls = ["http://127.0.0.1:4010", "http://127.1.2.3", "http://LOCALHOST:4010", "http://[::1]:4010", "http://api.intercom.io", "http://127.0.0.1.nip.io", "http://localhost.", "http://[::2]", "http://128.0.0.1"]
      for (const url of urls) {
        const allowed = yield* build(url).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
        expect([url, IntercomClient.isThisMachine(new URL(url))]).toEqual([url, allowed])
      }
      expect(urls.filter((url) => IntercomClient.isThisMachine(new URL(url)))).toHaveLength(4)
    }))
})

describe("options that cannot work", () => {
  /** How building a client with `options` fails, if it does. */
  const refusal = (options: Partial<IntercomClient.Options>) =>
    IntercomClient.layer({ accessToken: Redacted.make(TOKEN), baseUrl: "https://api.intercom.test", ...options }).pipe(
      Layer.provide(makeFake().httpClient),
      Layer.build,
      Effect.scoped,
      Effect.flip
    )

  it.effect("are InvalidOptions when the client is built, each named, before any request is sent", () =>
    Effect.gen(function*() {
      const refused: ReadonlyArray<readonly [Partial<IntercomClient.Options>, string]> = [
        [{ accessToken: Redacted.make(`${TOKEN}\n`) }, `the access token contains a line break (character ${TOKEN.length + 1} of ${TOKEN.length + 1})`],
        [{ accessToken: Redacted.make(`${TOKEN}\u0101`) }, "the access token contains the character U+0101"],
        [{ accessToken: Redacted.make("") }, "the access token is blank"],
        [{ accessToken: Redacted.make("  ") }, "the access token is blank"],
        [{ versions: { users: "1.4\r\nX-Injected: 1" } }, "versions.users"],
        [{ versions: { companies: " " } }, "versions.companies \" \" is blank"],
        [{ maxResponseBytes: 0 }, "maxResponseBytes must be a whole number of bytes above 0, not 0"],
        [{ maxResponseBytes: 1.5 }, "not 1.5"],
        [{ maxResponseBytes: Number.NaN }, "not NaN"],
        [{ requestTimeout: 0 }, "requestTimeout must be longer than zero"],
        [{ requestTimeout: -5 }, "requestTimeout -5 is not a duration"],
        [{ requestTimeout: Number.NaN }, "requestTimeout NaN is not a duration"],
        [{ requestTimeout: "-5 seconds" }, "requestTimeout \"-5 seconds\" is not a duration"],
        [{ requestTimeout: "soon" as Duration.DurationInput }, "requestTimeout \"soon\" is not a duration"],
        // Past what a timer waits: Effect's clock would never fire it.
        [{ requestTimeout: "25 days" }, "requestTimeout must be at most 2147483647 ms (about 24.8 days)"],
        [{ rateLimit: { lowWater: 2 } }, "rateLimit.lowWater is a fraction of the budget, from 0 to 1, not 2"],
        [{ rateLimit: { lowWater: Number.NaN } }, "not NaN"],
        [{ rateLimit: { maxRetries: -1 } }, "rateLimit.maxRetries must be a whole number from 0, not -1"],
        [{ rateLimit: { maxWait: Number.NaN } }, "rateLimit.maxWait NaN is not a duration"],
        [{ rateLimit: { maxWait: "-1 seconds" } }, "rateLimit.maxWait \"-1 seconds\" is not a duration"],
        // A wait it let through would never end: Effect's clock never fires a timer that long.
        [{ rateLimit: { maxWait: "25 days" } }, "rateLimit.maxWait must be at most 2147483647 ms (about 24.8 days), the longest a timer waits, or Duration.infinity to wait for any reset"],
        [{ rateLimit: { maxWait: 2 ** 31 } }, "rateLimit.maxWait must be at most 2147483647 ms"],
        [{ baseUrl: undefined, region: "mars" as IntercomClient.Region }, "region \"mars\" is not one of us, eu, au"],
        [{ baseUrl: "https://api.intercom.test/?a=1" }, "has a query or a fragment"],
        [{ baseUrl: "https://api.intercom.test/#top" }, "has a query or a fragment"],
        [{ baseUrl: "https://proxyuser:S3cret@proxy.test/intercom" }, "base URL https://proxy.test/intercom carries credentials"],
        // A URL that does not parse (a typo in its port) is shown without its credentials too.
        [{ baseUrl: "https://proxyuser:S3cret@proxy.test:80a/" }, "\"https://…@proxy.test:80a/\" is not a URL"],
        // The token pasted into the base URL: not shown, with or without an @.
        [{ baseUrl: `ftp://${TOKEN}@proxy.test` }, "\"ftp://…@proxy.test\" is not an http(s) URL: use https://… (plain http only for this machine)"],
        [{ baseUrl: `:${TOKEN}` }, "\":<redacted>\" is not a URL"]
      ]
      for (const [options, detail] of refused) {
        const error = yield* refusal(options)
        expect(error._tag).toBe("InvalidOptions")
        expect(error.message).toContain(detail)
        expect(error.message).not.toContain(TOKEN)
        expect(error.message).not.toContain("S3cret")
      }
    }))

  it.effect("a short token pasted into the base URL is not shown either, by the rules the client's other errors follow", () =>
    Effect.gen(function*() {
      // Under 8 characters: replaced where it stands alone, and not inside a word of the message.
      const error = yield* refusal({ accessToken: Redacted.make("tok_1\n"), baseUrl: ":tok_1" })
      expect(error.message).toContain("\":<redacted>\" is not a URL")
      expect(error.message).not.toContain("tok_1")
    }))

  it.effect("the edges that can work are taken: zero waits, a timeout of Infinity, Latin-1 in a version", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        clientOptions: {
          requestTimeout: Duration.infinity,
          rateLimit: { lowWater: 0, maxWait: 0, maxRetries: 0 },
          versions: { users: "1.4" }
        }
      })
      const page = yield* scrollPage("users", undefined).pipe(Effect.provide(fake.layer))
      expect(page.records.length).toBeGreaterThan(0)
    }))
})

describe("layerConfig", () => {
  const fromEnv = (env: Record<string, string>) => {
    const fake = makeFake()
    return Effect.gen(function*() {
      yield* scrollPage("users", undefined)
      return fake.requests[0]
    }).pipe(
      Effect.provide(IntercomClient.layerConfig().pipe(Layer.provide(fake.httpClient))),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
    )
  }

  it.effect("reads INTERCOM_ACCESS_TOKEN and defaults to the US host", () =>
    Effect.gen(function*() {
      const seen = yield* fromEnv({ INTERCOM_ACCESS_TOKEN: TOKEN })
      expect(seen.headers["authorization"]).toBe(`Bearer ${TOKEN}`)
      expect(seen.url.origin).toBe("https://api.intercom.io")
    }))

  it.effect("reads INTERCOM_REGION", () =>
    Effect.gen(function*() {
      expect((yield* fromEnv({ INTERCOM_ACCESS_TOKEN: TOKEN, INTERCOM_REGION: "au" })).url.origin).toBe(
        "https://api.au.intercom.io"
      )
      // In any case, without the whitespace around it.
      expect((yield* fromEnv({ INTERCOM_ACCESS_TOKEN: TOKEN, INTERCOM_REGION: " EU\n" })).url.origin).toBe(
        "https://api.eu.intercom.io"
      )
    }))

  it.effect("reads INTERCOM_BASE_URL, which beats the region", () =>
    Effect.gen(function*() {
      const seen = yield* fromEnv({
        INTERCOM_ACCESS_TOKEN: TOKEN,
        INTERCOM_REGION: "eu",
        INTERCOM_BASE_URL: "http://127.0.0.1:4010"
      })
      expect(seen.url.href).toBe("http://127.0.0.1:4010/users/scroll")
    }))

  it.effect("a missing token is a ConfigError naming the variable, in words (not Config.redacted's \"<redacted>\")", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(fromEnv({ INTERCOM_REGION: "eu" }))
      expect(ConfigError.isConfigError(error)).toBe(true)
      expect(String(error)).toMatch(/^\(Missing data at INTERCOM_ACCESS_TOKEN: "Expected INTERCOM_ACCESS_TOKEN to exist in /)
    }))

  it.effect("an unknown region is a ConfigError naming the variable and the regions there are", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(fromEnv({ INTERCOM_ACCESS_TOKEN: TOKEN, INTERCOM_REGION: "mars" }))
      expect(ConfigError.isConfigError(error)).toBe(true)
      expect(String(error)).toBe(`(Invalid data at INTERCOM_REGION: "is "mars"; use us, eu or au")`)
    }))

  it.effect("a token is read without the whitespace around it: the line break a secret file or a CRLF .env ends with", () =>
    Effect.gen(function*() {
      const seen = yield* fromEnv({ INTERCOM_ACCESS_TOKEN: ` ${TOKEN}\r\n` })
      expect(seen.headers["authorization"]).toBe(`Bearer ${TOKEN}`)
    }))

  it.effect("a blank token is a ConfigError naming the variable, as a missing one is", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(fromEnv({ INTERCOM_ACCESS_TOKEN: "  " }))
      expect(ConfigError.isConfigError(error)).toBe(true)
      expect(String(error)).toContain("Invalid data at INTERCOM_ACCESS_TOKEN")
      expect(String(error)).toContain("blank")
    }))

  it.effect("an INTERCOM_BASE_URL that is not an http(s) URL is a ConfigError naming the variable", () =>
    Effect.gen(function*() {
      for (const baseUrl of ["not a url", "ftp://api.intercom.io", "localhost:4010"]) {
        const error = yield* Effect.flip(fromEnv({ INTERCOM_ACCESS_TOKEN: TOKEN, INTERCOM_BASE_URL: baseUrl }))
        expect(ConfigError.isConfigError(error)).toBe(true)
        expect(String(error)).toContain("Invalid data at INTERCOM_BASE_URL")
        expect(String(error)).toContain(JSON.stringify(baseUrl))
      }
      // One that carries credentials, parsed or not, is named without them.
      for (const [baseUrl, shown] of [["ftp://proxyuser:S3cret@proxy.test", "ftp://…@proxy.test"], ["https://u:S3cret@proxy.test:80a/", "https://…@proxy.test:80a/"]]) {
        const error = yield* Effect.flip(fromEnv({ INTERCOM_ACCESS_TOKEN: TOKEN, INTERCOM_BASE_URL: baseUrl }))
        expect(String(error)).toContain(JSON.stringify(shown))
        expect(String(error)).not.toContain("S3cret")
      }
    }))

  it.effect("the token set in INTERCOM_BASE_URL or INTERCOM_REGION by mistake is not shown by their ConfigError", () =>
    Effect.gen(function*() {
      for (const [variable, value] of [["INTERCOM_BASE_URL", TOKEN], ["INTERCOM_BASE_URL", `:${TOKEN}`], ["INTERCOM_REGION", TOKEN]]) {
        const error = yield* Effect.flip(fromEnv({ INTERCOM_ACCESS_TOKEN: `${TOKEN}\n`, [variable]: value }))
        expect(ConfigError.isConfigError(error)).toBe(true)
        expect(String(error)).toContain(`Invalid data at ${variable}`)
        expect(String(error)).toContain("<redacted>")
        expect(String(error)).not.toContain(TOKEN)
      }
    }))

  it.effect("a blank INTERCOM_REGION or INTERCOM_BASE_URL counts as unset", () =>
    Effect.gen(function*() {
      const seen = yield* fromEnv({ INTERCOM_ACCESS_TOKEN: TOKEN, INTERCOM_REGION: "", INTERCOM_BASE_URL: " " })
      expect(seen.url.origin).toBe("https://api.intercom.io")
    }))

  it.effect("several bad variables: each is named", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(fromEnv({ INTERCOM_REGION: "mars", INTERCOM_BASE_URL: "nowhere" }))
      for (const variable of ["INTERCOM_ACCESS_TOKEN", "INTERCOM_REGION", "INTERCOM_BASE_URL"]) {
        expect(String(error)).toContain(variable)
      }
    }))

  /** The first request of a client configured by `config`, under `env`. */
  const withConfig = (config: Config.Config.Wrap<IntercomClient.Options>, env: Record<string, string> = {}) => {
    const fake = makeFake()
    return Effect.gen(function*() {
      yield* scrollPage("users", undefined)
      return fake.requests[0]
    }).pipe(
      Effect.provide(IntercomClient.layerConfig(config).pipe(Layer.provide(fake.httpClient))),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
    )
  }

  it.effect("takes each option as a Config of its own (Config.Wrap), or all of them as one Config", () =>
    Effect.gen(function*() {
      const wrapped = yield* withConfig(
        { accessToken: Config.redacted("OTHER_TOKEN"), region: Config.succeed("eu"), versions: { users: Config.succeed("1.3") } },
        { OTHER_TOKEN: "tok_other" }
      )
      expect(wrapped.headers["authorization"]).toBe("Bearer tok_other")
      expect(wrapped.url.origin).toBe("https://api.eu.intercom.io")
      expect(wrapped.headers["intercom-version"]).toBe("1.3")
      const whole = yield* withConfig(Config.succeed({ accessToken: Redacted.make("tok_whole"), region: "au" as const }))
      expect(whole.headers["authorization"]).toBe("Bearer tok_whole")
      expect(whole.url.origin).toBe("https://api.au.intercom.io")
    }))

  it.effect("environment spreads into a Config.Wrap, to set other options beside it", () =>
    Effect.gen(function*() {
      const seen = yield* withConfig(
        { ...IntercomClient.environment, versions: { users: Config.succeed("1.2") } },
        { INTERCOM_ACCESS_TOKEN: TOKEN, INTERCOM_REGION: "au" }
      )
      expect(seen.headers["authorization"]).toBe(`Bearer ${TOKEN}`)
      expect(seen.url.origin).toBe("https://api.au.intercom.io")
      expect(seen.headers["intercom-version"]).toBe("1.2")
    }))

  it.effect("accessTokenConfig reads a token under another name as INTERCOM_ACCESS_TOKEN is read: trimmed, blank refused, missing in words", () =>
    Effect.gen(function*() {
      const config = { ...IntercomClient.environment, accessToken: IntercomClient.accessTokenConfig("ACME_TOKEN") }
      const seen = yield* withConfig(config, { ACME_TOKEN: ` ${TOKEN}\r\n` })
      expect(seen.headers["authorization"]).toBe(`Bearer ${TOKEN}`)
      const blank = yield* Effect.flip(withConfig(config, { ACME_TOKEN: "  " }))
      expect(ConfigError.isConfigError(blank)).toBe(true)
      expect(String(blank)).toContain("Invalid data at ACME_TOKEN")
      expect(String(blank)).toContain("blank")
      const missing = yield* Effect.flip(withConfig(config, { INTERCOM_ACCESS_TOKEN: TOKEN }))
      expect(String(missing)).toMatch(/^\(Missing data at ACME_TOKEN: "Expected ACME_TOKEN to exist in /)
    }))

  it.effect("a token under another name, set in INTERCOM_BASE_URL or INTERCOM_REGION by mistake, is not shown either", () =>
    Effect.gen(function*() {
      const config = { ...IntercomClient.environment, accessToken: Config.redacted("ACME_TOKEN") }
      for (const [variable, value] of [["INTERCOM_BASE_URL", TOKEN], ["INTERCOM_BASE_URL", `:${TOKEN}`], ["INTERCOM_REGION", TOKEN]]) {
        const error = yield* Effect.flip(withConfig(config, { ACME_TOKEN: TOKEN, INTERCOM_ACCESS_TOKEN: "tok_other", [variable]: value }))
        expect(ConfigError.isConfigError(error)).toBe(true)
        expect(String(error)).toContain(`Invalid data at ${variable}`)
        expect(String(error)).toContain("<redacted>")
        expect(String(error)).not.toContain(TOKEN)
      }
    }))

  it.effect("a plain-http INTERCOM_BASE_URL to another host fails with InvalidOptions", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(fromEnv({ INTERCOM_ACCESS_TOKEN: TOKEN, INTERCOM_BASE_URL: "http://example.com" }))
      expect(ConfigError.isConfigError(error)).toBe(false)
      expect(!ConfigError.isConfigError(error) && error._tag).toBe("InvalidOptions")
    }))
})

describe("a page", () => {
  it.effect("comes back with its records and the next scroll_param", () => {
    const fake = makeFake({ records: 150 })
    return Effect.gen(function*() {
      const first = yield* scrollPage("users", undefined)
      expect(first.records.map((r) => r.id)).toEqual(Array.from({ length: 100 }, (_, i) => user(i).id))
      expect(first.scrollParam).toBe("s1-1")
      const second = yield* scrollPage("users", first.scrollParam, 2)
      expect(second.records).toHaveLength(50)
      expect(second.scrollParam).toBe("s1-2")
    }).pipe(Effect.provide(fake.layer))
  })
})

describe("error mapping", () => {
  it.effect("404 not_found on a scroll_param is Expired, and says what to do with the prefetch and restart options", () =>
    Effect.gen(function*() {
      const error = expectTag(yield* failureOf(() => errorList(404, "not_found", "scroll parameter not found")), "Expired")
      expect(error).toMatchObject({ resource: "users", page: 2, requestId: "req_1" })
      // What to do, in the library's terms: its options.
      expect(error.message).toMatch(/prefetch option.*restart option/)
    }))

  it.effect("404 on the first page (no scroll_param) is not Expired but an ApiError", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() => errorList(404, "not_found", "Resource Not Found"), { scrollParam: undefined, page: 1 })
      expect(expectTag(error, "ApiError")).toMatchObject({ status: 404, code: "not_found" })
    }))

  it.effect("400 scroll_exists is ConcurrentScroll, and says to wait", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() => errorList(400, "scroll_exists", "scroll already exists for this workspace"), {
        scrollParam: undefined,
        page: 1
      })
      const concurrent = expectTag(error, "ConcurrentScroll")
      expect(concurrent).toMatchObject({ resource: "users", requestId: "req_1" })
      expect(concurrent.message).toMatch(/wait/i)
    }))

  it.effect("an error code is read as sent, before the token is redacted from it: a short token cannot turn scroll_exists into an ApiError", () =>
    Effect.gen(function*() {
      // The token "t" occurs in "scroll_exists"; only the text shown is redacted.
      const fake = makeFake({ token: "t", fault: () => errorList(400, "scroll_exists", "scroll already exists") })
      const error = yield* scrollPage("users", undefined).pipe(Effect.flip, Effect.provide(fake.layer))
      expectTag(error, "ConcurrentScroll")
    }))

  it.effect("500 is RestartRequired with a ServerError cause carrying status, code and request id", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() =>
        errorList(500, "server_error", "Request failed due to an internal network error. Please restart the scroll operation.")
      )
      const restart = expectTag(error, "RestartRequired")
      expect(restart.page).toBe(2)
      expect(restart.cause).toMatchObject({ _tag: "ServerError", status: 500, code: "server_error", requestId: "req_1" })
      expect(restart.message).toContain("HTTP 500")
      expect(restart.message).toMatch(/start over/i)
    }))

  it.effect("401 unauthorized and 403 token_unauthorized are Unauthorized with status and code", () =>
    Effect.gen(function*() {
      const e401 = expectTag(yield* failureOf(() => errorList(401, "unauthorized", "Access Token Invalid")), "Unauthorized")
      expect(e401).toMatchObject({ status: 401, code: "unauthorized", detail: "Access Token Invalid", requestId: "req_1" })
      expect(e401.message).toContain("INTERCOM_ACCESS_TOKEN")
      const e403 = expectTag(
        yield* failureOf(() => errorList(403, "token_unauthorized", "Not authorized to access resource")),
        "Unauthorized"
      )
      expect(e403).toMatchObject({ status: 403, code: "token_unauthorized" })
    }))

  it("RateLimited names its limit as a number of requests, one in the singular", () => {
    const problem = (limit: number) => new ScrollError.RateLimited({ resource: "users", page: 2, resetAt: 0, limit }).problem
    expect(problem(1)).toMatch(/^Intercom's rate limit of 1 request stopped/)
    expect(problem(1000)).toMatch(/^Intercom's rate limit of 1000 requests stopped/)
  })

  it.effect("another 400 is an ApiError carrying status, code, detail and request id", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() =>
        errorList(400, "intercom_version_invalid", "Requested resource is not available in current API version")
      )
      expect(expectTag(error, "ApiError")).toMatchObject({
        resource: "users",
        page: 2,
        status: 400,
        code: "intercom_version_invalid",
        detail: "Requested resource is not available in current API version",
        requestId: "req_1"
      })
      expect(error.message).toContain("intercom_version_invalid")
      expect(error.message).toMatch(/Check the versions option: the client sends its users version as the Intercom-Version header\.$/)
    }))


  it.effect("a server's error message of a megabyte is quoted in part, after the token is taken out of all of it", () =>
    Effect.gen(function*() {
      const said = `${"a".repeat(290)} ${TOKEN} ${"b".repeat(1_000_000)}`
      const error = expectTag(yield* failureOf(() => errorList(400, "bad_request", said)), "ApiError")
      const redacted = said.replace(TOKEN, "<redacted>")
      expect(error.detail).toBe(`${redacted.slice(0, 300)}… (${redacted.length - 300} more characters)`)
      expect(error.detail).not.toContain(TOKEN.slice(0, 8))
      const listed = expectTag(yield* failureOf(() => json({ type: "error.list", errors: [{ code: "x", message: said }] })), "InvalidResponse")
      expect(listed.message.length).toBeLessThan(1_000)
    }))
  it.effect("a 200 with the wrong envelope (contact.list on /users/scroll) is InvalidResponse naming page and issue", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() => json({ type: "contact.list", contacts: [], scroll_param: "x" }), { page: 3 })
      const invalid = expectTag(error, "InvalidResponse")
      expect(invalid).toMatchObject({ resource: "users", page: 3 })
      expect(invalid.issue).toContain("type")
      expect(invalid.issue).toContain("user.list")
      expect(invalid.message).toContain("Page 3")
      expect(invalid.message).toContain(invalid.issue)
    }))

  it.effect("a record's field of the wrong type is InvalidResponse naming the record by its id, not its place in the page", () =>
    Effect.gen(function*() {
      const page = { type: "user.list", users: [user(1), { ...user(2), name: { first: "Ada" } }], scroll_param: "x" }
      const invalid = expectTag(yield* failureOf(() => json(page)), "InvalidResponse")
      expect(invalid.id).toBe(user(2).id)
      expect(invalid.issue).toBe(`at users.1.name: Expected string, actual {"first":"Ada"} (in the record with id "${user(2).id}")`)
      expect(invalid.advice).toMatch(/^The scroll stops here .*Look the record up in Intercom by its id/)
      // The envelope's own fields name no record.
      const envelope = expectTag(yield* failureOf(() => json({ ...page, users: "none" })), "InvalidResponse")
      expect(envelope.id).toBeUndefined()
    }))

  it.effect("a wrong field of a megabyte is quoted in part: the message stays short enough for a log line", () =>
    Effect.gen(function*() {
      const huge = { notes: "x".repeat(1_000_000) }
      const page = { type: "user.list", users: [{ ...user(1), name: huge }], scroll_param: "x" }
      const invalid = expectTag(yield* failureOf(() => json(page)), "InvalidResponse")
      const quoted = `Expected string, actual ${JSON.stringify(huge)}`
      expect(invalid.issue).toBe(
        `at users.0.name: ${quoted.slice(0, 300)}… (${quoted.length - 300} more characters) (in the record with id "${user(1).id}")`
      )
      expect(invalid.message.length).toBeLessThan(1_000)
    }))

  it.effect("a record's id of a megabyte is kept in part in InvalidResponse.id, after the token is taken out of all of it", () =>
    Effect.gen(function*() {
      const id = `${"a".repeat(290)} ${TOKEN} ${"b".repeat(1_000_000)}`
      const page = { type: "user.list", users: [{ ...user(1), id, name: 7 }], scroll_param: "x" }
      const invalid = expectTag(yield* failureOf(() => json(page)), "InvalidResponse")
      const redacted = id.replace(TOKEN, "<redacted>")
      expect(invalid.id).toBe(`${redacted.slice(0, 300)}… (${redacted.length - 300} more characters)`)
      // The error as a JSON log line or a fleet's message carries it, not only its message.
      expect(JSON.stringify(invalid).length).toBeLessThan(2_000)
    }))

  it.effect("a record nested 5,000 levels deep is InvalidResponse naming it; one 1,000 deep is handed on whole", () =>
    Effect.gen(function*() {
      // As text: JSON.stringify, which the json helper uses, overflows on the deep one.
      const nested = (levels: number) => `${"{\"a\":".repeat(levels - 1)}{}${"}".repeat(levels - 1)}`
      // The record is the first level, custom_attributes the second.
      const pageWith = (levels: number) =>
        `{"type":"user.list","users":[${JSON.stringify(user(1))},${
          JSON.stringify({ ...user(2), custom_attributes: {} }).replace("{}", nested(levels - 1))
        }],"scroll_param":"x"}`
      const deep = expectTag(yield* failureOf(() => text(pageWith(5_000), 200, "application/json")), "InvalidResponse")
      expect(deep.id).toBe(user(2).id)
      expect(deep.issue).toBe(
        `at users.1.custom_attributes: objects and arrays nested more than 1000 levels deep in a record, deeper than this client hands on: writing such a record out (JSON.stringify, a CSV's columns) overflows the stack (in the record with id "${user(2).id}")`
      )
      expect(deep.message).toContain("Page 2 of the users scroll")
      // The line is drawn at 1000 itself, where SQLite's JSON functions draw theirs: one level more is refused.
      // (A page handed on is not printed: a diff of a record that deep overflows the reporter.)
      const justOver = yield* failureOf(() => text(pageWith(1_001), 200, "application/json")).pipe(
        Effect.map((error) => error._tag === "InvalidResponse" ? error.issue : error._tag),
        Effect.orElseSucceed(() => "handed on")
      )
      expect(justOver).toBe(deep.issue)

      const fake = makeFake({ fault: () => text(pageWith(1_000), 200, "application/json") })
      const page = yield* scrollPage("users", "s1-1", 2).pipe(Effect.provide(fake.layer))
      expect(page.records.map((record) => record.id)).toEqual([user(1).id, user(2).id])
      let levels = 1
      for (let value: unknown = page.records[1]?.custom_attributes; typeof value === "object" && value !== null; levels++) {
        value = (value as { readonly a?: unknown }).a
      }
      expect(levels).toBe(1_000)
    }))

  it.effect("a body that is an array nested 5,000 levels deep is InvalidResponse, not a RangeError from the schema's message", () =>
    Effect.gen(function*() {
      // The schema's message quotes the value it refuses: quoting this one overflowed the stack, a defect.
      const deep = expectTag(yield* failureOf(() => text(`${"[".repeat(5_000)}${"]".repeat(5_000)}`, 200, "application/json")), "InvalidResponse")
      expect(deep.issue).toMatch(/^at the body: arrays nested more than 1000 levels deep/)
      // One shallow enough is refused as before, for what it is not.
      const shallow = expectTag(yield* failureOf(() => text("[[[]]]", 200, "application/json")), "InvalidResponse")
      expect(shallow.issue).toMatch(/^at the body: Expected /)
    }))

  it.effect("an error list under a 200 is InvalidResponse saying the error, not the list type it lacks", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() =>
        json({ type: "error.list", request_id: "req_ok", errors: [{ code: "server_error", message: `no ${TOKEN} here` }] })
      )
      expect(expectTag(error, "InvalidResponse").issue).toBe(
        "an error list with HTTP 200 (server_error: no <redacted> here) (request req_ok)"
      )
    }))

  it.effect("what a server says is quoted with its control characters escaped: it cannot drive the terminal that prints it", () =>
    Effect.gen(function*() {
      // Clear the screen, retitle the window, plant a hyperlink, overwrite the line, reverse the text.
      const hostile = "\u001b[2J\u001b]0;OWNED\u0007\u001b]8;;https://evil.example/\u001b\\click\rExported all\n\u202eok\u009b\u200f-1\u061c"
      // A control character, or the override, left as it came.
      // eslint-disable-next-line no-control-regex -- the control characters are what is looked for
      const raw = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202e\u200f\u061c]/
      const escaped = "\\u001b[2J\\u001b]0;OWNED\\u0007\\u001b]8;;https://evil.example/\\u001b\\click\\u000dExported all\\u000a\\u202eok\\u009b\\u200f-1\\u061c"
      const refused = expectTag(
        yield* failureOf(() => json({ type: "error.list", request_id: hostile, errors: [{ code: hostile, message: hostile }] }, 401)),
        "Unauthorized"
      )
      expect([refused.code, refused.detail, refused.requestId]).toEqual([escaped, escaped, escaped])
      expect(refused.message).not.toMatch(raw)
      const restart = expectTag(
        yield* failureOf(() => json({ type: "error.list", errors: [{ code: "server_error", message: hostile }] }, 500)),
        "RestartRequired"
      )
      expect(restart.message).toContain(escaped)
      // A value the schema refuses is quoted too: JSON's quotes leave the bidirectional override as it is.
      const page = { type: "user.list", users: [{ ...user(1), name: { [hostile]: 1 } }], scroll_param: "x" }
      const invalid = expectTag(yield* failureOf(() => json(page)), "InvalidResponse")
      expect(invalid.issue).not.toMatch(raw)
    }))

  it.effect("a 200 with Content-Length 0 is InvalidResponse, an empty answer rather than a body cut short", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() => text("", 200, "application/json", { "content-length": "0" }))
      expect(expectTag(error, "InvalidResponse").issue).toBe("an empty answer (HTTP 200), where a page was expected")
    }))

  it.effect("a page labelled charset=iso-8859-1 keeps its accented letters, whether its bytes are Latin-1 or UTF-8", () =>
    Effect.gen(function*() {
      const page = JSON.stringify({ type: "user.list", users: [{ ...user(1), name: "São Paulo" }], scroll_param: "s1-2" })
      const labelled = { "content-type": "application/json; charset=iso-8859-1" }
      for (const bytes of [Buffer.from(page, "latin1"), Buffer.from(page, "utf8")]) {
        const fake = makeFake({ fault: () => new Response(bytes, { headers: labelled }) })
        const fetched = yield* scrollPage("users", "s1-1", 2).pipe(Effect.provide(fake.layer))
        expect(fetched.records.map((record) => record.name)).toEqual(["São Paulo"])
      }
    }))

  it.effect("a list that is not one, or an element that is no record, is named by the record's schema, in a line", () =>
    Effect.gen(function*() {
      const notAList = yield* failureOf(() => json({ type: "user.list", users: null, scroll_param: "x" }))
      expect(expectTag(notAList, "InvalidResponse").issue).toBe("at users: Expected ReadonlyArray<User>, actual null")
      const notARecord = yield* failureOf(() => json({ type: "company.list", companies: ["acme"], scroll_param: "x" }), {
        resource: "companies"
      })
      expect(expectTag(notARecord, "InvalidResponse").issue).toContain("Expected Company, actual \"acme\"")
    }))

  it.effect("a record without an id is InvalidResponse pointing at it", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() =>
        json({ type: "user.list", users: [user(1), { type: "user", email: "x@example.com" }], scroll_param: "x" })
      )
      expect(expectTag(error, "InvalidResponse").issue).toContain("users.1.id")
    }))

  it.effect("a 200 text/html is InvalidResponse", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() => text("<html><body>Welcome</body></html>", 200, "text/html; charset=utf-8"))
      expect(expectTag(error, "InvalidResponse").issue).toContain("text/html")
    }))

  it.effect("a 502 text/html (a proxy's page) is RestartRequired", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() => text("<html><body>Bad Gateway</body></html>", 502, "text/html"))
      expect(expectTag(error, "RestartRequired").cause).toMatchObject({ _tag: "ServerError", status: 502 })
    }))

  it.effect("JSON cut short is RestartRequired with a TruncatedBody cause", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() => text(`{"type":"user.list","users":[{"ty`, 200, "application/json"))
      expect(expectTag(error, "RestartRequired").cause._tag).toBe("TruncatedBody")
    }))

  it.effect("JSON cut short right after a record (at a } or ]) is still RestartRequired, not InvalidResponse", () =>
    Effect.gen(function*() {
      const whole = JSON.stringify({ type: "user.list", users: [user(1), user(2)], scroll_param: "x" })
      for (const cut of [whole.indexOf("}") + 1, whole.indexOf("]") + 1]) {
        const error = yield* failureOf(() => text(whole.slice(0, cut), 200, "application/json"))
        expect({ cut: whole.slice(0, cut), tag: error._tag }).toEqual({ cut: whole.slice(0, cut), tag: "RestartRequired" })
        expect(expectTag(error, "RestartRequired").cause._tag).toBe("TruncatedBody")
      }
    }))

  it.effect("a body that breaks off while streaming is RestartRequired with a TruncatedBody cause", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() =>
        new Response(
          new ReadableStream<Uint8Array>({
            start(controller) {
              controller.enqueue(new TextEncoder().encode(`{"type":"user.list","users":[`))
              controller.error(new Error("other side closed"))
            }
          }),
          { status: 200, headers: { "content-type": "application/json" } }
        )
      )
      expect(expectTag(error, "RestartRequired").cause._tag).toBe("TruncatedBody")
    }))

  it.effect("malformed but complete JSON is InvalidResponse", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(() => text(`{"type": user}`, 200, "application/json"))
      expect(expectTag(error, "InvalidResponse").issue).toMatch(/malformed JSON/i)
    }))

  it.effect("malformed JSON: the parser's quote of the body is left out, so no part of a token in it leaks", () =>
    Effect.gen(function*() {
      // Not the whole token, which is scrubbed anyway: a prefix, as V8 quotes the first characters of a body.
      const error = yield* failureOf(() => text(`tok_9f3a2b7c1d not json`, 200, "application/json"))
      const issue = expectTag(error, "InvalidResponse").issue
      expect(issue).toMatch(/malformed JSON/i)
      expect(issue).not.toContain("tok_9f3a")
    }))

  it.effect("a body over maxResponseBytes is InvalidResponse, with or without a Content-Length", () =>
    Effect.gen(function*() {
      const body = JSON.stringify({ type: "user.list", users: [user(1), user(2), user(3)], scroll_param: "x" })
      // Under the limit, the same body is a page: the limit is what refuses it below.
      const fits = makeFake({ fault: () => text(body, 200, "application/json"), clientOptions: { maxResponseBytes: 10_000 } })
      expect((yield* scrollPage("users", "s1-1", 2).pipe(Effect.provide(fits.layer))).records).toHaveLength(3)

      const chunked = yield* failureOf(() => text(body, 200, "application/json"), {}, { maxResponseBytes: 100 })
      expect(expectTag(chunked, "InvalidResponse").issue).toMatch(/^the body is over the 100-byte limit \(\d+ bytes read when reading stopped\)$/)
      const declared = yield* failureOf(
        () => text(body, 200, "application/json", { "content-length": String(body.length) }),
        {},
        { maxResponseBytes: 100 }
      )
      expect(expectTag(declared, "InvalidResponse").issue).toBe(`the body is over the 100-byte limit (Content-Length ${body.length})`)
      // The way out is the option, not only the base URL.
      for (const error of [chunked, declared]) {
        expect(expectTag(error, "InvalidResponse").maxResponseBytes).toBe(100)
        expect(error.message).toContain("raise the maxResponseBytes option (now 100)")
      }
      const malformed = yield* failureOf(() => text("not json", 200, "application/json"), {}, { maxResponseBytes: 100 })
      expect(malformed.message).not.toContain("maxResponseBytes")
    }))

  it.effect("a body refused by its Content-Length is let go at once, its request aborted, and not read", () =>
    Effect.gen(function*() {
      const signals: Array<AbortSignal> = []
      let pulls = 0
      // The 40 MB a server declared, coming for as long as someone reads (and no longer than 40 MB, should one read it).
      const declared = 40_000_000
      const chunk = new Uint8Array(16_384).fill(32)
      const body = () =>
        new ReadableStream<Uint8Array>({
          pull: (controller) => (++pulls * chunk.length > declared ? controller.close() : controller.enqueue(chunk))
        })
      const http = HttpClient.make((request, _url, signal) => {
        signals.push(signal)
        return Effect.succeed(HttpClientResponse.fromWeb(
          request,
          new Response(body(), { headers: { "content-type": "application/json", "content-length": String(declared) } })
        ))
      })
      const error = yield* scrollPage("users", "s1-1", 2).pipe(Effect.flip, Effect.provide(clientOver(http, { maxResponseBytes: 100 })))
      expect(expectTag(error, "InvalidResponse").issue).toBe(`the body is over the 100-byte limit (Content-Length ${declared})`)
      // Unread, the platform aborts the request only when the response is garbage collected: its connection stays
      // taken until then, with the server's bytes waiting on it.
      expect(signals.map((signal) => signal.aborted)).toEqual([true])
      // The stream's own read-ahead at most: nothing of the body was read to let it go.
      expect(pulls).toBeLessThanOrEqual(1)
    }))

  it.effect("a transport RequestError is RestartRequired with a TransportError cause", () =>
    Effect.gen(function*() {
      const failing = HttpClient.make((request) =>
        Effect.fail(
          new HttpClientError.RequestError({ request, reason: "Transport", cause: new Error("read ECONNRESET") })
        )
      )
      const error = yield* scrollPage("users", "s1-1", 2).pipe(Effect.flip, Effect.provide(clientOver(failing)))
      const restart = expectTag(error, "RestartRequired")
      expect(restart.cause._tag).toBe("TransportError")
      expect(restart.cause._tag === "TransportError" && restart.cause.detail).toContain("ECONNRESET")
      expect(restart.message).toMatch(/start (over|again)/i)
    }))

  it.effect("a server that never answers is RestartRequired with a Timeout cause after requestTimeout", () => {
    const layer = clientOver(HttpClient.make(() => Effect.never), { requestTimeout: "5 seconds" })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(Effect.flip(scrollPage("users", "s1-1", 2)))
      yield* TestClock.adjust("4 seconds")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("2 seconds")
      const restart = expectTag(yield* Fiber.join(fiber), "RestartRequired")
      expect(restart.cause).toEqual({ _tag: "Timeout", millis: 5000 })
    }).pipe(Effect.provide(layer))
  })

  /** A client whose n-th request (from 1) answers after `delays[n - 1]` seconds, or never when that is undefined. */
  const delayedClient = (delays: ReadonlyArray<number | undefined>) => {
    let requests = 0
    const slow = HttpClient.make((request) => {
      const delay = delays[requests++]
      return delay === undefined ? Effect.never : Effect.as(Effect.sleep(`${delay} seconds`), pageOf(request, requests))
    })
    return clientOver(slow, { requestTimeout: "5 seconds" })
  }

  it.effect("each request has the whole requestTimeout from its own start, however long the one before took", () =>
    Effect.gen(function*() {
      // The first answers after 4 s; the second, sent then, never: it times out at 4 + 5 s, not 5 s after the first.
      const first = yield* Effect.fork(scrollPage("users", undefined))
      yield* TestClock.adjust("4 seconds")
      yield* Fiber.join(first)
      const second = yield* Effect.fork(Effect.flip(scrollPage("users", "s1-1", 2)))
      yield* TestClock.adjust("4 seconds")
      expect(Option.isNone(yield* Fiber.poll(second))).toBe(true)
      yield* TestClock.adjust("2 seconds")
      const restart = expectTag(yield* Fiber.join(second), "RestartRequired")
      expect(restart.cause).toEqual({ _tag: "Timeout", millis: 5000 })
    }).pipe(Effect.provide(delayedClient([4]))))

  it.effect("requests in parallel time out each by its own deadline, and one that answers in time is not failed", () =>
    Effect.gen(function*() {
      // Request 1 never answers (sent at 0 s), request 2 answers after 4 s (sent at 3 s), request 3 never (sent at 3 s).
      const first = yield* Effect.fork(Effect.either(scrollPage("users", undefined)))
      yield* TestClock.adjust("3 seconds")
      const second = yield* Effect.fork(Effect.either(scrollPage("users", "s1-1", 2)))
      const third = yield* Effect.fork(Effect.either(scrollPage("users", "s1-2", 3)))
      yield* TestClock.adjust("2 seconds")
      expect(Either.getLeft(yield* Fiber.join(first)).pipe(Option.map((e) => e._tag))).toEqual(Option.some("RestartRequired"))
      expect(Option.isNone(yield* Fiber.poll(third))).toBe(true)
      yield* TestClock.adjust("2 seconds")
      expect(Either.isRight(yield* Fiber.join(second))).toBe(true)
      expect(Option.isNone(yield* Fiber.poll(third))).toBe(true)
      yield* TestClock.adjust("1 second")
      const timedOut = Either.getLeft(yield* Fiber.join(third))
      expect(Option.map(timedOut, (e) => e._tag === "RestartRequired" && e.cause)).toEqual(
        Option.some({ _tag: "Timeout", millis: 5000 })
      )
    }).pipe(Effect.provide(delayedClient([undefined, 4]))))

  /** Whether `fiber` is done once every other fiber had its turn, without moving any clock. */
  const settled = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
    Effect.gen(function*() {
      for (let i = 0; i < 100; i++) yield* Effect.yieldNow()
      return Option.isSome(yield* Fiber.poll(fiber))
    })

  const timeoutOf = (error: AnyError) => expectTag(error, "RestartRequired").cause

  it.effect("a wall clock stepped forward (NTP) times out no request: deadlines are monotonic time", () =>
    Effect.gen(function*() {
      const testClock = yield* TestClock.testClock()
      let stepped = 0
      // The TestClock, but its wall-clock reading jumps an hour ahead once the request is out.
      const clock: Clock.Clock = {
        [Clock.ClockTypeId]: Clock.ClockTypeId,
        unsafeCurrentTimeMillis: () => testClock.unsafeCurrentTimeMillis() + stepped,
        currentTimeMillis: Effect.sync(() => testClock.unsafeCurrentTimeMillis() + stepped),
        unsafeCurrentTimeNanos: () => testClock.unsafeCurrentTimeNanos(),
        currentTimeNanos: testClock.currentTimeNanos,
        sleep: (duration) => testClock.sleep(duration)
      }
      yield* Effect.gen(function*() {
        // TestClock.adjust would look for the clock in use, here the stepping one.
        const fiber = yield* Effect.fork(Effect.flip(scrollPage("users", undefined)))
        yield* testClock.adjust("1 second")
        stepped = 3_600_000
        yield* testClock.adjust("2 seconds")
        expect(yield* settled(fiber)).toBe(false)
        yield* testClock.adjust("2 seconds")
        expect(timeoutOf(yield* Fiber.join(fiber))).toEqual({ _tag: "Timeout", millis: 5000 })
      }).pipe(Effect.provide(delayedClient([])), Effect.withClock(clock))
    }))

  it.effect("a client made outside any scope bounds a request still running and a later one", () =>
    Effect.gen(function*() {
      const hanging = HttpClient.make(() => Effect.never)
      const client = yield* IntercomClient.make({
        accessToken: Redacted.make(TOKEN),
        baseUrl: "https://api.intercom.test",
        requestTimeout: "5 seconds"
      }).pipe(Effect.provideService(HttpClient.HttpClient, hanging), Effect.orDie)
      const request = Effect.flip(client.scrollPage("users", { scrollParam: undefined, page: 1 }))
      const running = yield* Effect.fork(request)
      yield* Effect.yieldNow()
      const later = yield* Effect.fork(request)
      yield* TestClock.adjust("6 seconds")
      expect(timeoutOf(yield* Fiber.join(running))).toEqual({ _tag: "Timeout", millis: 5000 })
      expect(timeoutOf(yield* Fiber.join(later))).toEqual({ _tag: "Timeout", millis: 5000 })
    }))

  it.effect("what the request sets in its fiber's refs carries on in the caller's, as with a join", () => {
    const note = FiberRef.unsafeMake("initial")
    const noting = HttpClient.make((request) => Effect.as(FiberRef.set(note, "set by the request"), pageOf(request, 1)))
    return Effect.gen(function*() {
      yield* scrollPage("users", undefined)
      expect(yield* FiberRef.get(note)).toBe("set by the request")
    }).pipe(Effect.provide(clientOver(noting)))
  })
})

describe("compression", () => {
  const pageBody = { type: "user.list", users: [user(1), user(2)], scroll_param: "s1-2" }
  const pageText = JSON.stringify(pageBody)
  const ids = (page: IntercomClient.FetchedPage<Resource.Resource>) => page.records.map((record) => record.id)

  /** Page 2 of a users scroll, from a server that answers with `answer`. */
  const answeredWith = (answer: () => Response) =>
    scrollPage("users", "s1-1", 2).pipe(Effect.provide(makeFake({ fault: answer }).layer))

  /** A response whose body is `body` as given, under `headers`, as a transport hands it over. */
  const raw = (body: Uint8Array | string, headers: Record<string, string>, status = 200) =>
    new Response(body, { status, headers: { "content-type": "application/json", ...headers } })

  for (const coding of ["gzip", "deflate", "br"] as const) {
    it.effect(`a scroll whose pages come in ${coding} is decoded, each record once`, () => {
      const fake = makeFake({ records: 250, contentCoding: coding })
      return Effect.gen(function*() {
        const users = yield* Stream.runCollect(Scroll.users())
        expect(Chunk.toReadonlyArray(users).map((u) => u.id)).toEqual(Array.from({ length: 250 }, (_, i) => user(i).id))
      }).pipe(Effect.provide(fake.layer))
    })
  }

  it.effect("x-gzip is gzip, and deflate without zlib's header (raw, as some servers send it) is deflate too", () =>
    Effect.gen(function*() {
      const xGzip = Zlib.gzipSync(pageText)
      const page = yield* answeredWith(() => raw(xGzip, { "content-encoding": "x-gzip" }))
      expect(ids(page)).toEqual([user(1).id, user(2).id])
      const rawDeflate = Zlib.deflateRawSync(pageText)
      expect(ids(yield* answeredWith(() => raw(rawDeflate, { "content-encoding": "deflate" }))))
        .toEqual([user(1).id, user(2).id])
    }))

  it.effect("a body the transport decoded already (fetch keeps Content-Encoding) is read as it is, not decoded twice", () =>
    Effect.gen(function*() {
      for (const coding of ["gzip", "deflate", "br"]) {
        // fetch's headers: the coding, and the length of the compressed body it no longer hands over.
        const page = yield* answeredWith(() => raw(pageText, { "content-encoding": coding, "content-length": "42" }))
        expect(ids(page)).toEqual([user(1).id, user(2).id])
        // Pretty-printed on the way (a proxy's), after a byte order mark.
        const pretty = yield* answeredWith(() => raw(`\uFEFF\n  ${pageText}`, { "content-encoding": coding, "content-length": "42" }))
        expect(ids(pretty)).toEqual([user(1).id, user(2).id])
      }
    }))

  it.effect("maxResponseBytes bounds the body as decoded, whatever Content-Length says", () =>
    Effect.gen(function*() {
      const large = JSON.stringify({ ...pageBody, users: Array.from({ length: 50 }, (_, i) => user(i)) })
      const limit = { maxResponseBytes: 2_000 }
      // Compressed, it is well under the limit, and so is the Content-Length it declares.
      const compressed = Zlib.gzipSync(large)
      expect(compressed.length).toBeLessThan(limit.maxResponseBytes)
      const decoded = yield* failureOf(
        () => raw(compressed, { "content-encoding": "gzip", "content-length": String(compressed.length) }),
        {},
        limit
      )
      expect(expectTag(decoded, "InvalidResponse").issue).toContain("over the 2000-byte limit once decoded")
      // Decoded by the transport already, under a Content-Length that counts the compressed bytes.
      const predecoded = yield* failureOf(
        () => raw(large, { "content-encoding": "gzip", "content-length": String(compressed.length) }),
        {},
        limit
      )
      expect(expectTag(predecoded, "InvalidResponse").issue).toContain("over the 2000-byte limit")
    }))

  it.effect("a gzip bomb (1 MiB that inflates to 1 GiB) is InvalidResponse naming the limit, and memory hardly moves", () =>
    Effect.gen(function*() {
      const bomb = gzipBomb(1024)
      const before = process.resourceUsage().maxRSS
      const error = yield* failureOf(() => raw(bomb, { "content-encoding": "gzip" }), {}, { maxResponseBytes: 8 * 1024 * 1024 })
      const grown = (process.resourceUsage().maxRSS - before) / 1024
      expect(expectTag(error, "InvalidResponse").issue).toBe(
        `the body is over the ${8 * 1024 * 1024}-byte limit once decoded (Content-Encoding gzip, ${bomb.length} bytes as received); decoding stopped there`
      )
      // The peak resident set in MiB, which no GC lowers after the fact: the whole would be over 1024.
      expect(grown).toBeLessThan(128)
    }))

  it.effect("a Content-Encoding the client did not ask for is InvalidResponse naming it", () =>
    Effect.gen(function*() {
      for (const contentEncoding of ["zstd", "gzip, br"]) {
        const error = yield* failureOf(() => raw(pageText, { "content-encoding": contentEncoding }))
        expect(expectTag(error, "InvalidResponse").issue).toBe(
          `Content-Encoding ${contentEncoding} was not asked for (the client asks for gzip, deflate, br)`
        )
      }
    }))

  it.effect("a corrupt stream is InvalidResponse in zlib's words; one that ends early is a TruncatedBody restart", () =>
    Effect.gen(function*() {
      const gzip = Uint8Array.from(Zlib.gzipSync(pageText))
      gzip[gzip.length - 8] ^= 1
      const corrupt = yield* failureOf(() => raw(gzip, { "content-encoding": "gzip" }))
      expect(expectTag(corrupt, "InvalidResponse").issue).toBe(
        "the body does not decode as Content-Encoding gzip: incorrect data check"
      )
      const whole = Zlib.brotliCompressSync(pageText)
      const cut = yield* failureOf(() => raw(whole.subarray(0, whole.length >> 1), { "content-encoding": "br" }))
      expect(expectTag(cut, "RestartRequired").cause).toEqual({
        _tag: "TruncatedBody",
        detail: "the br stream ends early: unexpected end of file"
      })
    }))

  it.effect("an error body is decoded too, and one that does not decode leaves the status to speak", () =>
    Effect.gen(function*() {
      const exists = yield* failureOf(
        () => compressedJson({ type: "error.list", errors: [{ code: "scroll_exists", message: "scroll already exists" }] }, "gzip", 400),
        { scrollParam: undefined, page: 1 }
      )
      expectTag(exists, "ConcurrentScroll")
      // gzip's first bytes, then nothing gzip can read.
      const server = yield* failureOf(() =>
        raw(Uint8Array.of(0x1f, 0x8b, 8, 0xff, 0xff), { "content-encoding": "gzip" }, 500)
      )
      expect(expectTag(server, "RestartRequired").cause).toMatchObject({ _tag: "ServerError", status: 500 })
      const refused = yield* failureOf(() => raw("not json", { "content-encoding": "zstd" }, 401))
      expect(expectTag(refused, "Unauthorized").status).toBe(401)
    }))
})

describe("rate limits", () => {
  it.effect("a 429 waits until X-RateLimit-Reset and resends the same scroll_param", () => {
    const fake = makeFake({ records: 250, fault: (seen) => seen.index === 1 ? tooMany(5) : undefined })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(scrollPage("users", "s1-1", 2))
      yield* settle(() => fake.requests.length >= 1)
      yield* TestClock.adjust("4 seconds")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      expect(fake.requests).toHaveLength(1)
      yield* TestClock.adjust("2 seconds")
      const page = yield* Fiber.join(fiber)
      expect(page.records.map((r) => r.id)).toEqual(Array.from({ length: 100 }, (_, i) => user(100 + i).id))
      expect(fake.requests.map(paramOf)).toEqual(["s1-1", "s1-1"])
    }).pipe(Effect.provide(fake.layer))
  })

  for (const scrollParam of scrollParamModes) {
    it.effect(`a 429 resends the same request, not counted as a restart (${scrollParam} scroll_param): a scroll with Schedule.stop completes through it`, () => {
      const fake = makeFake({
        records: 250,
        scrollParam,
        fault: (seen) => seen.scroll === 1 && seen.page === 1 && seen.index === 2 ? tooMany(5) : undefined
      })
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(Stream.runCount(Scroll.users({ restart: Schedule.stop })))
        yield* settle(() => fake.requests.length >= 2)
        yield* TestClock.adjust("10 seconds")
        expect(yield* Fiber.join(fiber)).toBe(250)
        expect(fake.opened()).toBe(1)
        // Page 2 asked for twice with the same scroll_param, and the scroll went on from it.
        expect(fake.requests.map(asked)).toEqual(["1:0", "1:1", "1:1", "1:2", "1:3"])
        expect(paramOf(fake.requests[1])).toBe(paramOf(fake.requests[2]))
      }).pipe(Effect.provide(fake.layer))
    })
  }

  it.effect("more than rateLimit.maxRetries 429s in a row is RateLimited with the reset time", () => {
    const fake = makeFake({ fault: () => tooMany(5), clientOptions: { rateLimit: { maxRetries: 2 } } })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(Effect.flip(scrollPage("users", "s1-1", 2)))
      yield* settle(() => fake.requests.length >= 1)
      for (let i = 0; i < 3; i++) {
        yield* TestClock.adjust("6 seconds")
        yield* settle(() => fake.requests.length >= i + 2)
      }
      const limited = expectTag(yield* Fiber.join(fiber), "RateLimited")
      // The first request and maxRetries resends.
      expect(fake.requests).toHaveLength(3)
      expect(limited).toMatchObject({ resource: "users", page: 2, limit: 1000 })
      // The last 429 came at 12 s on the TestClock and still said 5 s: Reset is UNIX seconds, resetAt milliseconds.
      expect(limited.resetAt).toBe(5000)
      expect(limited.message).toMatch(/try again after the reset.*rateLimit\.maxWait/i)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a reset further away than rateLimit.maxWait is RateLimited at once", () => {
    const fake = makeFake({ fault: () => tooMany(120), clientOptions: { rateLimit: { maxWait: "60 seconds" } } })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(Effect.flip(scrollPage("users", "s1-1", 2)))
      yield* settle(() => false)
      const done = yield* Fiber.poll(fiber)
      expect(Option.isSome(done)).toBe(true)
      const limited = expectTag(yield* Fiber.join(fiber), "RateLimited")
      expect(limited.resetAt).toBe(120_000)
      expect(fake.requests).toHaveLength(1)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a rateLimit.maxWait of Duration.infinity waits for a reset however far away, and resends at it", () => {
    const fake = makeFake({
      records: 250,
      fault: (seen) => seen.index === 1 ? tooMany(7_200) : undefined,
      clientOptions: { rateLimit: { maxWait: Duration.infinity } }
    })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(scrollPage("users", "s1-1", 2))
      yield* settle(() => fake.requests.length >= 1)
      yield* TestClock.adjust("7199 seconds")
      expect(fake.requests).toHaveLength(1)
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(fiber)).records).toHaveLength(100)
      expect(fake.requests.map(paramOf)).toEqual(["s1-1", "s1-1"])
    }).pipe(Effect.provide(fake.layer))
  })

  // A proxy or CDN in front of Intercom limits on its own, and says when to come back with Retry-After alone.
  const proxy429 = (retryAfter: string, headers: Record<string, string> = {}) =>
    text("<html>429 Too Many Requests</html>", 429, "text/html", { "retry-after": retryAfter, ...headers })

  const retryAfters: ReadonlyArray<readonly [string, () => Record<string, string>]> = [
    ["in seconds", () => ({})],
    // An HTTP-date on the server's clock, 30 s ahead of ours: 3 s after its Date is 3 s from now on ours.
    ["as an HTTP-date", () => dateAt(30)]
  ]
  for (const [form, headers] of retryAfters) {
    it.effect(`a 429 without X-RateLimit-Reset waits as long as its Retry-After says, ${form}`, () => {
      const value = form === "in seconds" ? "3" : new Date(33_000).toUTCString()
      const fake = makeFake({ records: 250, fault: (seen) => seen.index === 1 ? proxy429(value, headers()) : undefined })
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(scrollPage("users", "s1-1", 2))
        yield* settle(() => fake.requests.length >= 1)
        yield* TestClock.adjust("2 seconds")
        expect(fake.requests).toHaveLength(1)
        yield* TestClock.adjust("1 second")
        const page = yield* Fiber.join(fiber)
        expect(page.records).toHaveLength(100)
        expect(fake.requests.map(paramOf)).toEqual(["s1-1", "s1-1"])
      }).pipe(Effect.provide(fake.layer))
    })
  }

  it.effect("a Retry-After in seconds counts from the answer, not from the whole second of its Date header", () => {
    // A server's Date counts whole seconds: answered 0.9 s into the second, `Date + 3 s` would be 2.1 s from now.
    const fake = makeFake({
      records: 250,
      fault: (seen) => seen.index === 1 ? proxy429("3", dateAt(0)) : undefined
    })
    return Effect.gen(function*() {
      yield* TestClock.adjust("900 millis")
      const fiber = yield* Effect.fork(scrollPage("users", "s1-1", 2))
      yield* settle(() => fake.requests.length >= 1)
      yield* TestClock.adjust("2800 millis")
      expect(fake.requests).toHaveLength(1)
      yield* TestClock.adjust("200 millis")
      expect((yield* Fiber.join(fiber)).records).toHaveLength(100)
      expect(fake.requests.map(paramOf)).toEqual(["s1-1", "s1-1"])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a Retry-After further away than rateLimit.maxWait is RateLimited at once, at the time it names", () => {
    const fake = makeFake({ fault: () => proxy429("600") })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(Effect.flip(scrollPage("users", "s1-1", 2)))
      yield* settle(() => false)
      expect(Option.isSome(yield* Fiber.poll(fiber))).toBe(true)
      expect(expectTag(yield* Fiber.join(fiber), "RateLimited").resetAt).toBe(600_000)
      expect(fake.requests).toHaveLength(1)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a 429 without Intercom's X-RateLimit-* headers is not called Intercom's limit; one with them is", () =>
    Effect.gen(function*() {
      const limitedBy = (answer: () => Response) =>
        Effect.gen(function*() {
          const fake = makeFake({ fault: answer })
          const fiber = yield* Effect.fork(Effect.flip(scrollPage("users", "s1-1", 2)).pipe(Effect.provide(fake.layer)))
          yield* settle(() => false)
          return expectTag(yield* Fiber.join(fiber), "RateLimited")
        })
      const proxy = yield* limitedBy(() => proxy429("600"))
      expect(proxy.intercomHeaders).toBe(false)
      expect(proxy.problem).toBe(
        "A rate limit stopped the users scroll at page 2; it resets at 1970-01-01T00:10:00.000Z. The 429 did not carry Intercom's X-RateLimit-* headers: the limit may be that of a proxy or CDN between this client and Intercom."
      )
      expect(proxy.advice).toMatch(/If a proxy of yours limits the requests, raise its limit for Intercom's API\.$/)
      const intercom = yield* limitedBy(() => tooMany(600))
      expect(intercom.intercomHeaders).toBe(true)
      expect(intercom.problem).toMatch(/^Intercom's rate limit of 1000 requests stopped the users scroll at page 2;/)
      expect(intercom.advice).not.toContain("proxy")
    }))

  it.effect("a spent budget whose reset is further away than rateLimit.maxWait is not waited for: RateLimited at once", () => {
    // Waiting maxWait (a minute, Intercom's expiry) with the scroll_param in hand would only let it expire.
    const fake = makeFake({
      fault: (seen) =>
        seen.index === 1
          ? json({ type: "user.list", users: [user(1)], scroll_param: "p2" }, 200, rateLimitHeaders(120, 0, 1))
          : tooMany(120)
    })
    return Effect.gen(function*() {
      yield* scrollPage("users", undefined)
      const fiber = yield* Effect.fork(Effect.flip(scrollPage("users", "p2", 2)))
      yield* settle(() => false)
      expect(Option.isSome(yield* Fiber.poll(fiber))).toBe(true)
      const limited = expectTag(yield* Fiber.join(fiber), "RateLimited")
      expect(limited.resetAt).toBe(120_000)
      expect(fake.requests).toHaveLength(2)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a reset past anything a Date can hold is RateLimited with a message that still reads", () => {
    const fake = makeFake({ fault: () => tooMany(1e13) })
    return Effect.gen(function*() {
      const limited = expectTag(yield* Effect.flip(scrollPage("users", "s1-1", 2)), "RateLimited")
      expect(limited.message).toMatch(/resets at 10000000000000000 ms after the UNIX epoch/)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("reads X-RateLimit-Reset on Intercom's clock, by its Date header, whether ours is behind or ahead", () =>
    Effect.gen(function*() {
      // Intercom's clock at 60 s; the window resets at 65 s by it: a 5-second wait, whatever our clock says.
      for (const ours of [0, 120]) {
        const fake = makeFake({ records: 250, fault: (seen) => seen.index === 1 ? tooMany(65, dateAt(60)) : undefined })
        yield* TestClock.setTime(ours * 1000)
        const fiber = yield* Effect.fork(scrollPage("users", "s1-1", 2).pipe(Effect.provide(fake.layer)))
        yield* settle(() => fake.requests.length >= 1)
        // Behind, ours would find the reset 65 s away (past maxWait: RateLimited); ahead, already past (resend at once).
        yield* TestClock.adjust("4 seconds")
        expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
        expect(fake.requests).toHaveLength(1)
        yield* TestClock.adjust("2 seconds")
        expect((yield* Fiber.join(fiber)).records).toHaveLength(100)
        expect(fake.requests).toHaveLength(2)
      }
    }))

  it.effect("paces by Intercom's clock too: a budget that runs low is spread over the window as Intercom counts it", () => {
    // One request left, the window ending 10 s from Intercom's now, which is a minute ahead of ours.
    const fake = makeFake({
      fault: (seen) =>
        seen.index === 1
          ? json({ type: "user.list", users: [user(1)], scroll_param: "p2" }, 200, { ...rateLimitHeaders(70, 1, 100), ...dateAt(60) })
          : json({ type: "user.list", users: [], scroll_param: "p3" })
    })
    return Effect.gen(function*() {
      yield* scrollPage("users", undefined)
      const fiber = yield* Effect.fork(scrollPage("users", "p2", 2))
      yield* settle(() => false)
      // Half of the 10 s (one request left: spread over two gaps), not half of 70 s.
      yield* TestClock.adjust("4 seconds")
      expect(fake.requests).toHaveLength(1)
      yield* TestClock.adjust("2 seconds")
      yield* settle(() => fake.requests.length >= 2)
      expect(fake.requests).toHaveLength(2)
      yield* Fiber.join(fiber)
    }).pipe(Effect.provide(fake.layer))
  })

  const pacedWaits = Metric.value(
    ScrollMetrics.forResource(ScrollMetrics.rateLimitWaits, "users").pipe(Metric.tagged("kind", "paced"))
  )
  const waits429 = Metric.value(
    ScrollMetrics.forResource(ScrollMetrics.rateLimitWaits, "users").pipe(Metric.tagged("kind", "429"))
  )

  /** A first page that reports the budget, then the empty page. */
  const budgetFake = (remaining: number) =>
    makeFake({
      fault: (seen) =>
        seen.index === 1
          ? json({ type: "user.list", users: [user(1)], scroll_param: "p2" }, 200, rateLimitHeaders(10, remaining, 100))
          : json({ type: "user.list", users: [], scroll_param: "p3" })
    })

  it.effect("paces the next request when X-RateLimit-Remaining runs low", () => {
    const fake = budgetFake(1)
    return Effect.gen(function*() {
      const before = yield* pacedWaits
      yield* scrollPage("users", undefined)
      const fiber = yield* Effect.fork(scrollPage("users", "p2", 2))
      yield* settle(() => false)
      yield* TestClock.adjust("1 second")
      expect(fake.requests).toHaveLength(1)
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("9 seconds")
      yield* Fiber.join(fiber)
      expect(fake.requests).toHaveLength(2)
      expect((yield* pacedWaits).count - before.count).toBe(1)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("does not wait while plenty of the budget remains", () => {
    const fake = budgetFake(90)
    return Effect.gen(function*() {
      const before = yield* pacedWaits
      yield* scrollPage("users", undefined)
      const fiber = yield* Effect.fork(scrollPage("users", "p2", 2))
      // Without moving the clock: the second request goes out, and the page comes back.
      yield* settle(() => false)
      expect(fake.requests).toHaveLength(2)
      expect(Option.isSome(yield* Fiber.poll(fiber))).toBe(true)
      expect((yield* pacedWaits).count).toBe(before.count)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("counts each 429 wait in ScrollMetrics.rateLimitWaits", () => {
    const fake = makeFake({ records: 50, fault: (seen) => seen.index <= 2 ? tooMany(5) : undefined })
    return Effect.gen(function*() {
      const before = yield* waits429
      const fiber = yield* Effect.fork(Stream.runCount(Scroll.users()))
      yield* settle(() => fake.requests.length >= 1)
      yield* TestClock.adjust("6 seconds")
      yield* settle(() => fake.requests.length >= 2)
      yield* TestClock.adjust("6 seconds")
      expect(yield* Fiber.join(fiber)).toBe(50)
      expect((yield* waits429).count - before.count).toBe(2)
    }).pipe(Effect.provide(fake.layer))
  })
})
