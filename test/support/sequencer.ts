/**
 * The order in which `pnpm test` hands its files to the workers: the longest first, so that no long file starts
 * late and runs alone at the end while the other core idles (the wall clock's tail). Vitest's own order is the last
 * run's durations (kept in node_modules/.vite), or without them the files' sizes, which put the fleet's process tests,
 * the longest file, among the last. The files named here go first, in this order (their wall times in a full run at
 * a load of 4–5, packages/bench/NOTES.md); the others follow in vitest's order.
 */
import { BaseSequencer, type TestSpecification } from "vitest/node"

const longestFirst = [
  "packages/fleet/test/Fleet.process.test.ts", // ~45–60 s, its cases at once, mostly waiting on their runners
  "test/examples.test.ts", // ~30 s, 16 processes
  "test/sync.test.ts", // ~26 s, its cases at once, the longest waiting out a scroll left open
  "test/cli.test.ts", // ~23 s
  "packages/core/test/Properties.test.ts", // ~19 s
  "packages/core/test/Simulator.test.ts", // ~17 s
  "packages/sync/test/Lock.test.ts" // ~13 s
]

const rank = (spec: TestSpecification) => {
  const index = longestFirst.findIndex((file) => spec.moduleId.endsWith(`/${file}`))
  return index === -1 ? longestFirst.length : index
}

export class LongestFirst extends BaseSequencer {
  override async sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    const sorted = await super.sort(files)
    // Array.prototype.sort is stable: the files not named keep vitest's order.
    return sorted.sort((a, b) => rank(a) - rank(b))
  }
}
