/**
 * packages/core/README.md's "library in 20 lines", kept here so that it is type-checked; test/readme.test.ts holds the
 * two together. It reads INTERCOM_ACCESS_TOKEN: run it with a real token (`pnpm -C examples exec node --import tsx src/core-readme.ts`).
 */
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { IntercomClient, Models, Scroll } from "@intercom-scroll/core"
import { Console, Effect, Layer, Schedule, Schema, Stream } from "effect"

const Intercom = IntercomClient.layerConfig() // INTERCOM_ACCESS_TOKEN (redacted), INTERCOM_REGION, INTERCOM_BASE_URL
  .pipe(Layer.provide(NodeHttpClient.layerUndici))

const Attributes = Schema.Struct({ plan_tier: Schema.optional(Schema.String), seats: Schema.optional(Schema.NumberFromString) })

const program = Scroll.users({
  customAttributes: Attributes,                                                          // typed and decoded: "12" → 12
  restart: Schedule.exponential("1 second").pipe(Schedule.intersect(Schedule.recurs(5))), // start over at most 5 times
  prefetch: 2                                                                            // pages fetched ahead of you
}).pipe(
  Stream.filter(Models.hasValue("email")), // an email that is neither absent nor null, typed string from here on
  Stream.runForEach((user) => Console.log(user.id, user.email.toLowerCase(), user.custom_attributes.seats))
)

// A ScrollError (Unauthorized, InvalidCustomAttributes, …) fails it: runMain logs what happened and what to do, exit 1
program.pipe(Effect.provide(Intercom), NodeRuntime.runMain)
