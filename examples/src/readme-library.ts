/**
 * The README's "library in 20 lines", kept here so that it is type-checked; test/readme.test.ts holds the two
 * together. It reads INTERCOM_ACCESS_TOKEN: run it with a real token (`pnpm -C examples readme-library`), or with
 * INTERCOM_BASE_URL at a standalone simulator and one of its tokens (examples/README.md).
 */
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { IntercomClient, Models, Scroll } from "@intercom-scroll/core"
import { Console, Effect, Layer, Schedule, Stream } from "effect"

const Intercom = IntercomClient.layerConfig() // INTERCOM_ACCESS_TOKEN (redacted), INTERCOM_REGION, INTERCOM_BASE_URL
  .pipe(Layer.provide(NodeHttpClient.layerUndici))

const program = Scroll.users({
  restart: Schedule.exponential("1 second").pipe(Schedule.intersect(Schedule.recurs(5))), // start over at most 5 times
  concurrentScroll: Scroll.waitForOtherScroll("5 minutes"),                              // wait out another scroll
  dedupe: true,                                                                          // each user once, across restarts
  prefetch: 2                                                                            // pages fetched ahead of you
}).pipe(
  Stream.filter(Models.hasValue("email")),                                               // an email, neither absent nor null
  Stream.runForEach((user) => Console.log(user.id, user.email.toLowerCase(), user.custom_attributes))
)

// A ScrollError (Unauthorized, RestartRequired, …) fails the program: runMain logs it, what happened and what to do,
// and exits 1.
program.pipe(Effect.provide(Intercom), NodeRuntime.runMain)
