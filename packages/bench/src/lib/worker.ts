/**
 * One contender in a process of its own, driven by the bench over IPC: each run scrolls once and reports records,
 * time, CPU and GC time. A process per contender keeps their heaps apart, so that garbage one leaves behind is
 * never collected on another's clock, while every contender stays warm between its runs.
 */
import { PerformanceObserver } from "node:perf_hooks"
import * as CoreVariant from "../measures/coreVariant.js"
import * as Contenders from "./contenders.js"

export interface Setup {
  readonly contender: ContenderName
  readonly baseUrl: string
  readonly token: string
  /** Milliseconds of (asynchronous) work the consumer does on each page. */
  readonly workMillis?: number
  /** For a contender of `CoreVariant`: the entry module of a patched copy of the core (`measures/speedups.ts`). */
  readonly coreModule?: string
}

export interface RunResult {
  readonly records: number
  readonly seconds: number
  readonly cpuMicros: number
  readonly gcMillis: number
}

export type Message = { readonly type: "run" } | { readonly type: "stop" }
export type Reply = { readonly type: "ready" } | { readonly type: "result"; readonly result: RunResult } | {
  readonly type: "error"
  readonly message: string
}

export type Make = (setup: Setup, work: Contenders.PageWork | undefined) => {
  readonly run: () => Promise<number>
  readonly dispose?: () => Promise<void>
}

const core = (f: (core: ReturnType<typeof Contenders.core>, work: Contenders.PageWork | undefined) => Promise<number>): Make =>
(setup, work) => {
  const client = Contenders.core(setup.baseUrl, setup.token)
  return { run: () => f(client, work), dispose: () => client.dispose() }
}

export const contenders: {
  readonly [K in "Scroll.users" | "Scroll.users, no dedupe" | "Scroll.users, prefetch 0" | "Scroll.users, prefetch 2" | "Scroll.companies" | "bare fetch" | "bare fetch, companies" | "plain client" | "plain client, companies" | "intercom-client 7" | keyof typeof CoreVariant.contenders]: Make
} = {
  ...CoreVariant.contenders,
  "Scroll.users": core((c, work) => c.users(undefined, work)),
  "Scroll.users, no dedupe": core((c, work) => c.users({ dedupe: false }, work)),
  "Scroll.users, prefetch 0": core((c, work) => c.users({ prefetch: 0 }, work)),
  "Scroll.users, prefetch 2": core((c, work) => c.users({ prefetch: 2 }, work)),
  "Scroll.companies": core((c, work) => c.companies(undefined, work)),
  "bare fetch": (setup, work) => ({ run: () => Contenders.bareUsers(setup.baseUrl, setup.token, work) }),
  "bare fetch, companies": (setup) => ({ run: () => Contenders.bareCompanies(setup.baseUrl, setup.token) }),
  "plain client": (setup) => ({ run: () => Contenders.plainScroll(setup.baseUrl, setup.token) }),
  "plain client, companies": (setup) => ({ run: () => Contenders.plainScroll(setup.baseUrl, setup.token, "companies") }),
  "intercom-client 7": (setup, work) => ({ run: () => Contenders.sdkCompanies(setup.baseUrl, setup.token, work) })
}

export type ContenderName = keyof typeof contenders

const send = (reply: Reply) => process.send?.(reply)

const main = (setup: Setup) => {
  let gcMillis = 0
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMillis += entry.duration
  }).observe({ entryTypes: ["gc"] })
  const work = setup.workMillis === undefined ? undefined : () => Contenders.sleep(setup.workMillis ?? 0)
  const contender = contenders[setup.contender](setup, work)
  process.on("message", (message: Message) => {
    if (message.type === "stop") {
      void (contender.dispose?.() ?? Promise.resolve()).finally(() => process.exit(0))
      return
    }
    const cpu = process.cpuUsage()
    const gc = gcMillis
    const started = performance.now()
    contender.run().then(
      async (records) => {
        const seconds = (performance.now() - started) / 1000
        const cpuUsed = process.cpuUsage(cpu)
        // GC entries arrive asynchronously: let those of this run land before reporting.
        await Contenders.sleep(5)
        send({ type: "result", result: { records, seconds, cpuMicros: cpuUsed.user + cpuUsed.system, gcMillis: gcMillis - gc } })
      },
      (error: unknown) => send({ type: "error", message: error instanceof Error ? error.stack ?? error.message : String(error) })
    )
  })
  send({ type: "ready" })
}

const setup = process.env.BENCH_WORKER_SETUP
if (setup !== undefined && process.send !== undefined) main(JSON.parse(setup) as Setup)
