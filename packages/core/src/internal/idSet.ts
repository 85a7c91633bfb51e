/**
 * The ids a scroll has emitted, for dedupe across restarts. Intercom ids are 24 hex characters, i.e. 96 bits:
 * stored as three 32-bit words in an open-addressing table they take about 26 bytes each instead of the ~80 a
 * string in a `Set` costs, which is what keeps a million-record export's memory flat. Other ids fall back to a Set.
 */
export interface IdSet {
  /** Adds the id; true if it was not there yet. */
  readonly add: (id: string) => boolean
  /** How many slots of the table all the adds have looked at: the work, linear in the ids whatever they are. */
  readonly probes: () => number
}

/**
 * The most slots an id's probe looks at. The table's hash is fixed, so a server could send ids made to share a slot,
 * and each would probe past all the others (a million such ids, hours of CPU). An id whose run is longer goes to the
 * Set, whose hash V8 seeds anew in each process. Ids that are not made so never come near it at half load.
 */
const MAX_PROBES = 64

/** `slotOf`'s answer for an id whose run of probes reached `MAX_PROBES` without finding it or a free slot. */
const TOO_FAR = 0x7fffffff

const hexWord = (value: number) => value.toString(16).padStart(8, "0")

/** The value of a lowercase hex digit's char code, or -1. */
const hexDigit = (code: number): number => code >= 48 && code <= 57 ? code - 48 : code >= 97 && code <= 102 ? code - 87 : -1

/** Eight lowercase hex digits of `id` from `at` as an unsigned 32-bit word, or -1 if any is not one. */
const word = (id: string, at: number): number => {
  let value = 0
  for (let i = at; i < at + 8; i++) {
    const digit = hexDigit(id.charCodeAt(i))
    if (digit < 0) return -1
    value = (value << 4) | digit
  }
  return value >>> 0
}

export const make = (initialCapacity = 1024): IdSet => {
  let capacity = initialCapacity
  let words = new Uint32Array(capacity * 3)
  let used = new Uint8Array(capacity)
  let count = 0
  let probes = 0
  // Ids of other shapes, and 24-hex ones whose run of probes was too long (`MAX_PROBES`).
  const others = new Set<string>()

  /** The free slot for the id, `-1 - slot` where it is already, or `TOO_FAR`. */
  const slotOf = (a: number, b: number, c: number, cap: number, w: Uint32Array, u: Uint8Array): number => {
    // A cheap mix of the three words; the low bits pick the slot, linear probing resolves collisions.
    let h = Math.imul(a ^ (b >>> 7) ^ Math.imul(c, 0x9e3779b1), 0x85ebca6b)
    h ^= h >>> 13
    let slot = (h >>> 0) & (cap - 1)
    for (let probe = 1; u[slot] === 1; probe++) {
      probes++
      const at = slot * 3
      if (w[at] === a && w[at + 1] === b && w[at + 2] === c) return -1 - slot
      if (probe === MAX_PROBES) return TOO_FAR
      slot = (slot + 1) & (cap - 1)
    }
    return slot
  }

  const place = (a: number, b: number, c: number, slot: number, w: Uint32Array, u: Uint8Array) => {
    const at = slot * 3
    w[at] = a
    w[at + 1] = b
    w[at + 2] = c
    u[slot] = 1
  }

  const grow = () => {
    const nextCapacity = capacity * 2
    const nextWords = new Uint32Array(nextCapacity * 3)
    const nextUsed = new Uint8Array(nextCapacity)
    for (let slot = 0; slot < capacity; slot++) {
      if (used[slot] !== 1) continue
      const at = slot * 3
      const a = words[at], b = words[at + 1], c = words[at + 2]
      const next = slotOf(a, b, c, nextCapacity, nextWords, nextUsed)
      if (next === TOO_FAR) {
        others.add(hexWord(a) + hexWord(b) + hexWord(c))
        count--
      } else {
        place(a, b, c, next, nextWords, nextUsed)
      }
    }
    capacity = nextCapacity
    words = nextWords
    used = nextUsed
  }

  const addOther = (id: string): boolean => {
    if (others.has(id)) return false
    others.add(id)
    return true
  }

  const add = (id: string): boolean => {
    // Parsed in place, digit by digit: no regular expression, no substrings (this runs once per record).
    if (id.length !== 24) return addOther(id)
    const a = word(id, 0)
    const b = a < 0 ? -1 : word(id, 8)
    const c = b < 0 ? -1 : word(id, 16)
    if (c < 0) return addOther(id)
    const slot = slotOf(a, b, c, capacity, words, used)
    if (slot < 0) return false
    if (slot === TOO_FAR) return addOther(id)
    // Not in the table; it may be in the Set, sent there when its run was too long, before a growth shortened it.
    if (others.size > 0 && others.has(id)) return false
    place(a, b, c, slot, words, used)
    count++
    // Keep the table at most half full so probes stay short.
    if (count * 2 > capacity) grow()
    return true
  }

  return { add, probes: () => probes }
}
