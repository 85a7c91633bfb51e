/**
 * Several workspaces scrolled in parallel, two at a time, one scroll each, with one combined progress line.
 *
 * INTERCOM_ACCESS_TOKEN holds one token per workspace, comma-separated (INTERCOM_REGION or INTERCOM_BASE_URL says
 * where, as for one workspace). Without it, four workspaces of a simulator started in this process.
 */
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { IntercomClient, Progress, Scroll } from "@intercom-scroll/core"
import { Embedded } from "@intercom-scroll/simulator"
import { Config, ConfigError, Console, Effect, Either, Fiber, Layer, Redacted, Schedule, Stream, SubscriptionRef } from "effect"

const simulated = ["dG9rOmFjbWU6MTIzNA==", "dG9rOmdsb2JleDoxMjM0", "dG9rOmluaXRlY2g6MTIzNA==", "dG9rOnVtYnJlbGxhOjEyMzQ="]
  .map((token, i) => ({ token, users: 1_000 + 500 * i }))

// Each workspace gets its own client, so each has its own scroll and its own rate-limit budget; the region and base
// URL come from the environment as for one workspace.
const clientFor = (accessToken: Redacted.Redacted) =>
  IntercomClient.layerConfig({ ...IntercomClient.environment, accessToken: Config.succeed(accessToken) }).pipe(
    Layer.provide(NodeHttpClient.layerUndici)
  )

// The tokens, each without the whitespace around it; a blank one is named by its place in the list, once, before
// any workspace is scrolled.
const tokensFromEnvironment = Config.array(Config.string(), "INTERCOM_ACCESS_TOKEN").pipe(
  Config.mapOrFail((tokens) => {
    const trimmed = tokens.map((token) => token.trim())
    const blank = trimmed.indexOf("")
    return blank === -1
      ? Either.right(trimmed.map((token) => Redacted.make(token)))
      : Either.left(ConfigError.InvalidData(
        ["INTERCOM_ACCESS_TOKEN"],
        `token ${blank + 1} of ${tokens.length} is blank: give one access token per workspace, comma-separated`
      ))
  })
)

const program = Effect.gen(function*() {
  const target = yield* Embedded.Target
  // The simulator's configuration names its first workspace; the four tokens are the ones above.
  const tokens = target._tag === "Simulated"
    ? simulated.map(({ token }) => Redacted.make(token))
    : yield* tokensFromEnvironment

  const tracker = yield* Progress.makeTracker
  let done = 0
  const show = Effect.flatMap(SubscriptionRef.get(tracker.snapshot), (s) =>
    Console.error(`workspaces ${done}/${tokens.length} · ${s.records} users · ${s.pages} pages · ${s.restarts} restarts`))
  const ticker = yield* Effect.fork(Effect.repeat(show, Schedule.spaced("500 millis")))

  const counts = yield* Effect.forEach(tokens, (accessToken) =>
    Scroll.users().pipe(
      Stream.runCount,
      Effect.tap(() => Effect.sync(() => done++)),
      Effect.provide(clientFor(accessToken))
    ), { concurrency: 2 }).pipe(Effect.provideService(Progress.Progress, tracker.reporter))

  yield* Fiber.interrupt(ticker)
  yield* show
  for (const [i, count] of counts.entries()) yield* Console.log(`workspace ${i + 1}: ${count} users`)
  yield* Console.log(`total: ${counts.reduce((a, b) => a + b, 0)} users`)
})

program.pipe(Effect.provide(Embedded.layer({ workspaces: simulated })), NodeRuntime.runMain)
