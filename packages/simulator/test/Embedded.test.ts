import { describe, expect, it } from "@effect/vitest"
import { Config, ConfigProvider, Context, Effect, Layer, Redacted } from "effect"
import { Embedded } from "../src/index.js"
import { get } from "./helpers.js"
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"

/** What a client's layer built after `Embedded.layer` reads, as `IntercomClient.layerConfig` reads it. */
class Seen extends Context.Tag("Seen")<Seen, {
  readonly token: string
  readonly baseUrl: string | undefined
  readonly region: string | undefined
}>() {}

const readsConfig = Layer.effect(
  Seen,
  Effect.map(
    Config.all({
      token: Config.redacted("INTERCOM_ACCESS_TOKEN"),
      baseUrl: Config.option(Config.nonEmptyString("INTERCOM_BASE_URL")),
      region: Config.option(Config.string("INTERCOM_REGION"))
    }),
    ({ baseUrl, region, token }) => ({
      token: Redacted.value(token),
      baseUrl: baseUrl._tag === "Some" ? baseUrl.value : undefined,
      region: region._tag === "Some" ? region.value : undefined
    })
  )
)

const embedded = Embedded.layer({ workspaces: [{ token: "embedded", users: 120 }, { token: "second" }] })

/** Runs `effect` with `readsConfig` built after `Embedded.layer`, in an environment of `variables`. */
const inEnvironment = (variables: Record<string, string>) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.provide(Layer.provideMerge(readsConfig, embedded)),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(variables))))
  )

describe("Embedded.layer", () => {
  for (const [situation, variables] of [
    ["unset", { INTERCOM_REGION: "eu" }],
    ["blank", { INTERCOM_REGION: "eu", INTERCOM_ACCESS_TOKEN: "  ", INTERCOM_BASE_URL: "https://api.eu.intercom.io" }]
  ] as const) {
    it.effect(`without a token (${situation}), a layer built after it reads the simulator's token and address`, () =>
      Effect.gen(function*() {
        const seen = yield* Seen
        const target = yield* Embedded.Target
        if (target._tag !== "Simulated") return yield* Effect.dieMessage("the target is not the simulator")
        expect(seen).toEqual({ token: "embedded", baseUrl: target.baseUrl, region: "eu" }) // the rest from outside
        expect(target.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
        expect(target.description).toBe(
          `the embedded Intercom simulator at ${target.baseUrl} (INTERCOM_ACCESS_TOKEN is not set)`
        )
        // The values reach a simulator that answers: the first workspace, over real HTTP.
        const page = yield* get(`${seen.baseUrl}/users/scroll`, { token: seen.token, version: "1.4" }).pipe(
          Effect.provide(NodeHttpClient.layerUndici)
        )
        expect(page.body.users).toHaveLength(100)
        expect((yield* target.simulator.stats).workspaces["embedded"].pagesServed).toBe(1)
      }).pipe(inEnvironment(variables)))
  }

  it.effect("with a token it does nothing: the configuration is the outside one, and the target is Intercom", () =>
    Effect.gen(function*() {
      expect(yield* Seen).toEqual({ token: "real-token", baseUrl: undefined, region: "au" })
      const target = yield* Embedded.Target
      expect(target).toEqual({ _tag: "Intercom", description: "Intercom (INTERCOM_ACCESS_TOKEN is set)" })
    }).pipe(inEnvironment({ INTERCOM_ACCESS_TOKEN: "real-token", INTERCOM_REGION: "au" })))

  it.effect("under a program, it reads the simulator's values; when it ends, they and the simulator are gone", () =>
    Effect.gen(function*() {
      const baseUrl = yield* Config.string("INTERCOM_BASE_URL").pipe(Effect.provide(embedded))
      expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(yield* Effect.either(Config.string("INTERCOM_BASE_URL"))).toMatchObject({ _tag: "Left" })
      const refused = yield* HttpClient.execute(HttpClientRequest.get(`${baseUrl}/users/scroll`)).pipe(
        Effect.provide(NodeHttpClient.layerUndici),
        Effect.flip
      )
      expect(refused).toMatchObject({ _tag: "RequestError", reason: "Transport" })
    }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))))
})
