/**
 * The Intercom API client: one configured `HttpClient` (base URL, bearer token, JSON), the scroll endpoints'
 * versions, rate limits honoured from Intercom's headers, and responses turned into pages or typed errors.
 *
 * @since 0.1.0
 */
import { HttpClient, type HttpClientError, HttpClientRequest } from "@effect/platform"
import type { ConfigError } from "effect/ConfigError"
import { Config, Context, Duration, Effect, Either, Layer, Option, Redacted, type Scope } from "effect"
import * as RateLimit from "./internal/rateLimit.js"
import * as RequestTimeout from "./internal/requestTimeout.js"
import { interpret, readScrollParamAhead, receive, type Received, type Where } from "./internal/response.js"
import { withSpanKeepingNoValue } from "./internal/span.js"
import * as WorkspaceLock from "./internal/workspaceLock.js"
import type { RecordOf } from "./Models.js"
import { defaultVersions, paths, type Resource } from "./Resource.js"
import { InvalidOptions, RestartRequired, type ScrollError } from "./ScrollError.js"

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
  /** A page body larger than this is refused. Default 32 MiB (a page of 100 records is well under 1 MiB). */
  readonly maxResponseBytes?: number | undefined
  /** A request (with its body) that takes longer is a transport failure. Default 30 seconds. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  readonly rateLimit?: RateLimit.RateLimitOptions | undefined
}

/**
 * One scroll page as Intercom sent it.
 *
 * @since 0.1.0
 * @category models
 */
export interface FetchedPage<R extends Resource> {
  readonly records: ReadonlyArray<RecordOf<R>>
  /** Absent on the empty page that ends a scroll. */
  readonly scrollParam: string | undefined
}

/**
 * A scroll page whose body has arrived but is not parsed yet.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReceivedPage<R extends Resource> {
  /**
   * The scroll_param, read from the body's bytes without decoding or parsing them where they leave no doubt (undefined
   * otherwise, and on the empty page), so that the next request can go out while this page is parsed. `page` has the
   * last word.
   */
  readonly scrollParamAhead: () => string | undefined
  /** Parses and validates the body: the page, or the typed error the response stands for. */
  readonly page: Effect.Effect<FetchedPage<R>, ScrollError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly baseUrl: string
  /** Fetches a page: the first when `scrollParam` is undefined. Waits out 429s and paces on a low budget. */
  readonly scrollPage: <R extends Resource>(
    resource: R,
    request: { readonly scrollParam: string | undefined; readonly page: number }
  ) => Effect.Effect<FetchedPage<R>, ScrollError>
  /** `scrollPage` in two steps: the exchange (waiting out 429s, as `scrollPage` does), then the parse. */
  readonly receivePage: <R extends Resource>(
    resource: R,
    request: { readonly scrollParam: string | undefined; readonly page: number }
  ) => Effect.Effect<ReceivedPage<R>, ScrollError>
  /** Holds this process's one scroll of the workspace until the scope closes; waits while another holds it. */
  readonly lockWorkspace: Effect.Effect<void, never, Scope.Scope>
  /** Whether a scroll of this workspace holds the lock now. */
  readonly isWorkspaceLocked: Effect.Effect<boolean>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class IntercomClient extends Context.Tag("@intercom-scroll/core/IntercomClient")<IntercomClient, Service>() {}

const isLoopback = (hostname: string) =>
  hostname === "localhost" || hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname)

const resolveBaseUrl = (options: Options): Effect.Effect<string, InvalidOptions> => {
  const raw = options.baseUrl ?? regionBaseUrls[options.region ?? "us"]
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return Effect.fail(new InvalidOptions({ detail: `base URL ${JSON.stringify(raw)} is not a URL` }))
  }
  if (url.protocol === "http:" && !isLoopback(url.hostname)) {
    return Effect.fail(
      new InvalidOptions({
        detail: `base URL ${url.origin} is plain http, which would send the access token in clear; use https (http is allowed only for localhost)`
      })
    )
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    // Not the origin: that of `localhost:4010` (read as the scheme "localhost:") is "null".
    return Effect.fail(new InvalidOptions({ detail: `base URL ${JSON.stringify(raw)} must be https://…` }))
  }
  return Effect.succeed(url.href.replace(/\/+$/, ""))
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, InvalidOptions, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const baseUrl = yield* resolveBaseUrl(options)
    const versions = { ...defaultVersions, ...definedOnly(options.versions ?? {}) }
    const maxBytes = options.maxResponseBytes ?? 32 * 1024 * 1024
    const timeoutMillis = Duration.toMillis(options.requestTimeout ?? Duration.seconds(30))
    const limiter = yield* RateLimit.make(options.rateLimit)
    const timeout = yield* RequestTimeout.make(timeoutMillis)
    const token = Redacted.value(options.accessToken)
    const workspace = `${baseUrl}\n${token}`
    const redact = (text: string) => token === "" ? text : text.split(token).join("<redacted>")

    const httpClient = (yield* HttpClient.HttpClient).pipe(
      // The platform's `http.client` span ends with the transport's raw error, whose text and request (with its
      // Authorization header) an exporter may record. Our own `Scroll.page` span, scrubbed, stands in its place.
      HttpClient.withTracerDisabledWhen(() => true)
    )

    // Built once: only the scroll_param changes from page to page.
    const firstRequest = (resource: Resource) =>
      HttpClientRequest.get(`${baseUrl}${paths[resource]}`).pipe(
        HttpClientRequest.bearerToken(options.accessToken),
        HttpClientRequest.acceptJson,
        HttpClientRequest.setHeader("Intercom-Version", versions[resource])
      )
    const firstRequests = { users: firstRequest("users"), leads: firstRequest("leads"), companies: firstRequest("companies") }

    const send = (where: Where): Effect.Effect<Received, ScrollError> => {
      const transportFailure = (error: HttpClientError.HttpClientError) =>
        new RestartRequired({
          resource: where.resource,
          page: where.page,
          cause: { _tag: "TransportError", detail: redact(describeTransportError(error)) }
        })
      const first = firstRequests[where.resource]
      // Set as a URL parameter, so it is encoded and cannot add parameters or change the path.
      const request = where.scrollParam === undefined
        ? first
        : HttpClientRequest.setUrlParam(first, "scroll_param", where.scrollParam)
      const roundTrip = httpClient.execute(request).pipe(
        Effect.flatMap((response) => receive(response, where, maxBytes)),
        Effect.catchTags({ RequestError: transportFailure, ResponseError: transportFailure })
      )
      // The timeout covers the exchange (request and body), not the parsing after it: the exchange runs in a fiber of
      // its own, and pages parsed there stayed reachable longer, so minor GCs copied and promoted more of them.
      return timeout.bound(roundTrip, () =>
        new RestartRequired({
          resource: where.resource,
          page: where.page,
          cause: { _tag: "Timeout", millis: timeoutMillis }
        })).pipe(Effect.tap((received) => limiter.observe(received.headers)))
    }

    /** Sends until the answer is not a 429: a 429 leaves the scroll where it was, so the same request is resent. */
    const exchange = (where: Where) =>
      Effect.gen(function*() {
        for (let attempt = 1;; attempt++) {
          yield* limiter.pace(where.resource)
          const received = yield* send(where)
          if (received.status !== 429) return received
          yield* limiter.backOff(received.headers, { resource: where.resource, page: where.page, attempt })
        }
      })

    const parse = <R extends Resource>(received: Received, where: Where): Effect.Effect<FetchedPage<R>, ScrollError> =>
      Either.map(interpret(received, where), (body) => ({
        records: body.records as ReadonlyArray<RecordOf<R>>,
        scrollParam: body.scrollParam
      }))

    const whereOf = (resource: Resource, request: { readonly scrollParam: string | undefined; readonly page: number }) =>
      ({ resource, page: request.page, scrollParam: request.scrollParam, redact }) satisfies Where

    const scrollPage: Service["scrollPage"] = (resource, request) => {
      const where = whereOf(resource, request)
      return exchange(where).pipe(
        Effect.flatMap((received) => parse<typeof resource>(received, where)),
        withSpanKeepingNoValue("IntercomClient.scrollPage", { attributes: { resource, page: request.page } })
      )
    }

    const receivePage: Service["receivePage"] = (resource, request) => {
      const where = whereOf(resource, request)
      return exchange(where).pipe(
        Effect.map((received) => ({
          scrollParamAhead: () => readScrollParamAhead(received, resource),
          page: Effect.suspend(() => parse<typeof resource>(received, where))
        })),
        withSpanKeepingNoValue("IntercomClient.receivePage", { attributes: { resource, page: request.page } })
      )
    }

    return {
      baseUrl,
      scrollPage,
      receivePage,
      lockWorkspace: WorkspaceLock.acquire(workspace),
      isWorkspaceLocked: WorkspaceLock.isHeld(workspace)
    } satisfies Service
  })

const definedOnly = <A extends object>(record: A) =>
  Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as {
    readonly [K in keyof A]-?: Exclude<A[K], undefined>
  }

/** The transport's own words: the request's URL holds a scroll_param at most, never the token. */
const describeTransportError = (error: HttpClientError.HttpClientError) => {
  const cause = error.cause instanceof Error ? error.cause.message : undefined
  return [error.reason, error.description, cause].filter((part) => part !== undefined && part !== "").join(": ")
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<IntercomClient, InvalidOptions, HttpClient.HttpClient> =>
  Layer.scoped(IntercomClient, make(options))

/**
 * Reads INTERCOM_ACCESS_TOKEN (kept redacted), INTERCOM_BASE_URL and INTERCOM_REGION (us, eu or au).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Omit<Options, "accessToken" | "baseUrl" | "region"> = {}
): Layer.Layer<IntercomClient, InvalidOptions | ConfigError, HttpClient.HttpClient> =>
  Layer.scoped(
    IntercomClient,
    Effect.gen(function*() {
      const accessToken = yield* Config.redacted("INTERCOM_ACCESS_TOKEN")
      const baseUrl = yield* Config.option(Config.nonEmptyString("INTERCOM_BASE_URL"))
      const region = yield* Config.option(Config.literal("us", "eu", "au")("INTERCOM_REGION"))
      return yield* make({
        ...options,
        accessToken,
        baseUrl: Option.getOrUndefined(baseUrl),
        region: Option.getOrUndefined(region)
      })
    })
  )
