/**
 * Measures 6 and 7: the `intercom-scroll` bin as a stranger gets it, from the packed packages installed with npm in a
 * project of its own (`@intercom-scroll/test/install`, the install test's own setup), each run a fresh process:
 *
 *   6. Start-up: `intercom-scroll --help`, median wall time, against `node -e ''` in the same rounds.
 *   7. Memory: peak RSS exporting 200k users to a file, against a node process that holds nothing.
 */
import type * as Install from "@intercom-scroll/test/install"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as Cli from "./cli.js"
import { type Contender, interleave, type Interleaved, pairedMedian, type Sample } from "./measure.js"
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

/** Measure 6: `intercom-scroll --help` through the installed bin, N fresh processes. */
export const startup = (project: Install.Project, rounds: number, onSample: Progress) =>
  Effect.gen(function*() {
    const setup = `the installed bin, ${rounds} fresh processes, ${load()}`
    const names = { help: "intercom-scroll --help", bare: "node -e ''" }
    const help: Contender = {
      name: names.help,
      run: async () => {
        const finished = await node(project, [project.bin("intercom-scroll"), "--help"])
        if (!finished.stdout.includes("USAGE")) throw new Error(`--help printed no usage:\n${finished.stdout}`)
        return { value: finished.seconds, records: 0 }
      }
    }
    const result = yield* Effect.promise(() =>
      interleave([help, bareNode(project, names.bare, (finished) => finished.seconds)], {
        rounds,
        warmup: 1,
        expectedRecords: () => 0,
        onSample
      })
    )
    return atMost({
      id: 6,
      title: "Start-up: intercom-scroll --help, installed from the packed packages",
      setup,
      unit: "s",
      limit: 0.5,
      describe: (median, ratio) => `${median.toFixed(2)} s median, ${ratio.toFixed(1)}× node -e ''`
    }, result, names.help, names.bare)
  })

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
