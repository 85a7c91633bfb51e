/**
 * Seeded, allocation-free randomness: the same inputs give the same data on every run and every machine.
 *
 * @internal
 */

/** Mixes two 32-bit words into one (murmur3's finaliser over a combined word). */
export const mix = (a: number, b: number): number => {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ b
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

/** A 32-bit hash of a string (FNV-1a). */
export const hashString = (value: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < value.length; i++) {
    h = Math.imul(h ^ value.charCodeAt(i), 0x01000193)
  }
  return h >>> 0
}

/** Hashes up to three 32-bit words (fixed arity: this is on the hot path of record generation). */
export const hash = (a: number, b: number, c = 0): number => mix(mix(mix(0x2545f491, a), b), c)

/** A small seeded generator (mulberry32). */
export class Rng {
  private state: number
  constructor(seed: number) {
    this.state = seed >>> 0
  }
  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  /** An integer in [0, bound). */
  int(bound: number): number {
    return Math.floor(this.next() * bound)
  }
  /** An integer in [min, max]. */
  between(min: number, max: number): number {
    return min + this.int(max - min + 1)
  }
  chance(probability: number): boolean {
    return this.next() < probability
  }
  pick<A>(values: ReadonlyArray<A>): A {
    return values[this.int(values.length)]
  }
  /** `value`, or null with the given probability. */
  orNull<A>(probability: number, value: () => A): A | null {
    return this.chance(probability) ? null : value()
  }
  hex(length: number): string {
    let out = ""
    while (out.length < length) {
      out += ((this.next() * 4294967296) >>> 0).toString(16).padStart(8, "0")
    }
    return out.slice(0, length)
  }
  /** A random-looking version 4 UUID. */
  uuid(): string {
    const h = this.hex(32)
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${"89ab"[this.int(4)]}${h.slice(17, 20)}-${h.slice(20)}`
  }
}

/** The greatest common divisor, for choosing a step coprime to a data set's size. */
export const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b))
