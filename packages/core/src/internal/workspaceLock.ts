import { Effect, FiberRef, type Scope } from "effect"
import { globalValue } from "effect/GlobalValue"

/**
 * Intercom allows one open scroll per workspace, so this process allows one too: a permit per workspace, held for the
 * life of a scroll's scope. Beside it, what this process knows of the workspace's scroll on Intercom's side: whether a
 * scroll of its own was cut short there, still open until Intercom drops it.
 */
export interface WorkspaceLock {
  /**
   * Waits (interruptibly) for the workspace, and gives it back when the scope closes: on failure, or on an early stop
   * such as `Stream.take` or an interrupt. Returns the giving back itself, for the scroll's end: a stream's scope may
   * outlive it (`Stream.merge` closes its sides' scopes only when the merged stream ends). Given back once, whichever
   * comes first.
   */
  readonly acquire: Effect.Effect<Effect.Effect<void>, never, Scope.Scope>
  /** Whether a scroll of the workspace holds the lock now. */
  readonly isHeld: Effect.Effect<boolean>
  /**
   * Whether the scroll that holds the lock is one this fiber runs within: its stream is being consumed here (the
   * caller is inside its `flatMap` or `mapEffect`), or this fiber was forked from inside it. Waiting for the lock
   * would then wait forever, for a scroll that goes on only once the wait is over.
   *
   * Not seen: a scroll pulled in a fiber of its own by an operator (`Stream.buffer`, `Stream.zip`) holds the lock in
   * that fiber, forked from the consumer, as a scroll forked to run beside it is; nothing tells the two apart, and the
   * second must be waited for.
   */
  readonly isHeldAbove: Effect.Effect<boolean>
  /**
   * Notes that a scroll of this process opened and then stopped short of its end at `atMillis` (an interrupt, an early
   * stop, a failure), so that Intercom keeps it open until it expires; `undefined` notes that none is left (a scroll
   * opened since, so Intercom had dropped any other).
   */
  readonly noteLeftOpen: (atMillis: number | undefined) => Effect.Effect<void>
  /** When a scroll of this process was last left open, unless one opened since. */
  readonly leftOpenAt: Effect.Effect<number | undefined>
}

/** One holding of a workspace's lock, from its acquiring to its release. */
type Hold = object

/** A workspace's permit, who holds it, and when a scroll of this process was left open on Intercom's side. */
interface Entry {
  readonly semaphore: Effect.Semaphore
  holder: Hold | undefined
  leftOpenAt: number | undefined
}

/**
 * The holds of the scrolls this fiber runs within: set for the rest of a scroll's scope in the fiber that consumes
 * it, and inherited by the fibers forked from there; a join keeps the parent's own.
 */
const holdsAbove = globalValue(
  Symbol.for("@intercom-scroll/core/internal/workspaceLock/holdsAbove"),
  () => FiberRef.unsafeMake<ReadonlySet<Hold>>(new Set(), { join: (parent) => parent })
)

const makeEntry = (): Entry => ({ semaphore: Effect.unsafeMakeSemaphore(1), holder: undefined, leftOpenAt: undefined })

const fromEntry = (entry: Entry): WorkspaceLock => ({
  acquire: Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      yield* restore(entry.semaphore.take(1))
      const hold: Hold = {}
      entry.holder = hold
      // Given back once: the second call finds another holder, or none.
      const giveBack = Effect.suspend(() => {
        if (entry.holder !== hold) return Effect.void
        entry.holder = undefined
        return entry.semaphore.release(1)
      })
      yield* Effect.addFinalizer(() => giveBack)
      const above = yield* FiberRef.get(holdsAbove)
      yield* Effect.locallyScoped(holdsAbove, new Set([...above, hold]))
      return giveBack
    })
  ),
  // The holder is set as the permit is taken and cleared as it is given back.
  isHeld: Effect.sync(() => entry.holder !== undefined),
  isHeldAbove: Effect.map(
    FiberRef.get(holdsAbove),
    (above) => entry.holder !== undefined && above.has(entry.holder)
  ),
  noteLeftOpen: (atMillis) =>
    Effect.sync(() => {
      entry.leftOpenAt = atMillis
    }),
  leftOpenAt: Effect.sync(() => entry.leftOpenAt)
})

/**
 * The locks of the workspaces this process has scrolled, by `key`. Process-wide on purpose, so that two clients made
 * separately for one workspace still take turns. Keyed by a digest, so that no token sits in a process-global.
 */
export const locks = globalValue(
  Symbol.for("@intercom-scroll/core/internal/workspaceLock"),
  () => new Map<string, Entry>()
)

/** The lock of the workspace whose `key` this is. */
export const forWorkspace = (key: string): WorkspaceLock => {
  let entry = locks.get(key)
  if (entry === undefined) {
    entry = makeEntry()
    locks.set(key, entry)
  }
  return fromEntry(entry)
}

/** A lock of its own, for a client whose workspace cannot be named (a test double): one scroll of it at a time. */
export const make = (): WorkspaceLock => fromEntry(makeEntry())

const encoder = new TextEncoder()

/**
 * A workspace's key: the SHA-256 of its base URL and access token, in hex. A token belongs to one app in one
 * workspace, so the two name the workspace (and the app, which is what Intercom's companies scroll is limited by).
 */
export const key = (baseUrl: string, token: string): Effect.Effect<string> =>
  Effect.map(
    Effect.promise(() => crypto.subtle.digest("SHA-256", encoder.encode(`${baseUrl}\n${token}`))),
    (digest) => Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("")
  )
