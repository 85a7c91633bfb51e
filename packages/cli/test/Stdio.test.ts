/**
 * The sink an export writes stdout through: it waits for a reader that is slow, and a write that fails a tick after
 * it was made fails the next one, never the process.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option, Stream } from "effect"
import { Writable } from "node:stream"
import { sinkOf } from "../src/internal/stdio.js"

const bytes = (text: string) => new TextEncoder().encode(text)

/** Lets the event loop run a few turns: what a writable does next happens there. */
const turns = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))

describe("Stdio's sink", () => {
  it.live("waits for 'drain' when a chunk's last write fills the buffer, and goes on after it", () =>
    Effect.gen(function*() {
      const held: Array<() => void> = []
      const received: Array<string> = []
      // A reader that takes each write only when the test lets it.
      const slow = new Writable({
        highWaterMark: 4,
        write: (chunk: Buffer, _encoding, done) => {
          received.push(chunk.toString())
          held.push(done)
        }
      })
      const writing = yield* Effect.fork(Stream.run(Stream.make(bytes("first page")), sinkOf(slow, String)))
      yield* turns
      expect(received).toEqual(["first page"])
      expect(Option.isNone(yield* Fiber.poll(writing))).toBe(true)
      held.shift()!()
      yield* Fiber.join(writing)
    }))

  it.live("a write that fails after the sink ended (EPIPE) fails the next write, with no 'error' left unheard", () =>
    Effect.gen(function*() {
      const gone = new Writable({
        write: (_chunk, _encoding, done) => {
          setTimeout(() => done(Object.assign(new Error("write EPIPE"), { code: "EPIPE" })), 1)
        }
      })
      const closed = (cause: unknown) => (cause as { readonly code?: string }).code ?? "unknown"
      yield* Stream.run(Stream.make(bytes("a line\n")), sinkOf(gone, closed))
      yield* turns
      expect(yield* Effect.flip(Stream.run(Stream.make(bytes("the next\n")), sinkOf(gone, closed)))).toBe("EPIPE")
    }))
})
