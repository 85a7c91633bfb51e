/**
 * What a statement's plan read, from PostgreSQL's `EXPLAIN (ANALYZE, FORMAT JSON)`: for tests that a statement reads
 * an index once, not again for each row of another (a plan that changes with the table's statistics).
 */

/** A node of the plan, and those under it. */
export interface PlanNode {
  readonly "Index Name"?: string
  readonly "Actual Rows"?: number
  readonly "Actual Loops"?: number
  readonly "Rows Removed by Filter"?: number
  readonly "Parallel Aware"?: boolean
  readonly Plans?: ReadonlyArray<PlanNode>
}

/** An index scan of a plan: its index, how many times it ran, and the entries it read in all its runs. */
export interface IndexScan {
  readonly index: string
  /** Its runs: each of a parallel scan's processes reads a part of the index, once; else, once for each row of another. */
  readonly loops: number
  readonly parallel: boolean
  readonly entries: number
}

/**
 * The index scans of a plan: a scan's rows are those its filter kept, a loop's average; the entries it read are those
 * and the ones it removed, in each of its loops.
 */
export const indexScans = (node: PlanNode): ReadonlyArray<IndexScan> => [
  ...(node["Index Name"] === undefined ? [] : [{
    index: node["Index Name"],
    loops: node["Actual Loops"] ?? 1,
    parallel: node["Parallel Aware"] ?? false,
    entries: ((node["Actual Rows"] ?? 0) + (node["Rows Removed by Filter"] ?? 0)) * (node["Actual Loops"] ?? 1)
  }]),
  ...(node.Plans ?? []).flatMap(indexScans)
]

/** The index entries each index scan of a plan read, by index name, in all its loops. */
export const indexEntries = (node: PlanNode): ReadonlyArray<readonly [string, number]> =>
  indexScans(node).map(({ entries, index }) => [index, entries] as const)
