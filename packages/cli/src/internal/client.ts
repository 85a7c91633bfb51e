/**
 * The Intercom client of the subcommands that talk to Intercom, configured from the environment and the command
 * line's `--base-url` and `--region`. Loaded with the subcommand that needs it, not for `--help`.
 *
 * @since 0.1.0
 */
import { IntercomClient } from "@intercom-scroll/core"
import { Config, ConfigError, type Duration, Effect, Layer, Option, type Redacted } from "effect"
import { InvalidConfig } from "../ExportError.js"
import * as OpenScroll from "./openScroll.js"

/** The first problem a `ConfigError` reports (of several, the first variable read), with the variable it names. */
const firstProblem = (error: ConfigError.ConfigError): {
  readonly variable: string
  readonly message: string
  readonly missing: boolean
} => {
  switch (error._op) {
    case "And":
    case "Or":
      return firstProblem(error.left)
    default:
      return { variable: error.path.join("_"), message: error.message, missing: error._op === "MissingData" }
  }
}

const whereToGetAToken =
  "create an access token in Intercom's Developer Hub and export INTERCOM_ACCESS_TOKEN=… (it is never read from a flag)"

/**
 * The core's refusal of a variable, in one line that names it; a missing or blank token (the core's `MissingData`, or
 * its `InvalidData` "is blank") says which, and where to get one.
 */
const invalidConfig = (error: ConfigError.ConfigError): InvalidConfig => {
  const { message, missing, variable } = firstProblem(error)
  if (variable === "INTERCOM_ACCESS_TOKEN") {
    return new InvalidConfig({ variable, detail: `${missing ? "is not set" : "is blank"}: ${whereToGetAToken}` })
  }
  return variable === ""
    ? new InvalidConfig({ variable: "The environment", detail: `is invalid: ${message}` })
    : new InvalidConfig({ variable, detail: message })
}

/**
 * The flags of the command line that say where the workspace is, how long a page may take, and how large it may be.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientFlags {
  readonly baseUrl: Option.Option<string>
  readonly region: Option.Option<IntercomClient.Region>
  readonly requestTimeout: Option.Option<Duration.Duration>
  readonly maxResponseBytes: Option.Option<number>
}

/**
 * The `--base-url` and `--region` flags win over the environment; a `--region` flag also wins over an
 * INTERCOM_BASE_URL, since the core takes a base URL over a region.
 */
const resolveBaseUrl = (flags: ClientFlags, fromEnvironment: string | undefined) =>
  Option.getOrElse(flags.baseUrl, () => Option.isSome(flags.region) ? undefined : fromEnvironment)

/**
 * The client, configured by the core from the environment (`IntercomClient.environment`), the flags winning over it. A
 * variable the core refuses fails as `InvalidConfig`, which names it in one line.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (flags: ClientFlags) =>
  IntercomClient.layerConfig({
    ...IntercomClient.environment,
    baseUrl: Config.map(IntercomClient.environment.baseUrl, (fromEnvironment) => resolveBaseUrl(flags, fromEnvironment)),
    region: Config.map(IntercomClient.environment.region, (fromEnvironment) =>
      Option.getOrElse(flags.region, () => fromEnvironment)),
    requestTimeout: Config.succeed(Option.getOrUndefined(flags.requestTimeout)),
    maxResponseBytes: Config.succeed(Option.getOrUndefined(flags.maxResponseBytes))
  }).pipe(Layer.mapError((error) => ConfigError.isConfigError(error) ? invalidConfig(error) : error))

/**
 * Where an export notes for the next one that it cut its scroll of the workspace short (see `OpenScroll`): keyed by
 * the client's base URL and the environment's token.
 *
 * @since 0.1.0
 * @category open scroll
 */
export const openScrollNote = Effect.gen(function*() {
  const { baseUrl } = yield* IntercomClient.IntercomClient
  const token = yield* Config.option(IntercomClient.environment.accessToken).pipe(
    Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>())
  )
  if (Option.isNone(token)) return OpenScroll.none
  return yield* OpenScroll.make(yield* OpenScroll.directory, baseUrl, token.value)
})
