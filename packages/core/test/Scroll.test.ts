import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Schedule, Stream } from "effect"
import { Scroll } from "../src/index.js"
import { errorList, makeFake } from "./support/fakeIntercom.js"

const ids = (records: Chunk.Chunk<{ readonly id: string }>) => Chunk.toReadonlyArray(records).map((r) => r.id)

describe("Scroll", () => {
  it.effect("emits every record of every page and stops at the empty page", () => {
    const fake = makeFake({ records: 250 })
    return Effect.gen(function*() {
      const users = yield* Stream.runCollect(Scroll.users())
      expect(users.length).toBe(250)
      expect(new Set(ids(users)).size).toBe(250)
      // 3 pages of records and the empty page; nothing asked after the end.
      expect(fake.requests.length).toBe(4)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("Schedule.recurs(3) opens exactly 4 scrolls when every attempt fails after its first page", () => {
    const fake = makeFake({
      records: 500,
      fault: (seen) =>
        seen.url.searchParams.get("scroll_param")?.endsWith("-1")
          ? errorList(500, "server_error", "Request failed due to an internal network error. Please restart the scroll operation.")
          : undefined
    })
    return Effect.gen(function*() {
      const exit = yield* Stream.runCollect(Scroll.users({ restart: Schedule.recurs(3) })).pipe(Effect.exit)
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("RestartRequired")
      expect(fake.opened()).toBe(4)
    }).pipe(Effect.provide(fake.layer))
  })
})
