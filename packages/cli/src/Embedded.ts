/**
 * The embedded default behind `pnpm start` and the examples: an `IntercomClient` for the real Intercom when
 * INTERCOM_ACCESS_TOKEN is set, otherwise for a simulator started in this process on a loopback port.
 *
 * @example
 * ```ts
 * import { Embedded } from "@intercom-scroll/cli"
 * import { Scroll } from "@intercom-scroll/core"
 * import { Effect, Stream } from "effect"
 *
 * // A client of a simulator served on a loopback port in this process: 300 users over real HTTP.
 * const users = Scroll.users().pipe(
 *   Stream.runCount,
 *   Effect.provide(Embedded.layerSimulated({ simulator: { workspaces: [{ token: "T", users: 300 }] } }))
 * )
 *
 * Effect.runPromise(users).then((count) => assert.strictEqual(count, 300))
 * ```
 *
 * @since 0.1.0
 */
import type { HttpServer } from "@effect/platform"
import type { ServeError } from "@effect/platform/HttpServerError"
import { NodeHttpClient } from "@effect/platform-node"
import { IntercomClient, type ScrollError } from "@intercom-scroll/core"
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"
import type { ConfigError } from "effect/ConfigError"
import { Simulator } from "@intercom-scroll/simulator"

/**
 * Where the client points: a simulator in this process, or Intercom.
 *
 * @since 0.1.0
 * @category tags
 */
export class Target extends Context.Tag("@intercom-scroll/cli/Embedded/Target")<Target, {
  readonly kind: "simulator" | "intercom"
  readonly baseUrl: string
}>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The simulated workspace(s); the client uses the first one's token. */
  readonly simulator: Simulator.ServerOptions
  readonly client?: Omit<IntercomClient.Options, "accessToken" | "baseUrl" | "region"> | undefined
}

/**
 * An `IntercomClient` for a simulator served on a loopback port in this process, over real HTTP.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSimulated = (
  options: Options
): Layer.Layer<IntercomClient.IntercomClient | Target | Simulator.Simulator | HttpServer.HttpServer, ServeError | ScrollError.InvalidOptions> => {
  const [workspace] = options.simulator.workspaces
  if (workspace === undefined) return Layer.die("Embedded.layerSimulated needs at least one workspace")
  return Layer.unwrapEffect(Effect.map(Simulator.baseUrl, (baseUrl) =>
    Layer.merge(
      IntercomClient.layer({ ...options.client, accessToken: Redacted.make(workspace.token), baseUrl }),
      Layer.succeed(Target, { kind: "simulator", baseUrl })
    ))).pipe(
      Layer.provide(NodeHttpClient.layerUndici),
      Layer.provideMerge(Simulator.layerServer(options.simulator))
    )
}

/**
 * Intercom itself when INTERCOM_ACCESS_TOKEN is set (with INTERCOM_REGION or INTERCOM_BASE_URL), otherwise the
 * simulated workspace. A blank token counts as none, as the CLI reads it: Intercom would only refuse an empty bearer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv = (
  options: Options
): Layer.Layer<IntercomClient.IntercomClient | Target, ServeError | ScrollError.InvalidOptions | ConfigError> =>
  Layer.unwrapEffect(Effect.map(
    Config.option(Config.redacted("INTERCOM_ACCESS_TOKEN")),
    (token): Layer.Layer<IntercomClient.IntercomClient | Target, ServeError | ScrollError.InvalidOptions | ConfigError> =>
      Option.isNone(token) || Redacted.value(token.value).trim() === ""
      ? layerSimulated(options)
      : Layer.unwrapEffect(Effect.map(IntercomClient.IntercomClient, (client) =>
        Layer.succeed(Target, { kind: "intercom", baseUrl: client.baseUrl }))).pipe(
          Layer.provideMerge(IntercomClient.layerConfig(
            Config.map(Config.all(IntercomClient.environment), (environment) => ({ ...options.client, ...environment }))
          )),
          Layer.provide(NodeHttpClient.layerUndici)
        )
  ))
