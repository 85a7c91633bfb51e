/**
 * Two workspace names bound to two tokens of one Intercom app (a token rotated beside the old one, or two apps'
 * tokens installed on one workspace): the database's lock is per name and core's per token, so neither keeps the two
 * syncs apart; Intercom does, with one open scroll per app. The second meets `scroll_exists`, waits as
 * `concurrent-scroll`, and syncs once the first has ended.
 */
import { describe, expect, layer } from "@effect/vitest"
import { IntercomClient, Progress } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Context, Effect, Layer, Redacted } from "effect"
import { Sync } from "../src/index.js"
import * as Databases from "./support/databases.js"
import { driveClock, freshToken, rows } from "./support/world.js"

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
        const results = yield* driveClock((progress) =>
          Effect.all([0, 1].map((i) =>
            Sync.run("users", { workspace: names[i] }).pipe(
              Effect.provide(client(tokens[i])),
              Effect.provideService(Progress.Progress, {
                report: (event) =>
                  Effect.zipRight(
                    Effect.sync(() => {
                      if (event._tag === "Waiting") waits.push(`${i}:${event.reason}`)
                    }),
                    progress.report(event)
                  )
              })
            )
          ), { concurrency: "unbounded" })
        ).pipe(Effect.flatten)
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
