/**
 * A user's link, not loopback: latency a page, a bandwidth by which bytes cost time, and a handshake each new connection
 * pays before its first response (TCP's round trip and TLS 1.3's: two round trips, as against Intercom over https),
 * compression on (the simulator compresses whatever a request asks for). Scroll.users against a bare fetch loop (which asks for gzip, as
 * Node's fetch does by default), Scroll.companies against intercom-client 7 (fetch too), all four interleaved.
 *
 * The simulator runs in this process (`Simulator.layerServer`, the same app as the bin), each contender with a token
 * of its own (same seed, same records), so that its stats give each contender's bytes on the wire and pages a run. One
 * seed is one app, whose one open scroll the contenders take in turn: each scrolls to the end (which closes it) before
 * the next starts, and the default rate limit (10,000 requests in 10 s) is far above a round's. Beside each result: the physical limit of the link, one handshake + pages × latency + bytes ÷ bandwidth, for
 * the bytes that contender moved, and the connections it opened (each contender's process keeps its connections alive
 * between rounds only while undici's keep-alive lasts, 4 s: a round usually opens them again).
 */
import { Simulator } from "@intercom-scroll/simulator"
import { Context, Duration, Effect, Layer, Option } from "effect"
import { type Contender, interleave, median, pairedMedian } from "../lib/measure.js"
import * as PacketLink from "../lib/packetLink.js"
import type { MeasureResult } from "../lib/report.js"
import type { ContenderName } from "../lib/worker.js"
import { contender, type Harness, kB, seconds } from "./harness.js"

export interface Link {
  readonly name: string
  readonly latencyMillis: number
  readonly megabits: number
  /** What a new connection costs before its first response: two round trips (TCP, then TLS 1.3). */
  readonly handshakeMillis: number
  /** Measure ids: Scroll.users against the bare loop, Scroll.companies against the SDK. */
  readonly ids: { readonly users: number; readonly companies: number }
  readonly goals: { readonly users: string; readonly companies: string }
  readonly holds: { readonly users: (ratio: number) => boolean; readonly companies: (ratio: number) => boolean }
  /**
   * Made of packets (`PacketLink`): the contenders run in a network namespace whose every packet to the simulator
   * pays half of `latencyMillis` (a round trip) each way, after `megabits`' serialization; the simulator waits for
   * nothing. Else the simulator's own model over loopback: a wait of `latencyMillis` before each answer, its body paced.
   */
  readonly packets?: boolean
}

export const realLink: Link = {
  name: "real link",
  latencyMillis: 40,
  megabits: 20,
  handshakeMillis: 80,
  ids: { users: 11, companies: 12 },
  goals: { users: "≥ 1.00 (as fast or faster)", companies: "> 1 (faster)" },
  holds: { users: (ratio) => ratio >= 1, companies: (ratio) => ratio > 1 }
}

export const farLink: Link = {
  name: "far link",
  latencyMillis: 120,
  megabits: 100,
  handshakeMillis: 240,
  ids: { users: 13, companies: 14 },
  goals: { users: "record it", companies: "record it" },
  holds: { users: () => true, companies: () => true }
}

/**
 * Measure 11's profile at the packet level: a round trip of 40 ms and 20 Mbit/s each way, over plain HTTP (a new
 * connection pays TCP's one round trip, not TLS's second). What the model above cannot show: TCP's slow start and
 * acknowledgements, and whether a client's writes and a server's reach the link as one packet or several.
 */
export const packetLink: Link = {
  ...realLink,
  name: "packet link",
  handshakeMillis: realLink.latencyMillis,
  ids: { users: 21, companies: 22 },
  goals: { users: "record it (beside 11)", companies: "record it (beside 12)" },
  holds: { users: () => true, companies: () => true },
  packets: true
}

/** One run's share of the simulator's counters for a workspace. */
interface Wire {
  readonly bytes: number
  readonly pages: number
  readonly compressed: number
  readonly connections: number
}

const entries: ReadonlyArray<{ readonly name: string; readonly contender: ContenderName; readonly resource: "users" | "companies" }> = [
  { name: "Scroll.users", contender: "Scroll.users", resource: "users" },
  { name: "bare fetch loop (asks gzip)", contender: "bare fetch", resource: "users" },
  { name: "Scroll.companies", contender: "Scroll.companies", resource: "companies" },
  { name: "intercom-client 7 companies.scroll()", contender: "intercom-client 7", resource: "companies" }
]

export const measure = (harness: Harness, link: Link, records: number, roundCount: number) =>
  Effect.gen(function*() {
    const profile = link.packets === true
      ? `packets: a ${link.latencyMillis} ms round trip, ${link.megabits} Mbit/s each way, plain HTTP, compression on`
      : `${link.latencyMillis} ms a page, ${link.megabits} Mbit/s, ${link.handshakeMillis} ms a new connection, compression on`
    yield* harness.log(`Measures ${link.ids.users} and ${link.ids.companies} (${link.name}): ${records.toLocaleString("en-US")} users and companies, ${profile}, ${roundCount} rounds`)
    const packets = link.packets === true
      ? yield* PacketLink.make({ roundTripMillis: link.latencyMillis, megabits: link.megabits }).pipe(
        Effect.tapError((unavailable) => harness.log(`  not run: ${unavailable.reason}`)),
        Effect.option
      )
      : Option.none()
    if (link.packets === true && Option.isNone(packets)) return []
    const network = Option.getOrUndefined(packets)
    if (network !== undefined) {
      const { megabits, roundTripMillis } = network.calibration
      yield* harness.log(
        `  the link, probed: a round trip of ${roundTripMillis.toFixed(1)} ms, 2 MB at ${megabits.toFixed(1)} Mbit/s from a cold connection; the server's TCP: ${network.congestionControl}`
      )
    }
    const token = (name: string) => `link-${entries.findIndex((entry) => entry.name === name)}`
    const context = yield* Layer.build(Simulator.layerServer({
      workspaces: entries.map((entry) => ({
        token: token(entry.name),
        seed: 1,
        users: records,
        companies: records,
        ...(network === undefined ? { faults: { latency: Duration.millis(link.latencyMillis) } } : {})
      })),
      ...(network === undefined
        ? { bandwidth: link.megabits, handshake: Duration.millis(link.handshakeMillis) }
        : { host: network.serverHost }),
      compression: true
    }))
    const simulator = Context.get(context, Simulator.Simulator)
    const served = yield* Effect.provide(Simulator.baseUrl, context)
    const baseUrl = network === undefined ? served : served.replace(network.serverHost, network.serverName)
    const counters = (name: string) =>
      Effect.runPromise(Effect.map(simulator.stats, (stats) => stats.workspaces[token(name)]))

    const wire: Record<string, Array<Wire>> = Object.fromEntries(entries.map((entry) => [entry.name, []]))
    const contenders = yield* Effect.forEach(entries, (entry) =>
      Effect.map(
        harness.viaWorker(entry.name, { contender: entry.contender, baseUrl, token: token(entry.name) }, seconds, {
          netns: network?.netns
        }),
        (worker): Contender => ({
          name: entry.name,
          run: async () => {
            const before = await counters(entry.name)
            const sample = await worker.run()
            const after = await counters(entry.name)
            wire[entry.name].push({
              bytes: after.bytesSent - before.bytesSent,
              pages: after.pagesServed - before.pagesServed,
              compressed: after.pagesCompressed - before.pagesCompressed,
              connections: after.connectionsOpened - before.connectionsOpened
            })
            return sample
          }
        })
      ))
    const result = yield* Effect.promise(() =>
      interleave(contenders, { rounds: roundCount, warmup: 1, expectedRecords: () => records, onSample: harness.progress(link.name, "s") })
    )

    const onWire = (name: string) => {
      const runs = wire[name]
      const bytes = median(runs.map((run) => run.bytes))
      const pages = median(runs.map((run) => run.pages))
      const compressed = median(runs.map((run) => run.compressed))
      const connections = runs.reduce((sum, run) => sum + run.connections, 0) / runs.length
      const limit = (link.handshakeMillis + pages * link.latencyMillis) / 1000 + (bytes * 8) / (link.megabits * 1_000_000)
      return { bytes, pages, compressed, connections, limit }
    }
    const describe = (name: string) => {
      const w = onWire(name)
      return `${name}: ${kB(w.bytes)} a scroll (${w.compressed} of ${w.pages} pages compressed), ${w.connections.toFixed(1)} connections opened a scroll, limit ${w.limit.toFixed(2)} s`
    }
    const pair = (
      id: number,
      title: string,
      ours: string,
      theirs: string,
      goal: string,
      holds: (ratio: number) => boolean
    ): MeasureResult => {
      const ratio = pairedMedian(result, [theirs, ours], ([t, o]) => t / o)
      const ofLimit = result.medians[ours] / onWire(ours).limit
      return {
        id,
        title,
        setup: `${records.toLocaleString("en-US")} records, ${profile}${
          network === undefined ? "" : `, the server's TCP ${network.congestionControl}`
        }; ${describe(ours)}; ${describe(theirs)}`,
        contenders: [ours, theirs].map((name) => contender(name, "s", result.samples[name], result.medians[name])),
        result: ratio,
        resultText: `${ratio.toFixed(2)}× the speed of ${theirs} (ours at ${ofLimit.toFixed(2)}× its physical limit)`,
        goal,
        holds: holds(ratio)
      }
    }
    return [
      pair(link.ids.users, `${link.name}: Scroll.users against a bare fetch loop`, entries[0].name, entries[1].name, link.goals.users, link.holds.users),
      pair(link.ids.companies, `${link.name}: Scroll.companies against intercom-client 7`, entries[2].name, entries[3].name, link.goals.companies, link.holds.companies)
    ]
  }).pipe(Effect.scoped)
