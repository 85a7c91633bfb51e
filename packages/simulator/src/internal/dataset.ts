/**
 * One resource's records in one workspace: which indices exist (the initial ones, plus any added, minus any
 * removed) and their serialised JSON, computed on demand and cached up to a bound.
 *
 * @internal
 */
import type { Resource } from "../Resource.js"
import type { Rng } from "./random.js"
import { type Catalogue, idOf, type Major, recordJson } from "./records.js"

/**
 * Bytes of serialised records kept per data set, its two API generations' caches together: fast repeated scrolls,
 * bounded memory.
 */
const cacheBudget = 96 * 1024 * 1024

const encoder = new TextEncoder()

export class Dataset {
  /** Indices `[0, size)` have been created: the initial records and every one added since. */
  private size: number
  private readonly removed = new Set<number>()
  private readonly added: Array<number> = []
  private readonly cache: Record<Major, Map<number, Uint8Array>> = { 1: new Map(), 2: new Map() }
  private cachedBytes = 0

  constructor(readonly catalogue: Catalogue, readonly resource: Resource, initial: number) {
    this.size = initial
  }

  /** The number of indices created so far, present or removed: the universe a new scroll walks. */
  get created(): number {
    return this.size
  }

  has(index: number): boolean {
    return index < this.size && !this.removed.has(index)
  }

  /** Record `index` as UTF-8 JSON: pages are assembled from these bytes without serialising anything again. */
  json(index: number, major: Major): Uint8Array {
    const cache = this.cache[major]
    const cached = cache.get(index)
    if (cached !== undefined) return cached
    const json = encoder.encode(recordJson(this.catalogue, this.resource, index, major))
    if (this.cachedBytes < cacheBudget) {
      cache.set(index, json)
      this.cachedBytes += json.length
    }
    return json
  }

  add(count: number): void {
    for (let i = 0; i < count; i++) this.added.push(this.size++)
  }

  /** Removes `count` present records chosen by `rng` (all of them when fewer are present). */
  remove(count: number, rng: Rng): void {
    const present = this.size - this.removed.size
    if (count >= present) {
      for (let index = 0; index < this.size; index++) this.removed.add(index)
      return
    }
    for (let done = 0; done < count;) {
      const index = rng.int(this.size)
      if (!this.removed.has(index)) {
        this.removed.add(index)
        done++
      }
    }
  }

  private idsOf(indices: Iterable<number>): Array<string> {
    return Array.from(indices, (index) => idOf(this.catalogue.seed, this.resource, index))
  }

  /** The ids of the records present now. */
  ids(): Array<string> {
    const ids: Array<string> = []
    for (let index = 0; index < this.size; index++) {
      if (!this.removed.has(index)) ids.push(idOf(this.catalogue.seed, this.resource, index))
    }
    return ids
  }

  addedIds(): Array<string> {
    return this.idsOf(this.added)
  }

  removedIds(): Array<string> {
    return this.idsOf(this.removed)
  }
}
