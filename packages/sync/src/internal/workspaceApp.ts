/**
 * Which Intercom app (workspace) a workspace name's rows hold, and whether this run's token belongs to it: the check
 * that keeps a token of another workspace from marking every row deleted and filling the table with its own records.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { IntercomClient } from "@intercom-scroll/core"
import { Clock, Effect, Either } from "effect"
import { type LockLost, type SessionPooled, type TableLocked, WorkspaceMismatch, WorkspaceUnchecked } from "../SyncError.js"
import type { Held } from "./lock.js"
import type { Store } from "./store.js"

/**
 * Checks the token's app against the app the name is bound to, or, for a name not bound yet, against the app its
 * stored records name (a database synced before the check, or unchecked), and then binds it; under the workspace's
 * lock, before anything else is written. Returns the app's `id_code`, or null for a run that goes unchecked:
 *
 * - Intercom refuses to say (the app may not read admins): a bound name is refused, its rows staying guarded; a name
 *   not bound goes unchecked, with a warning, as it went before the check existed.
 * - No answer otherwise (a token refused outright, Intercom unreachable, 5xx after a few tries): unchecked, with a
 *   warning (at debug for a token refused, which the scroll's `Unauthorized` says); the scroll after it then says what
 *   is wrong in its own words (`Unauthorized`, `Unreachable`, …).
 * - A client that cannot ask (a test double): unchecked.
 */
export const check = (
  workspace: string,
  store: Store,
  lock: Held
): Effect.Effect<string | null, WorkspaceMismatch | WorkspaceUnchecked | LockLost | SessionPooled | TableLocked | SqlError, IntercomClient.IntercomClient> =>
  Effect.gen(function*() {
    const identify = (yield* IntercomClient.IntercomClient).identify
    if (identify === undefined) return null
    const app = yield* Effect.either(identify)
    if (Either.isLeft(app)) {
      const bound = app.left.refused ? yield* lock.transaction(store.boundApp) : undefined
      if (bound !== undefined) {
        return yield* new WorkspaceUnchecked({ workspace, boundApp: bound.id, detail: app.left.problem })
      }
      // A token refused outright (401) is said by the scroll after this, as `Unauthorized`: a warning first would only
      // say it again, less clearly, on every run of a fleet's workspace with a bad token.
      const log = app.left.status === 401 ? Effect.logDebug : Effect.logWarning
      yield* log("Could not learn which Intercom workspace the token belongs to: this run does not check it").pipe(
        Effect.annotateLogs({ workspace, error: app.left.message })
      )
      return null
    }
    const token = { id: app.right.id_code, name: app.right.name ?? null }
    const now = yield* Clock.currentTimeMillis
    const held = yield* lock.transaction(Effect.gen(function*() {
      const bound = yield* store.boundApp
      if (bound !== undefined) return bound
      const stored = yield* store.storedApp
      if (stored !== undefined && stored !== token.id) return { id: stored, name: null }
      yield* store.bindApp(token, now)
      return token
    }))
    if (held.id !== token.id) {
      return yield* new WorkspaceMismatch({
        workspace,
        boundApp: held.id,
        tokenApp: token.id,
        ...(held.name === null ? {} : { boundAppName: held.name }),
        ...(token.name === null ? {} : { tokenAppName: token.name })
      })
    }
    return token.id
  })
