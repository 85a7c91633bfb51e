/**
 * PostgreSQL: whether the client's connections have sessions of their own, as the advisory lock needs.
 */
import type { SqlClient, SqlConnection } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { SessionPooled } from "../../SyncError.js"

/**
 * Whether the client's connections have sessions of their own, as the workspace lock needs, before any sync relies on
 * it: a pooler in transaction or statement mode gives a connection's next statement to whichever session is free, and
 * a second connection the session the first just used (PgBouncer hands out the one used last). A setting of the first
 * connection's session, read back on it and then on a second connection held at the same time, tells either. Not
 * proof of the contrary (a busy pooler may happen to give each the same session as before): the lock's own checks stay.
 */
const SeenRows = Schema.Array(Schema.Struct({ seen: Schema.NullOr(Schema.String) }))

export const checkSessions = (sql: SqlClient.SqlClient): Effect.Effect<void, SessionPooled | SqlError> =>
  Effect.scoped(Effect.gen(function*() {
    const setting = "intercom_scroll.session_probe"
    const token = randomUUID()
    const read = (connection: SqlConnection.Connection) =>
      connection.execute("SELECT current_setting($1, true) AS seen", [setting], undefined).pipe(
        Effect.flatMap(Schema.decodeUnknown(SeenRows)),
        Effect.catchTag("ParseError", (error) => Effect.die(error)),
        Effect.map(([row]) => row?.seen)
      )
    const first = yield* sql.reserve
    yield* first.execute("SELECT set_config($1, $2, false)", [setting, token], undefined)
    const again = yield* read(first)
    const second = yield* sql.reserve
    const other = yield* read(second)
    // The setting means nothing to anyone else; left empty on whichever session takes it.
    yield* Effect.ignore(first.execute("SELECT set_config($1, '', false)", [setting], undefined))
    if (again !== token) {
      return yield* new SessionPooled({ evidence: "a connection's second statement ran on another session than its first" })
    }
    if (other === token) {
      return yield* new SessionPooled({ evidence: "a second connection was given the session the first one was using" })
    }
  }))
