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
import { Context, Duration, Effect, Layer, Schema } from "effect"
import { createServer } from "node:http"
import * as FaultPlans from "./FaultPlan.js"
import type * as Resources from "./Resource.js"
import * as App from "./internal/app.js"
import * as Connection from "./internal/connection.js"
import * as InProcessClient from "./internal/inProcessClient.js"
import { hashString, Rng } from "./internal/random.js"
import * as InternalStats from "./internal/stats.js"
import { Workspace } from "./internal/workspace.js"

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
  /** Seeds the data set; defaults to a hash of the token, so that workspaces differ. */
  readonly seed?: number
  readonly users?: number
  readonly leads?: number
  readonly companies?: number
  readonly faults?: FaultPlans.FaultPlan
  /**
   * The API version of requests without an `Intercom-Version` header. Modern workspaces default to a 2.x version,
   * where users and leads scroll are refused; clients that send no header (intercom-client 2.x) need "1.4".
   */
  readonly defaultVersion?: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SimulatorOptions {
  readonly workspaces: ReadonlyArray<WorkspaceOptions>
  /** Records a page; Intercom sends about 100. */
  readonly pageSize?: number
  /** How long an unused scroll_param lives; Intercom's is a minute. */
  readonly expiry?: Duration.DurationInput
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Counters {
  /** Requests received (for a workspace: those that authenticated as it). */
  readonly requests: number
  readonly scrollsOpened: number
  /** Pages answered with 200, the empty last page included. */
  readonly pagesServed: number
  readonly recordsServed: number
  readonly bodiesCut: number
  readonly connectionsDropped: number
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
  readonly workspaces: Readonly<Record<string, Counters>>
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
 * Defaults: data set sizes, page size, expiry and the rate limit when the plan sets none.
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

const validateFaults = Schema.validateSync(FaultPlans.FaultPlan)

/**
 * Creates a simulator whose time (expiry, rate-limit windows, latency, the foreign scroll) is the caller's `Clock`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: SimulatorOptions): Effect.Effect<Simulator["Type"]> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const workspaces = new Map<string, Workspace>()
    for (const workspace of options.workspaces) {
      if (workspaces.has(workspace.token)) {
        return yield* Effect.dieMessage(`Simulator: the token ${workspace.token} names two workspaces`)
      }
      workspaces.set(
        workspace.token,
        new Workspace({
          token: workspace.token,
          seed: workspace.seed ?? hashString(workspace.token),
          counts: {
            users: workspace.users ?? defaults.users,
            leads: workspace.leads ?? defaults.leads,
            companies: workspace.companies ?? defaults.companies
          },
          faults: validateFaults(workspace.faults ?? FaultPlans.none),
          defaultVersion: workspace.defaultVersion ?? defaults.defaultVersion,
          pageSize: options.pageSize ?? defaults.pageSize,
          expiry: Duration.decode(options.expiry ?? defaults.expiry),
          defaultRateLimit: defaults.rateLimit
        }, clock)
      )
    }
    const unauthenticated = new InternalStats.Counters()
    const workspace = (token: string) => {
      const found = workspaces.get(token)
      return found === undefined ? Effect.fail(new WorkspaceNotFound({ token })) : Effect.succeed(found)
    }
    return Simulator.of({
      app: App.make({ workspaces, unauthenticated, requestIds: new Rng(0x5eed) }),
      stats: Effect.sync(() => {
        const perWorkspace = Array.from(workspaces, ([token, workspace]) => [token, workspace.counters.snapshot()] as const)
        return {
          total: InternalStats.sum([unauthenticated.snapshot(), ...perWorkspace.map(([, counters]) => counters)]),
          workspaces: Object.fromEntries(perWorkspace)
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
 * The simulator and an `HttpClient` that it answers in process, without sockets. Requests run in the caller's fiber,
 * so a TestClock drives expiry, rate-limit windows and latency. Any base URL reaches the simulator, and relative URLs
 * work too.
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
  readonly port?: number
  /** Defaults to 127.0.0.1. */
  readonly host?: string
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
        simulator.app.pipe(Effect.provideService(Connection.CurrentConnection, Connection.node))
      ))
  ).pipe(
    Layer.provideMerge(
      NodeHttpServer.layerServer(createServer, { port: options.port ?? 0, host: options.host ?? "127.0.0.1" })
    ),
    Layer.provideMerge(layer(options))
  )

/**
 * The simulator on a free loopback port, with an `HttpClient` whose relative URLs reach it: tests over real HTTP.
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
