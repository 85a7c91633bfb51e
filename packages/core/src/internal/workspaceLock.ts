import { Effect, Option, type Scope } from "effect"
import { globalValue } from "effect/GlobalValue"

/**
 * Intercom allows one open scroll per workspace, so this process allows one too: a permit per workspace, held
 * for the life of a scroll's scope. Process-wide on purpose, so that two clients built separately for the same
 * workspace still take turns. Keys are never logged (they hold the token).
 */
const locks = globalValue(
  Symbol.for("@intercom-scroll/core/internal/workspaceLock"),
  () => new Map<string, Effect.Semaphore>()
)

const semaphoreFor = (workspace: string): Effect.Semaphore => {
  let semaphore = locks.get(workspace)
  if (semaphore === undefined) {
    semaphore = Effect.unsafeMakeSemaphore(1)
    locks.set(workspace, semaphore)
  }
  return semaphore
}

/**
 * Waits (interruptibly) for the workspace, and gives it back when the scope closes: at the end of the scroll,
 * on failure, or on an early stop such as `Stream.take` or an interrupt.
 */
export const acquire = (workspace: string): Effect.Effect<void, never, Scope.Scope> =>
  Effect.uninterruptibleMask((restore) => {
    const semaphore = semaphoreFor(workspace)
    return restore(semaphore.take(1)).pipe(
      Effect.zipRight(Effect.addFinalizer(() => semaphore.release(1)))
    )
  })

/** Whether a scroll of the workspace holds the lock now: for tests and diagnostics. */
export const isHeld = (workspace: string): Effect.Effect<boolean> =>
  Effect.map(semaphoreFor(workspace).withPermitsIfAvailable(1)(Effect.void), Option.isNone)
