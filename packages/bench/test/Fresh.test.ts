import { describe, expect, it } from "vitest"
import { type FreshSample, slowConsumerFloor, throughputCeiling } from "../src/measures/fresh.js"

const sample = (load: number, first: number, process: number): FreshSample => ({
  boot: 0.04,
  load,
  scrolls: [first, first],
  records: 3_000,
  process
})

describe("the fresh-process measures' bounds", () => {
  it("15's floor keeps the serial process's start and end, and puts the bare loop's scroll in its place", () => {
    // Serial: 0.5 s of start and end around a 1.7 s scroll; the bare loop with no work scrolls in 0.9 s.
    const floor = slowConsumerFloor(sample(0.45, 1.7, 2.2), sample(0, 0.9, 0.99))
    expect(floor.scroll).toBeCloseTo(0.9 / 1.7)
    expect(floor.process).toBeCloseTo(1.4 / 2.2)
  })

  it("16 and 17's ceiling is the bare loop's process with ours' load added", () => {
    expect(throughputCeiling(sample(0.45, 0.5, 1.0), sample(0, 0.5, 0.55))).toBeCloseTo(0.55 / 1.0)
    // A bare loop that loaded something would not be charged it twice.
    expect(throughputCeiling(sample(0.45, 0.5, 1.0), sample(0.1, 0.5, 0.65))).toBeCloseTo(0.65 / 1.0)
  })
})
