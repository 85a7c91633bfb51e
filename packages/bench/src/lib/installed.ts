/**
 * Measures 6 and 7: the `intercom-scroll` bin as a stranger gets it, from the packed packages installed with npm in a
 * project of its own (`@intercom-scroll/test/install`, the install test's own setup), each run a fresh process:
 *
 *   6. Start-up: `intercom-scroll --help`, median wall time, against `node -e ''` in the same rounds; and the code
 *      cache's gain, CPU time against the same bundle without it, for `--help` and for an export's start.
 *   7. Memory: peak RSS exporting 200k users to a file, against a node process that holds nothing.
 */
import type * as Install from "@intercom-scroll/test/install"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as Cli from "./cli.js"
import { type Contender, interleave, type Interleaved, median, pairedMedian, type Sample } from "./measure.js"
import * as Memory from "./memory.js"
import type { ContenderResult, MeasureResult } from "./report.js"
import * as Simulator from "./simulator.js"

const MiB = 1024 * 1024

/** The machine's load when a measure starts: these goals are absolute, so the load says what a figure is worth. */
const load = () => `load ${Os.loadavg().map((average) => average.toFixed(1)).join(" ")} at the start`

type Progress = (round: number, name: string, sample: Sample) => void

/**
 * A measure whose result is the subject's median against an absolute goal (`limit`, at most), with the paired ratio
 * to its baseline beside it.
 */
const atMost = (
  measure: Pick<MeasureResult, "id" | "title" | "setup"> & {
    readonly unit: ContenderResult["unit"]
    readonly limit: number
    readonly describe: (median: number, ratio: number) => string
  },
  result: Interleaved,
  subject: string,
  baseline: string
): MeasureResult => {
  const median = result.medians[subject]
  const ratio = pairedMedian(result, [subject, baseline], ([value, base]) => value / base)
  return {
    id: measure.id,
    title: measure.title,
    setup: measure.setup,
    contenders: [subject, baseline].map((name) => ({
      name,
      unit: measure.unit,
      median: result.medians[name],
      samples: result.samples[name].map((sample) => sample.value)
    })),
    result: median,
    resultText: measure.describe(median, ratio),
    goal: `≤ ${measure.limit} ${measure.unit}`,
    holds: median <= measure.limit
  }
}

/** `node …args` in the project, to the end: its wall time and peak RSS, or the failure with its output. */
const node = async (project: Install.Project, args: ReadonlyArray<string>): Promise<Memory.Finished> => {
  const finished = await Memory.runNode(args, { env: {}, cwd: project.directory })
  if (finished.exitCode !== 0) throw new Error(`node ${args.join(" ")} exited with ${finished.exitCode}:\n${finished.stderr.slice(-2000)}`)
  return finished
}

/** A bare node process, as each measure's baseline: what node costs before a line of ours runs. */
const bareNode = (project: Install.Project, name: string, value: (finished: Memory.Finished) => number): Contender => ({
  name,
  run: async () => ({ value: value(await node(project, ["-e", ""])), records: 0 })
})

/** A run's CPU time (user + system), which the machine's load inflates much less than its wall time. */
const cpuOf = (finished: Memory.Finished): number => {
  if (finished.cpuSeconds === undefined) throw new Error("measure 6 needs GNU time (/usr/bin/time -v) for CPU times")
  return finished.cpuSeconds
}

/**
 * Measure 6: `intercom-scroll --help` through the installed bin, N fresh processes, its code cache written by the
 * warm-up round (the bin's second and later runs), against `node -e ''`. Beside it, what the cache saves: the same
 * runs with NODE_DISABLE_COMPILE_CACHE=1 (the plain bundle, compiled from its text), and an export's start with and
 * without it (`export users` without a token: the export's code loaded, then InvalidConfig), each with a cache of its
 * own. Wall time is the goal's; CPU time is what the cache changes, and what the load inflates least.
 */
export const startup = (project: Install.Project, rounds: number, onSample: Progress) =>
  Effect.gen(function*() {
    const setup = `the installed bin, ${rounds} fresh processes, ${load()}`
    const directory = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "intercom-bench-compile-cache-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true })))
    const names = {
      help: "intercom-scroll --help",
      helpPlain: "--help, no code cache",
      exportStart: "export's start",
      exportPlain: "export's start, no code cache",
      bare: "node -e ''"
    }
    const cpu: Record<string, Array<number>> = Object.fromEntries(Object.values(names).map((name) => [name, []]))
    const bin = (name: string, args: ReadonlyArray<string>, check: (finished: Memory.Finished) => boolean, cache: string | undefined): Contender => ({
      name,
      run: async () => {
        const env: Record<string, string> = cache === undefined ? { NODE_DISABLE_COMPILE_CACHE: "1" } : { NODE_COMPILE_CACHE: NodePath.join(directory, cache) }
        const finished = await Memory.runNode([project.bin("intercom-scroll"), ...args], { env, cwd: project.directory })
        if (!check(finished)) throw new Error(`intercom-scroll ${args.join(" ")} (exit ${finished.exitCode}):\n${finished.stdout}\n${finished.stderr.slice(-2000)}`)
        cpu[name]!.push(cpuOf(finished))
        return { value: finished.seconds, records: 0 }
      }
    })
    const help = (finished: Memory.Finished) => finished.exitCode === 0 && finished.stdout.includes("USAGE")
    // Without a token the export stops before its first request, once its code (the core, undici, the encoders) is loaded.
    const exportStart = ["export", "users", "--out", NodePath.join(directory, "users.ndjson")]
    const refused = (finished: Memory.Finished) => finished.exitCode === 1 && finished.stderr.includes("INTERCOM_ACCESS_TOKEN is not set")
    const bare: Contender = {
      name: names.bare,
      run: async () => {
        const finished = await node(project, ["-e", ""])
        cpu[names.bare]!.push(cpuOf(finished))
        return { value: finished.seconds, records: 0 }
      }
    }
    const result = yield* Effect.promise(() =>
      interleave([
        bin(names.help, ["--help"], help, "help"),
        bin(names.helpPlain, ["--help"], help, undefined),
        bin(names.exportStart, exportStart, refused, "export"),
        bin(names.exportPlain, exportStart, refused, undefined),
        bare
      ], { rounds, warmup: 1, expectedRecords: () => 0, onSample })
    )
    // The warm-up round's CPU times are not the measure's.
    const cpuMedian = (name: string) => median(cpu[name]!.slice(-rounds))
    const cpuRatio = (name: string, plain: string) =>
      median(cpu[name]!.slice(-rounds).map((value, round) => value / cpu[plain]!.slice(-rounds)[round]!))
    const measure = atMost({
      id: 6,
      title: "Start-up: intercom-scroll --help, installed from the packed packages",
      setup,
      unit: "s",
      limit: 0.5,
      describe: (median, ratio) =>
        `${median.toFixed(2)} s median, ${ratio.toFixed(1)}× node -e ''; CPU ${cpuMedian(names.help).toFixed(2)} s, ` +
        `${cpuRatio(names.help, names.helpPlain).toFixed(2)}× the plain bundle's ${cpuMedian(names.helpPlain).toFixed(2)} s; ` +
        `an export's start ${cpuMedian(names.exportStart).toFixed(2)} s, ${cpuRatio(names.exportStart, names.exportPlain).toFixed(2)}× ` +
        `${cpuMedian(names.exportPlain).toFixed(2)} s; node -e '' ${cpuMedian(names.bare).toFixed(2)} s`
    }, result, names.help, names.bare)
    const others = [names.helpPlain, names.exportStart, names.exportPlain].map((name) => ({
      name,
      unit: "s" as const,
      median: result.medians[name]!,
      samples: result.samples[name]!.map((sample) => sample.value)
    }))
    const cpuContenders = Object.values(names).map((name) => ({
      name: `${name}, CPU`,
      unit: "s" as const,
      median: cpuMedian(name),
      samples: cpu[name]!.slice(-rounds)
    }))
    return { ...measure, contenders: [...measure.contenders, ...others, ...cpuContenders] }
  }).pipe(Effect.scoped)

/** Measure 7: peak RSS of the installed bin exporting `users` users to a file, against the standalone simulator. */
export const memory = (project: Install.Project, users: number, token: string, rounds: number, onSample: Progress) =>
  Effect.gen(function*() {
    const setup = `the installed bin, export users --out FILE, ${users.toLocaleString("en-US")} users, peak RSS by ${Memory.method()}, ${load()}`
    const url = yield* Simulator.start(["--token", token, "--users", String(users), "--rate-limit", "100000000"])
    const directory = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "intercom-bench-installed-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true })))
    const names = { export: `intercom-scroll export, ${users.toLocaleString("en-US")} users`, bare: "node holding nothing" }
    const exportUsers: Contender = {
      name: names.export,
      run: async () => {
        const out = NodePath.join(directory, "users.ndjson")
        const exported = await Cli.exportUsers(url, token, out, [], [], project.bin("intercom-scroll"))
        Fs.rmSync(out, { force: true })
        return { value: exported.peakRssBytes / MiB, records: exported.records }
      }
    }
    const result = yield* Effect.promise(() =>
      interleave([exportUsers, bareNode(project, names.bare, (finished) => finished.peakRssBytes / MiB)], {
        rounds,
        warmup: 0,
        expectedRecords: (name) => name === names.export ? users : 0,
        onSample
      })
    )
    return atMost({
      id: 7,
      title: `Memory: peak RSS of the installed bin exporting ${users.toLocaleString("en-US")} users`,
      setup,
      unit: "MiB",
      limit: 160,
      describe: (median, ratio) => `${median.toFixed(0)} MiB, ${ratio.toFixed(1)}× a bare node process`
    }, result, names.export, names.bare)
  }).pipe(Effect.scoped)
