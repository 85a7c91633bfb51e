/**
 * undici's HttpClient (`NodeHttpClient.layerUndici`), loaded at the first request instead of when the CLI starts.
 * undici is the largest library the bin carries, and evaluating it loads Node's own copy as well (for
 * `globalThis.Headers`): about half of what `intercom-scroll --help` spent starting (packages/bench/NOTES.md,
 * "Startup"), for a command that never sends a request.
 *
 * Behind a proxy that the environment names (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, as curl reads them), its requests
 * go through that proxy, but to this machine.
 *
 * @since 0.1.0
 */
import { HttpClient, type HttpClientError } from "@effect/platform"
import type * as Undici from "@effect/platform-node/Undici"
import { Config, Context, Effect, Layer } from "effect"

/** The first of the two variables that is set, even to nothing, as undici reads them (`??`): its name and value. */
const variable = (lowercase: string, uppercase: string) =>
  Config.string(lowercase).pipe(
    Config.map((value) => ({ name: lowercase, value })),
    Config.orElse(() => Config.map(Config.string(uppercase), (value) => ({ name: uppercase, value }))),
    Config.withDefault({ name: uppercase, value: "" })
  )

/**
 * The proxies as undici's `EnvHttpProxyAgent` reads them from the environment, read here through the ConfigProvider
 * and handed to it, so that it decides with the values this module sees: `https_proxy` for https:// URLs
 * (`http_proxy` where it is empty), `http_proxy` for http:// ones, each also in capitals (the lowercase form wins),
 * and `no_proxy`, the hosts reached directly.
 */
const proxies = Config.all({
  http: variable("http_proxy", "HTTP_PROXY"),
  https: variable("https_proxy", "HTTPS_PROXY"),
  no: variable("no_proxy", "NO_PROXY")
})

/**
 * Why the proxy gave no tunnel, marked with its origin (never its credentials): the core reads `proxy` on a transport
 * error's chain, and names the proxy, not Intercom, as what could not be reached. Its code is never undici's
 * `UND_ERR_SOCKET`, which undici takes for a connection to make again at once: a proxy that closes each CONNECT
 * unanswered was asked again ~2,500 times a second, at a core's worth of CPU, until the request timed out.
 */
class ProxyTunnelError extends Error {
  readonly code = "ERR_PROXY_TUNNEL"
  constructor(message: string, readonly proxy: string, options?: ErrorOptions) {
    super(message, options)
  }
}

/** What the proxy's refusal of a CONNECT says, for its status. */
const refusal = (status: number) =>
  `the proxy answered CONNECT with HTTP ${status}${status === 407 ? ", Proxy Authentication Required" : ""}`

/**
 * The client to the proxy that `ProxyAgent` sends each CONNECT through, as its default (a `Pool`), but for the errors
 * of a CONNECT: each becomes a `ProxyTunnelError`, a refusal (a status other than 200) too, which `ProxyAgent` would
 * otherwise say without naming the proxy.
 */
const proxyClient = (undici: typeof Undici) => (origin: URL, options: object): Undici.Dispatcher => {
  const proxy = origin.origin
  const failed = (cause: unknown): never => {
    const socketClosed = typeof cause === "object" && cause !== null && (cause as { readonly code?: unknown }).code === "UND_ERR_SOCKET"
    const message = socketClosed
      ? "the proxy closed the connection before answering CONNECT"
      : cause instanceof Error
      ? cause.message
      : String(cause)
    throw new ProxyTunnelError(message, proxy, { cause })
  }
  type ConnectOptions = Parameters<Undici.Pool["connect"]>[0]
  type ConnectData = Undici.Dispatcher.ConnectData
  class ProxyClient extends undici.Pool {
    override connect(options: ConnectOptions): Promise<ConnectData>
    override connect(options: ConnectOptions, callback: (err: Error | null, data: ConnectData) => void): void
    override connect(
      options: ConnectOptions,
      callback?: (err: Error | null, data: ConnectData) => void
    ): Promise<ConnectData> | void {
      // `ProxyAgent` asks for the promise; the callback's form is left as it is.
      if (callback !== undefined) return super.connect(options, callback)
      return super.connect(options).then((data) => {
        if (data.statusCode === 200) return data
        data.socket.on("error", () => {}).destroy()
        throw new ProxyTunnelError(refusal(data.statusCode), proxy)
      }, failed)
    }
  }
  return new ProxyClient(origin, options)
}

/**
 * The TLS of a client's connections to its servers (through a proxy's tunnel too), over Node's defaults: `ca` in place
 * of Node's certificate authorities, `cert` and `key` shown to a server that asks for a client certificate. PEM texts.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tls {
  readonly ca?: string
  readonly cert?: string
  readonly key?: string
}

/**
 * undici's client: over a dispatcher of its own, as before, when no proxy is named; else over an `EnvHttpProxyAgent`,
 * which tunnels each request through the proxy for its URL's scheme (unless `no_proxy` names its host, or the host is
 * this machine), keeping the tunnel alive from one request to the next as the plain dispatcher keeps its connection.
 * `tls`: each connection to a server, direct or tunnelled, made with it.
 */
const undiciLayer = (tls: Tls | undefined) =>
  Effect.gen(function*() {
    const NodeHttpClient = yield* Effect.promise(() => import("@effect/platform-node/NodeHttpClient"))
    const { http, https, no } = yield* Effect.orDie(proxies)
    const named = namedProxies({ http, https })
    if (named.length === 0 && tls === undefined) return NodeHttpClient.layerUndici
    const loaded = yield* Effect.promise(() => import("@effect/platform-node/Undici"))
    // undici is CommonJS: an ES module bundle (`pnpm start`'s) keeps only the default export of its `export *`.
    const undici = loaded.EnvHttpProxyAgent === undefined ? (loaded.default as unknown as typeof Undici) : loaded
    const dispatcher = named.length === 0 ? directAgent(undici, tls) : proxyAgent(undici, { http, https, no }, tls)
    return NodeHttpClient.layerUndiciWithoutDispatcher.pipe(
      Layer.provide(Layer.scoped(NodeHttpClient.Dispatcher, dispatcher))
    )
  })

/** The proxy variables that name a proxy, HTTPS's first. */
const namedProxies = ({ http, https }: Pick<Config.Config.Success<typeof proxies>, "http" | "https">) =>
  [https, http].filter((proxy) => proxy.value !== "")

/** A proxy this program does not use, by its variable's name (the value may hold a password). */
class OtherScheme extends Error {}

/**
 * The first proxy named by a URL of another scheme than http(s): undici would take a socks5:// one too (experimental,
 * said in a warning), and its failure would be said as the server's.
 */
const otherScheme = (named: Pick<Config.Config.Success<typeof proxies>, "http" | "https">): OtherScheme | undefined => {
  for (const proxy of namedProxies(named)) {
    // Only a URL with an authority (`scheme://`): `proxy.example:3128` is no URL of any scheme, refused as such below.
    const scheme = /^[a-z][a-z\d+.-]*:\/\//i.exec(proxy.value.trim())?.[0].slice(0, -2).toLowerCase()
    if (scheme !== undefined && scheme !== "http:" && scheme !== "https:") {
      return new OtherScheme(`${proxy.name} names a ${scheme}// proxy, which this program does not use: give an http:// or https:// proxy`)
    }
  }
  return undefined
}

/** A dispatcher that reaches every server directly, closed with the scope. */
const directAgent = (undici: typeof Undici, tls: Tls | undefined) =>
  Effect.acquireRelease(Effect.sync(() => new undici.Agent({ connect: { ...tls } })), (agent) => Effect.promise(() => agent.destroy()))

/**
 * The `EnvHttpProxyAgent` of the proxies named, but for this machine (the simulator, a collector beside the command),
 * reached directly whatever the variables say, as Go's HTTP client does: the CLI sends the token over plain http to
 * this machine alone, and a proxy would carry it off the machine in clear.
 */
const proxyAgent = (
  undici: typeof Undici,
  named: Config.Config.Success<typeof proxies>,
  tls: Tls | undefined
) =>
  Effect.gen(function*() {
    // Loaded here, as undici is: `--help` loads neither.
    const { IntercomClient } = yield* Effect.promise(() => import("@intercom-scroll/core"))
    const direct = yield* directAgent(undici, tls)
    const proxied = yield* envProxyAgent(undici, named, tls)
    return proxied.compose((dispatch) => (options, handler) =>
      options.origin !== undefined && IntercomClient.isThisMachine(new URL(options.origin))
        ? direct.dispatch(options, handler)
        : dispatch(options, handler)
    )
  })

/** undici's `EnvHttpProxyAgent` of the proxies named. */
const envProxyAgent = (
  undici: typeof Undici,
  { http, https, no }: Config.Config.Success<typeof proxies>,
  tls: Tls | undefined
) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        const other = otherScheme({ http, https })
        if (other !== undefined) throw other
        return new undici.EnvHttpProxyAgent({
          httpProxy: http.value,
          httpsProxy: https.value,
          noProxy: no.value,
          clientFactory: proxyClient(undici),
          // `connect` for the servers reached directly (no_proxy), `requestTls` for those reached through a tunnel.
          ...(tls === undefined ? {} : { connect: { ...tls }, requestTls: { ...tls } })
        })
      },
      // undici refuses, as it builds the agent, what is not an http(s) URL (`proxy.example:3128`): said by the
      // variables' names, never their values, which may hold the proxy's password.
      catch: (cause) =>
        cause instanceof OtherScheme ? cause : new Error(
          `${namedProxies({ http, https }).map((proxy) => proxy.name).join(" or ")} does not hold a proxy's URL, such as http://proxy.example:3128`,
          { cause }
        )
    }).pipe(Effect.orDie),
    (agent) => Effect.promise(() => agent.destroy())
  )

/**
 * An HttpClient that loads undici's and builds it in this layer's scope (its connections close with it) when the
 * first request is sent, then hands every request to it; its connections made with `options.tls` where it is given.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (options: { readonly tls?: Tls }): Layer.Layer<HttpClient.HttpClient> =>
  Layer.scoped(
    HttpClient.HttpClient,
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      const undici = yield* Effect.cached(
        undiciLayer(options.tls).pipe(
          Effect.flatMap((undici) => Layer.buildWithScope(undici, scope)),
          Effect.map(Context.get(HttpClient.HttpClient)),
          // Loaded once, whichever request comes first and even if that one is interrupted meanwhile.
          Effect.uninterruptible
        )
      )
      // makeWith adds nothing of its own (no span, no headers): undici's client does all that once, as it would alone.
      return HttpClient.makeWith<never, never, HttpClientError.HttpClientError, never>(
        (request) => Effect.flatMap(Effect.zip(undici, request), ([client, ready]) => client.execute(ready)),
        Effect.succeed
      )
    })
  )

/**
 * `layerWith` over Node's TLS defaults: the command's own client.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<HttpClient.HttpClient> = layerWith({})
