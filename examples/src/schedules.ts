/**
 * Custom schedules for the two waits a scroll knows, and a handler for each typed error.
 *
 * Without INTERCOM_ACCESS_TOKEN, the simulator started in this process is set up to be difficult: another client's
 * scroll holds the workspace for 3 seconds, the eighth request for a page (a page of the scroll once it is open: the
 * refused tries come first) answers 500 ("restart the scroll operation") and the rate limit is tight. Then a wrong
 * token shows `Unauthorized`.
 */
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { IntercomClient, Scroll, type ScrollError } from "@intercom-scroll/core"
import { Embedded } from "@intercom-scroll/simulator"
import { Config, Console, Effect, Layer, Redacted, Schedule, Stream } from "effect"

// Start over at most 3 times, 200 ms then 400 ms then 800 ms apart (with jitter).
const restart = Schedule.exponential("200 millis").pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(3)),
  Schedule.tapInput((error: ScrollError.RestartRequired | ScrollError.Expired) =>
    Console.log(`restarting from the first page after ${error._tag}`)
  )
)

// While another scroll holds the workspace, look again every second, for half a minute at most.
const concurrentScroll = Schedule.spaced("1 second").pipe(
  Schedule.upTo("30 seconds"),
  Schedule.tapInput(() => Console.log("another scroll holds the workspace; waiting"))
)

// Each typed error gets its own handler; the message says what happened and what to do.
const report = (label: string) => (error: ScrollError.ScrollError) => Effect.succeed(`${label}. ${error._tag}: ${error.message}`)

// No error left: the type says that every one of them has its handler.
const countUsers: Effect.Effect<string, never, IntercomClient.IntercomClient> = Scroll.users({ restart, concurrentScroll }).pipe(
  Stream.runCount,
  Effect.map((users) => `${users} users`),
  Effect.catchTags({
    Expired: report("the scroll expired more often than the schedule allows"),
    RestartRequired: report("Intercom kept asking for a restart"),
    ConcurrentScroll: report("the workspace stayed busy"),
    RateLimited: report("the rate limit did not let up"),
    Unauthorized: report("the token was refused"),
    ApiError: report("Intercom answered with an error"),
    InvalidResponse: report("the response was not Intercom's"),
    Unreachable: report("Intercom could not be reached")
  })
)

const program = Effect.gen(function*() {
  yield* Console.log(`with the workspace's token: ${yield* countUsers}`)

  // The same workspace (region, base URL) with another token.
  const wrongToken = IntercomClient.layerConfig({
    ...IntercomClient.environment,
    accessToken: Config.succeed(Redacted.make("bm90LWEtdG9rZW4="))
  }).pipe(Layer.provide(NodeHttpClient.layerUndici))
  yield* Console.log(`with a wrong token: ${yield* countUsers.pipe(Effect.provide(wrongToken))}`)
})

const Intercom = IntercomClient.layerConfig().pipe(
  Layer.provide(NodeHttpClient.layerUndici),
  Layer.provideMerge(Embedded.layer({
    workspaces: [{
      token: "dG9rOmV4YW1wbGU6MTIzNA==",
      users: 1_000,
      faults: { foreignScroll: 3, restartAt: [8], rateLimit: { limit: 8, windowSeconds: 2 } }
    }]
  }))
)

program.pipe(Effect.provide(Intercom), NodeRuntime.runMain)
