import { describe, expect, it } from "@effect/vitest"
import * as IdSet from "../src/internal/idSet.js"

describe("IdSet", () => {
  it("adds each 24-hex id once, through many growths", () => {
    const set = IdSet.make(4)
    const ids = Array.from({ length: 20_000 }, (_, i) => (i * 2654435761 % 2 ** 32).toString(16).padStart(8, "0").repeat(3))
    expect(ids.every((id) => set.add(id))).toBe(true)
    expect(ids.some((id) => set.add(id))).toBe(false)
  })

  it("tells apart ids that differ in any of their 96 bits", () => {
    const set = IdSet.make()
    const base = "0123456789abcdef01234567"
    expect(set.add(base)).toBe(true)
    for (let position = 0; position < 24; position++) {
      const flipped = base.slice(0, position) + (base[position] === "f" ? "e" : "f") + base.slice(position + 1)
      expect(set.add(flipped)).toBe(true)
    }
  })

  it("keeps ids of any other shape too", () => {
    const set = IdSet.make()
    expect(set.add("lead-42")).toBe(true)
    expect(set.add("LEAD-42")).toBe(true)
    expect(set.add("lead-42")).toBe(false)
    expect(set.add("0123456789ABCDEF01234567")).toBe(true)
  })

  it("takes ids made to share a slot in linear work, each kept once: a hostile server cannot make dedupe quadratic", () => {
    const set = IdSet.make(4)
    const hex = (value: number) => (value >>> 0).toString(16).padStart(8, "0")
    // The table's mix of the three words is the same for all: a ^ (b >>> 7) is 0, and c is 0.
    const colliding = Array.from({ length: 20_000 }, (_, i) => hex(i + 1) + hex((i + 1) << 7) + hex(0))
    const ordinary = Array.from({ length: 20_000 }, (_, i) => hex(i * 2654435761) + hex(i) + hex(i * 7))
    const ids = colliding.flatMap((id, i) => [id, ordinary[i]!])
    expect(ids.every((id) => set.add(id))).toBe(true)
    expect(ids.some((id) => set.add(id))).toBe(false)
    // Without a bound, the 20,000 colliding ids alone look at ~200 million slots each time round.
    expect(set.probes()).toBeLessThan(2 * ids.length * 65)
  })
})
