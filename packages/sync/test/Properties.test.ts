/**
 * The promise of the sync, as a property over both dialects: random sequences of syncs of one workspace whose records
 * are added, changed and removed between syncs and during them, through 500s, expiries, cut bodies, short restart
 * budgets and interrupts, all under the TestClock with the simulator in process.
 *
 * Between syncs the workspace changes by serving it from a new simulator with the same seed: a larger or smaller data
 * set adds or removes records (the last indices), and another number of companies changes the people whose
 * `companies` point at them. During a sync, the simulator's mutations add and remove records.
 *
 * After every run: nothing stored is ever lost; every row the run saw holds the record as Intercom served it; rows it
 * did not see are as they were; the counts are exactly what changed. After a complete run the live rows are the records
 * that existed for the whole scroll (plus, possibly, those added or removed mid-scroll); a run that did not complete
 * marks nothing deleted.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Progress, Scroll } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Chunk, Effect, Exit, FastCheck as fc, Schedule, Stream } from "effect"
import { Sync } from "../src/index.js"
import * as Databases from "./support/databases.js"
import { driveClock, freshToken, intercom, live, type Row, rows, runs } from "./support/world.js"

const requestNumbers = fc.uniqueArray(fc.integer({ min: 1, max: 14 }), { maxLength: 2 })

const OneSync = fc.record({
  users: fc.integer({ min: 0, max: 60 }),
  companies: fc.integer({ min: 1, max: 4 }),
  restartAt: requestNumbers,
  expireAt: requestNumbers,
  cutBodyAt: requestNumbers,
  mutations: fc.array(
    fc.record({ atPage: fc.integer({ min: 2, max: 12 }), add: fc.integer({ min: 0, max: 5 }), remove: fc.integer({ min: 0, max: 5 }) }),
    { maxLength: 2 }
  ),
  /** Mostly enough restarts, sometimes too few, so that some runs fail. */
  restarts: fc.oneof({ weight: 3, arbitrary: fc.constant(6) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 1 }) }),
  dedupe: fc.boolean(),
  /** A restart in another order, or in the first scroll's: then its pages up to the break are all written before. */
  restartOrder: fc.constantFrom("varied" as const, "same" as const),
  interruptAtPage: fc.option(fc.integer({ min: 1, max: 8 }), { freq: 4 })
})

const Case = fc.record({
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  pageSize: fc.integer({ min: 4, max: 20 }),
  syncs: fc.array(OneSync, { minLength: 1, maxLength: 4 })
})

type OneSync = typeof OneSync extends fc.Arbitrary<infer A> ? A : never

/** Every record as a faultless simulator with the same data serves it: what Intercom held for this sync. */
const served = (seed: number, pageSize: number, s: OneSync, added: number) =>
  Effect.gen(function*() {
    const records = yield* Stream.runCollect(Scroll.users())
    return new Map(Chunk.toReadonlyArray(records).map((record) => [record.id, JSON.parse(JSON.stringify(record))]))
  }).pipe(Effect.provide(intercom(freshToken("twin"), {
    pageSize,
    workspace: { seed, users: s.users + added, companies: s.companies, leads: 0 }
  })))

const syncOnce = (workspace: string, seed: number, pageSize: number, s: OneSync) => {
  const token = freshToken("prop")
  return Effect.gen(function*() {
    let pages = 0
    const exit = yield* driveClock((progress) =>
      Sync.run("users", { workspace, dedupe: s.dedupe, restart: Schedule.recurs(s.restarts) }).pipe(
        Effect.provideService(Progress.Progress, {
          report: (event) =>
            Effect.zipRight(
              progress.report(event),
              event._tag === "Page" && ++pages === s.interruptAtPage ? Effect.interrupt : Effect.void
            )
        })
      )
    )
    const simulator = yield* Simulator.Simulator
    const present = yield* simulator.ids(token, "users")
    const { added, removed } = yield* simulator.changes(token, "users")
    return { exit, present, added, removed }
  }).pipe(Effect.provide(intercom(token, {
    pageSize,
    restartOrder: s.restartOrder,
    workspace: {
      seed,
      users: s.users,
      companies: s.companies,
      leads: 0,
      faults: {
        restartAt: s.restartAt,
        expireAt: s.expireAt,
        cutBodyAt: s.cutBodyAt,
        mutations: s.mutations.map((m) => ({ ...m, resource: "users" as const }))
      }
    }
  })))
}

const differs = (before: Row, after: Row) => JSON.stringify(sorted(before.record)) !== JSON.stringify(sorted(after.record))

/** A JSON value with its keys in order, so that PostgreSQL's jsonb (which orders them) compares with the original. */
const sorted = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(sorted)
    : value !== null && typeof value === "object"
    ? Object.fromEntries(Object.keys(value).sort().map((key) => [key, sorted((value as Record<string, unknown>)[key])]))
    : value

describe("the worlds the property draws", () => {
  layer(Databases.sqlite)((it) => {
    it.effect("change records between syncs: another number of companies changes people's records, same ids", () =>
      Effect.gen(function*() {
        const workspace = freshToken("coverage")
        const sync = (companies: number) => {
          const token = freshToken()
          return Effect.provide(Sync.run("users", { workspace }), intercom(token, { workspace: { seed: 5, users: 40, companies, leads: 0 } }))
        }
        yield* sync(1)
        const summary = yield* sync(3)
        expect(summary.inserted + summary.deleted).toBe(0)
        expect(summary.updated).toBeGreaterThan(5)
        expect(summary.unchanged).toBeGreaterThan(5)
      }))
  })
})

describe.each(Databases.both)("syncs through random changes and faults on %s", (_name, database) => {
  layer(database, { timeout: "120 seconds" })((it) => {
    it.effect.prop("nothing lost, exact counts, deletions only after a complete scroll", [Case], ([c]) =>
      Effect.gen(function*() {
        const workspace = freshToken("workspace")
        yield* Sync.migrate
        for (const s of c.syncs) {
          const before = yield* rows(workspace, "users")
          const outcome = yield* syncOnce(workspace, c.seed, c.pageSize, s)
          const after = yield* rows(workspace, "users")
          const run = (yield* runs(workspace)).at(-1)!
          const complete = Exit.isSuccess(outcome.exit)

          // The run is recorded as it ended: complete, interrupted, or failed with a typed error.
          const interrupted = Exit.isInterrupted(outcome.exit)
          expect(run.status).toBe(complete ? "complete" : interrupted ? "interrupted" : "failed")
          if (!complete && !interrupted) expect(run.error).toMatch(/^(RestartRequired|Expired|ConcurrentScroll): /)

          // Nothing stored is ever lost.
          expect([...before.keys()].filter((id) => !after.has(id))).toEqual([])

          // What the run saw holds the record as served; what it did not see is as it was, but for a deletion mark by
          // this run (its time, and the run as the row's last change).
          const twin = yield* served(c.seed, c.pageSize, s, outcome.added.length)
          const seen = [...after.values()].filter((row) => row.last_seen_run === run.id)
          for (const row of seen) expect(sorted(row.record)).toEqual(sorted(twin.get(row.id)))
          for (const row of after.values()) {
            if (row.last_seen_run === run.id) continue
            const old = before.get(row.id)!
            const deletedNow = old.deleted_at === null && row.deleted_at !== null
            expect(row.changed_run).toBe(deletedNow ? run.id : old.changed_run)
            expect({ ...row, deleted_at: null, changed_run: null }).toEqual({ ...old, deleted_at: null, changed_run: null })
          }

          // The counts are exactly what changed.
          const inserted = seen.filter((row) => !before.has(row.id)).length
          const updated = seen.filter((row) => before.has(row.id) && (before.get(row.id)!.deleted_at !== null || differs(before.get(row.id)!, row))).length
          const newlyDeleted = [...after.values()].filter((row) => row.deleted_at !== null && before.get(row.id)?.deleted_at == null)
          expect(run).toMatchObject({ inserted, updated, unchanged: seen.length - inserted - updated, deleted: newlyDeleted.length })

          if (Exit.isSuccess(outcome.exit)) {
            const summary = outcome.exit.value
            expect(summary).toMatchObject({ runId: run.id, inserted, updated, deleted: newlyDeleted.length })
            // The live rows are the records that existed for the whole scroll, give or take those changed mid-scroll.
            const changed = new Set([...outcome.added, ...outcome.removed])
            const stable = outcome.present.filter((id) => !changed.has(id))
            const alive = live(after)
            expect(stable.filter((id) => !alive.has(id))).toEqual([])
            expect([...alive].filter((id) => !stable.includes(id) && !changed.has(id))).toEqual([])
          } else {
            // A run that did not complete marks nothing deleted.
            expect(newlyDeleted).toEqual([])
          }
        }
      }), { timeout: 120_000, fastCheck: { numRuns: 10 } })
  })
})
