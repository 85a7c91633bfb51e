/**
 * SQLite's "busy": another connection holds the file's write lock. Asked again rather than failed.
 */
import { Effect, Schedule } from "effect"
import { isSqlError } from "./kind.js"

/**
 * SQLite's answer while another connection holds its write lock past the driver's own wait (better-sqlite3: 5 s): a
 * backup, a `VACUUM`, an operator's open transaction. Not a lost lease: the statement is asked again.
 */
export const isBusy = (error: unknown): boolean => {
  const code = isSqlError(error) && error.cause instanceof Error
    ? (error.cause as Error & { readonly code?: unknown }).code
    : undefined
  return typeof code === "string" && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"))
}

const busyRetries = Schedule.spaced("500 millis").pipe(Schedule.upTo("1 minute"))

/** Asks again every half second while SQLite is busy, for up to a minute; then fails with SQLite's own error. */
export const whileBusy = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.retry(effect, { schedule: busyRetries, while: isBusy })
