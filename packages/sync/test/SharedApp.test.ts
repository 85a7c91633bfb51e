/**
 * Two workspace names bound to two tokens of one Intercom app (a token rotated beside the old one, or two apps'
 * tokens installed on one workspace): the database's lock is per name and core's per token, so neither keeps the two
 * syncs apart; Intercom does, with one open scroll per app. The second meets `scroll_exists`, waits as
 * `concurrent-scroll`, and syncs once the first has ended.
 */
import { describe, expect, layer } from "@effect/vitest"
import { IntercomClient, Progress } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Settle } from "@intercom-scroll/testing"
import { Chunk, Context, Effect, Fiber, Layer, Option, Redacted, TestClock } from "effect"
import { Sync } from "../src/index.js"
import * as Databases from "./support/databases.js"
import { freshToken, rows } from "./support/world.js"

describe.each(Databases.both)("two workspace names of one app on %s", (_name, database) => {
  layer(database, { timeout: "60 seconds" })((it) => {
    it.effect("sync one after the other on Intercom's side, each name every record once, the second waiting as concurrent-scroll", () =>
      Effect.gen(function*() {
        const tokens = [freshToken("app-old"), freshToken("app-rotated")] as const
        const names = [freshToken("name-a"), freshToken("name-b")] as const
        // One simulator, both tokens of one seed: one app.
        const world = yield* Layer.build(Simulator.layerClient({
          pageSize: 10,
          workspaces: tokens.map((token) => ({ token, seed: 31, users: 50 }))
        }))
        const client = (token: string) =>
          Layer.orDie(IntercomClient.layer({ accessToken: Redacted.make(token), baseUrl: "https://api.intercom.io" })).pipe(
            Layer.provide(Layer.succeedContext(world))
          )
        const waits: Array<string> = []
        // Each sync: whether it waits now, whether it has waited, whether it has ended.
        const waitingNow = [false, false]
        const waited = [false, false]
        const ended = [false, false]
        // The two meet on Intercom's side whatever the machine's load: a sync's pages go on only once the other has met
        // its scroll (and waits) or has ended. Started together, the first could otherwise scroll to its end before
        // the second had opened its own (its database's round trips first): on a loaded machine it did, and nothing
        // waited.
        const otherMet = (i: number) => Settle.until("the other sync meets this one's scroll, or ends", () => waited[1 - i] || ended[1 - i], "30 seconds")
        const syncing = yield* Effect.fork(Effect.all([0, 1].map((i) =>
          Sync.run("users", { workspace: names[i] }).pipe(
            Effect.provide(client(tokens[i])),
            Effect.provideService(Progress.Progress, {
              report: (event) =>
                event._tag === "Waiting"
                  ? Effect.sync(() => {
                    waits.push(`${i}:${event.reason}`)
                    waitingNow[i] = waited[i] = true
                  })
                  : event._tag === "Resumed"
                  ? Effect.sync(() => void (waitingNow[i] = false))
                  : event._tag === "Page"
                  ? otherMet(i)
                  : Effect.void
            }),
            Effect.ensuring(Effect.sync(() => void (ended[i] = true)))
          )
        ), { concurrency: "unbounded" }))
        // The clock moves only while one waits and the other has ended: the wait's next try then finds the first's
        // scroll gone, however long the first's writes took in real time (moved at once, a waiting sync's tries could
        // all be spent while the other still wrote).
        for (;;) {
          if (Option.isSome(yield* Fiber.poll(syncing))) break
          const sleeps = yield* TestClock.sleeps()
          const waitingOnly = [0, 1].some((i) => waitingNow[i]) && [0, 1].every((i) => waitingNow[i] || ended[i])
          if (waitingOnly && !Chunk.isEmpty(sleeps)) yield* TestClock.setTime(Math.min(...sleeps))
          else yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 0)))
        }
        const results = yield* Fiber.join(syncing)
        const stats = yield* Context.get(world, Simulator.Simulator).stats
        expect(results.map((summary) => summary.inserted)).toEqual([50, 50])
        expect(results[1].app).toBe(results[0].app)
        // Whichever opened second waited, and only as concurrent-scroll: for Intercom to drop the first's scroll, which
        // ends with its empty page (the first's last writes may still be going on then).
        const second = waits[0]?.startsWith("1:") ? 1 : 0
        expect(waits.length).toBeGreaterThan(0)
        expect(waits.every((wait) => wait === `${second}:concurrent-scroll`)).toBe(true)
        expect(stats.workspaces[tokens[1 - second]].errorsByCode).toEqual({})
        for (const name of names) expect((yield* rows(name, "users")).size).toBe(50)
        expect(stats.workspaces[tokens[second]].errorsByCode).toEqual({ scroll_exists: waits.length })
        expect(stats.apps[results[0].app ?? ""]).toMatchObject({ scrollsOpened: 2, recordsServed: 100 })
      }).pipe(Effect.scoped))
  })
})
