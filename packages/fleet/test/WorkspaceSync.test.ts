import { TestRunner } from "@effect/cluster"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { Clock, ConfigProvider, Cron, Duration, Effect, Exit, Fiber, Layer, Redacted, TestClock } from "effect"
import { Secrets, SyncCron, WorkspaceConfig, WorkspaceSync } from "../src/index.js"

const workspace = (name: string) =>
  new WorkspaceConfig.WorkspaceConfig({ workspace: name, baseUrl: "https://simulator.test", tokenEnv: `${name.toUpperCase()}_TOKEN` })

const acme = workspace("acme")

/** Each simulated workspace's token in the variable its configuration names: `acme` in ACME_TOKEN. */
const tokensInEnv = (simulator: Simulator.SimulatorOptions) =>
  Secrets.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
    new Map(simulator.workspaces.map(({ token }) => [`${token.toUpperCase()}_TOKEN`, token]))
  ))))

/** The entity on the in-memory runner, over the simulator answered in process (its latency on the TestClock). */
const fleet = (options: {
  readonly maxSyncs: number
  readonly simulator: Simulator.SimulatorOptions
  readonly secrets?: Layer.Layer<Secrets.Secrets>
}) =>
  WorkspaceSync.layer({ maxSyncs: options.maxSyncs }).pipe(
    Layer.provideMerge(TestRunner.layer),
    Layer.provide(options.secrets ?? tokensInEnv(options.simulator)),
    Layer.provideMerge(Simulator.layerClient(options.simulator)),
    Layer.provide(SqliteClient.layer({ filename: ":memory:" }))
  )

const stats = Effect.flatMap(Simulator.Simulator, (simulator) => simulator.stats)

/** 3 pages of users and the empty one, a second each on the TestClock: a sync of users takes 4 seconds. */
const slow = (token: string) => ({ token, users: 300, faults: { latency: Duration.seconds(1) } })

describe("WorkspaceSync", () => {
  it.scoped("a Sync scrolls each resource of the workspace once, one after the other, and answers with a summary each", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust(1)
      const summaries = yield* WorkspaceSync.sync(acme, { resources: ["users", "companies"], run: "r1" })
      expect(summaries.map(({ pages, records, resource, restarts }) => ({ resource, records, pages, restarts }))).toEqual([
        { resource: "users", records: 250, pages: 3, restarts: 0 },
        { resource: "companies", records: 30, pages: 1, restarts: 0 }
      ])
      expect((yield* stats).workspaces.acme.scrollsOpened).toBe(2)
    }).pipe(Effect.provide(fleet({ maxSyncs: 1, simulator: { workspaces: [{ token: "acme", users: 250, companies: 30 }] } }))))

  it.scoped("two Syncs of one workspace run one after the other: the second begins when the first has ended", () => {
    const lookups: Array<number> = []
    // The token is looked up as a sync begins.
    const recording = Secrets.layer((ref) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        lookups.push(now)
        return Redacted.make(ref.workspace)
      }))
    return Effect.gen(function*() {
      yield* TestClock.adjust(1)
      const first = yield* Effect.fork(WorkspaceSync.sync(acme, { resources: ["users"], run: "r1" }))
      const second = yield* Effect.fork(WorkspaceSync.sync(acme, { resources: ["users"], run: "r2" }))
      yield* TestClock.adjust("3 seconds")
      expect(lookups).toHaveLength(1)
      yield* TestClock.adjust("6 seconds")
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      expect(lookups).toHaveLength(2)
      expect(lookups[1] - lookups[0]).toBeGreaterThanOrEqual(4_000)
      expect((yield* stats).workspaces.acme.scrollsOpened).toBe(2)
    }).pipe(Effect.provide(fleet({ maxSyncs: 4, simulator: { workspaces: [slow("acme")] }, secrets: recording })))
  })

  it.scoped("a runner runs at most maxSyncs syncs at once, across workspaces", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust(1)
      const fibers = yield* Effect.forEach(
        ["acme", "globex", "initech"],
        (name) => Effect.fork(WorkspaceSync.sync(workspace(name), { resources: ["users"], run: "r1" }))
      )
      const done = () => Effect.map(Effect.forEach(fibers, Fiber.poll), (polls) => polls.filter((p) => p._tag === "Some").length)
      // Each sync takes 4 seconds: two run at once, the third after.
      yield* TestClock.adjust("5 seconds")
      expect(yield* done()).toBe(2)
      yield* TestClock.adjust("4 seconds")
      expect(yield* done()).toBe(3)
      for (const fiber of fibers) expect(Exit.isSuccess(yield* Fiber.await(fiber))).toBe(true)
    }).pipe(Effect.provide(fleet({ maxSyncs: 2, simulator: { workspaces: ["acme", "globex", "initech"].map(slow) } }))))

  it.scoped("a Sync sent again with the same run is answered with the first one's result, without a second scroll", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust(1)
      const first = yield* WorkspaceSync.sync(acme, { resources: ["users"], run: "nightly-1" })
      const again = yield* WorkspaceSync.sync(acme, { resources: ["users"], run: "nightly-1" })
      expect(again).toEqual(first)
      expect((yield* stats).workspaces.acme.scrollsOpened).toBe(1)
    }).pipe(Effect.provide(fleet({ maxSyncs: 1, simulator: { workspaces: [{ token: "acme", users: 120 }] } }))))

  it.scoped("a workspace whose token variable is unset fails with MissingToken, naming the variable", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust(1)
      const error = yield* Effect.flip(WorkspaceSync.sync(workspace("globex"), { resources: ["users"], run: "r1" }))
      expect(error._tag).toBe("MissingToken")
      expect(error.message).toContain("GLOBEX_TOKEN")
    }).pipe(Effect.provide(fleet({
      maxSyncs: 1,
      simulator: { workspaces: [{ token: "acme" }, { token: "globex" }] },
      secrets: tokensInEnv({ workspaces: [{ token: "acme" }] })
    }))))
})

describe("SyncCron", () => {
  it.scoped("syncs every workspace at each tick, and takes the next tick only once every sync of the last has ended", () =>
    Effect.gen(function*() {
      const scrolls = Effect.map(stats, (s) => [s.workspaces.acme.scrollsOpened, s.workspaces.globex.scrollsOpened])
      // A tick every 15 seconds; a sync takes 20 (4 requests, 5 seconds each); the runner reads due messages from
      // storage every 10 seconds.
      yield* TestClock.adjust("14 seconds")
      expect(yield* scrolls).toEqual([0, 0])
      yield* TestClock.adjust("11 seconds") // 0:25: the round of 0:15 is under way
      expect(yield* scrolls).toEqual([1, 1])
      yield* TestClock.adjust("19 seconds") // 0:44: it ended at 0:40; the tick of 0:30 fell inside it and was not taken
      expect(yield* scrolls).toEqual([1, 1])
      yield* TestClock.adjust("28 seconds") // 1:12: the round of 0:45 ran, and the next is at 1:15
      expect(yield* scrolls).toEqual([2, 2])
      const { total } = yield* stats
      expect(total.errorsByCode.scroll_exists ?? 0).toBe(0)
    }).pipe(Effect.provide(
      SyncCron.layer({
        name: "refresh",
        cron: Cron.unsafeParse("*/15 * * * * *"),
        resources: ["users"],
        workspaces: [acme, workspace("globex")]
      }).pipe(Layer.provideMerge(fleet({
        maxSyncs: 2,
        simulator: {
          workspaces: ["acme", "globex"].map((token) => ({ token, users: 300, faults: { latency: Duration.seconds(5) } }))
        }
      })))
    )))
})
