/**
 * A link between a client and a server, for a database across a network: `tsx src/probeDbLink.ts --listen PORT
 * --target HOST:PORT --delay MS [--bandwidth MBIT]`. A TCP proxy that hands each chunk on D/2 ms after it arrived, in
 * each direction (one queue and one timer per direction per connection, so chunks keep their order): a round trip
 * through it costs D more than without. With `--bandwidth`, each direction also sends at most that many megabits a
 * second (a chunk leaves once those before it have, and its own bytes have had their time).
 *
 * Used for the NOTES section "The sync and the fleet to a PostgreSQL across a real network link": PostgreSQL 0.5–2 ms
 * away (a managed database in the region) and 10–40 ms (another region). Prints one line when listening; SIGTERM or
 * SIGINT closes it. SIGUSR2 prints each connection's exchanges since the last SIGUSR2 (a run of the client's chunks
 * after the server's answer is one): the round trips a sync made, counted where they cross the link.
 *
 * Measured with `psql` (`\timing`, `SELECT 1` twenty times): a round trip through it costs D + 0.1–0.2 ms (2.2, 10.4,
 * 40.5 ms median for 2, 10, 40), against 0.07 ms direct.
 */
import * as Net from "node:net"
import { flag } from "./lib/args.js"

const listen = Number(flag("--listen") ?? 25481)
const [targetHost, targetPort] = (flag("--target") ?? "127.0.0.1:25480").split(":")
const delay = Number(flag("--delay") ?? 0)
const bandwidth = flag("--bandwidth") === undefined ? undefined : Number(flag("--bandwidth"))
const half = delay / 2

const now = () => performance.now()

/** One direction of one connection: chunks written to `to` at their time, in order. */
const direction = (to: Net.Socket) => {
  const queue: Array<{ readonly at: number; readonly chunk: Buffer }> = []
  let timer: NodeJS.Timeout | undefined
  let sentUntil = 0
  let ended = false
  const flush = () => {
    timer = undefined
    const t = now()
    while (queue.length > 0 && queue[0].at <= t + 0.05) to.write(queue.shift()!.chunk)
    if (queue.length > 0) arm()
    else if (ended) to.end()
  }
  let spinning = false
  const spin = () => {
    spinning = false
    flush()
  }
  const arm = () => {
    if (timer !== undefined || spinning || queue.length === 0) return
    // setTimeout fires a millisecond late or more: wake up a little early, then turn the event loop until it is time.
    const left = queue[0].at - now()
    if (left > 2) timer = setTimeout(flush, Math.floor(left - 1.5))
    else {
      spinning = true
      setImmediate(spin)
    }
  }
  return {
    push: (chunk: Buffer) => {
      const t = now()
      let leaves = t
      if (bandwidth !== undefined) {
        leaves = Math.max(t, sentUntil) + (chunk.length * 8) / (bandwidth * 1000)
        sentUntil = leaves
      }
      queue.push({ at: leaves + half, chunk })
      if (delay === 0 && bandwidth === undefined) flush()
      else arm()
    },
    end: () => {
      ended = true
      if (queue.length === 0) to.end()
    }
  }
}

let connections = 0
/** Per connection: the exchanges it carried (a run of client chunks after the server's answer counts as one). */
const exchanges = new Map<number, { requests: number; last: "up" | "down" }>()
const server = Net.createServer((client) => {
  const id = ++connections
  const counts = { requests: 0, last: "down" as "up" | "down" }
  exchanges.set(id, counts)
  client.on("data", () => {
    if (counts.last === "down") counts.requests++
    counts.last = "up"
  })
  client.setNoDelay(true)
  const upstream = Net.connect({ host: targetHost, port: Number(targetPort) })
  upstream.setNoDelay(true)
  upstream.on("data", () => {
    counts.last = "down"
  })
  const up = direction(upstream)
  const down = direction(client)
  client.on("data", (chunk) => up.push(chunk))
  upstream.on("data", (chunk) => down.push(chunk))
  client.on("end", () => up.end())
  upstream.on("end", () => down.end())
  const close = () => {
    client.destroy()
    upstream.destroy()
  }
  client.on("error", close)
  upstream.on("error", close)
  client.on("close", () => setTimeout(() => upstream.destroy(), half + 10))
  upstream.on("close", () => setTimeout(() => client.destroy(), half + 10))
})
server.listen(listen, "127.0.0.1", () => {
  console.log(`probeDbLink: 127.0.0.1:${listen} -> ${targetHost}:${targetPort}, ${delay} ms a round trip${bandwidth === undefined ? "" : `, ${bandwidth} Mbit/s`}`)
})
// SIGUSR2: the exchanges of each connection so far (then zeroed), to count a page's round trips.
process.on("SIGUSR2", () => {
  const lines = [...exchanges].filter(([, c]) => c.requests > 0).map(([id, c]) => `#${id}: ${c.requests}`)
  console.log(`probeDbLink: exchanges ${lines.join(", ")}`)
  for (const c of exchanges.values()) c.requests = 0
})
const stop = () => {
  console.log(`probeDbLink: ${connections} connections; closing`)
  server.close()
  process.exit(0)
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
