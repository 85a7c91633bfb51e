/**
 * Syncs at once on a small PostgreSQL pool: each holder of a workspace's lock keeps one connection for its run and
 * records its end on it, a sync waiting for a lock takes a connection only for each try, so a pool of one connection
 * per workspace syncing at once, and one more, is enough however many syncs wait.
 *
 * The syncs' waits (a try for the lock a second) are on the TestClock; the pool's own wait for a connection is real
 * time, bounded here by a `connectTimeout` of 3 s.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { IntercomClient, Progress, type Resource, ScrollError } from "@intercom-scroll/core"
import { PostgresDatabase } from "@intercom-scroll/testing"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer, Option, Ref, Scope, TestClock } from "effect"
import * as Lock from "../src/internal/lock.js"
import { Sync, SyncDatabase } from "../src/index.js"
import { freshToken, runs } from "./support/world.js"

const pause = (millis: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, millis)))

/** Until `check` holds, looking every 10 ms of real time, for 15 s at most: the assertions after say what went wrong. */
const until = <E, R>(check: Effect.Effect<boolean, E, R>) =>
  Effect.zipRight(pause(10), check).pipe(Effect.repeat({ until: (done) => done, times: 1_500 }))

/**
 * A database of its own; on it, the syncs' pool (`SyncDatabase.layer`, as a program has it) of `maxConnections`,
 * which gives up waiting for a connection after 3 s, and a client of the test's own that looks on.
 */
const databaseWithPool = (maxConnections: number) =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const pool = SyncDatabase.layer(SyncDatabase.Database.Postgres({ url }), { maxConnections, connectTimeout: "3 seconds" })
    return {
      syncs: yield* Layer.build(pool),
      looking: yield* Layer.build(PostgresDatabase.layerAt(url, { maxConnections: 1 }))
    }
  }).pipe(Effect.orDie)

/** Intercom refusing the token once `gate` opens. A client of its own each run: core keeps one scroll a client. */
const refusingOnceOpen = (gate: Deferred.Deferred<void>) =>
  Layer.sync(IntercomClient.IntercomClient, () => ({
    baseUrl: "https://api.intercom.io",
    scrollPage: (resource: Resource.Resource) =>
      Effect.zipRight(
        Deferred.await(gate),
        new ScrollError.Unauthorized({ resource, status: 401, code: "unauthorized", detail: "Access Token Invalid" })
      )
  }))

/** How a sync ended: the tag of a refusal, the message of any other failure. */
const outcome = (exit: Exit.Exit<Sync.Summary, { readonly _tag: string; readonly message: string }>): string =>
  Exit.isSuccess(exit) ? "complete" : Option.match(Cause.failureOption(exit.cause), {
    onNone: () => Cause.pretty(exit.cause),
    onSome: (error) => error._tag === "Unauthorized" ? error._tag : `${error._tag}: ${error.message}`
  })

describe("syncs at once on a small PostgreSQL pool", () => {
  const cases = [
    // The default pool, with no connection to spare: each holder records its end on its own.
    { pool: 4, workspaces: 4, resources: ["users"] },
    // The least a pool may have: one workspace's two resources, the second waiting for the first.
    { pool: 2, workspaces: 1, resources: ["users", "companies"] },
    // One connection a workspace and one more, however many syncs wait: here four, taking turns on the one more.
    { pool: 3, workspaces: 2, resources: ["users", "leads", "companies"] }
  ] as const
  for (const { pool, resources, workspaces: count } of cases) {
    it.scoped(
      `${count} workspace(s) × ${resources.length} resource(s) at once on a pool of ${pool}, Intercom refusing each: every run fails with Unauthorized, and its row says so`,
      () =>
        Effect.gen(function*() {
          const { looking, syncs } = yield* databaseWithPool(pool)
          yield* Effect.provide(Sync.migrate, syncs)
          const workspaces = Array.from({ length: count }, () => freshToken("pool"))
          const gate = yield* Deferred.make<void>()
          const waiting = yield* Ref.make(0)
          const reporter: Progress.Reporter = {
            report: (event) =>
              event._tag === "Waiting" && event.reason === "workspace-lock" ? Ref.update(waiting, (n) => n + 1) : Effect.void
          }
          const started = workspaces.flatMap((workspace) => resources.map((resource) => ({ workspace, resource })))
          const syncing = yield* Effect.forEach(started, ({ resource, workspace }) =>
            Sync.run(resource, { workspace }).pipe(
              Effect.provide(refusingOnceOpen(gate)),
              Effect.provide(syncs),
              Effect.provideService(Progress.Progress, reporter),
              Effect.exit,
              Effect.fork
            ))
          // Each workspace's lock held (its holder's row written), every other sync waiting for one.
          const rows = Effect.map(
            Effect.provide(Effect.forEach(workspaces, runs), looking),
            (found) => found.flat().length
          )
          yield* until(Effect.zipWith(rows, Ref.get(waiting), (written, waits) =>
            written === count && waits === started.length - count))
          yield* Deferred.succeed(gate, undefined)
          // The holders fail; each waiter takes its workspace's lock at a try, a second on, and fails in turn.
          const exits = yield* Fiber.join(Fiber.all(syncing)).pipe(
            Effect.race(Effect.forever(Effect.zipRight(TestClock.adjust(Lock.pollInterval), pause(20))))
          )
          expect(exits.map(outcome)).toEqual(started.map(() => "Unauthorized"))
          for (const workspace of workspaces) {
            const recorded = yield* Effect.provide(runs(workspace), looking)
            expect(recorded.map((run) => run.status)).toEqual(resources.map(() => "failed"))
            for (const run of recorded) expect(run.error).toMatch(/^Unauthorized: Intercom refused the access token/)
          }
        }),
      60_000
    )
  }

  it.scoped("a sync interrupted while it waits for a connection of a full pool leaves that connection to the pool", () =>
    Effect.gen(function*() {
      const { syncs } = yield* databaseWithPool(2)
      const sql = Context.get(syncs, SqlClient.SqlClient)
      // Both connections taken: the sync's try for the lock waits for one.
      const taken = yield* Scope.make()
      yield* Scope.extend(Effect.all([sql.reserve, sql.reserve]), taken)
      const taking = yield* Effect.fork(
        Effect.scoped(Lock.acquire(sql, "pg", { workspace: freshToken("full"), resource: "users", timeout: undefined }))
      )
      yield* pause(200)
      yield* Fiber.interrupt(taking)
      // The connection the pool hands over once one is free goes back to it.
      yield* Scope.close(taken, Exit.void)
      const both = yield* Effect.either(Effect.scoped(Effect.all([sql.reserve, sql.reserve], { concurrency: 2 })))
      expect(both._tag).toBe("Right")
    }), 30_000)
})
