import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { describe, expect, it } from "vitest"
import { applyPatch, coreSrc, variants, verdict } from "../src/measures/speedups.js"

describe("the A/B's variants", () => {
  // A patch that no longer finds its text would race the core against itself under another name.
  it.each(variants.map((variant) => [variant.name, variant] as const))("%s changes the core's current source", (name, variant) => {
    for (const patch of variant.patches) {
      const text = Fs.readFileSync(NodePath.join(coreSrc, patch.file), "utf8")
      const patched = applyPatch(text, patch, name)
      expect(patched).not.toBe(text)
      expect(patched).toContain(patch.to)
    }
  })

  it("refuses a patch whose text is missing or found twice", () => {
    const patch = { file: "Scroll.ts", from: "a", to: "b" }
    expect(() => applyPatch("xyz", patch, "v")).toThrow(/no longer holds exactly one "a"/)
    expect(() => applyPatch("a a", patch, "v")).toThrow(/no longer holds exactly one "a"/)
    expect(applyPatch("xay", patch, "v")).toBe("xby")
  })

  it("judges the speed-ups against 1.03 and records a cost's variant without judging it", () => {
    const [readAhead, , , , , depthCheck] = variants
    expect(depthCheck?.cost).toBe(true)
    if (readAhead === undefined || depthCheck === undefined) return
    // The depth check's variant faster by 4 % would read as a speed-up that pays; it is a cost.
    expect(verdict([readAhead, depthCheck], [1.02, 1.04])).toEqual({ pays: [], best: 1.02 })
    expect(verdict([readAhead, depthCheck], [1.05, 0.97])).toEqual({ pays: [readAhead], best: 1.05 })
  })
})
