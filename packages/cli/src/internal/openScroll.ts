/**
 * What one export or sync leaves for the next, across processes: whether it cut its scroll short, so that Intercom still
 * holds it open (an interrupt, a reader that closed the pipe, a failure after the first page). Intercom allows one
 * scroll of a workspace at a time and drops one about a minute after its last use, so the next run meets it as
 * `scroll_exists`; with this note it can say that the scroll is its own, and when it goes.
 *
 * The note is a small file in a directory of the user's in the temporary directory (`$TMPDIR/intercom-scroll-<uid>/`),
 * named by the SHA-256 of the base URL and the access token, never by the token. Written only into a directory that is
 * the user's own and no one else's to write in (another user could make it first, or plant a link there for the note to
 * write through), and by a rename. Reading or writing it never fails an export: without it, a wait is only told less
 * precisely.
 *
 * @since 0.1.0
 */
import { FileSystem, Path } from "@effect/platform"
import { type Progress, ScrollError } from "@intercom-scroll/core"
import { Cause, Clock, Config, Effect, Exit, Option, Redacted, Schema } from "effect"
import { randomUUID } from "node:crypto"
import * as NodeFs from "node:fs"
import * as Os from "node:os"

/**
 * For how long after an export cut its scroll short a `scroll_exists` is taken for that scroll: Intercom's minute, and
 * as long again for the reports of it lasting longer (the core's own memory of a scroll in one process is as long).
 */
const MEMORY_MILLIS = 2 * 60 * 1000

/**
 * Whether a scroll met at `now` may be the one an earlier run cut short at `leftOpenAt`: at the note's reading, and
 * again as each scroll is met, since a run may wait on one for longer than the note's memory (`--wait-for-other-scroll`).
 *
 * @since 0.1.0
 * @category open scroll
 */
export const remembers = (leftOpenAt: number | undefined, now: number): boolean =>
  leftOpenAt !== undefined && leftOpenAt <= now && now - leftOpenAt < MEMORY_MILLIS

/** How long Intercom keeps a scroll after its last use. */
export const INTERCOM_KEEPS_MILLIS = 60 * 1000

const Note = Schema.parseJson(Schema.Struct({ leftOpenAt: Schema.Number }))

/**
 * @since 0.1.0
 * @category models
 */
export interface OpenScroll {
  /** When an earlier run of the workspace cut its scroll short, if it did within the last two minutes. */
  readonly leftOpenAt: Effect.Effect<number | undefined>
  /** Notes that this run cut its scroll short now, or (`undefined`) that it left none open. */
  readonly note: (leftOpenAt: number | undefined) => Effect.Effect<void>
}

const encoder = new TextEncoder()

const sha256 = (text: string) =>
  Effect.map(
    Effect.promise(() => crypto.subtle.digest("SHA-256", encoder.encode(text))),
    (digest) => Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("")
  )

/**
 * The note of the workspace at `baseUrl` whose token is `accessToken`, in `directory`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  directory: string,
  baseUrl: string,
  accessToken: Redacted.Redacted<string>
): Effect.Effect<OpenScroll, never, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const file = path.join(directory, `open-scroll-${yield* sha256(`${baseUrl}\n${Redacted.value(accessToken)}`)}.json`)
    const leftOpenAt = Effect.gen(function*() {
      const { leftOpenAt } = yield* Schema.decode(Note)(yield* fs.readFileString(file))
      return remembers(leftOpenAt, yield* Clock.currentTimeMillis) ? leftOpenAt : undefined
    }).pipe(Effect.orElseSucceed(() => undefined))
    const write = (text: string) =>
      Effect.gen(function*() {
        yield* fs.makeDirectory(directory, { recursive: true, mode: 0o700 })
        if (!isPrivate(directory)) return
        // A new file, renamed over the note: a link in its place is replaced, not written through.
        const temporary = `${file}.${randomUUID()}.tmp`
        yield* fs.writeFileString(temporary, text, { flag: "wx", mode: 0o600 })
        yield* fs.rename(temporary, file).pipe(Effect.tapError(() => fs.remove(temporary, { force: true })))
      })
    const note = (at: number | undefined) =>
      (at === undefined
        ? fs.remove(file, { force: true })
        : Effect.flatMap(Schema.encode(Note)({ leftOpenAt: at }), write)).pipe(Effect.ignore)
    return { leftOpenAt, note }
  })

/** This user, as the note's directory is named after it: the uid where there is one (not on Windows). */
const user = (): string => typeof process.getuid === "function" ? String(process.getuid()) : Os.userInfo().username

/**
 * Whether `directory` is a directory of this user's (not a link to one) that no one else may write in. Windows has no
 * such mode bits: its temporary directory is the user's own.
 */
const isPrivate = (directory: string): boolean => {
  if (process.platform === "win32") return true
  try {
    const info = NodeFs.lstatSync(directory)
    return info.isDirectory() && info.uid === process.getuid?.() && (info.mode & 0o022) === 0
  } catch {
    return false
  }
}

/**
 * The note's directory: `intercom-scroll-<uid>` in TMPDIR, else in the system's temporary directory.
 *
 * @since 0.1.0
 * @category constructors
 */
export const directory: Effect.Effect<string, never, Path.Path> = Effect.gen(function*() {
  const path = yield* Path.Path
  const tmp = yield* Config.string("TMPDIR").pipe(Config.withDefault(""), Effect.orElseSucceed(() => ""))
  return path.join(tmp === "" ? Os.tmpdir() : tmp, `intercom-scroll-${user()}`)
})

/**
 * A note that knows nothing and keeps nothing, for a run without one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const none: OpenScroll = { leftOpenAt: Effect.succeed(undefined), note: () => Effect.void }

/**
 * Runs one scroll (an export's, a sync's resource) with the note kept. `run` is given when an earlier run left the
 * workspace's scroll open (for its progress line to say so), and wraps its progress reporter with `track`, which sees
 * the first page and the scroll's end (`Page`, `End`): a reporter reaches a stream that another owns (`Sync.run`'s). A
 * `ConcurrentScroll` met while an earlier run's scroll is noted open, within the note's two minutes, is that scroll
 * (`ownScroll`): the core cannot tell it from another app's. At the end the note says whether this scroll is left open:
 * opened, then stopped short of its end other than by expiring. A run that fails after its scroll's end (a CSV's reader
 * that closed the pipe, a file that could not be renamed, a sync's deletion pass or database) leaves none open.
 *
 * @since 0.1.0
 * @category open scroll
 */
export const keep = <A, E extends { readonly _tag: string }, R>(
  openScroll: OpenScroll,
  run: (track: (reporter: Progress.Reporter) => Progress.Reporter, leftOpenAt: number | undefined) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | ScrollError.ConcurrentScroll, R> => Effect.flatMap(openScroll.leftOpenAt, (leftOpenAt) => {
  // Whether a scroll opened: a page came. Stopped before its end, it stays open on Intercom's side for a minute.
  let opened = false
  // Whether it reached its end (`End`, the empty page): Intercom holds nothing open then, whatever the run does after.
  let ended = false
  const track = (reporter: Progress.Reporter): Progress.Reporter => ({
    report: (event) =>
      Effect.zipRight(
        Effect.sync(() => {
          opened ||= event._tag === "Page"
          ended ||= event._tag === "End"
        }),
        reporter.report(event)
      )
  })
  return run(track, leftOpenAt).pipe(
    Effect.catchIf(
      (error): error is E & ScrollError.ConcurrentScroll => error._tag === "ConcurrentScroll" && leftOpenAt !== undefined,
      // Met after a long wait, past the note's memory, the scroll is another's: Intercom would have dropped this tool's.
      (error) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.fail(
            remembers(leftOpenAt, now)
              ? new ScrollError.ConcurrentScroll({ resource: error.resource, requestId: error.requestId, ownScroll: true })
              : error
          ))
    ),
    // At its end, or expired, the scroll is gone; cut short after it opened (an interrupt too), it is not.
    Effect.onExit((exit) => {
      const failure = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
      // A page that came and could not be taken (over the size limit, a record of another type) opened it too.
      if (!opened && failure?._tag !== "InvalidResponse") return Effect.void
      return Exit.isSuccess(exit) || ended || failure?._tag === "Expired"
        ? openScroll.note(undefined)
        : Effect.flatMap(Clock.currentTimeMillis, openScroll.note)
    })
  )
})
