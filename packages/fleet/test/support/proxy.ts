/**
 * A TCP port in front of a PostgreSQL, which a test opens and cuts: a server that comes up after its runner, one that
 * goes away under it, or one far away.
 */
import { Effect, type Scope } from "effect"
import * as Net from "node:net"
import { freePortBetween } from "./processes.js"

export interface Proxy {
  readonly port: number
  /** Listens and forwards each connection to the target. */
  readonly open: Effect.Effect<void>
  /** From now on takes connections and never answers them (a server that hangs), until `unstall`. */
  readonly stall: Effect.Effect<void>
  readonly unstall: Effect.Effect<void>
  /** Stops listening (a connection is refused) and ends every connection forwarded so far. */
  readonly cut: Effect.Effect<void>
  /**
   * Ends the server's side of every connection forwarded so far and leaves the client's open, until the client next
   * writes: sessions the server ended while their client was frozen, which it finds ended when it next uses them. A
   * client waiting for an answer at that moment has its side ended at once, as the server's goodbye reaches it: else
   * it would wait without end for an answer the server never sends (a connection dropped on the way, not ended).
   */
  readonly sever: Effect.Effect<void>
  /**
   * Whether no connection forwarded so far waits for an answer: on each, the last thing through it was an answer,
   * handed on to the client whole (it ends with PostgreSQL's `ReadyForQuery`), and the client has sent nothing since.
   * Plain connections only: on TLS the messages cannot be read, and a connection always seems to wait (and `sever`
   * ends it at once).
   */
  readonly quiet: Effect.Effect<boolean>
}

/** PostgreSQL's `ReadyForQuery`, the last message of every answer: `Z`, its length (5), the transaction's status. */
const endsAnswer = (chunk: Buffer): boolean =>
  chunk.length >= 6 && chunk[chunk.length - 6] === 0x5a && chunk.readInt32BE(chunk.length - 5) === 5 &&
  [0x49, 0x54, 0x45].includes(chunk[chunk.length - 1])

/**
 * `roundTrip` (ms): each chunk is handed on half of it later in each direction, a database across a network. Timers
 * of one duration fire in the order they were set, so each direction keeps its order. `lateAnswers` (ms): how much
 * later still each chunk of a connection's `answer`-th answer (from 0, its handshake's) reaches the client, as a
 * loaded machine finds some answers late; one answer's chunks all alike, the next sent only once it was answered.
 */
export const tcpProxy = (
  target: URL,
  options: { readonly roundTrip?: number; readonly lateAnswers?: (answer: number) => number } = {}
): Effect.Effect<Proxy, never, Scope.Scope> =>
  Effect.gen(function*() {
    // Left free until `open`: from a range no other test's `freePort` picks, or one of their runners could bind it.
    const port = yield* freePortBetween(10_000, 20_000)
    const sockets = new Set<Net.Socket>()
    // Each forwarded connection's server side, by its client's.
    const upstreams = new Map<Net.Socket, Net.Socket>()
    // The clients that sent something not answered yet (handed on to them whole), from their first byte on.
    const waiting = new Set<Net.Socket>()
    let stalled = false
    const server = Net.createServer((socket) => {
      if (stalled) {
        sockets.add(socket)
        socket.on("error", () => {})
        socket.on("close", () => sockets.delete(socket))
        return
      }
      const upstream = Net.connect(Number(target.port), target.hostname)
      upstreams.set(socket, upstream)
      upstream.on("close", () => upstreams.delete(socket))
      for (const each of [socket, upstream]) {
        sockets.add(each)
        each.on("close", () => sockets.delete(each))
      }
      socket.on("close", () => waiting.delete(socket))
      socket.on("error", () => upstream.destroy())
      upstream.on("error", () => socket.destroy())
      // What the client sent, and what it was handed of the server's answers.
      const sent = () => void waiting.add(socket)
      let answers = 0
      const handed = (chunk: Buffer) => {
        if (!endsAnswer(chunk)) return
        answers++
        waiting.delete(socket)
      }
      const half = (options.roundTrip ?? 0) / 2
      if (half === 0 && options.lateAnswers === undefined) {
        socket.on("data", sent)
        // After the pipe's own listener, which writes the chunk to the client.
        socket.pipe(upstream).pipe(socket)
        upstream.on("data", handed)
        return
      }
      for (const [from, to] of [[socket, upstream], [upstream, socket]] as const) {
        from.setNoDelay(true)
        from.on("data", (chunk: Buffer) => {
          if (from === socket) sent()
          setTimeout(() => {
            if (!to.writable) return
            to.write(chunk)
            if (to === socket) handed(chunk)
          }, to === socket ? half + (options.lateAnswers?.(answers) ?? 0) : half)
        })
        from.on("end", () => setTimeout(() => to.end(), half))
      }
    })
    const close = Effect.async<void>((resume) => {
      for (const socket of sockets) socket.destroy()
      if (server.listening) server.close(() => resume(Effect.void))
      else resume(Effect.void)
    })
    yield* Effect.addFinalizer(() => close)
    const open = Effect.async<void>((resume) => void server.listen(port, "127.0.0.1", () => resume(Effect.void)))
    const sever = Effect.sync(() => {
      for (const [client, upstream] of upstreams) {
        client.unpipe()
        upstream.destroy()
        if (waiting.has(client)) {
          client.destroy()
          continue
        }
        // What the client sends next finds its connection ended, as a session the server ended does.
        client.on("data", () => client.destroy())
        client.resume()
      }
    })
    return {
      port,
      open,
      cut: close,
      sever,
      quiet: Effect.sync(() => [...upstreams.keys()].every((client) => !waiting.has(client))),
      stall: Effect.sync(() => void (stalled = true)),
      unstall: Effect.sync(() => void (stalled = false))
    }
  })
