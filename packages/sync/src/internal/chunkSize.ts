/**
 * SQLite: how many rows the next transaction of a pass done a chunk a transaction takes (the deletion pass's marking,
 * the fold of a run's log, the discard of stopped runs' logs), from the time the last one took. Another writer of the
 * file waits a chunk's whole time, and a row's cost is no constant: 10,000 marks held the file ~0.4 s at 600,000 users
 * on an idle machine and up to 15.8 s at 2,000,000 on a loaded one (packages/bench/NOTES.md). A size fixed for one
 * is wrong for the other. Sized by time, a chunk shrinks where rows are slow, to hold the file about `ChunkTime`, and
 * grows back to its first size, never beyond: where 10,000 take 0.2 s, larger chunks would only make another writer
 * wait longer (at 600,000 users, chunks grown to 0.5 s made the longest wait 0.62 s, against 0.18 s, in one pair of
 * runs).
 */
import { Context, Duration, Effect } from "effect"

/**
 * How long one chunk's transaction should take, from asking for the file to its commit. A reference, so that a test
 * or a caller can change it.
 */
export class ChunkTime extends Context.Reference<ChunkTime>()("@intercom-scroll/sync/ChunkTime", {
  defaultValue: () => Duration.millis(500)
}) {}

/** The fewest rows a chunk is cut to (fewer, and the pauses between chunks would be most of a pass's time). */
const fewest = 500
/** A chunk grows back at most this many times over the last: one quick chunk (a cache that was warm) says little. */
const growth = 2

/** Sizes a pass's chunks: `size` for the next, `took` once a chunk of that size has committed. */
export interface Sizer {
  readonly size: () => number
  readonly took: (elapsed: Duration.Duration) => void
}

/**
 * A sizer whose first chunk is `first` rows, the most any chunk takes. Each next one is the last one's size scaled to
 * `ChunkTime` by the time it took (a chunk of 10,000 that took 2 s: 2,500), at most twice the last, and at least 500
 * rows (a tenth of a `first` under 5,000: a test's chunks of 40).
 */
export const sizer = (first: number): Effect.Effect<Sizer> =>
  Effect.map(ChunkTime, (target) => {
    const floor = Math.max(1, Math.min(fewest, Math.floor(first / 10)))
    const targetMillis = Duration.toMillis(target)
    let size = first
    return {
      size: () => size,
      took: (elapsed) => {
        const millis = Duration.toMillis(elapsed)
        const scaled = millis > 0 ? Math.floor(size * targetMillis / millis) : Infinity
        size = Math.max(floor, Math.min(first, size * growth, scaled))
      }
    }
  })

/** Runs `transaction` with the sizer's next size, and tells the sizer how long it took, commit included. */
export const timed = <A, E, R>(
  sizes: Sizer,
  transaction: (size: number) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.map(Effect.timed(transaction(sizes.size())), ([elapsed, result]) => {
    sizes.took(elapsed)
    return result
  })
