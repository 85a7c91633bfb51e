/**
 * SQLite: the workspace's lock as a lease row (holder, host, pid, expiry) that a heartbeat renews.
 */
import type { SqlClient } from "@effect/sql"
import { Clock, Duration, Effect, Schema } from "effect"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import { LockLost } from "../../SyncError.js"
import { time } from "../dialect.js"
import { Busy, type Lock } from "./kind.js"
import { whileBusy } from "./sqliteBusy.js"

/** How long a SQLite lease lasts without renewal, and how often it is renewed. */
export const leaseDuration = Duration.seconds(30)
export const heartbeatInterval = Duration.seconds(10)

/**
 * This process's host as a lease names it: its hostname and, on Linux, its PID namespace. Processes in two containers
 * may share a hostname (`--uts=host`, a fixed `--hostname`) and a database file while each sees only its own pids: a
 * holder's pid not found here is gone only if it was in this namespace to be found.
 */
export const hostIdentity = (): string => {
  try {
    return `${os.hostname()} ${fs.readlinkSync("/proc/self/ns/pid")}`
  } catch {
    return os.hostname()
  }
}

/** Whether a process of this host with this pid exists (a signal 0 probes without sending anything). */
const processExists = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const table = "intercom_sync_locks"

/** Who holds a lease: the holder's id, its host (`hostIdentity`) and its pid there. */
const LeaseRows = Schema.Array(Schema.Struct({ holder: Schema.String, host: Schema.String, pid: Schema.Number }))

/** A lease row in `intercom_sync_locks`, renewed by `stillHeld`. */
export const lease = (sql: SqlClient.SqlClient, workspace: string): Lock => {
  const holder = randomUUID()
  const host = hostIdentity()
  const pid = process.pid
  const t = sql(table)
  const expiry = (now: number) => time("sqlite", now + Duration.toMillis(leaseDuration))

  // Takes the lease when there is none or it has expired: one statement, so two takers cannot both win.
  const takeFree = Effect.flatMap(Clock.currentTimeMillis, (now) =>
    sql`INSERT INTO ${t} ${
      sql.insert({ workspace, holder, host, pid, acquired_at: time("sqlite", now), expires_at: expiry(now) })
    }
      ON CONFLICT (workspace) DO UPDATE SET holder = excluded.holder, host = excluded.host, pid = excluded.pid,
        acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
      WHERE ${t}.expires_at <= excluded.acquired_at
      RETURNING holder`)

  // Takes over from a holder on this host whose process is gone, if it still holds the lease.
  const takeOverDead = Effect.gen(function*() {
    const [current] = yield* sql`SELECT holder, host, pid FROM ${t} WHERE workspace = ${workspace}`.pipe(
      Effect.flatMap(Schema.decodeUnknown(LeaseRows)),
      Effect.catchTag("ParseError", (error) => Effect.die(error))
    )
    if (current === undefined || current.host !== host || current.pid === pid || processExists(current.pid)) {
      return false
    }
    const now = yield* Clock.currentTimeMillis
    const taken = yield* sql`UPDATE ${t} SET holder = ${holder}, pid = ${pid}, acquired_at = ${time("sqlite", now)},
      expires_at = ${expiry(now)} WHERE workspace = ${workspace} AND holder = ${current.holder} RETURNING holder`
    return taken.length > 0
  })

  const renew = Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.map(
      sql`UPDATE ${t} SET expires_at = ${expiry(now)} WHERE workspace = ${workspace} AND holder = ${holder}
        RETURNING holder`,
      (rows) => rows.length > 0
    ))
  const lostReason = "its SQLite lease expired and another sync took it over"
  const fenced = Effect.filterOrFail(renew, (held) => held, () => new LockLost({ workspace, reason: lostReason }))

  // Each statement, and each transaction whole (rolled back), is asked again while another connection holds SQLite's
  // write lock.
  return {
    tryTake: whileBusy(Effect.flatMap(takeFree, (rows) =>
      rows.length > 0
        ? Effect.void
        : Effect.flatMap(takeOverDead, (taken) => taken ? Effect.void : Effect.fail(new Busy())))),
    stillHeld: whileBusy(renew),
    checkEvery: heartbeatInterval,
    lostReason: Effect.succeed({ reason: lostReason, unanswered: false }),
    release: whileBusy(Effect.asVoid(sql`DELETE FROM ${t} WHERE workspace = ${workspace} AND holder = ${holder}`)),
    // One connection: the file answers, or fails, by itself.
    aside: (effect) => effect,
    stop: Effect.void,
    // Renewing the lease first thing in the transaction takes SQLite's write lock: no takeover until it ends. With
    // `committed`, only `effect` may be interrupted: from its COMMIT to `committed`, nothing (the wait for the
    // connection, which another fiber's transaction holds, neither).
    transaction: (effect, committed) =>
      whileBusy(
        committed === undefined
          ? sql.withTransaction(Effect.zipRight(fenced, effect))
          : Effect.uninterruptibleMask((restore) =>
            Effect.tap(sql.withTransaction(Effect.zipRight(fenced, restore(effect))), committed)
          )
      )
  }
}
