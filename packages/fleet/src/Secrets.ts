/**
 * Where a runner finds a workspace's access token. A `Sync` message names the token (`tokenEnv`) and never carries
 * it; the runner that handles the message resolves the name here, as a `Redacted`, just before it scrolls.
 *
 * The default reads the runner's environment. Replace the layer to read a vault or a table of encrypted OAuth tokens.
 *
 * @example
 * ```ts
 * import { Secrets } from "@intercom-scroll/fleet"
 * import { Effect, Redacted } from "effect"
 *
 * const fromVault = Secrets.layer((workspace) =>
 *   Effect.succeed(Redacted.make(`token of ${workspace.workspace} from the vault`)))
 * ```
 *
 * @since 0.1.0
 */
import { Config, Context, Effect, Layer, Option, Redacted, Schema } from "effect"

/**
 * What a secret is looked up by: the workspace and the name its configuration gives the token.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenRef {
  readonly workspace: string
  readonly tokenEnv: string
}

/**
 * No token could be found for a workspace on this runner.
 *
 * @since 0.1.0
 * @category errors
 */
export class MissingToken extends Schema.TaggedError<MissingToken>()("MissingToken", {
  workspace: Schema.String,
  tokenEnv: Schema.String,
  /** Why, in the words of the secret store; never the secret. */
  detail: Schema.optional(Schema.String)
}) {
  override get message(): string {
    // With `detail`, a secret store of the runner's said why (a Secrets layer of the app's own, or a config provider
    // that failed): that, not the advice for an environment variable unset, which would send its reader to the wrong place.
    return this.detail === undefined
      ? `No access token for workspace ${this.workspace}: the environment variable ${this.tokenEnv} is not set, or empty, on the runner that took the sync. Set ${this.tokenEnv} on every runner process (the fleet never sends tokens between processes), or give the runners a Secrets layer that reads your secret store.`
      : `No access token for workspace ${this.workspace} (${this.tokenEnv}) on the runner that took the sync: ${this.detail}.`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly token: (ref: TokenRef) => Effect.Effect<Redacted.Redacted<string>, MissingToken>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Secrets extends Context.Tag("@intercom-scroll/fleet/Secrets")<Secrets, Service>() {}

/**
 * A `Secrets` over any lookup: a vault client, a table of encrypted tokens.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (token: Service["token"]): Service => Secrets.of({ token })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (token: Service["token"]): Layer.Layer<Secrets> => Layer.succeed(Secrets, make(token))

/**
 * Reads each workspace's `tokenEnv` through the current `ConfigProvider` (the process environment by default),
 * when a sync needs it, so a token rotated in a vault-backed provider is picked up by the next sync.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<Secrets> = Layer.effect(
  Secrets,
  Effect.configProviderWith((provider) =>
    Effect.succeed(make((ref) =>
      // An unset variable is none; any other failure is the provider's (a vault that did not answer), said as its kind:
      // `Config.redacted` hides the provider's own words, which might quote the secret.
      Config.option(Config.redacted(ref.tokenEnv)).pipe(
        Effect.withConfigProvider(provider),
        Effect.mapError((error) =>
          new MissingToken({
            workspace: ref.workspace,
            tokenEnv: ref.tokenEnv,
            detail: `the config provider failed to read ${ref.tokenEnv} ${String(error)}`
          })
        ),
        // Without the whitespace around it, as `IntercomClient.accessTokenConfig` reads one: a secret file or a CRLF
        // .env leaves a line break at the end, which the client refuses.
        Effect.map(Option.map((token) => Redacted.make(Redacted.value(token).trim()))),
        Effect.flatMap((token) =>
          Option.isSome(token) && Redacted.value(token.value) !== ""
            ? Effect.succeed(token.value)
            : new MissingToken({ workspace: ref.workspace, tokenEnv: ref.tokenEnv })
        )
      )
    ))
  )
)
