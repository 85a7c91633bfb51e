import { describe, expect, it } from "vitest"
import { type Interleaved, median, pairedMedian } from "../src/lib/measure.js"

/** Interleaved samples, one a round per contender, as `interleave` gives them. */
const interleaved = (values: Readonly<Record<string, ReadonlyArray<number>>>): Interleaved => ({
  samples: Object.fromEntries(Object.entries(values).map(([name, list]) => [name, list.map((value) => ({ value, records: 0 }))])),
  medians: Object.fromEntries(Object.entries(values).map(([name, list]) => [name, median(list)]))
})

describe("pairedMedian", () => {
  it("compares within each round, so a machine that changes speed mid-run does not skew the result", () => {
    // Measure 1 of the run at 5728be4 (records/s): the machine sped up after the fifth round, and the bare loop's
    // median fell on a fast round while Scroll.users' fell on a slow one.
    const run = interleaved({
      scroll: [16375, 16517, 16549, 18459, 18375, 21361, 27224, 25989, 28715, 25144, 27469],
      bare: [24835, 26695, 17630, 18772, 21193, 27672, 30181, 29449, 28279, 32111, 31405]
    })
    expect(run.medians.scroll / run.medians.bare).toBeCloseTo(21361 / 27672)
    // Round by round: 0.66 0.62 0.94 0.98 0.87 0.77 0.90 0.88 1.02 0.78 0.87.
    expect(pairedMedian(run, ["scroll", "bare"], ([scroll, bare]) => scroll / bare)).toBeCloseTo(27469 / 31405)
  })

  it("hands the comparison each round's values in the order the names are given", () => {
    const run = interleaved({ small: [350, 360, 340], large: [371, 380, 390] })
    expect(pairedMedian(run, ["large", "small"], ([large, small]) => large - small)).toBe(21)
  })
})
