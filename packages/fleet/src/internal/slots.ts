/**
 * A runner's `maxSyncs` slots: first come, first served, a freed slot handed straight to the sync that waited longest.
 *
 * Not Effect's Semaphore, which wakes every waiter when a permit frees and sends all but one back to wait. A runner of a
 * large fleet receives its whole share of workspaces at once, and each waits here: with thousands waiting that is
 * quadratic (2,000 waiters on 8 permits, each held 1 ms: 68 s against 0.3 s), and the garbage of the wake-ups held a
 * runner at 1.2 GB with 1,000 workspaces queued and 3.9 GB with 2,500 (packages/bench/NOTES.md, "The fleet at 2,000
 * and 5,000 workspaces").
 *
 * @internal
 */
import { Effect } from "effect"

export interface Slots {
  /** Runs `effect` in a slot, waiting for one first. A wait that is interrupted takes no slot and keeps none. */
  readonly withSlot: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

export const make = (slots: number): Effect.Effect<Slots> =>
  Effect.sync(() => {
    let free = slots
    /** The waiters' wake-ups, in arrival order (a Set iterates in insertion order). */
    const waiting = new Set<() => void>()

    /** The slot goes to the longest waiter, who is no longer in `waiting` once it has it. */
    const release = Effect.sync(() => {
      const [next] = waiting
      if (next === undefined) free++
      else {
        waiting.delete(next)
        next()
      }
    })

    return {
      withSlot: (effect) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.suspend(() => {
            if (free > 0) {
              free--
              return Effect.ensuring(restore(effect), release)
            }
            let given = false
            let resume = () => {}
            const wake = () => {
              given = true
              resume()
            }
            const wait = Effect.async<void>((callback) => {
              resume = () => callback(Effect.void)
              waiting.add(wake)
            })
            return restore(wait).pipe(
              // Interrupted anywhere in the wait, even after the slot was given: one given it passes it on; one still
              // waiting leaves the line.
              Effect.onInterrupt(() => given ? release : Effect.sync(() => waiting.delete(wake))),
              Effect.zipRight(Effect.ensuring(restore(effect), release))
            )
          })
        )
    }
  })
