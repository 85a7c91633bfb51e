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
  readonly Plans?: ReadonlyArray<PlanNode>
}

/**
 * The index entries each index scan of a plan read, by index name, in all its loops: a scan's rows are those its
 * filter kept, a loop's average; the entries it read are those and the ones it removed, in each of its loops.
 */
export const indexEntries = (node: PlanNode): ReadonlyArray<readonly [string, number]> => [
  ...(node["Index Name"] === undefined
    ? []
    : [[
      node["Index Name"],
      ((node["Actual Rows"] ?? 0) + (node["Rows Removed by Filter"] ?? 0)) * (node["Actual Loops"] ?? 1)
    ] as const]),
  ...(node.Plans ?? []).flatMap(indexEntries)
]
