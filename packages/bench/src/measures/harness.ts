/**
 * What bench.ts lends the measures of this directory: its worker contenders (whose runs go into the JSON), its progress
 * lines and its subset flag.
 */
import type { Effect, Scope } from "effect"
import type { Contender, Sample } from "../lib/measure.js"
import type { ContenderResult } from "../lib/report.js"
import type { RunResult, Setup } from "../lib/worker.js"
import type * as Workers from "../lib/workers.js"

export interface Harness {
  /** A contender's worker process, its sample being `value` of each run. */
  readonly viaWorker: (
    name: string,
    setup: Setup,
    value: (run: RunResult) => number,
    options?: Workers.Options
  ) => Effect.Effect<Contender, Workers.WorkerFailed, Scope.Scope>
  readonly progress: (measure: string, unit: ContenderResult["unit"]) => (round: number, name: string, sample: Sample) => void
  readonly log: (line: string) => Effect.Effect<void>
  /** `--rounds N` if given, else `full`, or `fast` under `--quick`. */
  readonly rounds: (full: number, fast: number) => number
}

export const seconds = (run: RunResult) => run.seconds

export const contender = (
  name: string,
  unit: ContenderResult["unit"],
  samples: ReadonlyArray<Sample>,
  median: number
): ContenderResult => ({ name, unit, median, samples: samples.map((sample) => sample.value) })

export const kB = (bytes: number) => `${(bytes / 1000).toFixed(0)} kB`
