/**
 * Contenders run interleaved in one process and one run, because these machines are noisy: whatever slows the
 * machine down slows every contender alike, and the results are compared as ratios of medians.
 */

/** One run of one contender. `value` is what the measure compares (records/s, seconds or bytes). */
export interface Sample {
  readonly value: number
  /** Records the run delivered: checked, so that a fast but wrong contender cannot win. */
  readonly records: number
}

export interface Contender {
  readonly name: string
  readonly run: () => Promise<Sample>
}

export const median = (values: ReadonlyArray<number>): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

export interface Interleaved {
  readonly samples: Readonly<Record<string, ReadonlyArray<Sample>>>
  readonly medians: Readonly<Record<string, number>>
}

/**
 * Runs `warmup` unrecorded rounds, then `rounds` recorded ones. Each round runs every contender once, in an order
 * that rotates from round to round (A B C, B C A, C A B, …), so that none always runs first.
 * Every run must deliver `expectedRecords`.
 */
export const interleave = async (
  contenders: ReadonlyArray<Contender>,
  options: {
    readonly rounds: number
    readonly warmup: number
    readonly expectedRecords: (name: string) => number
    readonly onSample?: (round: number, name: string, sample: Sample) => void
  }
): Promise<Interleaved> => {
  const samples: Record<string, Array<Sample>> = Object.fromEntries(contenders.map((c) => [c.name, []]))
  for (let round = -options.warmup; round < options.rounds; round++) {
    const shift = ((round % contenders.length) + contenders.length) % contenders.length
    for (let i = 0; i < contenders.length; i++) {
      const contender = contenders[(i + shift) % contenders.length]
      const sample = await contender.run()
      const expected = options.expectedRecords(contender.name)
      if (sample.records !== expected) {
        throw new Error(`${contender.name} delivered ${sample.records} records, expected ${expected}`)
      }
      if (round >= 0) samples[contender.name].push(sample)
      options.onSample?.(round, contender.name, sample)
    }
  }
  const medians = Object.fromEntries(
    Object.entries(samples).map(([name, list]) => [name, median(list.map((sample) => sample.value))])
  )
  return { samples, medians }
}

/**
 * The median over rounds of `compare` applied to each round's samples: a paired comparison. The machine's speed drifts
 * over a run (by ±20 % from one minute to the next), and the samples of one round were taken back to back, so a
 * ratio within a round cancels the drift that a ratio of two medians, each from other rounds, lets through.
 */
export const pairedMedian = (
  interleaved: Interleaved,
  names: ReadonlyArray<string>,
  compare: (values: ReadonlyArray<number>) => number
): number => {
  const rounds = Math.min(...names.map((name) => interleaved.samples[name].length))
  return median(Array.from({ length: rounds }, (_, round) =>
    compare(names.map((name) => interleaved.samples[name][round].value))))
}

