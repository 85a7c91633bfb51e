/**
 * Several workspaces scrolled in parallel, two at a time, one scroll each, with one combined progress line.
 *
 * Against the embedded simulator by default (four workspaces, one token each); set INTERCOM_ACCESS_TOKENS to a
 * comma-separated list of tokens (and INTERCOM_REGION if not in the US) to run against Intercom.
 */
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { IntercomClient, Progress, Scroll } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Config, Console, Effect, Fiber, Layer, Option, Redacted, Schedule, Stream, SubscriptionRef } from "effect"

const simulated = ["acme", "globex", "initech", "umbrella"].map((token, i) => ({ token, users: 1_000 + 500 * i }))

const scrollAll = (tokens: ReadonlyArray<Redacted.Redacted>, location: Pick<IntercomClient.Options, "baseUrl" | "region">) =>
  Effect.gen(function*() {
    const tracker = yield* Progress.makeTracker
    let done = 0
    const show = Effect.flatMap(SubscriptionRef.get(tracker.snapshot), (s) =>
      Console.error(`workspaces ${done}/${tokens.length} · ${s.records} users · ${s.pages} pages · ${s.restarts} restarts`))
    const ticker = yield* Effect.fork(Effect.repeat(show, Schedule.spaced("500 millis")))

    // Each workspace gets its own client, so each has its own scroll and its own rate-limit budget.
    const counts = yield* Effect.forEach(tokens, (accessToken) =>
      Scroll.users().pipe(
        Stream.runCount,
        Effect.tap(() => Effect.sync(() => done++)),
        Effect.provide(IntercomClient.layer({ accessToken, ...location }).pipe(Layer.provide(NodeHttpClient.layerUndici)))
      ), { concurrency: 2 }).pipe(Effect.provideService(Progress.Progress, tracker.reporter))

    yield* Fiber.interrupt(ticker)
    yield* show
    for (const [i, count] of counts.entries()) yield* Console.log(`workspace ${i + 1}: ${count} users`)
    yield* Console.log(`total: ${counts.reduce((a, b) => a + b, 0)} users`)
  })

const program = Effect.gen(function*() {
  const tokens = yield* Config.option(Config.array(Config.redacted(), "INTERCOM_ACCESS_TOKENS"))
  if (Option.isSome(tokens)) {
    const region = yield* Config.option(Config.literal("us", "eu", "au")("INTERCOM_REGION"))
    return yield* scrollAll(tokens.value, { region: Option.getOrUndefined(region) })
  }
  return yield* Effect.flatMap(Simulator.baseUrl, (baseUrl) =>
    scrollAll(simulated.map(({ token }) => Redacted.make(token)), { baseUrl })).pipe(
      Effect.provide(Simulator.layerServer({ workspaces: simulated }))
    )
})

program.pipe(NodeRuntime.runMain)
