/**
 * The CLI behind a forward proxy, as curl is: its bin in a process of its own with HTTP_PROXY naming a proxy that this
 * process serves (and records), scrolling a simulator on a port of this process. The machine's own proxy variables
 * never reach the bin (support/processes.ts): each case sets those it means.
 *
 * The CLI reaches this machine (`localhost`, 127.x.x.x, `[::1]`) directly whatever the variables say, so the servers a
 * case sends through the proxy are named `localhost.`: this machine written as a fully qualified name, which the rule
 * does not take for it (nor does Go's) and which only the proxy is relied on to resolve, by its own lookup. Over
 * https, as Intercom is reached: the client takes plain http only to this machine. TLS checks a name without its final
 * dot, so the test certificate for `localhost` holds.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { OtlpCollector } from "@intercom-scroll/testing"
import { Effect, Layer } from "effect"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { cli, root, run, withoutProgress } from "./support/processes.js"
import { ndjsonIds } from "./support/workspace.js"

const USERS = 1_200
const PAGE_SIZE = 50

/** A workspace for each case, so that none waits on another's scroll. */
const tokens = {
  proxied: "proxy-test-token-3e9a",
  bypassed: "proxy-test-token-b71d",
  thisMachine: "proxy-test-token-61c7",
  telemetry: "proxy-test-token-c05f",
  telemetryTls: "proxy-test-token-8a41",
  started: "proxy-test-token-5d2a"
}

const served = Simulator.layerServer({
  workspaces: Object.values(tokens).map((token) => ({ token, users: USERS })),
  pageSize: PAGE_SIZE
})

const layer = Layer.merge(served, NodeContext.layer)

/** A server's `localhost` as the proxy names it: the name only the proxy resolves (above). */
const throughProxy = (url: string) => url.replace(/^(https?:\/\/)(?:localhost|127\.0\.0\.1)(?=:)/, "$1localhost.")

/** A connection's end, and an error of it, end the socket at its other side too. */
const piped = (one: Net.Socket, other: Net.Socket) => {
  one.pipe(other).pipe(one)
  one.on("close", () => other.destroy())
  other.on("close", () => one.destroy())
}

/**
 * `make`'s server on a free port of `host` until the scope closes, when the sockets it gave `track` (its connections,
 * and those it made) are destroyed and it is closed. Gives the port.
 */
const serve = (host: string, make: (track: (socket: Net.Socket) => Net.Socket) => Net.Server) =>
  Effect.gen(function*() {
    const sockets = new Set<Net.Socket>()
    const server = make((socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
      socket.on("error", () => socket.destroy())
      return socket
    })
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => void server.listen(0, host, () => resume(Effect.void))),
      () =>
        Effect.async<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resume(Effect.void))
        })
    )
    return (server.address() as Net.AddressInfo).port
  })

/**
 * The simulator over https at `https://localhost.:PORT`, as Intercom is reached: TLS with the test certificate for
 * `localhost`, each connection then piped to the simulator. On the address `localhost` resolves to, as the proxy
 * resolves it.
 */
const simulatorOverTls = Effect.gen(function*() {
  const simulator = new URL(yield* Simulator.baseUrl)
  const [cert, key] = yield* Effect.promise(() =>
    Promise.all([Fs.readFile(OtlpCollector.tlsFixture("server.crt")), Fs.readFile(OtlpCollector.tlsFixture("server.key"))])
  )
  const port = yield* serve("localhost", (track) =>
    Tls.createServer({ cert, key }, (client) => piped(track(client), track(Net.connect(Number(simulator.port), simulator.hostname)))))
  return `https://localhost.:${port}`
})

/**
 * A forward proxy on a free loopback port until the scope closes. undici's `ProxyAgent` tunnels every request, to an
 * http:// URL too, through `CONNECT host:port`: this answers it with a tunnel to that address (`localhost.` looked up
 * as `localhost`), and anything else (an absolute-form `GET http://…`) with 405. Gives its URL, and the first line of
 * each request it was sent.
 */
const forwardProxy = Effect.gen(function*() {
  const requests: Array<string> = []
  const port = yield* serve("127.0.0.1", (track) =>
    Net.createServer((client) => {
      track(client)
      let head = Buffer.alloc(0)
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf("\r\n\r\n")
        if (end === -1) return
        client.off("data", onData)
        const line = head.subarray(0, end).toString("latin1").split("\r\n")[0]!
        requests.push(line)
        const target = /^CONNECT (\S+):(\d+) HTTP\/1\.1$/.exec(line)
        if (target === null) {
          client.end("HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
          return
        }
        const upstream = track(Net.connect(Number(target[2]), target[1] === "localhost." ? "localhost" : target[1]!, () => {
          client.write("HTTP/1.1 200 Connection Established\r\n\r\n")
          upstream.write(head.subarray(end + 4))
          piped(client, upstream)
        }))
        upstream.on("close", () => client.destroy())
        client.on("close", () => upstream.destroy())
      }
      client.on("data", onData)
    }))
  return { url: `http://127.0.0.1:${port}`, requests }
})

/** The bin trusting the test certificate, which `simulatorOverTls` shows. */
const trustingTheTestCertificate = { NODE_EXTRA_CA_CERTS: OtlpCollector.tlsFixture("server.crt") }

/**
 * `intercom-scroll export users` of `token`'s workspace with `--base-url` (the simulator's own, else `baseUrl`), and
 * `variables` its only proxy settings.
 */
const exportUsers = (token: string, variables: Record<string, string>, baseUrl?: string) =>
  Effect.gen(function*() {
    const url = baseUrl ?? (yield* Simulator.baseUrl)
    const result = yield* cli(["export", "users", "--base-url", url], {
      env: { INTERCOM_ACCESS_TOKEN: token, ...trustingTheTestCertificate, ...variables }
    })
    expect(result.exitCode, result.stderr).toBe(0)
    expect([...ndjsonIds(result.stdout)].sort()).toEqual([...yield* (yield* Simulator.Simulator).ids(token, "users")].sort())
    expect(withoutProgress(result.stderr)).toMatch(/^Exported 1,200 users to stdout in .*: 24 pages, 0 restarts/)
    return new URL(url).host
  })

describe.concurrent("the CLI behind a proxy", () => {
  it.scopedLive("HTTP_PROXY: every request goes through the proxy's one tunnel, which all the pages share", () =>
    Effect.gen(function*() {
      const proxy = yield* forwardProxy
      const simulator = yield* exportUsers(tokens.proxied, { HTTP_PROXY: proxy.url }, yield* simulatorOverTls)
      expect(proxy.requests).toEqual([`CONNECT ${simulator} HTTP/1.1`])
    }).pipe(Effect.provide(layer)), 60_000)

  it.scopedLive("NO_PROXY naming a domain of the host: its requests go straight to it, and the proxy sees none", () =>
    Effect.gen(function*() {
      const proxy = yield* forwardProxy
      // A name no resolver knows: straight there, the bin cannot resolve it; through the proxy, it would CONNECT.
      const result = yield* cli(["export", "users", "--base-url", "https://api.intercom.invalid"], {
        env: { INTERCOM_ACCESS_TOKEN: tokens.bypassed, HTTP_PROXY: proxy.url, NO_PROXY: "example.test,.invalid" }
      })
      expect(result.exitCode).toBe(1)
      expect(withoutProgress(result.stderr)).toMatch(
        /^Unreachable: Could not connect to https:\/\/api\.intercom\.invalid for the users scroll: no such host /m
      )
      expect(proxy.requests).toEqual([])
    }).pipe(Effect.provide(layer)), 60_000)

  it.scopedLive("this machine's base URL and collector, over plain http: straight to them whatever HTTP_PROXY says, the proxy sees none", () =>
    Effect.gen(function*() {
      const proxy = yield* forwardProxy
      const collector = yield* OtlpCollector.make
      expect(collector.url).toMatch(/^http:\/\/127\.0\.0\.1:/)
      yield* exportUsers(tokens.thisMachine, {
        HTTP_PROXY: proxy.url,
        HTTPS_PROXY: proxy.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json"
      })
      expect(collector.spans().some((span) => span.name === "Scroll.users")).toBe(true)
      expect(proxy.requests).toEqual([])
    }).pipe(Effect.provide(layer)), 60_000)

  it.scopedLive("`pnpm start`: Intercom through the proxy, as the CLI reaches it; its embedded simulator, without a token, directly", () =>
    Effect.gen(function*() {
      const proxy = yield* forwardProxy
      const baseUrl = yield* simulatorOverTls
      const cwd = yield* Effect.acquireRelease(
        Effect.promise(() => Fs.mkdtemp(NodePath.join(Os.tmpdir(), "proxy-start-"))),
        (directory) => Effect.promise(() => Fs.rm(directory, { recursive: true, force: true }))
      )
      const started = (env: Record<string, string>) =>
        run("pnpm", ["-C", root, "-s", "start"], { env: { HTTP_PROXY: proxy.url, ...trustingTheTestCertificate, ...env }, cwd })
      const toIntercom = yield* started({ INTERCOM_ACCESS_TOKEN: tokens.started, INTERCOM_BASE_URL: baseUrl })
      expect(toIntercom.exitCode, toIntercom.stderr).toBe(0)
      expect(proxy.requests).toEqual([`CONNECT ${new URL(baseUrl).host} HTTP/1.1`])
      const embedded = yield* started({})
      expect(embedded.exitCode).toBe(0)
      expect(proxy.requests).toHaveLength(1)
    }).pipe(Effect.provide(layer)), 120_000)

  it.scopedLive("the telemetry goes through the proxy too, to the collector", () =>
    Effect.gen(function*() {
      const proxy = yield* forwardProxy
      const collector = yield* OtlpCollector.make
      const endpoint = throughProxy(collector.url)
      const simulator = yield* exportUsers(tokens.telemetry, {
        HTTP_PROXY: proxy.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json"
      }, yield* simulatorOverTls)
      expect(collector.spans().some((span) => span.name === "Scroll.users")).toBe(true)
      expect(new Set(proxy.requests)).toEqual(
        new Set([`CONNECT ${simulator} HTTP/1.1`, `CONNECT ${new URL(endpoint).host} HTTP/1.1`])
      )
    }).pipe(Effect.provide(layer)), 60_000)

  it.scopedLive("an https:// collector's certificates hold through the proxy's tunnel: its authority, and the client's certificate it asks for", () =>
    Effect.gen(function*() {
      const proxy = yield* forwardProxy
      const collector = yield* OtlpCollector.makeTls({ clientCertificate: true })
      const endpoint = throughProxy(collector.url)
      yield* exportUsers(tokens.telemetryTls, {
        HTTPS_PROXY: proxy.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_CERTIFICATE: OtlpCollector.tlsFixture("server.crt"),
        OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: OtlpCollector.tlsFixture("client.crt"),
        OTEL_EXPORTER_OTLP_CLIENT_KEY: OtlpCollector.tlsFixture("client.key")
      })
      expect(collector.spans().some((span) => span.name === "Scroll.users")).toBe(true)
      expect(proxy.requests).toContain(`CONNECT ${new URL(endpoint).host} HTTP/1.1`)
    }).pipe(Effect.provide(layer)), 60_000)
})
