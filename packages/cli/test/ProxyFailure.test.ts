/**
 * The CLI's HttpClient behind a proxy that fails: nothing listening at it, one that closes each CONNECT unanswered, one
 * that refuses the tunnel. Real sockets on loopback; the base URL is Intercom's kind (https, a name) at a name no
 * resolver knows (`.invalid`), so a request that went straight to it would fail as Intercom's unknown host, not the
 * proxy's. This machine's base URLs are never sent through the proxy: last, a proxy that sees no request to them.
 */
import { describe, expect, it } from "@effect/vitest"
import { IntercomClient, Scroll } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Cause, Chunk, ConfigProvider, Effect, Exit, Option, Logger, LogLevel, Redacted, Schedule, Stream } from "effect"
import * as Net from "node:net"
import * as Undici from "../src/internal/undici.js"

/** A loopback port nothing listens at: one the system just gave out, closed again. */
const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

/**
 * A proxy that answers each CONNECT with `answer` (or closes the connection when undefined), counting them and the
 * connections made to it.
 */
const failingProxy = (answer: string | undefined) =>
  Effect.gen(function*() {
    const seen = { connections: 0, connects: 0 }
    const sockets = new Set<Net.Socket>()
    const server = Net.createServer((client) => {
      seen.connections++
      sockets.add(client)
      client.on("close", () => sockets.delete(client))
      client.on("error", () => client.destroy())
      let head = ""
      client.on("data", (chunk) => {
        head += chunk.toString("latin1")
        if (!head.includes("\r\n\r\n")) return
        head = ""
        seen.connects++
        if (answer === undefined) client.destroy()
        else client.end(answer)
      })
    })
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.void))),
      () =>
        Effect.async<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resume(Effect.void))
        })
    )
    return { url: `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`, seen }
  })

/** The users scroll at `baseUrl` with the proxy variables `variables`, over the CLI's HttpClient. */
const scrollWith = (baseUrl: string, variables: ReadonlyArray<readonly [string, string]>, accessToken = "proxy-failure-token") =>
  Stream.runCollect(Scroll.users({ restart: Schedule.stop })).pipe(
    Effect.exit,
    Effect.provide(
      IntercomClient.layer({
        accessToken: Redacted.make(accessToken),
        baseUrl,
        // Short, so that a request the proxy leaves hanging fails the test quickly.
        requestTimeout: "5 seconds"
      })
    ),
    Effect.provide(Undici.layer),
    // The warnings of the tries in between are the scroll's, tested elsewhere.
    Logger.withMinimumLogLevel(LogLevel.Error),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(variables)))
  )

/** The users scroll through `proxy` (HTTP_PROXY, or the variable named) to Intercom's kind of URL, at no real host. */
const scrollExit = (proxy: string, variable = "HTTP_PROXY") =>
  Effect.gen(function*() {
    const target = "https://api.intercom.invalid"
    const exit = yield* scrollWith(target, [[variable, proxy]])
    return { exit, target }
  })

/** The error the users scroll through `proxy` fails with. */
const scrollThrough = (proxy: string) =>
  Effect.flatMap(scrollExit(proxy), ({ exit, target }) =>
    Exit.isFailure(exit) && Cause.isFailType(exit.cause)
      ? Effect.succeed({ error: exit.cause.error, target })
      : Effect.dieMessage(`expected the scroll to fail, got ${String(exit)}`))

describe("the CLI's HttpClient behind a failing proxy", () => {
  it.scopedLive("nothing listening at the proxy: Unreachable names the proxy, not Intercom, as what refused", () =>
    Effect.gen(function*() {
      const proxy = `http://127.0.0.1:${yield* freePort}`
      const { error, target } = yield* scrollThrough(proxy)
      expect(error).toMatchObject({ _tag: "Unreachable", reason: "refused", proxy, attempts: 3 })
      expect(error.message).toContain(
        `Could not connect to ${target} through the proxy ${proxy} for the users scroll: nothing is listening at the proxy`
      )
    }), 20_000)

  it.scopedLive("a proxy that closes each CONNECT unanswered: Unreachable after 3 CONNECTs, not a loop of them until the timeout", () =>
    Effect.gen(function*() {
      const proxy = yield* failingProxy(undefined)
      const { error } = yield* scrollThrough(proxy.url)
      expect(error).toMatchObject({ _tag: "Unreachable", reason: "proxy", proxy: proxy.url, attempts: 3 })
      expect(error.message).toContain("the proxy did not open a tunnel to it (the proxy closed the connection before answering CONNECT")
      expect(proxy.seen.connects).toBe(3)
    }), 20_000)

  it.scopedLive("a proxy that refuses the tunnel (407): Unreachable naming the proxy and its answer", () =>
    Effect.gen(function*() {
      const proxy = yield* failingProxy(
        "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"proxy\"\r\ncontent-length: 0\r\n\r\n"
      )
      const { error } = yield* scrollThrough(proxy.url)
      expect(error).toMatchObject({ _tag: "Unreachable", reason: "proxy", proxy: proxy.url })
      expect(error.message).toContain("the proxy answered CONNECT with HTTP 407, Proxy Authentication Required")
    }), 20_000)

  it.scopedLive("a proxy variable that holds no URL: the variable named, its value (a password) never said", () =>
    Effect.gen(function*() {
      const { exit } = yield* scrollExit("user:s3cret@proxy.example", "HTTPS_PROXY")
      const defect = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.dieOption(exit.cause)) : undefined
      expect(defect).toBeInstanceOf(Error)
      const message = String(defect)
      expect(message).toContain("HTTPS_PROXY does not hold a proxy's URL, such as http://proxy.example:3128")
      expect(message).not.toContain("s3cret")
    }), 20_000)

  it.scopedLive("a proxy of another scheme than http(s) (socks5://): the variable named, refused before any request", () =>
    Effect.gen(function*() {
      const { exit } = yield* scrollExit("socks5://user:s3cret@127.0.0.1:1080", "HTTP_PROXY")
      const defect = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.dieOption(exit.cause)) : undefined
      const message = String(defect)
      expect(message).toContain("HTTP_PROXY names a socks5:// proxy, which this program does not use: give an http:// or https:// proxy")
      expect(message).not.toContain("s3cret")
    }), 20_000)
})

describe("the CLI's HttpClient with a proxy named, to this machine", () => {
  const token = "dG9rOnRoaXMtbWFjaGluZToxMjM0"

  // A proxy would carry the token, which the client sends over plain http to this machine alone, off the machine.
  it.scopedLive("a loopback base URL goes straight to the server, whatever the proxy variables say: the proxy sees no connection", () =>
    Effect.gen(function*() {
      const proxy = yield* failingProxy(undefined)
      const simulator = new URL(yield* Simulator.baseUrl)
      for (const host of [simulator.host, `localhost:${simulator.port}`]) {
        const exit = yield* scrollWith(`http://${host}`, [["HTTP_PROXY", proxy.url], ["HTTPS_PROXY", proxy.url]], token)
        expect(Exit.map(exit, Chunk.size)).toEqual(Exit.succeed(120))
      }
      expect(proxy.seen.connections).toBe(0)
    }).pipe(Effect.provide(Simulator.layerServer({ workspaces: [{ token, users: 120 }] }))), 20_000)
})
