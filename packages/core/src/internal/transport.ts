import type { HttpClientError } from "@effect/platform"
import { Effect } from "effect"
import type { ConnectFailure } from "../ScrollError.js"

/**
 * What the transport said went wrong, and whether it failed to connect at all. The platform's `RequestError` holds the
 * transport's error as its `cause`: undici's `request` gives Node's own error (`connect ECONNREFUSED 127.0.0.1:4010`,
 * with `code` and `syscall`), `fetch` a `TypeError("fetch failed")` whose `cause` is that error, and Node an
 * `AggregateError` of one error per address when it tried several.
 */
export interface TransportFailure {
  /** The transport's own words, outermost first, each once. */
  readonly detail: string
  /** Set when no connection was made, so that the request never reached a server. */
  readonly connect: ConnectFailure | undefined
  /** The proxy in between (its origin), when the connection failed on the way to it or at it. */
  readonly proxy: string | undefined
  /** The HTTP client followed redirects until it gave up (fetch's 20): a loop, or a chain no request got through. */
  readonly redirectLoop: boolean
  /**
   * The HTTP client itself was closed by whoever owns it (undici's `ClientDestroyedError` or `ClientClosedError`, which
   * a dispatcher raises only once its owner destroyed or closed it): every request after fails the same way.
   */
  readonly clientClosed: boolean
  /**
   * The HTTP client could not make a request of the one it was given (the platform's `InvalidUrl`, or `Encode`). The
   * IntercomClient builds valid GETs from a base URL it checked, so a client that changes the requests it is given
   * made them so (one that prefixes every URL, as `HttpServer.layerTestClient`'s): every request after fails the same way.
   */
  readonly unsendable: boolean
}

interface SystemError {
  readonly message: string
  readonly code: string | undefined
  readonly syscall: string | undefined
  /**
   * Set by the HttpClient on an error of the proxy's leg (reaching the proxy, or its answer to CONNECT), which comes
   * before any request goes through it: the proxy's origin, never its credentials.
   */
  readonly proxy: string | undefined
}

const MAX_DEPTH = 5

const field = (error: object, name: string): string | undefined => {
  const value = (error as Record<string, unknown>)[name]
  return typeof value === "string" ? value : undefined
}

/** The error and those it wraps (`cause`) or gathers (`AggregateError.errors`), outermost first. */
const chain = (cause: unknown): ReadonlyArray<SystemError> => {
  const found: Array<SystemError> = []
  const visit = (error: unknown, depth: number) => {
    if (depth > MAX_DEPTH || typeof error !== "object" || error === null) return
    found.push({
      message: error instanceof Error ? error.message : "",
      code: field(error, "code"),
      syscall: field(error, "syscall"),
      proxy: field(error, "proxy")
    })
    if (error instanceof AggregateError) for (const inner of error.errors) visit(inner, depth + 1)
    visit((error as { readonly cause?: unknown }).cause, depth + 1)
  }
  visit(cause, 0)
  return found
}

/**
 * TLS verification and handshake failures: OpenSSL's certificate codes (`CERT_HAS_EXPIRED`,
 * `DEPTH_ZERO_SELF_SIGNED_CERT`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, …) and Node's (`ERR_TLS_CERT_ALTNAME_INVALID`,
 * `ERR_SSL_WRONG_VERSION_NUMBER` for a server that does not speak TLS on that port).
 */
const isTls = (code: string) => /CERT|^UNABLE_TO_|^HOSTNAME_MISMATCH$|^ERR_(SSL|TLS)_/.test(code)

/**
 * How one error of the chain failed to connect, if it did: only errors of the connection's own steps count (name
 * resolution, `connect`, the TLS handshake), so that a timeout or a reset on a connection already made (when the
 * request may have reached the server) stays a transport failure.
 */
const connectFailureOf = ({ code, syscall }: SystemError): ConnectFailure | undefined => {
  if (code === undefined) return undefined
  if (isTls(code)) return "tls"
  if (code === "UND_ERR_CONNECT_TIMEOUT") return "timeout"
  if (syscall === "getaddrinfo") return code === "ENOTFOUND" ? "unknown-host" : "network"
  if (syscall !== "connect") return undefined
  if (code === "ECONNREFUSED") return "refused"
  if (code === "ETIMEDOUT") return "timeout"
  return "network"
}

/**
 * OpenSSL's error line (`80ACA21E837F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:
 * ../deps/openssl/openssl/ssl/record/ssl3_record.c:350:`) as its reason alone; a server that answers a TLS hello in
 * plain HTTP gets the likely cause beside it.
 */
const openSslLine = /^[0-9A-Fa-f]+:error:[0-9A-Fa-f]+:[^:]*:[^:]*:([^:]+):[^:]*:\d+:\s*(.*)$/

const tidy = (message: string): string => {
  const line = openSslLine.exec(message.trim())
  if (line === null) return message
  const reason = line[2] === "" ? line[1]! : `${line[1]!}: ${line[2]!}`
  return reason === "wrong version number" ? `${reason} (the server there may speak plain HTTP, not TLS)` : reason
}

/**
 * Reads a transport failure; `redact` is applied to each of the transport's messages, never to our own words. A
 * failure of the proxy's leg is a connect failure whatever its errors say (a tunnel closed unanswered is a socket's
 * error): nothing went through the proxy yet.
 */
export const describe = (
  error: HttpClientError.HttpClientError,
  redact: (text: string) => string
): TransportFailure => {
  const errors = chain(error.cause)
  const messages = [error.description, ...errors.map((e) => e.message)]
    .filter((message): message is string => message !== undefined && message !== "")
    .map((message) => redact(tidy(message)))
  const unique = messages.filter((message, i) => messages.indexOf(message) === i)
  let connect: ConnectFailure | undefined
  for (const inner of errors) connect ??= connectFailureOf(inner)
  const proxy = errors.find((inner) => inner.proxy !== undefined)?.proxy
  if (proxy !== undefined) connect ??= "proxy"
  return {
    detail: unique.length === 0 ? error.reason : unique.join(": "),
    connect,
    proxy: proxy === undefined ? undefined : redact(proxy),
    // undici's fetch, in Node: `TypeError("fetch failed")` caused by `TypeError("redirect count exceeded")`.
    redirectLoop: errors.some((inner) => inner.message === "redirect count exceeded"),
    clientClosed: errors.some((inner) => inner.code === "UND_ERR_DESTROYED" || inner.code === "UND_ERR_CLOSED"),
    unsendable: error._tag === "RequestError" && error.reason !== "Transport"
  }
}

/**
 * What a request dies with when the `HttpClient` beneath is closed (`TransportFailure.clientClosed`) or cannot send
 * what it is given (`unsendable`): a mistake in the program's wiring, not a failure of Intercom's, which no restart or
 * retry mends (five restarts spent ~30 s on it before). Says what happened and the wiring that leads to it; undefined
 * for a failure of the network's.
 */
export const wiringDefect = (failure: TransportFailure): Effect.Effect<never> | undefined => {
  if (failure.clientClosed) {
    return Effect.die(
      new Error(
        `The HTTP client the IntercomClient was built on is closed (${failure.detail}): the layer or scope that provided its ` +
          "HttpClient ended while the IntercomClient was still in use. Provide the HttpClient for as long as the " +
          "IntercomClient (Layer.provide on the IntercomClient's layer, not Effect.provide around make alone), and, in a " +
          "server whose responses stream a scroll, outside the server's layer, so that it closes after the responses in flight."
      )
    )
  }
  if (failure.unsendable) {
    return Effect.die(
      new Error(
        `The HTTP client the IntercomClient was built on could not send its request (${failure.detail}): the ` +
          "IntercomClient builds each request from its checked base URL, so the client changed it on the way " +
          "(HttpClient.mapRequest, or a client that prefixes every URL, as HttpServer.layerTestClient's does). Give the " +
          "IntercomClient an HttpClient that sends requests as they are (over the simulator: Simulator.layerServer)."
      )
    )
  }
  return undefined
}
