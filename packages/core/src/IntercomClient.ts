/**
 * The Intercom API client: one configured `HttpClient` (base URL, bearer token, JSON), the scroll endpoints'
 * versions, rate limits honoured from Intercom's headers, and responses turned into pages or typed errors.
 *
 * The service is one function, `scrollPage`, so that a test double is a few lines, and optionally `identify`, which
 * asks Intercom which app (workspace) the token belongs to. `Scroll` runs over any
 * `Service`; over the client `make` builds, it also sends each request as soon as the previous body is in (before
 * that page is parsed) and shares the workspace's lock with every other client of the workspace in the process.
 *
 * @example
 * import { IntercomClient, type Models, type Resource, Scroll } from "@intercom-scroll/core"
 * import { Effect, Layer, Stream } from "effect"
 *
 * // A test double: the pages of each resource, then the empty page that ends a scroll.
 * const pages: { readonly [R in Resource.Resource]: ReadonlyArray<ReadonlyArray<Models.RecordOf<R>>> } = {
 *   users: [[{ type: "user", id: "1", email: "ada@example.com" }], [{ type: "user", id: "2", email: null }]],
 *   leads: [],
 *   companies: []
 * }
 * const double: IntercomClient.Service = {
 *   baseUrl: "https://intercom.test",
 *   scrollPage: (resource, { page }) =>
 *     Effect.succeed({ records: pages[resource][page - 1] ?? [], scrollParam: `page-${page + 1}` })
 * }
 *
 * const users = Stream.runCollect(Scroll.users()).pipe(
 *   Effect.provide(Layer.succeed(IntercomClient.IntercomClient, double))
 * )
 *
 * @since 0.1.0
 */
// The platform's modules by path, not its index: the index loads all of @effect/platform (its HttpApi, OpenApi, …),
// ~75 ms more of a fresh process's start for a program that imports the core.
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Config, ConfigError, Context, type Duration, Effect, Either, identity, Layer, Redacted } from "effect"
import { attach, type Internals } from "./internal/client.js"
import { checkOptions, isLoopback, isRegion, parseUrl, withoutToken } from "./internal/options.js"
import * as ContentCoding from "./internal/contentCoding.js"
import * as Identify from "./internal/identify.js"
import * as RateLimit from "./internal/rateLimit.js"
import { printable, redactor } from "./internal/redaction.js"
import { interpret, readScrollParamAhead, receive, type Received, type Where } from "./internal/response.js"
import { withSpanKeepingNoValue } from "./internal/span.js"
import * as Transport from "./internal/transport.js"
import * as WorkspaceLock from "./internal/workspaceLock.js"
import { beforeRequest } from "./internal/sendAhead.js"
import type { App, RecordOf } from "./Models.js"
import { paths, type Resource } from "./Resource.js"
import { type IdentifyFailed, type InvalidOptions, InvalidResponse, RestartRequired, type ScrollError } from "./ScrollError.js"

/**
 * Intercom's regional API hosts.
 *
 * @since 0.1.0
 * @category models
 */
export type Region = "us" | "eu" | "au"

/**
 * @since 0.1.0
 * @category constants
 */
export const regionBaseUrls: { readonly [R in Region]: string } = {
  us: "https://api.intercom.io",
  eu: "https://api.eu.intercom.io",
  au: "https://api.au.intercom.io"
}

/**
 * Whether `url` is this machine's: its host `localhost`, an address of 127.0.0.0/8, or `[::1]`. The only base URLs the
 * client takes over plain http, as the token stays on the machine; for an app that decides by the same rule where else
 * the token may go (the CLI sends no request to such a URL through a proxy, which would carry the token off it).
 *
 * @example
 * import { IntercomClient } from "@intercom-scroll/core"
 *
 * IntercomClient.isThisMachine(new URL("http://127.0.0.1:4010")) // true
 * IntercomClient.isThisMachine(new URL("http://127.0.0.1.nip.io")) // false: a name, resolved elsewhere
 *
 * @since 0.1.0
 * @category refinements
 */
export const isThisMachine = (url: URL): boolean => isLoopback(url.hostname)

/**
 * How the client treats Intercom's rate limit.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimitOptions {
  /** Below this fraction of the window's budget left, requests are spread evenly until the reset. Default 0.1. */
  readonly lowWater?: number | undefined
  /**
   * The longest wait the client accepts: a 429 whose reset is further away fails with `RateLimited`, and pacing that
   * would wait longer lets the request go. Default 60 seconds: above Intercom's minute, a wait between two pages
   * outlasts the scroll_param in hand, and the scroll expires and starts over from its first page. At most 2³¹−1 ms
   * (about 24.8 days), the longest a timer waits; `Duration.infinity` waits for any reset.
   */
  readonly maxWait?: Duration.DurationInput | undefined
  /** 429s in a row on one request before giving up with `RateLimited`. Default 10. */
  readonly maxRetries?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly accessToken: Redacted.Redacted<string>
  /** Overrides `region`. Plain http is refused unless it points at this machine. */
  readonly baseUrl?: string | undefined
  /** Default "us". */
  readonly region?: Region | undefined
  /** `Intercom-Version` per resource. Default 1.4 for users and leads (scroll exists only in 1.x), 2.14 for companies. */
  readonly versions?: { readonly [R in Resource]?: string | undefined } | undefined
  /**
   * A page body larger than this, as received or once decoded, is refused; a compressed body stops being decoded as
   * soon as it passes the limit. Default 32 MiB (a page of 100 records is well under 1 MiB).
   */
  readonly maxResponseBytes?: number | undefined
  /**
   * A request (with its body) that takes longer is a transport failure. Default 30 seconds; at most 2³¹−1 ms (the
   * longest a timer waits), or `Duration.infinity` for no limit.
   */
  readonly requestTimeout?: Duration.DurationInput | undefined
  readonly rateLimit?: RateLimitOptions | undefined
}

/**
 * Which page of a scroll to fetch.
 *
 * @since 0.1.0
 * @category models
 */
export interface PageRequest {
  /** The scroll_param of the page before; undefined for the first page, which opens a scroll. */
  readonly scrollParam: string | undefined
  /** 1-based, within one scroll: for errors, spans and test doubles. */
  readonly page: number
}

/**
 * One scroll page as Intercom sent it.
 *
 * @since 0.1.0
 * @category models
 */
export interface FetchedPage<R extends Resource> {
  /** Empty on the page that ends the scroll. */
  readonly records: ReadonlyArray<RecordOf<R>>
  /** The scroll_param for the next page. Absent on the empty page that ends a scroll. */
  readonly scrollParam: string | undefined
}

/**
 * What a user of the client calls, and what a test double implements.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The API's base URL, without a trailing slash. */
  readonly baseUrl: string
  /**
   * Fetches one page of `resource`: the first when `scrollParam` is undefined. Fails with the `ScrollError` the
   * response stands for; waits out 429s and paces itself when the rate-limit budget runs low.
   */
  readonly scrollPage: <R extends Resource>(resource: R, request: PageRequest) => Effect.Effect<FetchedPage<R>, ScrollError>
  /**
   * Asks Intercom which app (workspace) the access token belongs to (`GET /me`), asking again after a 429 or a 5xx a
   * few times, and waiting 10 seconds at most for an answer; once answered, the client remembers it (a token belongs
   * to one app for good). A sync checks its rows against it, so that a workspace's rows never take another
   * workspace's records; a test double may leave it out, and is then not checked.
   */
  readonly identify?: Effect.Effect<App, IdentifyFailed> | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export class IntercomClient extends Context.Tag("@intercom-scroll/core/IntercomClient")<IntercomClient, Service>() {}

/**
 * Builds the client: the options are checked (a bad one fails with `InvalidOptions`) and the `HttpClient` configured
 * once. It holds no resource to release: its rate limiter and its answer to `identify` live as long as the service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, InvalidOptions, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const { baseUrl, maxBytes, rateLimit, timeoutMillis, token, versions } = yield* checkOptions(options, regionBaseUrls)
    const limiter = yield* RateLimit.make(rateLimit)
    const workspace = yield* WorkspaceLock.key(baseUrl, token)
    // Everything a server or the transport says goes through here before an error quotes it: without the token, and
    // without the control characters that would drive the terminal that prints it.
    const redactTheToken = redactor(token)
    const redact = (text: string) => printable(redactTheToken(text))

    const httpClient = (yield* HttpClient.HttpClient).pipe(
      // The platform's `http.client` span ends with the transport's raw error, whose text and request (with its
      // Authorization header) an exporter may record. Our own `Scroll.page` span, scrubbed, stands in its place.
      HttpClient.withTracerDisabledWhen(() => true),
      // Each request ends with its exchange's scope. A body left unread (refused by its Content-Length, a redirect's)
      // is let go of at once, and its connection with it; otherwise the platform aborts it only when the response is
      // garbage collected. A body read to its end is not touched, so its connection goes back to the pool.
      HttpClient.withScope
    )

    /** A GET of the API, as every request is: the token, JSON, and an `Intercom-Version`. */
    const get = (path: string, version: string) =>
      HttpClientRequest.get(`${baseUrl}${path}`).pipe(
        HttpClientRequest.bearerToken(options.accessToken),
        HttpClientRequest.acceptJson,
        HttpClientRequest.setHeader("Intercom-Version", version)
      )

    // Built once: only the scroll_param changes from page to page. Compressed pages are a tenth of the bytes; a
    // runtime that cannot decode them asks for none (its fetch may still ask, and decode, on its own).
    const acceptEncoding = ContentCoding.codecs.acceptEncoding
    const firstRequest = (resource: Resource) =>
      get(paths[resource], versions[resource]).pipe(
        acceptEncoding === undefined ? identity : HttpClientRequest.setHeader("Accept-Encoding", acceptEncoding)
      )
    const firstRequests = { users: firstRequest("users"), leads: firstRequest("leads"), companies: firstRequest("companies") }

    const send = (where: Where): Effect.Effect<Received, ScrollError> => {
      const transportFailure = (error: HttpClientError.HttpClientError) => {
        const failure = Transport.describe(error, redact)
        const { connect, detail, proxy, redirectLoop } = failure
        // A mistake in the program's wiring, not a failure of Intercom's: no restart can get a request through a client
        // its owner closed, or one that cannot send it, and a restart budget spent on it only delays the end.
        const wiring = Transport.wiringDefect(failure)
        if (wiring !== undefined) return wiring
        // No restart gets through redirects that go round: the same answers would come again.
        if (redirectLoop) {
          return new InvalidResponse({
            resource: where.resource,
            page: where.page,
            issue: `the HTTP client followed redirects on its own until it gave up (${detail}); this client accepts no redirects`
          })
        }
        return new RestartRequired({
          resource: where.resource,
          page: where.page,
          cause: connect === undefined
            ? { _tag: "TransportError", detail }
            : { _tag: "ConnectFailed", reason: connect, detail, ...(proxy === undefined ? {} : { proxy }) }
        })
      }
      const first = firstRequests[where.resource]
      // Set as a URL parameter, so it is encoded and cannot add parameters or change the path.
      const request = where.scrollParam === undefined
        ? first
        : HttpClientRequest.setUrlParam(first, "scroll_param", where.scrollParam)
      // A turn first, so that the connection of the response just read takes this request (internal/sendAhead.ts).
      const roundTrip = Effect.zipRight(beforeRequest, httpClient.execute(request)).pipe(
        Effect.flatMap((response) => receive(response, where, maxBytes)),
        Effect.scoped,
        Effect.catchTags({ RequestError: transportFailure, ResponseError: transportFailure })
      )
      // The timeout covers the exchange (request and body), not the parsing after it: the exchange runs in a fiber of
      // its own, and pages parsed there stayed reachable longer, so minor GCs copied and promoted more of them. Plain
      // timeoutFail: one watchdog for all requests saved ~0.04 ms of CPU a page, ~1 % of a loopback page (bench NOTES).
      return Effect.timeoutFail(roundTrip, {
        duration: timeoutMillis,
        onTimeout: () =>
          new RestartRequired({ resource: where.resource, page: where.page, cause: { _tag: "Timeout", millis: timeoutMillis } })
      }).pipe(Effect.tap((received) => limiter.observe(received.headers)))
    }

    /** Sends until the answer is not a 429: a 429 leaves the scroll where it was, so the same request is resent. */
    const exchange = (where: Where) =>
      Effect.gen(function*() {
        for (let attempt = 1;; attempt++) {
          yield* limiter.pace(where.resource)
          const received = yield* send(where)
          // A 429 from where a redirect led is no reason to resend: `interpret` refuses the redirect.
          if (received.status !== 429 || received.redirect !== undefined) return received
          yield* limiter.backOff(received.headers, { resource: where.resource, page: where.page, attempt })
        }
      })

    const parse = <R extends Resource>(received: Received, where: Where): Effect.Effect<FetchedPage<R>, ScrollError> =>
      Either.map(interpret(received, where), (body) => ({
        records: body.records as ReadonlyArray<RecordOf<R>>,
        scrollParam: body.scrollParam
      }))

    const whereOf = (resource: Resource, request: PageRequest) =>
      ({ resource, page: request.page, scrollParam: request.scrollParam, redact }) satisfies Where

    const scrollPage: Service["scrollPage"] = (resource, request) => {
      const where = whereOf(resource, request)
      return exchange(where).pipe(
        Effect.flatMap((received) => parse<typeof resource>(received, where)),
        withSpanKeepingNoValue("IntercomClient.scrollPage", { attributes: { resource, page: request.page } })
      )
    }

    const receivePage: Internals["receivePage"] = (resource, request) => {
      const where = whereOf(resource, request)
      return exchange(where).pipe(
        Effect.map((received) => ({
          scrollParamAhead: () => readScrollParamAhead(received, resource),
          page: Effect.suspend(() => parse<typeof resource>(received, where))
        })),
        withSpanKeepingNoValue("IntercomClient.receivePage", { attributes: { resource, page: request.page } })
      )
    }

    // No Accept-Encoding: the answer is small, and so comes as it is.
    const identify = Identify.make(httpClient, { request: get("/me", versions.companies), timeoutMillis, redact })

    attach(scrollPage, { receivePage, workspaceLock: WorkspaceLock.forWorkspace(workspace) })
    return { baseUrl, scrollPage, identify } satisfies Service
  })

/**
 * Replaces the access token with `<redacted>` in text from elsewhere, as the client does with what a server or the
 * transport says before it goes into an error: a token of 8 characters or more wherever it occurs, a shorter one (no
 * real Intercom token is) only where it stands alone, since inside a word it cannot be told from the word. For an app
 * that shows such text itself; never needed for this package's errors, whose own words are never touched.
 *
 * @example
 * import { IntercomClient } from "@intercom-scroll/core"
 * import { Redacted } from "effect"
 *
 * const redact = IntercomClient.redactToken(Redacted.make("dG9rOjVmMWM5ZTJhXzdiM2RfNGU4Zl85YTAxXzJjM2Q0ZTVmNmE3YjoxOjA="))
 * redact("Bearer dG9rOjVmMWM5ZTJhXzdiM2RfNGU4Zl85YTAxXzJjM2Q0ZTVmNmE3YjoxOjA= is not allowed") // "Bearer <redacted> is not allowed"
 *
 * @since 0.1.0
 * @category redaction
 */
export const redactToken = (accessToken: Redacted.Redacted<string>): (text: string) => string =>
  redactor(Redacted.value(accessToken))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<IntercomClient, InvalidOptions, HttpClient.HttpClient> =>
  Layer.effect(IntercomClient, make(options))

/**
 * An optional variable: unset or blank is undefined, anything else is parsed, and a value that does not parse fails
 * with a `ConfigError` at the variable's name. The message quotes the value: `layerConfig` scrubs the token from it.
 */
const optionalVariable = <A>(name: string, parse: (value: string) => Either.Either<A, string>) =>
  Config.string(name).pipe(
    Config.withDefault(""),
    Config.mapOrFail((value) =>
      value.trim() === ""
        ? Either.right(undefined)
        : Either.mapLeft(parse(value), (problem) => ConfigError.InvalidData([name], problem))
    )
  )

/**
 * An access token read from the variable `name`, as `environment` reads INTERCOM_ACCESS_TOKEN: kept `Redacted`, without
 * the whitespace around it (the line break at the end of a secret file), a blank one refused, and a missing one named
 * in words. `Config.redacted(name)` does none of these: it keeps the line break, which the client then refuses as
 * `InvalidOptions` without naming the variable, and says only "<redacted>" of a variable that is missing.
 *
 * @example
 * import { IntercomClient } from "@intercom-scroll/core"
 *
 * // The token of the EU workspace, in ACME_EU_TOKEN.
 * const AcmeEu = IntercomClient.layerConfig({
 *   ...IntercomClient.environment,
 *   accessToken: IntercomClient.accessTokenConfig("ACME_EU_TOKEN")
 * })
 *
 * @since 0.1.0
 * @category config
 */
export const accessTokenConfig = (name: string): Config.Config<Redacted.Redacted<string>> =>
  // Nested last, so that the blank check's error is at the variable's name too. Read as a string and then redacted:
  // `Config.redacted` says "<redacted>" where a missing variable's message would say what is missing.
  Config.string().pipe(
    // Without the whitespace around it: a secret file or a CRLF .env leaves a line break at the end.
    Config.map((token) => Redacted.make(token.trim())),
    Config.validate({
      message: "is blank: set it to an access token from Intercom's Developer Hub",
      validation: (token) => Redacted.value(token) !== ""
    }),
    Config.nested(name)
  )

/**
 * The options the environment gives, as `layerConfig` reads them by default:
 *
 * - `INTERCOM_ACCESS_TOKEN`: the access token, kept `Redacted`, without the whitespace around it (the line break at
 *   the end of a secret file). Required; blank is refused.
 * - `INTERCOM_REGION`: `us`, `eu` or `au`, in any case. Optional (unset or blank: `us`).
 * - `INTERCOM_BASE_URL`: an http(s) URL that overrides the region, such as a proxy's. Optional (unset or blank: none).
 *
 * A variable that is missing or cannot work fails with a `ConfigError` naming it, which quotes the value; `layerConfig`
 * scrubs from it the access token it is given, wherever it was pasted. Spread it to set other options from code or
 * from other variables.
 *
 * @example
 * import { IntercomClient } from "@intercom-scroll/core"
 * import { Config } from "effect"
 *
 * // The environment's token, region and base URL, with a shorter request timeout.
 * const Intercom = IntercomClient.layerConfig({
 *   ...IntercomClient.environment,
 *   requestTimeout: Config.succeed("10 seconds")
 * })
 *
 * @since 0.1.0
 * @category config
 */
export const environment: {
  readonly accessToken: Config.Config<Redacted.Redacted<string>>
  readonly region: Config.Config<Region | undefined>
  readonly baseUrl: Config.Config<string | undefined>
} = {
  accessToken: accessTokenConfig("INTERCOM_ACCESS_TOKEN"),
  // As written anywhere a region is named: `EU`, ` eu ` are eu.
  region: optionalVariable("INTERCOM_REGION", (value) => {
    const region = value.trim().toLowerCase()
    return isRegion(regionBaseUrls, region) ? Either.right(region) : Either.left(`is ${JSON.stringify(value)}; use us, eu or au`)
  }),
  baseUrl: optionalVariable(
    "INTERCOM_BASE_URL",
    (value) => Either.map(parseUrl(value), () => value)
  )
}

/**
 * The client, configured from `Config`s: by default `environment` (INTERCOM_ACCESS_TOKEN, INTERCOM_REGION,
 * INTERCOM_BASE_URL). Each option may be a `Config` of its own, or the whole a `Config<Options>`, as
 * `PgClient.layerConfig` takes them.
 *
 * @example
 * import { FetchHttpClient } from "@effect/platform"
 * import { IntercomClient, Scroll } from "@intercom-scroll/core"
 * import { Config, Effect, Layer, Stream } from "effect"
 *
 * // INTERCOM_ACCESS_TOKEN (redacted), INTERCOM_REGION and INTERCOM_BASE_URL.
 * const FromEnvironment = IntercomClient.layerConfig().pipe(Layer.provide(FetchHttpClient.layer))
 *
 * // A token under another name (trimmed, and refused when blank, as INTERCOM_ACCESS_TOKEN is), in the EU.
 * const Eu = IntercomClient.layerConfig({ accessToken: IntercomClient.accessTokenConfig("EU_TOKEN"), region: Config.succeed("eu") })
 *   .pipe(Layer.provide(FetchHttpClient.layer))
 *
 * const count = Stream.runCount(Scroll.companies()).pipe(Effect.provide(FromEnvironment))
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options> = environment
): Layer.Layer<IntercomClient, InvalidOptions | ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(
    IntercomClient,
    Config.unwrap(config).pipe(
      // Read again on its own, so that the token scrubbed is the one configured, whatever variable holds it.
      Effect.catchAll((error) => Effect.flatMap(configuredToken(config), (token) => Effect.fail(scrubbed(error, token)))),
      Effect.flatMap(make)
    )
  )

/**
 * The access token `config` gives, or "" (nothing to scrub) when it cannot be read, or is read within one
 * `Config<Options>` that failed as a whole.
 */
const configuredToken = (config: Config.Config.Wrap<Options>): Effect.Effect<string> =>
  Config.isConfig(config)
    ? Effect.succeed("")
    : Effect.match(config.accessToken, { onFailure: () => "", onSuccess: Redacted.value })

/** `error` without `token` in its messages, which quote the values read. Rebuilt as `ConfigError.prefixed` does. */
const scrubbed = (error: ConfigError.ConfigError, token: string): ConfigError.ConfigError => {
  switch (error._op) {
    case "And":
      return ConfigError.And(scrubbed(error.left, token), scrubbed(error.right, token))
    case "Or":
      return ConfigError.Or(scrubbed(error.left, token), scrubbed(error.right, token))
    case "InvalidData":
      return ConfigError.InvalidData(error.path, withoutToken(error.message, token))
    case "MissingData":
      return ConfigError.MissingData(error.path, withoutToken(error.message, token))
    case "SourceUnavailable":
      return ConfigError.SourceUnavailable(error.path, withoutToken(error.message, token), error.cause)
    case "Unsupported":
      return ConfigError.Unsupported(error.path, withoutToken(error.message, token))
  }
}
