/**
 * The A/B of the speed-ups that were added for loopback gains (#17): the core as it is against copies of it with one
 * speed-up taken out each, all interleaved in one run, under the real link (measure 8's profile) and over loopback
 * (measure 1's). A copy is the core's src/ with one exact text replaced; a replacement that no longer finds its text
 * fails the measure, rather than racing the same code under two names.
 *
 * Result: each variant's time over the core's, paired by round: above 1 the speed-up pays (1.03 is the bar of #17).
 */
import { Simulator } from "@intercom-scroll/simulator"
import { Duration, Effect, Layer } from "effect"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { type Contender, interleave, type Interleaved, pairedMedian, type Sample } from "../lib/measure.js"
import type { MeasureResult } from "../lib/report.js"
import * as SimulatorProcess from "../lib/simulator.js"
import type { RunResult } from "../lib/worker.js"
import { contender, type Harness } from "./harness.js"
import { realLink } from "./realLink.js"

interface Patch {
  readonly file: string
  readonly from: string
  readonly to: string
}

/** Each speed-up of #17, taken out, as plain Effect would do it. */
interface Variant {
  /** The speed-up, named as #17 names it. */
  readonly speedUp: string
  /** The core without it. */
  readonly name: string
  readonly patches: ReadonlyArray<Patch>
  /** Not a speed-up but a check kept for what it does: its figure is what it costs, and not judged against 1.03. */
  readonly cost?: true
}

export const variants: ReadonlyArray<Variant> = [
  {
    speedUp: "the scroll_param read ahead from the bytes (with the turns it waits)",
    name: "no read-ahead (next request after the parse)",
    patches: [{
      file: "Scroll.ts",
      from: "const guess = fetchAhead ? received.scrollParamAhead() : undefined",
      to: "const guess: string | undefined = undefined"
    }]
  },
  {
    speedUp: "the turns the caller waits for the request sent ahead to be written, alone",
    name: "read-ahead without waiting for the write",
    patches: [{
      file: "internal/sendAhead.ts",
      from: "Effect.zipLeft(Effect.fork(traced), afterTurns(3))",
      to: "Effect.fork(traced)"
    }]
  },
  {
    // Not for speed on loopback: one connection where a scroll held two, each new one a handshake on a real link. The
    // workers keep their pools between rounds, so this figure depends on which runs find a connection open:
    // src/probeFreshPool.ts measures the saving where a scroll starts with none (bench NOTES).
    speedUp: "a turn before each request (one connection, not two)",
    name: "each request at once (two connections)",
    patches: [
      { file: "IntercomClient.ts", from: "Effect.zipRight(beforeRequest, httpClient.execute(request))", to: "httpClient.execute(request)" },
      { file: "internal/sendAhead.ts", from: "Effect.zipLeft(Effect.fork(traced), afterTurns(3))", to: "Effect.zipLeft(Effect.fork(traced), afterTurns(2))" }
    ]
  },
  {
    // Not a speed-up of #17 but a question of measure 8: the simulator, like a CDN, answers br to an equal offer.
    speedUp: "asking for br (an experiment: below 1, gzip alone is faster)",
    name: "asks gzip, deflate (no br)",
    patches: [{ file: "internal/contentCoding.ts", from: 'acceptEncoding: "gzip, deflate, br"', to: 'acceptEncoding: "gzip, deflate"' }]
  },
  {
    // The same question, br still accepted but weighed under gzip: the simulator (and a server that honours weights)
    // answers gzip.
    speedUp: "asking for br at gzip's weight (an experiment: below 1, weighing br lower is faster)",
    name: "asks gzip, deflate;q=0.9, br;q=0.8",
    patches: [{
      file: "internal/contentCoding.ts",
      from: 'acceptEncoding: "gzip, deflate, br"',
      to: 'acceptEncoding: "gzip, deflate;q=0.9, br;q=0.8"'
    }]
  },
  {
    // Not a speed-up but what a check on every page costs: below 1, the core is that much slower for it.
    speedUp: "the depth check of each page's records (a cost: below 1, what it costs)",
    name: "no depth check",
    cost: true,
    patches: [{ file: "internal/envelope.ts", from: "const deep = tooDeep(json)", to: "const deep: PageIssue | undefined = undefined" }]
  },
  {
    // Not a speed-up but what ending each request with its exchange costs (a scope a page, in place of the platform's
    // FinalizationRegistry): below 1, the core is that much slower for it.
    speedUp: "each request ended with its exchange (a cost: below 1, what it costs)",
    name: "requests left to the GC",
    cost: true,
    patches: [
      { file: "IntercomClient.ts", from: "      HttpClient.withScope\n", to: "      identity\n" },
      { file: "IntercomClient.ts", from: "        Effect.scoped,\n", to: "" }
    ]
  }
]

/** `text` with `patch` applied; throws unless `patch.from` occurs exactly once. */
export const applyPatch = (text: string, patch: Patch, variant: string): string => {
  if (text.split(patch.from).length !== 2) {
    throw new Error(`A/B "${variant}": ${patch.file} no longer holds exactly one "${patch.from}"`)
  }
  return text.replace(patch.from, () => patch.to)
}

const baseline = "core as it is"

/**
 * Which speed-ups pay (#17's bar: taking one out makes a scroll ≥ 3 % slower on a profile), from each variant's
 * better ratio of the two profiles, and the best of those; a cost's variant is recorded, not judged.
 */
export const verdict = (chosen: ReadonlyArray<Variant>, ratios: ReadonlyArray<number>) => {
  const speedUps = chosen.flatMap((variant, i) => variant.cost ? [] : [{ variant, ratio: ratios[i] ?? 0 }])
  return {
    pays: speedUps.filter(({ ratio }) => ratio >= 1.03).map(({ variant }) => variant),
    best: Math.max(0, ...speedUps.map(({ ratio }) => ratio))
  }
}

const benchRoot = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..", "..")
export const coreSrc = NodePath.join(benchRoot, "..", "core", "src")

/**
 * Copies of the core's src/, one a variant, under packages/bench/.variants (where node finds effect and
 * @effect/platform in the bench's node_modules), removed when the scope closes. Gives each copy's entry module. The
 * baseline is a copy too, unpatched: every contender runs the sources as they were when the measure began.
 */
const copies = (chosen: ReadonlyArray<Variant>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const root = NodePath.join(benchRoot, ".variants")
      Fs.rmSync(root, { recursive: true, force: true })
      const entries = [{ name: baseline, speedUp: "", patches: [] }, ...chosen].map((variant, index) => {
        const src = NodePath.join(root, String(index), "src")
        Fs.cpSync(coreSrc, src, { recursive: true })
        for (const patch of variant.patches) {
          const path = NodePath.join(src, patch.file)
          Fs.writeFileSync(path, applyPatch(Fs.readFileSync(path, "utf8"), patch, variant.name))
        }
        return { name: variant.name, module: NodePath.join(src, "index.ts") }
      })
      return { root, entries }
    }),
    ({ root }) => Effect.sync(() => Fs.rmSync(root, { recursive: true, force: true }))
  )


const race = (
  harness: Harness,
  copied: ReadonlyArray<{ readonly name: string; readonly module: string }>,
  profile: string,
  baseUrl: string,
  token: string,
  records: number,
  roundCount: number
) =>
  Effect.gen(function*() {
    // Each worker's CPU time (user + system) a run, beside the wall time: the load of the machine inflates it less.
    const cpu: Record<string, Array<Sample>> = {}
    const timed = (name: string) => {
      cpu[name] = []
      return (run: RunResult) => {
        cpu[name].push({ value: run.cpuMicros / 1e6, records: run.records })
        return run.seconds
      }
    }
    const base = `${baseline}, ${profile}`
    const contenders: Array<Contender> = yield* Effect.forEach(copied, (entry) =>
      harness.viaWorker(`${entry.name}, ${profile}`, {
        contender: "Scroll.users, core variant",
        baseUrl,
        token,
        coreModule: entry.module
      }, timed(`${entry.name}, ${profile}`)))
    const entries = copied.slice(1)
    const warmup = 1
    const result = yield* Effect.promise(() =>
      interleave(contenders, { rounds: roundCount, warmup, expectedRecords: () => records, onSample: harness.progress(`A/B ${profile}`, "s") })
    )
    const cpuSamples = Object.fromEntries(Object.entries(cpu).map(([name, list]) => [name, list.slice(warmup)]))
    const cpuResult: Interleaved = { samples: cpuSamples, medians: {} }
    const ratios = entries.map((entry) => {
      const name = `${entry.name}, ${profile}`
      return {
        name: entry.name,
        ratio: pairedMedian(result, [name, base], ([variant, core]) => variant / core),
        cpu: pairedMedian(cpuResult, [name, base], ([variant, core]) => variant / core)
      }
    })
    return {
      contenders: contenders.map(({ name }) => contender(name, "s", result.samples[name], result.medians[name])),
      ratios
    }
  }).pipe(Effect.scoped)

/**
 * Measure 18: the A/B under the real link (one workspace, in process, as measure 11) and over loopback (as measure 1).
 * `only` picks variants by their number (1-based, as the log lists them); all of them when unset.
 */
export const measure = (
  harness: Harness,
  linkRecords: number,
  loopbackRecords: number,
  roundCount: number,
  only?: ReadonlyArray<number>
) =>
  Effect.gen(function*() {
    const chosen = only === undefined ? variants : only.map((n) => {
      const variant = variants[n - 1]
      if (variant === undefined) throw new Error(`A/B: no variant ${n} (there are ${variants.length})`)
      return variant
    })
    yield* harness.log(`Measure 18: A/B of #17's speed-ups, ${chosen.length} variants against the core, real link and loopback, ${roundCount} rounds`)
    yield* harness.log(variants.map((variant, i) => `  ${i + 1}. ${variant.name}${chosen.includes(variant) ? "" : " (left out)"}`).join("\n"))
    const token = "ab-token"
    const context = yield* Layer.build(Simulator.layerServer({
      workspaces: [{ token, seed: 1, users: linkRecords, faults: { latency: Duration.millis(realLink.latencyMillis) } }],
      bandwidth: realLink.megabits,
      handshake: Duration.millis(realLink.handshakeMillis),
      compression: true
    }))
    const linkUrl = yield* Effect.provide(Simulator.baseUrl, context)
    const loopbackUrl = yield* SimulatorProcess.start(["--token", token, "--users", String(loopbackRecords), "--rate-limit", "100000000"])
    const { entries } = yield* copies(chosen)
    const link = yield* race(harness, entries, "real link", linkUrl, token, linkRecords, roundCount)
    const loopback = yield* race(harness, entries, "loopback", loopbackUrl, token, loopbackRecords, roundCount)
    const lines = chosen.map((variant, i) => {
      const [onLink, onLoopback] = [link.ratios[i], loopback.ratios[i]]
      return `${variant.name}: ${onLink.ratio.toFixed(3)} real link (CPU ${onLink.cpu.toFixed(3)}), ${onLoopback.ratio.toFixed(3)} loopback (CPU ${onLoopback.cpu.toFixed(3)})`
    })
    const { best, pays } = verdict(chosen, chosen.map((_, i) => Math.max(link.ratios[i].ratio, loopback.ratios[i].ratio)))
    const result: MeasureResult = {
      id: 18,
      title: "A/B of #17's speed-ups: each taken out, time over the core's",
      setup: `real link: ${linkRecords.toLocaleString("en-US")} users, ${realLink.latencyMillis} ms a page, ${realLink.megabits} Mbit/s, ${realLink.handshakeMillis} ms a new connection, compression on; loopback: ${loopbackRecords.toLocaleString("en-US")} users, no latency; ${lines.join("; ")}`,
      contenders: [...link.contenders, ...loopback.contenders],
      result: best,
      resultText: pays.length === 0
        ? "no speed-up pays ≥ 3 % on either profile (taking it out costs less)"
        : `pays ≥ 3 % on a profile (taking it out costs that much): ${pays.map((variant) => variant.speedUp).join(", ")}`,
      goal: "record it (keep where ≥ 1.03)",
      holds: true
    }
    return result
  }).pipe(Effect.scoped)
