/**
 * The command's spans, metrics and log lines, sent to an OpenTelemetry collector over OTLP/HTTP when the environment
 * names one, with the variables every OpenTelemetry SDK reads: OTEL_EXPORTER_OTLP_ENDPOINT (unset or blank: nothing is
 * sent, nothing is loaded), OTEL_EXPORTER_OTLP_PROTOCOL (`http/protobuf`, the default, or `http/json`),
 * OTEL_EXPORTER_OTLP_HEADERS (`key=value,…`, values percent-encoded: a collector's API key, so never printed),
 * OTEL_SERVICE_NAME (default `intercom-scroll`), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and its
 * OTEL_TRACES_SAMPLER_ARG (which spans: `sampling.ts`), and OTEL_SDK_DISABLED=true to send nothing.
 *
 * The exporter is @effect/opentelemetry's own (no OpenTelemetry SDK), loaded only when an endpoint is set. A collector
 * that cannot be reached costs the command nothing but the last flush as it ends (at most 2 s): the exporter retries,
 * then stops sending for a minute, and says so at `--log-level debug`.
 *
 * @since 0.1.0
 */
import type * as Otlp from "@effect/opentelemetry/Otlp"
import type { HttpClient } from "@effect/platform"
import { Config, Duration, Effect, Layer, Option, Redacted } from "effect"
import { InvalidConfig } from "../ExportError.js"
import * as Sampling from "./sampling.js"
import { moduleVersion } from "./version.js"

/**
 * Where and how to send.
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  /** The collector's base URL; the signals go to `/v1/traces`, `/v1/metrics` and `/v1/logs` under it. */
  readonly endpoint: string
  readonly protocol: "http/protobuf" | "http/json"
  readonly headers: Redacted.Redacted<Readonly<Record<string, string>>>
  /** Only when OTEL_SERVICE_NAME is set or OTEL_RESOURCE_ATTRIBUTES names none: the exporter reads the rest. */
  readonly serviceName: string | undefined
  readonly sampler: Sampling.Sampler
}

const defaultServiceName = "intercom-scroll"

/** A variable as set, blank counting as unset (as the OpenTelemetry specification has it). */
const variable = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Effect.map(Option.filter((value) => value.trim() !== "")),
    Effect.orElseSucceed(() => Option.none<string>())
  )

const invalid = (name: string, detail: string) => Effect.fail(new InvalidConfig({ variable: name, detail }))

const parseEndpoint = (text: string): Effect.Effect<string, InvalidConfig> => {
  const url = URL.canParse(text.trim()) ? new URL(text.trim()) : undefined
  // Not echoed: a URL may carry credentials.
  return url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")
    ? invalid(
      "OTEL_EXPORTER_OTLP_ENDPOINT",
      "is not an http:// or https:// URL: set it to the collector's OTLP/HTTP base URL, such as http://localhost:4318"
    )
    : Effect.succeed(url.href.replace(/\/+$/, ""))
}

const parseProtocol = (text: string): Effect.Effect<Settings["protocol"], InvalidConfig> => {
  const protocol = text.trim()
  if (protocol === "http/protobuf" || protocol === "http/json") return Effect.succeed(protocol)
  return invalid(
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    protocol === "grpc"
      ? "is grpc, which intercom-scroll does not send: use http/protobuf (the default) or http/json, to the collector's OTLP/HTTP port (4318)"
      : `must be http/protobuf (the default) or http/json, not ${JSON.stringify(protocol)}`
  )
}

/** `key=value,…`, each value percent-decoded. A mistake is said by its position: the values are secrets. */
const parseHeaders = (text: string): Effect.Effect<Record<string, string>, InvalidConfig> => {
  const headers: Record<string, string> = {}
  const entries = text.split(",").filter((entry) => entry.trim() !== "")
  for (const [index, entry] of entries.entries()) {
    const equals = entry.indexOf("=")
    const key = equals > 0 ? entry.slice(0, equals).trim() : ""
    let value: string | undefined
    try {
      value = decodeURIComponent(entry.slice(equals + 1).trim())
    } catch {
      value = undefined
    }
    if (key === "" || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key) || value === undefined) {
      return invalid(
        "OTEL_EXPORTER_OTLP_HEADERS",
        `is not a list of key=value pairs (entry ${index + 1} of ${entries.length} is not one; values are percent-encoded)`
      )
    }
    headers[key.toLowerCase()] = value
  }
  return Effect.succeed(headers)
}

/**
 * The settings the environment gives, or none when nothing is to be sent.
 *
 * @since 0.1.0
 * @category constructors
 */
export const settings: Effect.Effect<Option.Option<Settings>, InvalidConfig> = Effect.gen(function*() {
  const endpointText = yield* variable("OTEL_EXPORTER_OTLP_ENDPOINT")
  const disabled = yield* variable("OTEL_SDK_DISABLED")
  if (Option.isNone(endpointText) || Option.exists(disabled, (value) => value.trim().toLowerCase() === "true")) {
    return Option.none()
  }
  const endpoint = yield* parseEndpoint(endpointText.value)
  const protocol = yield* Option.match(yield* variable("OTEL_EXPORTER_OTLP_PROTOCOL"), {
    onNone: () => Effect.succeed("http/protobuf" as const),
    onSome: parseProtocol
  })
  const headers = yield* Option.match(yield* variable("OTEL_EXPORTER_OTLP_HEADERS"), {
    onNone: () => Effect.succeed({}),
    onSome: parseHeaders
  })
  const samplerName = yield* variable("OTEL_TRACES_SAMPLER")
  const sampler = Option.isNone(samplerName)
    ? Sampling.defaultSampler
    : Sampling.parse(samplerName.value.trim(), Option.getOrUndefined(yield* variable("OTEL_TRACES_SAMPLER_ARG")))
  if ("mistake" in sampler) return yield* invalid(sampler.mistake.variable, sampler.mistake.detail)
  const serviceName = yield* variable("OTEL_SERVICE_NAME")
  const attributes = yield* variable("OTEL_RESOURCE_ATTRIBUTES")
  const namedInAttributes = Option.exists(attributes, (text) => /(^|,)\s*service\.name\s*=/.test(text))
  return Option.some({
    endpoint,
    protocol,
    headers: Redacted.make(headers),
    serviceName: Option.getOrElse(serviceName, () => namedInAttributes ? undefined : defaultServiceName),
    sampler
  })
})

/**
 * The exporter, which the bin carries and an app that embeds the command line installs (an optional peer).
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadExporter = (load: () => Promise<typeof Otlp>): Effect.Effect<typeof Otlp, InvalidConfig> =>
  Effect.tryPromise({
    try: load,
    catch: () =>
      new InvalidConfig({
        variable: "OTEL_EXPORTER_OTLP_ENDPOINT",
        detail:
          "is set, but @effect/opentelemetry, which sends the telemetry, is not installed where this program can import it: npm install @effect/opentelemetry@^0.64.1 beside @intercom-scroll/cli, or unset the variable"
      })
  })

/**
 * Sends the spans, metrics and log lines of what it is provided to, from the moment it is built until its scope
 * closes, where it sends what is left (waiting at most 2 s for the collector).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (settings: Settings): Layer.Layer<never, InvalidConfig, HttpClient.HttpClient> =>
  Layer.unwrapEffect(Effect.map(loadExporter(() => import("@effect/opentelemetry/Otlp")), (Otlp) => {
    const options = {
      baseUrl: settings.endpoint,
      resource: { serviceName: settings.serviceName, serviceVersion: moduleVersion },
      headers: Redacted.value(settings.headers),
      shutdownTimeout: Duration.seconds(2)
    }
    return sampled(settings.protocol === "http/json" ? Otlp.layerJson(options) : Otlp.layerProtobuf(options), settings.sampler)
  }))

/** The exporter's tracer, behind the sampler's choice of what it sends (`sampling.ts`). */
const sampled = <E, R>(exporting: Layer.Layer<never, E, R>, sampler: Sampling.Sampler): Layer.Layer<never, E, R> =>
  Layer.unwrapEffect(Effect.map(Effect.tracer, (sent) => Layer.setTracer(Sampling.tracer(sent, sampler)))).pipe(
    Layer.provideMerge(exporting)
  )

/**
 * Runs `self` with the settings the environment gives: as it is when nothing is to be sent, else with its telemetry
 * sent until it ends. A variable that is set wrong fails it before it starts, as `InvalidConfig`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const provide = <A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E | InvalidConfig, R | HttpClient.HttpClient> =>
  Effect.flatMap(settings, Option.match({ onNone: () => self, onSome: (found) => Effect.provide(self, layer(found)) }))
