import { Clock, Effect, FiberRef, type Scope } from "effect"
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

/**
 * How long after this process left a scroll open a `scroll_exists` is taken for that scroll: Intercom's minute, and as
 * long again for the reports of it lasting longer. Past that, it is more likely another app's, and the note is let go.
 */
export const LEFT_OPEN_MEMORY_MILLIS = 2 * 60 * 1000

/** One holding of a workspace's lock, from its acquiring to its release. */
type Hold = object

/** A workspace's permit, who holds it, and when a scroll of this process was left open on Intercom's side. */
interface Entry {
  readonly semaphore: Effect.Semaphore
  holder: Hold | undefined
  leftOpenAt: number | undefined
  /** Scrolls that hold the permit or wait for it. */
  users: number
}

/**
 * Where a lock's entry lives. Looked up at each use rather than kept, so that an entry let go when idle and made anew
 * later is the one every client of the workspace sees, however long ago the client was made.
 */
interface Slot {
  readonly get: () => Entry | undefined
  readonly getOrMake: () => Entry
  /** Called whenever `entry` may have become idle: one nobody uses and that remembers nothing may go. */
  readonly letGo: (entry: Entry) => void
  /** Lets go of idle entries whose note of a scroll left open is older than `LEFT_OPEN_MEMORY_MILLIS`. */
  readonly sweep: (nowMillis: number) => void
}

/**
 * The holds of the scrolls this fiber runs within: set for the rest of a scroll's scope in the fiber that consumes
 * it, and inherited by the fibers forked from there; a join keeps the parent's own.
 */
const holdsAbove = globalValue(
  Symbol.for("@intercom-scroll/core/internal/workspaceLock/holdsAbove"),
  () => FiberRef.unsafeMake<ReadonlySet<Hold>>(new Set(), { join: (parent) => parent })
)

const makeEntry = (): Entry => ({ semaphore: Effect.unsafeMakeSemaphore(1), holder: undefined, leftOpenAt: undefined, users: 0 })

const isIdle = (entry: Entry) => entry.users === 0 && entry.holder === undefined

const fromSlot = (slot: Slot): WorkspaceLock => ({
  acquire: Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      slot.sweep(yield* Clock.currentTimeMillis)
      const entry = slot.getOrMake()
      entry.users++
      // A wait interrupted leaves the entry as it found it.
      yield* restore(entry.semaphore.take(1)).pipe(
        Effect.onInterrupt(() => Effect.sync(() => {
          entry.users--
          slot.letGo(entry)
        }))
      )
      const hold: Hold = {}
      entry.holder = hold
      // Given back once: the second call finds another holder, or none.
      const giveBack = Effect.suspend(() => {
        if (entry.holder !== hold) return Effect.void
        entry.holder = undefined
        entry.users--
        return Effect.zipRight(entry.semaphore.release(1), Effect.sync(() => slot.letGo(entry)))
      })
      yield* Effect.addFinalizer(() => giveBack)
      const above = yield* FiberRef.get(holdsAbove)
      yield* Effect.locallyScoped(holdsAbove, new Set([...above, hold]))
      return giveBack
    })
  ),
  // The holder is set as the permit is taken and cleared as it is given back.
  isHeld: Effect.sync(() => slot.get()?.holder !== undefined),
  isHeldAbove: Effect.map(
    FiberRef.get(holdsAbove),
    (above) => {
      const holder = slot.get()?.holder
      return holder !== undefined && above.has(holder)
    }
  ),
  noteLeftOpen: (atMillis) =>
    Effect.sync(() => {
      const entry = atMillis === undefined ? slot.get() : slot.getOrMake()
      if (entry === undefined) return
      entry.leftOpenAt = atMillis
      slot.letGo(entry)
    }),
  leftOpenAt: Effect.sync(() => slot.get()?.leftOpenAt)
})

/**
 * The locks of the workspaces this process scrolls, by `key`. Process-wide on purpose, so that two clients made
 * separately for one workspace still take turns. Keyed by a digest, so that no token sits in a process-global. An
 * entry lasts while a scroll holds or waits for it, and then only while it remembers a scroll left open: a service
 * that makes a client per request, for tokens it is sent, keeps none for the tokens of requests long served.
 */
export const locks = globalValue(
  Symbol.for("@intercom-scroll/core/internal/workspaceLock"),
  () => new Map<string, Entry>()
)

/** The lock of the workspace whose `key` this is. */
export const forWorkspace = (key: string): WorkspaceLock =>
  fromSlot({
    get: () => locks.get(key),
    getOrMake: () => {
      let entry = locks.get(key)
      if (entry === undefined) {
        entry = makeEntry()
        locks.set(key, entry)
      }
      return entry
    },
    letGo: (entry) => {
      if (isIdle(entry) && entry.leftOpenAt === undefined && locks.get(key) === entry) locks.delete(key)
    },
    sweep: (nowMillis) => {
      for (const [other, entry] of locks) {
        if (isIdle(entry) && entry.leftOpenAt !== undefined && nowMillis - entry.leftOpenAt >= LEFT_OPEN_MEMORY_MILLIS) {
          locks.delete(other)
        }
      }
    }
  })

/** A lock of its own, for a client whose workspace cannot be named (a test double): one scroll of it at a time. */
export const make = (): WorkspaceLock => {
  const entry = makeEntry()
  return fromSlot({ get: () => entry, getOrMake: () => entry, letGo: () => {}, sweep: () => {} })
}

const encoder = new TextEncoder()

/**
 * A workspace's key: the SHA-256 of its base URL and access token, in hex. A token belongs to one app in one
 * workspace, so the key is never shared by two apps; but another token of the same app (rotated, or another app's
 * installed on the workspace) has a key of its own, though Intercom keeps one open scroll for both: its scroll meets
 * `scroll_exists` and waits by `concurrentScroll`, as for another process's.
 */
export const key = (baseUrl: string, token: string): Effect.Effect<string> =>
  Effect.map(
    Effect.promise(() => crypto.subtle.digest("SHA-256", encoder.encode(`${baseUrl}\n${token}`))),
    (digest) => Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("")
  )
