/**
 * The embedded default for apps and examples: configuration, not a second client. When INTERCOM_ACCESS_TOKEN is
 * unset or blank, `layer` starts a simulator on a loopback port and sets a `ConfigProvider` in which
 * INTERCOM_ACCESS_TOKEN and INTERCOM_BASE_URL point at it (every other key is still read from the provider outside);
 * with a token it does nothing. Whatever reads the client's configuration after it, such as
 * `IntercomClient.layerConfig()` from `@intercom-scroll/core`, then reaches the simulator without a token and
 * Intercom with one.
 *
 * With `@intercom-scroll/core`, the production layer gets the simulator as its default: `IntercomClient.layerConfig()`
 * `.pipe(Layer.provide(NodeHttpClient.layerUndici), Layer.provideMerge(Embedded.layer({ … })))`.
 *
 * @example
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Embedded } from "@intercom-scroll/simulator"
 * import { Config, Console, Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const target = yield* Embedded.Target
 *   yield* Console.error(`Exporting from ${target.description}.`)
 *   // What IntercomClient.layerConfig() reads: the simulator's values without a token, the environment's with one.
 *   const baseUrl = yield* Config.option(Config.string("INTERCOM_BASE_URL"))
 *   yield* Console.log(baseUrl)
 * })
 *
 * program.pipe(
 *   Effect.provide(Embedded.layer({ workspaces: [{ token: "example", users: 2_500 }] })),
 *   NodeRuntime.runMain
 * )
 *
 * @since 0.1.0
 */
import type { ServeError } from "@effect/platform/HttpServerError"
import { Config, type ConfigError, ConfigProvider, Context, Effect, Layer, Option, Redacted } from "effect"
import * as Simulator from "./Simulator.js"

/**
 * The variables this module reads and sets, as `IntercomClient.layerConfig` reads them.
 *
 * @since 0.1.0
 * @category constants
 */
export const variables = {
  accessToken: "INTERCOM_ACCESS_TOKEN",
  baseUrl: "INTERCOM_BASE_URL"
} as const

/**
 * The simulator is the target: INTERCOM_ACCESS_TOKEN was unset or blank.
 *
 * @since 0.1.0
 * @category models
 */
export interface Simulated {
  readonly _tag: "Simulated"
  /** Where the simulator listens, as INTERCOM_BASE_URL now says, such as `http://127.0.0.1:40123`. */
  readonly baseUrl: string
  /** The simulator itself: its stats, ids and changes. */
  readonly simulator: Simulator.Simulator["Type"]
  /** One line for a person, such as "the embedded Intercom simulator at http://127.0.0.1:40123 (…)". */
  readonly description: string
}

/**
 * Intercom is the target: INTERCOM_ACCESS_TOKEN was set, and the configuration is left as it was.
 *
 * @since 0.1.0
 * @category models
 */
export interface Intercom {
  readonly _tag: "Intercom"
  /** One line for a person: "Intercom (INTERCOM_ACCESS_TOKEN is set)". */
  readonly description: string
}

/**
 * Whether the configuration points at the embedded simulator or at Intercom, for a CLI or a quickstart to say so.
 *
 * @since 0.1.0
 * @category tags
 */
export class Target extends Context.Tag("@intercom-scroll/simulator/Embedded/Target")<Target, Simulated | Intercom>() {}

const intercom: Intercom = {
  _tag: "Intercom",
  description: `Intercom (${variables.accessToken} is set)`
}

/**
 * Intercom when INTERCOM_ACCESS_TOKEN is set (not blank), and then nothing else happens. Otherwise the simulator of
 * `options` on a loopback port (a free one unless `port` says), for as long as the layer lives, and a
 * `ConfigProvider` in which INTERCOM_ACCESS_TOKEN is the first workspace's token and INTERCOM_BASE_URL the
 * simulator's address, every other key falling through to the provider outside. Layers built after it read those
 * values: put it under the layers that read the configuration (`Layer.provide`, `Layer.provideMerge`) or under the
 * program (`Effect.provide`), not beside them in a `Layer.merge`, which builds its layers concurrently. When the
 * layer ends, the simulator stops and the provider outside is back.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Simulator.ServerOptions): Layer.Layer<Target, ServeError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(
    Config.option(Config.redacted(variables.accessToken)),
    (token) =>
      Option.exists(token, (token) => Redacted.value(token).trim() !== "")
        ? Layer.succeed(Target, intercom)
        : simulated(options)
  ))

const simulated = (options: Simulator.ServerOptions): Layer.Layer<Target, ServeError> => {
  const [workspace] = options.workspaces
  if (workspace === undefined) return Layer.die("Embedded.layer needs at least one workspace to point at")
  return Layer.scoped(Target, Effect.gen(function*() {
    const baseUrl = yield* Simulator.baseUrl
    const simulator = yield* Simulator.Simulator
    const outside = yield* Effect.configProviderWith(Effect.succeed)
    const pointed = ConfigProvider.fromMap(
      new Map([[variables.accessToken, workspace.token], [variables.baseUrl, baseUrl]]),
      // As the environment's provider splits paths, so that nested configs find the same keys.
      { pathDelim: "_" }
    ).pipe(ConfigProvider.orElse(() => outside))
    const target: Simulated = {
      _tag: "Simulated",
      baseUrl,
      simulator,
      description: `the embedded Intercom simulator at ${baseUrl} (${variables.accessToken} is not set)`
    }
    // Set in this fiber, which builds the layers that come after, and restored when the layer ends. (Layer.merge
    // with Layer.setConfigProvider would not do: it builds and releases concurrently, and the release's restore
    // happens in a fiber of its own, leaving the provider set.)
    yield* Effect.withConfigProviderScoped(pointed)
    return target
  })).pipe(Layer.provide(Simulator.layerServer(options)))
}
