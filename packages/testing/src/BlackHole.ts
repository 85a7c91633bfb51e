/**
 * A TCP proxy in front of the test's PostgreSQL that goes silent on demand: the connections open when `silence` runs
 * stop passing bytes either way and are never closed, as where a firewall or a NAT dropped their state (bytes vanish, no
 * reset comes); the kernel still acknowledges what they send. Connections made after it pass as before: a new flow is
 * given new state. Or `failover`: the open connections silenced so, and the new ones sent to another server, as after a
 * failover whose old primary's path went silent. Or `vanish`: the new ones silent too, as a host gone from the network
 * or an address dropped by a firewall (nothing answers a new connection either), until `reset` or `failover`.
 */
import { Effect, Redacted, type Scope } from "effect"
import * as net from "node:net"

export interface BlackHole {
  /** The database's URL through the proxy. */
  readonly url: Redacted.Redacted<string>
  readonly silence: Effect.Effect<void>
  /** The connections open now lose the server's answers only: their statements still reach it. */
  readonly loseAnswers: Effect.Effect<void>
  /**
   * A connection that sends bytes holding each of `texts` in turn (a statement's words or its parameters': `"complete",
   * "COMMIT"` is the COMMIT after a parameter `complete`) loses the server's answers from the last of them on, once:
   * the statement reaches the server, its answer never comes back.
   */
  readonly loseAnswersTo: (...texts: ReadonlyArray<string>) => Effect.Effect<void>
  /**
   * Silences the connections open now, as `silence` does, and the new ones as they come: nothing reaches the server
   * and nothing comes back, the connection made to the proxy all the same (a connect timeout is the client's to tell).
   */
  readonly vanish: Effect.Effect<void>
  /** Silences the connections open now, as `silence` does, and sends the new ones to `to` (a URL: its host and port). */
  readonly failover: (to: Redacted.Redacted<string>) => Effect.Effect<void>
  /** Closes every connection through it, silenced or not, as a path that comes back with resets; new ones pass. */
  readonly reset: Effect.Effect<void>
  /** The connections the clients hold open to it now, silenced or not: what a client left open once it is done. */
  readonly open: Effect.Effect<number>
}

export const make = (database: Redacted.Redacted<string>): Effect.Effect<BlackHole, never, Scope.Scope> =>
  Effect.gen(function*() {
    let target = new URL(Redacted.value(database))
    const sockets = new Set<net.Socket>()
    const upstreams = new Set<net.Socket>()
    const clients = new Set<net.Socket>()
    const silenced = new WeakSet<net.Socket>()
    let vanished = false
    // What a connection must send, in turn, to lose the server's answers (`loseAnswersTo`), and how far each has got.
    let answersLostTo: ReadonlyArray<string> = []
    const sentSoFar = new WeakMap<net.Socket, number>()
    const server = net.createServer((client) => {
      clients.add(client)
      client.on("close", () => clients.delete(client))
      if (vanished) {
        sockets.add(client)
        silenced.add(client)
        client.on("error", () => client.destroy())
        client.on("close", () => sockets.delete(client))
        return
      }
      const upstream = net.connect(Number(target.port), target.hostname)
      upstreams.add(upstream)
      upstream.on("close", () => upstreams.delete(upstream))
      const end = () => {
        client.destroy()
        upstream.destroy()
        sockets.delete(client)
        sockets.delete(upstream)
      }
      for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
        sockets.add(from)
        from.on("data", (chunk: Buffer) => {
          if (silenced.has(from)) return
          to.write(chunk)
          if (from !== client || answersLostTo.length === 0) return
          let next = sentSoFar.get(client) ?? 0
          while (next < answersLostTo.length && chunk.includes(answersLostTo[next]!)) next++
          sentSoFar.set(client, next)
          if (next === answersLostTo.length) {
            answersLostTo = []
            silenced.add(upstream)
          }
        })
        // Silenced, a side that closes tells the other nothing: no FIN or reset crosses a dropped flow either.
        from.on("error", () => silenced.has(from) ? from.destroy() : end())
        from.on("close", () => silenced.has(from) ? sockets.delete(from) : end())
      }
    })
    const port = yield* Effect.acquireRelease(
      Effect.async<number>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as net.AddressInfo).port)))
      }),
      () =>
        Effect.async<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resume(Effect.void))
        })
    )
    const url = new URL(target.href)
    url.hostname = "127.0.0.1"
    url.port = String(port)
    const silence = Effect.sync(() => {
      for (const socket of sockets) silenced.add(socket)
    })
    return {
      url: Redacted.make(url.href),
      silence,
      vanish: Effect.zipRight(
        silence,
        Effect.sync(() => {
          vanished = true
        })
      ),
      loseAnswers: Effect.sync(() => {
        for (const socket of upstreams) silenced.add(socket)
      }),
      loseAnswersTo: (...texts) =>
        Effect.sync(() => {
          answersLostTo = texts
        }),
      failover: (to) =>
        Effect.zipRight(
          silence,
          Effect.sync(() => {
            vanished = false
            target = new URL(Redacted.value(to))
          })
        ),
      reset: Effect.sync(() => {
        vanished = false
        for (const socket of sockets) socket.destroy()
      }),
      open: Effect.sync(() => clients.size)
    }
  })
