/**
 * The note an export leaves for the next one, in a directory of the temporary directory that other users share: it is
 * written only where no one else can plant a file or a link for it to write through.
 */
import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ScrollError } from "@intercom-scroll/core"
import { Clock, type Duration, Effect, Redacted, TestClock } from "effect"
import * as OpenScroll from "../src/internal/openScroll.js"

const token = Redacted.make("tok_open_scroll_note_0123456789")

describe.skipIf(process.platform === "win32")("OpenScroll", () => {
  it.scoped("keeps its note, readable by its user alone, in a directory of its own", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const directory = path.join(yield* fs.makeTempDirectoryScoped(), "intercom-scroll-me")
      const openScroll = yield* OpenScroll.make(directory, "https://api.intercom.io", token)
      const now = yield* Clock.currentTimeMillis
      yield* openScroll.note(now)
      expect(yield* openScroll.leftOpenAt).toBe(now)
      const [note] = yield* fs.readDirectory(directory)
      expect((yield* fs.stat(path.join(directory, note))).mode & 0o777).toBe(0o600)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("writes nothing into a directory others may write in, nor through a link planted there", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const parent = yield* fs.makeTempDirectoryScoped()
      const directory = path.join(parent, "intercom-scroll-me")
      // Made first by someone else's hand: writable by all, and holding a link where the note would go.
      yield* fs.makeDirectory(directory)
      yield* fs.chmod(directory, 0o777)
      const openScroll = yield* OpenScroll.make(directory, "https://api.intercom.io", token)
      yield* openScroll.note(Date.now())
      expect(yield* fs.readDirectory(directory)).toEqual([])
      const victim = path.join(parent, "victim.txt")
      yield* fs.writeFileString(victim, "precious")
      yield* openScroll.note(undefined)
      yield* fs.chmod(directory, 0o700)
      yield* openScroll.note(Date.now())
      const [note] = yield* fs.readDirectory(directory)
      yield* fs.remove(path.join(directory, note))
      yield* fs.symlink(victim, path.join(directory, note))
      yield* openScroll.note(Date.now())
      // Renamed over, the link is gone and the file it named untouched.
      expect(yield* fs.readFileString(victim)).toBe("precious")
      expect((yield* fs.readLink(path.join(directory, note)).pipe(Effect.either))._tag).toBe("Left")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a scroll met while the note is fresh is its own; one met past the note's two minutes is another's", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const directory = path.join(yield* fs.makeTempDirectoryScoped(), "intercom-scroll-me")
      const openScroll = yield* OpenScroll.make(directory, "https://api.intercom.io", token)
      yield* TestClock.setTime(1_000_000)
      yield* openScroll.note(yield* Clock.currentTimeMillis)
      // A run that meets a scroll after waiting `waited` (as --wait-for-other-scroll lets it), and gives up.
      const metAfter = (waited: Duration.DurationInput) =>
        OpenScroll.keep(openScroll, () =>
          Effect.zipRight(TestClock.adjust(waited), new ScrollError.ConcurrentScroll({ resource: "users", requestId: "r" }))).pipe(
            Effect.flip,
            Effect.map((error) => error.ownScroll === true)
          )
      expect(yield* metAfter("30 seconds")).toBe(true)
      // Noted 30 s ago, met 2 min later: Intercom drops its own scroll about a minute after its last use.
      expect(yield* metAfter("2 minutes")).toBe(false)
    }).pipe(Effect.provide(NodeContext.layer)))
})
