/**
 * A faithful Intercom Scroll API server: workspaces with deterministic data sets, Intercom's scroll lifecycle,
 * envelopes and errors, and a plan of faults. It runs in process (an `HttpClient` with no sockets), on a real port,
 * or standalone (see `bin.ts`).
 *
 * @example
 * ```ts
 * import { HttpClient, HttpClientResponse } from "@effect/platform"
 * import { Simulator } from "@intercom-scroll/simulator"
 * import { Effect, Schema } from "effect"
 *
 * const Page = Schema.Struct({ users: Schema.Array(Schema.Struct({ id: Schema.String })), scroll_param: Schema.String })
 *
 * // A workspace of 250 users, answered in process: no sockets, any base URL.
 * const firstPage = Effect.gen(function*() {
 *   const response = yield* HttpClient.get("/users/scroll", {
 *     headers: { authorization: "Bearer T", "intercom-version": "1.4" }
 *   })
 *   const page = yield* HttpClientResponse.schemaBodyJson(Page)(response)
 *   const simulator = yield* Simulator.Simulator
 *   const stats = yield* simulator.stats
 *   return { records: page.users.length, pagesServed: stats.total.pagesServed }
 * }).pipe(Effect.provide(Simulator.layerClient({ workspaces: [{ token: "T", users: 250 }] })))
 *
 * Effect.runPromise(firstPage).then((result) => assert.deepStrictEqual(result, { records: 100, pagesServed: 1 }))
 * ```
 *
 * @since 0.1.0
 */
import { type HttpApp, HttpClient, HttpServer } from "@effect/platform"
import type { ServeError } from "@effect/platform/HttpServerError"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { Context, Duration, Effect, Either, Layer, ParseResult, Schema } from "effect"
import { createServer } from "node:http"
import * as FaultPlans from "./FaultPlan.js"
import type * as Resources from "./Resource.js"
import * as App from "./internal/app.js"
import * as Connection from "./internal/connection.js"
import * as InProcessClient from "./internal/inProcessClient.js"
import * as Link from "./internal/link.js"
import { hashString, Rng } from "./internal/random.js"
import * as InternalStats from "./internal/stats.js"
import { App as AppState, Workspace } from "./internal/workspace.js"

export {
  /**
   * The faults a workspace injects (a Schema; the type of the same name).
   *
   * @since 0.1.0
   * @category models
   */
  FaultPlan
} from "./FaultPlan.js"

export {
  /**
   * `"users" | "leads" | "companies"` (a Schema; the type of the same name).
   *
   * @since 0.1.0
   * @category models
   */
  Resource
} from "./Resource.js"

/**
 * One workspace: its access token, its data set and its faults.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkspaceOptions {
  readonly token: string
  /**
   * Seeds the data set and names the app; defaults to a hash of the token, so that workspaces differ. Entries of one
   * seed are tokens of one app: they share its one open scroll and its rate-limit window, as with Intercom.
   */
  readonly seed?: number | undefined
  readonly users?: number | undefined
  readonly leads?: number | undefined
  readonly companies?: number | undefined
  readonly faults?: FaultPlans.FaultPlan | undefined
  /**
   * The API version of requests without an `Intercom-Version` header. Modern workspaces default to a 2.x version,
   * where users and leads scroll are refused; clients that send no header (intercom-client 2.x) need "1.4".
   */
  readonly defaultVersion?: string | undefined
  /**
   * Whether the token may read admins, and so ask `GET /me` which app (workspace) it belongs to: a sync checks that
   * its rows are that app's. Default true; false answers 403 `token_unauthorized`, as Intercom does a token without the
   * permission. The app's `id_code` follows `seed`: two tokens of one seed are two tokens of one app.
   */
  readonly readAdmins?: boolean | undefined
}

/**
 * Whether each page of a scroll hands out a new scroll_param (`"rotating"`, as Intercom's documentation shows), or
 * every page of one scroll carries the one it opened with (`"stable"`, as an SDK tracker reports of Intercom). The
 * server moves on page by page either way.
 *
 * @since 0.1.0
 * @category models
 */
export type ScrollParamMode = "rotating" | "stable"

/**
 * The order of a scroll opened after another of the same resource (a restart): `"varied"`, another order each time,
 * or `"same"`, the first scroll's again (records added since then last), as Intercom may well do. Under `"same"` a
 * restart resends, page for page, what the client has already seen.
 *
 * @since 0.1.0
 * @category models
 */
export type RestartOrder = "varied" | "same"

/**
 * @since 0.1.0
 * @category models
 */
export interface SimulatorOptions {
  readonly workspaces: ReadonlyArray<WorkspaceOptions>
  /** Records a page; Intercom sends about 100. */
  readonly pageSize?: number | undefined
  /** How long an unused scroll_param lives; Intercom's is a minute. */
  readonly expiry?: Duration.DurationInput | undefined
  /** `"rotating"` (the default) or `"stable"`: see `ScrollParamMode`. */
  readonly scrollParam?: ScrollParamMode | undefined
  /** `"varied"` (the default) or `"same"`: see `RestartOrder`. */
  readonly restartOrder?: RestartOrder | undefined
  /**
   * Compress pages for requests whose `Accept-Encoding` asks (br, gzip or deflate, with q-values). On by default;
   * off, every page is sent uncompressed whatever the request asks.
   */
  readonly compression?: boolean | undefined
  /**
   * Megabits per second of each response's link: a body of B bytes as sent (compressed when compressed) takes
   * B × 8 / (bandwidth × 10⁶) seconds, after any latency, on the simulator's Clock. On a port the body is written in
   * pieces at that rate; in process the response is handed over once the time has passed. Unlimited when unset.
   */
  readonly bandwidth?: number | undefined
  /**
   * What a new connection costs before its first response, on the simulator's Clock: the round trips of TCP's and TLS's
   * handshakes, which a real link charges and loopback does not (TLS 1.3 over TCP: two round trips). On a port only:
   * in process there are no connections. None when unset.
   */
  readonly handshake?: Duration.DurationInput | undefined
}

/**
 * What the simulator did, for one workspace or in total.
 *
 * @since 0.1.0
 * @category models
 */
export interface Counters {
  /** Requests received (for a workspace: those that authenticated as it). */
  readonly requests: number
  /**
   * Requests whose `Accept-Encoding` accepts a coding the simulator has (br, gzip or deflate) over identity: the ones
   * whose pages are compressed while compression is on. With `requestsNotAskingCompression`, they add up to
   * `requests`.
   */
  readonly requestsAskingCompression: number
  /** Requests without `Accept-Encoding`, or whose header accepts none of br, gzip and deflate over identity. */
  readonly requestsNotAskingCompression: number
  readonly scrollsOpened: number
  /**
   * Pages answered with 200, the empty last page included, and a page whose body was cut short; not a page whose
   * connection was dropped, which sent nothing.
   */
  readonly pagesServed: number
  /** Pages sent with a `Content-Encoding` (among `pagesServed`). */
  readonly pagesCompressed: number
  /** The records of `pagesServed`. */
  readonly recordsServed: number
  /**
   * Bytes of response bodies put on the wire, as sent: compressed when compressed, the half of a body that was cut,
   * nothing for a dropped connection. Headers are not counted.
   */
  readonly bytesSent: number
  readonly bodiesCut: number
  /**
   * Connections whose first request came for this workspace (each connection counted once, by its first request). On a
   * port only: in process there are no connections.
   */
  readonly connectionsOpened: number
  readonly connectionsDropped: number
  /**
   * `scroll_exists` answers given while the open scroll had been used (opened or paged) less than 500 ms before, on
   * the simulator's Clock: two clients scrolling one workspace at the same time, rather than one waiting out a
   * scroll that was abandoned. A fleet that never runs two scrolls of one workspace at once keeps it at 0. The
   * `foreignScroll` fault does not count here.
   */
  readonly scrollExistsWhileLive: number
  readonly errorsByCode: Readonly<Record<string, number>>
  readonly errorsByStatus: Readonly<Record<number, number>>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  /** Every request, including those no workspace accepted. */
  readonly total: Counters
  /** By token: the requests that authenticated as it. */
  readonly workspaces: Readonly<Record<string, Counters>>
  /**
   * By app `id_code` (what `GET /me` names; one per seed): the sum of its tokens' counters. Tokens of one app share its
   * one open scroll and its rate limit, so a `scroll_exists` one token meets may come from another's scroll.
   */
  readonly apps: Readonly<Record<string, Counters>>
}

/**
 * What mutations did to a data set.
 *
 * @since 0.1.0
 * @category models
 */
export interface Changes {
  readonly added: ReadonlyArray<string>
  readonly removed: ReadonlyArray<string>
}

/**
 * @since 0.1.0
 * @category errors
 */
export class WorkspaceNotFound extends Schema.TaggedError<WorkspaceNotFound>()("WorkspaceNotFound", {
  token: Schema.String
}) {
  override get message(): string {
    return `no workspace has the token ${JSON.stringify(this.token)}`
  }
}

/**
 * Defaults: data set sizes, page size, expiry, the scroll_param's behaviour, a restart's order, compression, and the
 * rate limit when the plan sets none.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  users: 1000,
  leads: 200,
  companies: 50,
  pageSize: 100,
  expiry: Duration.seconds(60),
  defaultVersion: "2.14",
  scrollParam: "rotating",
  restartOrder: "varied",
  compression: true,
  /**
   * Requests per 10-second window. Intercom's default app limit is 10,000 a minute (about 1,666 per window); the
   * simulator allows more so that its default never throttles a benchmark. Set `faults.rateLimit` to be strict.
   */
  rateLimit: 10_000
} as const

/**
 * @since 0.1.0
 * @category tags
 */
export class Simulator extends Context.Tag("@intercom-scroll/simulator/Simulator")<Simulator, {
  /** The HTTP app: serve it anywhere, or use `layerClient` / `layerServer`. */
  readonly app: HttpApp.Default
  readonly stats: Effect.Effect<Stats>
  /** The ids of a workspace's records now present (mutations applied). */
  readonly ids: (token: string, resource: Resources.Resource) => Effect.Effect<ReadonlyArray<string>, WorkspaceNotFound>
  /** The ids mutations have added to and removed from a workspace's data set. */
  readonly changes: (token: string, resource: Resources.Resource) => Effect.Effect<Changes, WorkspaceNotFound>
}>() {}

// A key the plan does not know is refused: a misspelt fault (`cutBodyat`, from JSON) would otherwise never fire.
const validateFaults = Schema.validateEither(FaultPlans.FaultPlan, { onExcessProperty: "error" })

const longestWait = Duration.millis(Link.longestWaitMillis)

const waitMistake = (name: string, wait: Duration.DurationInput | undefined) =>
  wait !== undefined && !Duration.lessThanOrEqualTo(Duration.decode(wait), longestWait)
    ? `the ${name} must be at most ${Duration.format(longestWait)}, not ${Duration.format(Duration.decode(wait))}`
    : undefined

const isCount = (n: number | undefined, least: number) => n === undefined || (Number.isSafeInteger(n) && n >= least)

/** What is wrong with `options`, in words, or undefined. */
const optionsMistake = (options: SimulatorOptions): string | undefined => {
  const { bandwidth, expiry, pageSize } = options
  if (!isCount(pageSize, 1)) return `the page size must be a whole number of records, at least 1, not ${pageSize}`
  if (expiry !== undefined && !Duration.greaterThan(Duration.decode(expiry), Duration.zero)) {
    return `the expiry must be longer than 0, not ${Duration.format(Duration.decode(expiry))}`
  }
  if (bandwidth !== undefined && !(bandwidth > 0 && Number.isFinite(bandwidth))) {
    return `the bandwidth must be a positive number of megabits per second, not ${bandwidth}`
  }
  const handshake = waitMistake("handshake", options.handshake)
  if (handshake !== undefined) return handshake
  const tokens = new Set<string>()
  for (const { companies, faults, leads, seed, token, users } of options.workspaces) {
    if (token === "") return "a workspace's token is empty"
    // `Authorization: Bearer <token>` cannot carry one: every request would be refused 401.
    if (/\s/.test(token)) return `the token ${JSON.stringify(token)} holds whitespace, which no Authorization header can carry`
    if (seed !== undefined && !Number.isSafeInteger(seed)) return `the seed of workspace ${token} must be a whole number, not ${seed}`
    const plan = validateFaults(faults ?? FaultPlans.none)
    if (Either.isLeft(plan)) {
      const issues = ParseResult.ArrayFormatter.formatErrorSync(plan.left)
      return `the faults of workspace ${token}: ${issues.map((issue) => `${issue.path.join(".")} ${issue.message}`).join("; ")}`
    }
    const latency = waitMistake(`latency of workspace ${token}`, faults?.latency)
    if (latency !== undefined) return latency
    if (tokens.has(token)) return `the token ${token} names two workspaces`
    tokens.add(token)
    for (const [resource, count] of Object.entries({ users, leads, companies })) {
      if (!isCount(count, 0)) return `the ${resource} of workspace ${token} must be a whole number, at least 0, not ${count}`
    }
  }
  return undefined
}

/**
 * Creates a simulator whose time (expiry, rate-limit windows, latency, bandwidth, the foreign scroll) is the caller's
 * `Clock`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: SimulatorOptions): Effect.Effect<Simulator["Type"]> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const mistake = optionsMistake(options)
    // A test's own mistake, as a defect: a page size of 0 would otherwise end every scroll at once, with no records.
    if (mistake !== undefined) return yield* Effect.dieMessage(`Simulator: ${mistake}`)
    const bandwidth = options.bandwidth
    const workspaces = new Map<string, Workspace>()
    // Tokens of one seed are tokens of one app: one open scroll and one rate-limit window between them.
    const apps = new Map<number, AppState>()
    for (const workspace of options.workspaces) {
      const seed = workspace.seed ?? hashString(workspace.token)
      const app = apps.get(seed) ?? new AppState()
      apps.set(seed, app)
      workspaces.set(
        workspace.token,
        new Workspace({
          token: workspace.token,
          seed,
          counts: {
            users: workspace.users ?? defaults.users,
            leads: workspace.leads ?? defaults.leads,
            companies: workspace.companies ?? defaults.companies
          },
          faults: workspace.faults ?? FaultPlans.none,
          defaultVersion: workspace.defaultVersion ?? defaults.defaultVersion,
          pageSize: options.pageSize ?? defaults.pageSize,
          expiry: Duration.decode(options.expiry ?? defaults.expiry),
          defaultRateLimit: defaults.rateLimit,
          scrollParam: options.scrollParam ?? defaults.scrollParam,
          restartOrder: options.restartOrder ?? defaults.restartOrder,
          readAdmins: workspace.readAdmins ?? true
        }, clock, app)
      )
    }
    const unauthenticated = new InternalStats.Counters()
    const workspace = (token: string) => {
      const found = workspaces.get(token)
      return found === undefined ? Effect.fail(new WorkspaceNotFound({ token })) : Effect.succeed(found)
    }
    return Simulator.of({
      app: App.make({
        workspaces,
        unauthenticated,
        requestIds: new Rng(0x5eed),
        compression: options.compression ?? defaults.compression,
        link: bandwidth === undefined ? undefined : Link.make(bandwidth, clock),
        handshake: options.handshake === undefined ? undefined : Duration.decode(options.handshake),
        clock
      }),
      stats: Effect.sync(() => {
        const perApp = new Map<string, Array<Counters>>()
        const perWorkspace = Array.from(workspaces, ([token, workspace]) => {
          const counters = workspace.counters.snapshot()
          perApp.set(workspace.appId, [...(perApp.get(workspace.appId) ?? []), counters])
          return [token, counters] as const
        })
        return {
          total: InternalStats.sum([unauthenticated.snapshot(), ...perWorkspace.map(([, counters]) => counters)]),
          workspaces: Object.fromEntries(perWorkspace),
          apps: Object.fromEntries(Array.from(perApp, ([appId, all]) => [appId, InternalStats.sum(all)]))
        }
      }),
      ids: (token, resource) => Effect.map(workspace(token), (found) => found.datasets[resource].ids()),
      changes: (token, resource) =>
        Effect.map(workspace(token), (found) => ({
          added: found.datasets[resource].addedIds(),
          removed: found.datasets[resource].removedIds()
        }))
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: SimulatorOptions): Layer.Layer<Simulator> => Layer.effect(Simulator, make(options))

/**
 * The simulator and an `HttpClient` that it answers in process, without sockets. Requests run in the caller's fiber;
 * their time (expiry, rate-limit windows, latency, bandwidth, the `Date` header) is the `Clock` the layer was built
 * under, as for `make`, so a TestClock drives it. Any base URL reaches the simulator, and relative URLs work too.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: SimulatorOptions): Layer.Layer<Simulator | HttpClient.HttpClient> =>
  Layer.effect(HttpClient.HttpClient, Effect.map(Simulator, (simulator) => InProcessClient.make(simulator.app))).pipe(
    Layer.provideMerge(layer(options))
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions extends SimulatorOptions {
  /** 0 (the default) picks a free port. */
  readonly port?: number | undefined
  /** Defaults to 127.0.0.1. */
  readonly host?: string | undefined
}

/**
 * The simulator on a real port (Node's HTTP server); the address is readable from `HttpServer.HttpServer`, and
 * `baseUrl` formats it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerServer = (
  options: ServerOptions
): Layer.Layer<Simulator | HttpServer.HttpServer, ServeError> =>
  Layer.unwrapEffect(
    Effect.map(Simulator, (simulator) =>
      HttpServer.serve(
        simulator.app.pipe(Effect.provideService(Connection.CurrentConnection, Connection.node()))
      ))
  ).pipe(
    Layer.provideMerge(
      NodeHttpServer.layerServer(closingServer, { port: options.port ?? 0, host: options.host ?? "127.0.0.1" })
    ),
    Layer.provideMerge(layer(options))
  )

/**
 * A server whose `close` also ends the connections open on it. Node's waits for every request in flight to be
 * answered, which under `latency` or `bandwidth` may take as long as they say: a stop (SIGTERM, a test's scope) would
 * wait for it, and its stats would leave out what was served meanwhile.
 */
const closingServer = () => {
  const server = createServer()
  const close = server.close.bind(server)
  server.close = (callback) => {
    close(callback)
    server.closeAllConnections()
    return server
  }
  return server
}

/**
 * The simulator on a free loopback port, with an `HttpClient` whose relative URLs reach it: tests over real HTTP that
 * send requests of their own. It prefixes every URL, so `IntercomClient` (absolute URLs) goes over `layerServer`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTest = (
  options: SimulatorOptions
): Layer.Layer<Simulator | HttpServer.HttpServer | HttpClient.HttpClient, ServeError> =>
  HttpServer.layerTestClient.pipe(
    Layer.provide(NodeHttpClient.layerWithoutAgent),
    Layer.provide(NodeHttpClient.makeAgentLayer({ keepAlive: false })),
    Layer.provideMerge(layerServer({ ...options, port: 0 }))
  )

/**
 * The base URL of a running server, such as `http://127.0.0.1:4010` (a wildcard host is reached on loopback).
 *
 * @since 0.1.0
 * @category accessors
 */
export const baseUrl: Effect.Effect<string, never, HttpServer.HttpServer> = HttpServer.addressWith((address) =>
  Effect.succeed(
    address._tag === "UnixAddress"
      ? `http://unix:${address.path}`
      : `http://${formatHost(address.hostname)}:${address.port}`
  )
)

const formatHost = (hostname: string): string =>
  hostname === "0.0.0.0" || hostname === "::" ? "127.0.0.1" : hostname.includes(":") ? `[${hostname}]` : hostname
