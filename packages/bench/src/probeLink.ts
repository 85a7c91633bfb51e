/**
 * Measure 12's profile, page by page: `pnpm --filter @intercom-scroll/bench exec tsx src/probeLink.ts [--rounds N]
 * [--profile] [--packets] [--only "a|b"]`. The simulator runs here as in `measures/realLink.ts` (40 ms a page, 20 Mbit/s,
 * compression on, a workspace per contender), each contender in a worker of its own, interleaved. The server's side
 * of each exchange is stamped here (CLOCK_MONOTONIC, µs): when a request arrives (its head parsed), when the response's
 * head goes out, and when its last byte is handed to the socket ('finish'). A page's gap is the time from the last byte
 * of one response to the arrival of the next request: all that the client does on the critical path.
 *
 * With `--profile`, Scroll.companies runs under `node --cpu-prof` (100 µs samples), and the samples that fall in its
 * gaps are attributed (the profile's clock is CLOCK_MONOTONIC too).
 */
import { NodeContext } from "@effect/platform-node"
import { Simulator } from "@intercom-scroll/simulator"
import { Context, Duration, Effect, Layer } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { median } from "./lib/measure.js"
import type { ContenderName } from "./lib/worker.js"
import * as PacketLink from "./lib/packetLink.js"
import * as Workers from "./lib/workers.js"
import { flag, has } from "./lib/args.js"

const rounds = Number(flag("--rounds") ?? 7)
const profile = has("--profile")
/** Stamps on the client's side too (`probeHook.ts`): the last bytes of a response in, the next request's head out. */
const clientSide = has("--client")
const packets = has("--packets")
const hook = NodePath.join(NodePath.dirname(new URL(import.meta.url).pathname), "probeHook.ts")
const records = 3_000

/** `--variant PATH`: the entry module of a patched copy of the core, for the "core variant" contenders. */
const variant = flag("--variant")
const all: ReadonlyArray<ContenderName> = [
  "Scroll.companies",
  "Scroll.companies, core variant",
  "intercom-client 7",
  "bare fetch, companies",
  "Scroll.users",
  "bare fetch"
]
const chosen = flag("--only")?.split("|") ?? all

interface Exchange {
  readonly url: string
  readonly arrive: number
  head: number
  finish: number
  /** When the last body bytes were handed to the socket (the write call). */
  lastWrite: number
  bytes: number
}

const micros = () => Number(process.hrtime.bigint() / 1000n)
const exchanges = new Map<string, Array<Exchange>>()
/** Connections each workspace's requests came on. */
const sockets = new Map<string, Set<unknown>>()
const originalEmit = Http.Server.prototype.emit
Http.Server.prototype.emit = function(this: Http.Server, event: string | symbol, ...args: Array<unknown>) {
  if (event === "request") {
    const [request, response] = args as [Http.IncomingMessage, Http.ServerResponse]
    const token = /^Bearer (\S+)$/.exec(request.headers.authorization ?? "")?.[1] ?? "?"
    const exchange: Exchange = { url: request.url ?? "", arrive: micros(), head: 0, finish: 0, lastWrite: 0, bytes: 0 }
    let seen = sockets.get(token)
    if (seen === undefined) sockets.set(token, seen = new Set())
    seen.add(request.socket)
    let list = exchanges.get(token)
    if (list === undefined) exchanges.set(token, list = [])
    list.push(exchange)
    const flushHeaders = response.flushHeaders.bind(response)
    response.flushHeaders = () => {
      if (exchange.head === 0) exchange.head = micros()
      flushHeaders()
    }
    const write = response.write.bind(response) as (...a: Array<unknown>) => boolean
    response.write = ((chunk: Uint8Array, ...rest: Array<unknown>) => {
      if (exchange.head === 0) exchange.head = micros()
      exchange.bytes += chunk.length
      exchange.lastWrite = micros()
      return write(chunk, ...rest)
    }) as typeof response.write
    // Without the simulator's bandwidth (`--packets`), a page goes out in one `end`.
    const end = response.end.bind(response) as (...a: Array<unknown>) => Http.ServerResponse
    response.end = ((chunk?: unknown, ...rest: Array<unknown>) => {
      if (chunk instanceof Uint8Array) {
        if (exchange.head === 0) exchange.head = micros()
        exchange.bytes += chunk.length
        exchange.lastWrite = micros()
      }
      return end(chunk, ...rest)
    }) as typeof response.end
    response.once("finish", () => exchange.finish = micros())
  }
  return Reflect.apply(originalEmit, this, [event, ...args]) as boolean
} as typeof Http.Server.prototype.emit

const profileDir = NodePath.join(Os.tmpdir(), `probe-link-${process.pid}`)
Fs.mkdirSync(profileDir, { recursive: true })

interface Run {
  readonly seconds: number
  readonly cpuMicros: number
  readonly exchanges: ReadonlyArray<Exchange>
}

const program = Effect.gen(function*() {
  // `--packets`: the contenders in a network namespace behind `PacketLink` (the same 40 ms and 20 Mbit/s, at the packet
  // level), the simulator waiting for nothing.
  const network = packets ? yield* PacketLink.make({ roundTripMillis: 40, megabits: 20 }) : undefined
  if (network !== undefined) console.error(`the link, probed: ${JSON.stringify(network.calibration)}`)
  const context = yield* Layer.build(Simulator.layerServer({
    workspaces: chosen.map((name) => ({
      token: `probe-${all.indexOf(name as ContenderName)}`,
      seed: 1,
      users: records,
      companies: records,
      ...(network === undefined ? { faults: { latency: Duration.millis(40) } } : {})
    })),
    ...(network === undefined ? { bandwidth: 20 } : { host: network.serverHost }),
    compression: true
  }))
  const served = yield* Effect.provide(Simulator.baseUrl, context)
  const baseUrl = network === undefined ? served : served.replace(network.serverHost, network.serverName)
  void Context.get(context, Simulator.Simulator)
  const runs = new Map<string, Array<Run>>(chosen.map((name) => [name, []]))
  yield* Effect.scoped(Effect.gen(function*() {
    const workers = yield* Effect.forEach(chosen, (name) => {
      const token = `probe-${all.indexOf(name as ContenderName)}`
      const args = [
        ...(profile && name === "Scroll.companies"
          ? ["--cpu-prof", "--cpu-prof-dir", profileDir, "--cpu-prof-interval", "100"]
          : []),
        ...(clientSide ? ["--import", hook] : [])
      ]
      if (clientSide) process.env.PROBE_HOOK_OUT = NodePath.join(profileDir, `hook-${name.replace(/\W+/g, "_")}`)
      return Effect.map(
        Workers.start({ contender: name as ContenderName, baseUrl, token, ...(variant === undefined ? {} : { coreModule: variant }) }, {
          nodeArgs: args,
          netns: network?.netns
        }),
        (worker) => ({ name, token, worker })
      )
    })
    for (let round = -1; round < rounds; round++) {
      const shift = ((round % workers.length) + workers.length) % workers.length
      for (let i = 0; i < workers.length; i++) {
        const { name, token, worker } = workers[(i + shift) % workers.length]
        const from = exchanges.get(token)?.length ?? 0
        const result = yield* Effect.promise(() => worker.run())
        const to = exchanges.get(token) ?? []
        if (round >= 0) {
          runs.get(name)?.push({ seconds: result.seconds, cpuMicros: result.cpuMicros, exchanges: to.slice(from) })
        }
      }
      yield* Effect.sync(() => console.error(`round ${round} done`))
    }
  }))

  const ms = (us: number) => (us / 1000).toFixed(2)
  const lines: Array<string> = []
  for (const [name, list] of runs) {
    const gaps = list.flatMap((run) => run.exchanges.slice(1).map((e, i) => e.arrive - run.exchanges[i].lastWrite))
    const lateFinish = list.flatMap((run) => run.exchanges.map((e) => e.finish - e.lastWrite))
    const server = list.flatMap((run) => run.exchanges.map((e) => e.finish - e.arrive))
    const toHead = list.flatMap((run) => run.exchanges.map((e) => e.head - e.arrive))
    const perPage = list.flatMap((run) => run.exchanges.slice(1).map((e, i) => e.arrive - run.exchanges[i].arrive))
    const gapSum = list.map((run) => run.exchanges.slice(1).reduce((s, e, i) => s + e.arrive - run.exchanges[i].lastWrite, 0))
    const pages = median(list.map((run) => run.exchanges.length))
    const bytes = median(list.map((run) => run.exchanges.reduce((s, e) => s + e.bytes, 0)))
    const edges = list.map((run) => run.seconds * 1e6 - (run.exchanges[run.exchanges.length - 1].finish - run.exchanges[0].arrive))
    const mean = (xs: ReadonlyArray<number>) => xs.reduce((s, x) => s + x, 0) / xs.length
    const q = (xs: ReadonlyArray<number>, p: number) => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))]
    lines.push(
      `${name}: ${pages} requests, ${bytes} bytes a scroll; wall median ${median(list.map((r) => r.seconds)).toFixed(3)} s ` +
        `(${list.map((r) => r.seconds.toFixed(3)).join(" ")}), CPU ${ms(median(list.map((r) => r.cpuMicros)))} ms\n` +
        `  gap (last write → next request): median ${ms(median(gaps))} ms, mean ${ms(mean(gaps))}, p10 ${ms(q(gaps, 0.1))}, p90 ${
          ms(q(gaps, 0.9))
        }; a scroll's gaps ${ms(median(gapSum))} ms\n` +
        `  'finish' after the last write: median ${ms(median(lateFinish))} ms, p90 ${ms(q(lateFinish, 0.9))}\n` +
        `  server (request → last byte): median ${ms(median(server))} ms (to the head ${ms(median(toHead))}); ` +
        `a page (request to request): median ${ms(median(perPage))} ms, mean ${ms(mean(perPage))}\n` +
        `  outside the exchanges (the run's time less first request to last byte): median ${ms(median(edges))} ms (${edges.map(ms).join(" ")})`
    )
  }
  console.log(lines.join("\n"))
  console.log(`connections: ${[...sockets].map(([token, set]) => `${token} ${set.size}`).join(", ")}`)
  const out = NodePath.join(Os.tmpdir(), `probe-link-${process.pid}.json`)
  Fs.writeFileSync(out, JSON.stringify(Object.fromEntries(runs)))
  console.log(`exchanges: ${out}`)
  if (clientSide) {
    for (const name of chosen) {
      const prefix = `hook-${name.replace(/\W+/g, "_")}.`
      const file = Fs.readdirSync(profileDir).find((f) => f.startsWith(prefix))
      if (file === undefined) continue
      const events = JSON.parse(Fs.readFileSync(NodePath.join(profileDir, file), "utf8")) as Array<[string, number]>
      const gaps: Array<number> = []
      let lastRead: number | undefined
      for (const [kind, at] of events) {
        if (kind === "r") lastRead = at
        else if (lastRead !== undefined && at - lastRead < 30_000) gaps.push(at - lastRead)
      }
      const mean = gaps.reduce((s, x) => s + x, 0) / gaps.length
      const sorted = [...gaps].sort((a, b) => a - b)
      console.log(
        `${name}, client side (last bytes in → next request's head out): ${gaps.length} gaps, median ${ms(median(gaps))} ms, mean ${ms(mean)}, p10 ${
          ms(sorted[Math.floor(0.1 * (sorted.length - 1))])
        }, p90 ${ms(sorted[Math.floor(0.9 * (sorted.length - 1))])} (${NodePath.join(profileDir, file)})`
      )
    }
  }
  if (profile) {
    const files = Fs.readdirSync(profileDir).map((f) => NodePath.join(profileDir, f))
    console.log(`profiles: ${files.join(" ")}`)
  }
}).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

Effect.runPromise(program).then(() => process.exit(0), (error) => {
  console.error(error)
  process.exit(1)
})
