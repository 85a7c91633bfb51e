/**
 * Which Intercom app (workspace) a workspace name's rows hold, and whether this run's token belongs to it: the check
 * that keeps a token of another workspace from marking every row deleted and filling the table with its own records.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { IntercomClient } from "@intercom-scroll/core"
import { Clock, Effect, Either } from "effect"
import { type LockLost, WorkspaceMismatch, WorkspaceUnchecked } from "../SyncError.js"
import type { Held } from "./lock.js"
import type { Store } from "./store.js"

/**
 * Binds an unbound name to the token's app, or checks the token against the app the name is bound to, under the
 * workspace's lock and before anything else is written; returns the app's `id_code`. When Intercom does not say (a
 * token that may not read admins, no answer to `GET /me`), a bound name is refused (its rows stay guarded) and an
 * unbound one goes unchecked, with a warning: null. A client that cannot ask (a test double) is not checked: null.
 */
export const check = (
  workspace: string,
  store: Store,
  lock: Held
): Effect.Effect<string | null, WorkspaceMismatch | WorkspaceUnchecked | LockLost | SqlError, IntercomClient.IntercomClient> =>
  Effect.gen(function*() {
    const identify = (yield* IntercomClient.IntercomClient).identify
    if (identify === undefined) return null
    const app = yield* Effect.either(identify)
    if (Either.isLeft(app)) {
      const bound = yield* lock.transaction(store.boundApp)
      if (bound !== undefined) {
        return yield* new WorkspaceUnchecked({ workspace, boundApp: bound, detail: app.left.message, refused: app.left.refused })
      }
      yield* Effect.logWarning("Could not learn which Intercom workspace the token belongs to: this run does not check it").pipe(
        Effect.annotateLogs({ workspace, error: app.left.message })
      )
      return null
    }
    const { id_code: id, name } = app.right
    const now = yield* Clock.currentTimeMillis
    const bound = yield* lock.transaction(store.bindApp({ id, name: name ?? null }, now))
    if (bound !== id) return yield* new WorkspaceMismatch({ workspace, boundApp: bound, tokenApp: id })
    return id
  })
