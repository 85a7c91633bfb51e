/**
 * What one export leaves for the next, across processes: whether it cut its scroll short, so that Intercom still holds
 * it open (an interrupt, a reader that closed the pipe, a failure after the first page). Intercom allows one scroll of a
 * workspace at a time and drops one about a minute after its last use, so the next export meets it as `scroll_exists`;
 * with this note it can say that the scroll is its own, and when it goes.
 *
 * The note is a small file in the temporary directory (`$TMPDIR/intercom-scroll/`), named by the SHA-256 of the base
 * URL and the access token, never by the token. Reading or writing it never fails an export: without it, a wait is
 * only told less precisely.
 *
 * @since 0.1.0
 */
import { FileSystem, Path } from "@effect/platform"
import { Clock, Config, Effect, Redacted, Schema } from "effect"
import * as Os from "node:os"

/**
 * For how long after an export cut its scroll short a `scroll_exists` is taken for that scroll: Intercom's minute, and
 * as long again for the reports of it lasting longer (the core's own memory of a scroll in one process is as long).
 */
const MEMORY_MILLIS = 2 * 60 * 1000

/** How long Intercom keeps a scroll after its last use. */
export const INTERCOM_KEEPS_MILLIS = 60 * 1000

const Note = Schema.parseJson(Schema.Struct({ leftOpenAt: Schema.Number }))

/**
 * @since 0.1.0
 * @category models
 */
export interface OpenScroll {
  /** When an earlier export of the workspace cut its scroll short, if it did within the last two minutes. */
  readonly leftOpenAt: Effect.Effect<number | undefined>
  /** Notes that this export cut its scroll short now, or (`undefined`) that it left none open. */
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
      const now = yield* Clock.currentTimeMillis
      return leftOpenAt <= now && now - leftOpenAt < MEMORY_MILLIS ? leftOpenAt : undefined
    }).pipe(Effect.orElseSucceed(() => undefined))
    const note = (at: number | undefined) =>
      (at === undefined
        ? fs.remove(file, { force: true })
        : fs.makeDirectory(directory, { recursive: true, mode: 0o700 }).pipe(
          Effect.zipRight(Schema.encode(Note)({ leftOpenAt: at })),
          Effect.flatMap((text) => fs.writeFileString(file, text))
        )).pipe(Effect.ignore)
    return { leftOpenAt, note }
  })

/**
 * The note's directory: `intercom-scroll` in TMPDIR, else in the system's temporary directory.
 *
 * @since 0.1.0
 * @category constructors
 */
export const directory: Effect.Effect<string, never, Path.Path> = Effect.gen(function*() {
  const path = yield* Path.Path
  const tmp = yield* Config.string("TMPDIR").pipe(Config.withDefault(""), Effect.orElseSucceed(() => ""))
  return path.join(tmp === "" ? Os.tmpdir() : tmp, "intercom-scroll")
})

/**
 * A note that knows nothing and keeps nothing, for an export run without one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const none: OpenScroll = { leftOpenAt: Effect.succeed(undefined), note: () => Effect.void }
