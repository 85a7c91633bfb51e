/**
 * The command's spans, metrics and log lines, sent to an OpenTelemetry collector over OTLP/HTTP when the environment
 * names one, with the variables every OpenTelemetry SDK reads: OTEL_EXPORTER_OTLP_ENDPOINT, the collector's base URL,
 * or a signal's own full URL in OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT (none set or all blank: nothing is
 * sent, nothing is loaded), OTEL_EXPORTER_OTLP_PROTOCOL (`http/protobuf`, the default, or `http/json`),
 * OTEL_EXPORTER_OTLP_HEADERS (`key=value,…`, values percent-encoded: a collector's API key, so never printed),
 * OTEL_EXPORTER_OTLP_TIMEOUT (how long a batch's export waits for the collector, its retries included, in
 * milliseconds; 10,000 by default),
 * OTEL_EXPORTER_OTLP_COMPRESSION (`gzip`, or `none`, the default), OTEL_EXPORTER_OTLP_CERTIFICATE (a PEM file of the
 * certificates an https:// collector's must chain to, in place of Node's own), OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE
 * and OTEL_EXPORTER_OTLP_CLIENT_KEY (the PEM files this program shows a collector that asks for a client certificate),
 * all but the endpoint also for a signal alone (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, …_HEADERS, …_TIMEOUT,
 * …_COMPRESSION, …_CERTIFICATE, …_CLIENT_CERTIFICATE, …_CLIENT_KEY, over the generic ones),
 * how often each signal is sent and in batches of how many (OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
 * OTEL_METRIC_EXPORT_INTERVAL, OTEL_BLRP_SCHEDULE_DELAY, OTEL_BLRP_MAX_EXPORT_BATCH_SIZE; the exporter's defaults
 * otherwise),
 * OTEL_{TRACES,METRICS,LOGS}_EXPORTER (`otlp`, the default, or `none` to send that signal nowhere), OTEL_SERVICE_NAME
 * (default `intercom-scroll`), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and its OTEL_TRACES_SAMPLER_ARG (which
 * spans: `sampling.ts`), and OTEL_SDK_DISABLED=true to send nothing.
 *
 * A URL's credentials are sent as Basic authorization (undici's client would drop them), under a headers variable's.
 *
 * The exporter is @effect/opentelemetry's own (no OpenTelemetry SDK), loaded only when an endpoint is set. A collector
 * that cannot be reached, or does not answer within the timeout, costs the command nothing but a wait as it ends (at
 * most 2 s for an export under way, and 2 s for the last flush; the signal's timeout for each instead, when a variable
 * sets one, up to 20 s): the exporter retries, then drops what it holds and
 * stops sending for a minute. Its first failure for each signal is said once, as a
 * warning (the exporter says it only at `--log-level debug`), and so is a signal's loss at the end.
 *
 * @since 0.1.0
 */
import type * as OtlpLogger from "@effect/opentelemetry/OtlpLogger"
import type * as OtlpMetrics from "@effect/opentelemetry/OtlpMetrics"
import type * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import type * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import { HttpBody, HttpClient, HttpClientError, HttpClientRequest } from "@effect/platform"
import { Clock, Config, Duration, Effect, Fiber, Layer, Option, Redacted } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs/promises"
import { promisify } from "node:util"
import * as Zlib from "node:zlib"
import { InvalidConfig } from "../ExportError.js"
import * as Sampling from "./sampling.js"
import * as Undici from "./undici.js"
import { maxTimerMillis } from "./timer.js"
import { moduleVersion } from "./version.js"

/**
 * The signals, each with variables of its own (`OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, …).
 *
 * @since 0.1.0
 * @category models
 */
export type Signal = "traces" | "metrics" | "logs"

const signals: ReadonlyArray<Signal> = ["traces", "metrics", "logs"]

/**
 * Where and how one signal is sent.
 *
 * @since 0.1.0
 * @category models
 */
export interface Destination {
  readonly signal: Signal
  /** The full URL: the signal's own endpoint as given, else the base URL's with `/v1/traces` (…) after it. */
  readonly url: string
  /** The variable the URL comes from, named when the exporter cannot be loaded. */
  readonly variable: string
  readonly protocol: "http/protobuf" | "http/json"
  /** The generic headers with the signal's own over them. */
  readonly headers: Redacted.Redacted<Readonly<Record<string, string>>>
  /** How often what was gathered is sent (OTEL_BSP_SCHEDULE_DELAY, …); `undefined`: the exporter's default. */
  readonly exportInterval: Duration.Duration | undefined
  /** The most spans or log lines in one request (OTEL_BSP_MAX_EXPORT_BATCH_SIZE, …); `undefined`: the exporter's. */
  readonly maxBatchSize: number | undefined
  /** How long a request waits for the collector's answer before it is given up (and retried by the exporter). */
  readonly timeout: Duration.Duration
  /**
   * How long the command's end waits for the collector, for an export under way and for the last flush: the signal's
   * timeout when a variable set one (a flush is an export, which the specification bounds by it), within `maxEndWait`;
   * `lastFlush` when none did.
   */
  readonly endWait: Duration.Duration
  /** `gzip`: each request's body is compressed (`Content-Encoding: gzip`). */
  readonly compression: Compression
  /** Certificates of its own, or `undefined`: Node's certificate authorities, and no client certificate. */
  readonly tls: Tls | undefined
}

/**
 * The certificates a signal's requests are sent with, each read from the PEM file a variable names.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tls {
  /** The certificates the collector's must chain to, in place of Node's own (OTEL_EXPORTER_OTLP_CERTIFICATE). */
  readonly authority: string | undefined
  /** What this program shows a collector that asks for a client certificate (mutual TLS). */
  readonly client: { readonly certificate: string; readonly key: Redacted.Redacted<string> } | undefined
}

/**
 * What a request's body is sent as (OTEL_EXPORTER_OTLP_COMPRESSION).
 *
 * @since 0.1.0
 * @category models
 */
export type Compression = "gzip" | "none"

/**
 * What to send where.
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  /** Each signal sent, or `undefined`: turned off (`OTEL_TRACES_EXPORTER=none`, …), or no endpoint for it. */
  readonly traces: Destination | undefined
  readonly metrics: Destination | undefined
  readonly logs: Destination | undefined
  /** Only when OTEL_SERVICE_NAME is set or OTEL_RESOURCE_ATTRIBUTES names none: the exporter reads the rest. */
  readonly serviceName: string | undefined
  readonly sampler: Sampling.Sampler
}

const defaultServiceName = "intercom-scroll"

const genericEndpoint = "OTEL_EXPORTER_OTLP_ENDPOINT"
type CertificateFile = "CERTIFICATE" | "CLIENT_CERTIFICATE" | "CLIENT_KEY"
const ownVariable = (signal: Signal, setting: "ENDPOINT" | "PROTOCOL" | "HEADERS" | "TIMEOUT" | "COMPRESSION" | CertificateFile) =>
  `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_${setting}`

/**
 * The batching variables of each signal, as the specification names them: a delay in milliseconds between two exports,
 * and for spans and log lines the most sent at once (metrics are sent whole).
 */
const batching: { readonly [S in Signal]: { readonly delay: string; readonly batchSize: string | undefined } } = {
  traces: { delay: "OTEL_BSP_SCHEDULE_DELAY", batchSize: "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" },
  metrics: { delay: "OTEL_METRIC_EXPORT_INTERVAL", batchSize: undefined },
  logs: { delay: "OTEL_BLRP_SCHEDULE_DELAY", batchSize: "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE" }
}

/** A variable as set, blank counting as unset (as the OpenTelemetry specification has it). */
const variable = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Effect.map(Option.filter((value) => value.trim() !== "")),
    Effect.orElseSucceed(() => Option.none<string>())
  )

const invalid = (name: string, detail: string) => Effect.fail(new InvalidConfig({ variable: name, detail }))

/** The variable `name` read by `parse`, or `unset` where it is not set. */
const setting = <A>(
  name: string,
  parse: (name: string, text: string) => Effect.Effect<A, InvalidConfig>,
  unset: A
): Effect.Effect<A, InvalidConfig> =>
  Effect.flatMap(variable(name), Option.match({ onNone: () => Effect.succeed(unset), onSome: (text) => parse(name, text) }))

/** `example` is a URL of the kind `name` takes, said in the refusal. */
const parseEndpoint = (name: string, text: string, example: string): Effect.Effect<URL, InvalidConfig> => {
  const url = URL.canParse(text.trim()) ? new URL(text.trim()) : undefined
  // Not echoed: a URL may carry credentials.
  return url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")
    ? invalid(name, `is not an http:// or https:// URL: set it to ${example}`)
    : Effect.succeed(url)
}

/** A signal's URL under the generic base URL: `/v1/<signal>` added to its path, its query kept. */
const underBase = (base: URL, signal: Signal): URL => {
  const url = new URL(base)
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/v1/${signal}`
  return url
}

/**
 * Where a request goes, and the `authorization` a URL's credentials (`https://user:password@collector`) stand for,
 * as curl and Go's HTTP client send them: undici's client sends none of a URL's credentials. A fragment is never sent.
 */
const requestTarget = (name: string, url: URL): Effect.Effect<{ readonly url: string; readonly headers: Record<string, string> }, InvalidConfig> => {
  const target = new URL(url)
  target.hash = ""
  if (url.username === "" && url.password === "") return Effect.succeed({ url: target.href, headers: {} })
  target.username = ""
  target.password = ""
  return Effect.try({
    try: () => ({
      url: target.href,
      headers: {
        authorization: `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}`
      }
    }),
    catch: () => new InvalidConfig({ variable: name, detail: "holds credentials that are not percent-encoded" })
  })
}

const parseProtocol = (name: string, text: string): Effect.Effect<Destination["protocol"], InvalidConfig> => {
  const protocol = text.trim()
  if (protocol === "http/protobuf" || protocol === "http/json") return Effect.succeed(protocol)
  return invalid(
    name,
    protocol === "grpc"
      ? "is grpc, which intercom-scroll does not send: use http/protobuf (the default) or http/json, to the collector's OTLP/HTTP port (4318)"
      : `must be http/protobuf (the default) or http/json, not ${JSON.stringify(protocol)}`
  )
}

const parseCompression = (name: string, text: string): Effect.Effect<Compression, InvalidConfig> => {
  const compression = text.trim().toLowerCase()
  return compression === "gzip" || compression === "none"
    ? Effect.succeed(compression)
    : invalid(name, `must be gzip or none (the default), not ${JSON.stringify(text.trim())}`)
}

/** The specification's default: a request waits 10 s for the collector. */
const defaultTimeout = Duration.seconds(10)

/** What a header's value may hold (RFC 9110 §5.5): no control character but a tab, nothing past a byte. */
const headerValue = /^[\t\x20-\x7e\x80-\xff]*$/

/** `key=value,…`, each value percent-decoded. A mistake is said by its position: the values are secrets. */
const parseHeaders = (name: string, text: string): Effect.Effect<Record<string, string>, InvalidConfig> => {
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
        name,
        `is not a list of key=value pairs (entry ${index + 1} of ${entries.length} is not one; values are percent-encoded)`
      )
    }
    // Sent as it is, such a value would fail every request, said only as a warning.
    if (!headerValue.test(value)) {
      return invalid(
        name,
        `holds a value no HTTP header can carry (entry ${index + 1} of ${entries.length}: a line break or another control character, once decoded)`
      )
    }
    headers[key.toLowerCase()] = value
  }
  return Effect.succeed(headers)
}

/** A whole number, 1 or more (the specification's milliseconds and counts); `what` says which in the refusal. */
const parseCount = (name: string, text: string, what: string): Effect.Effect<number, InvalidConfig> => {
  const count = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN
  return Number.isSafeInteger(count) && count >= 1
    ? Effect.succeed(count)
    : invalid(name, `must be a whole number of ${what}, 1 or more, not ${JSON.stringify(text.trim())}`)
}

/** A count of milliseconds that a timer can wait. */
const parseMillis = (name: string, text: string): Effect.Effect<number, InvalidConfig> =>
  Effect.flatMap(parseCount(name, text, "milliseconds"), (millis) =>
    millis <= maxTimerMillis
      ? Effect.succeed(millis)
      : invalid(name, `must be at most ${maxTimerMillis} milliseconds (about 24.8 days), the longest a timer waits, not ${JSON.stringify(text.trim())}`))

/** The signal's batching variables, each unset where the exporter's default stands. */
const batchingOf = (signal: Signal) =>
  Effect.gen(function*() {
    const { batchSize, delay } = batching[signal]
    const interval = yield* Effect.transposeMapOption(yield* variable(delay), (text) => parseMillis(delay, text))
    const size = batchSize === undefined ? Option.none<number>() : yield* Effect.transposeMapOption(
      yield* variable(batchSize),
      (text) => parseCount(batchSize, text, signal === "traces" ? "spans" : "log lines")
    )
    return {
      exportInterval: Option.getOrUndefined(Option.map(interval, Duration.millis)),
      maxBatchSize: Option.getOrUndefined(size)
    }
  })

/**
 * OTEL_TRACES_EXPORTER (…): whether the signal is sent. `otlp` sends it and `none` does not; any other exporter is one
 * this program does not have, refused rather than read as either.
 */
const parseExporters = (name: string, text: string): Effect.Effect<boolean, InvalidConfig> => {
  const exporters = text.split(",").map((entry) => entry.trim().toLowerCase()).filter((entry) => entry !== "")
  const other = exporters.find((exporter) => exporter !== "otlp" && exporter !== "none")
  if (other !== undefined) {
    return invalid(name, `must be otlp (the default) or none, not ${JSON.stringify(other)}: intercom-scroll sends over OTLP/HTTP only`)
  }
  if (exporters.includes("otlp") && exporters.includes("none")) {
    return invalid(name, "names both otlp and none: set it to otlp to send, or none not to")
  }
  return Effect.succeed(!exporters.includes("none"))
}

/** A file, and the variable that names it. */
interface NamedFile {
  readonly name: string
  readonly path: string
}

/** A file a variable names: the signal's own variable over the generic one. */
const fileOf = (signal: Signal, setting: CertificateFile): Effect.Effect<Option.Option<NamedFile>> =>
  Effect.gen(function*() {
    const own = ownVariable(signal, setting)
    const named = yield* variable(own)
    const name = Option.isSome(named) ? own : `OTEL_EXPORTER_OTLP_${setting}`
    const path = Option.isSome(named) ? named : yield* variable(name)
    return Option.map(path, (path) => ({ name, path: path.trim() }))
  })

/** A PEM key kept encrypted (PKCS #8's, or OpenSSL's older form), which Node's errors do not say alike across versions. */
const encryptedKey = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/

/** What the file holds, read by `parse`; a file it cannot read, or that `parse` refuses, names the variable. */
const readFile = <A>(file: NamedFile, holds: string, parse: (text: string) => A): Effect.Effect<A, InvalidConfig> =>
  Effect.tryPromise(() => Fs.readFile(file.path, "utf8")).pipe(
    Effect.mapError((cause) =>
      new InvalidConfig({
        variable: file.name,
        detail: `names ${file.path}, which cannot be read (${(cause.error as NodeJS.ErrnoException).code ?? String(cause.error)})`
      })
    ),
    Effect.flatMap((text) =>
      Effect.try({
        try: () => parse(text),
        catch: () =>
          new InvalidConfig({
            variable: file.name,
            detail: encryptedKey.test(text)
              ? `names ${file.path}, an encrypted key, which this program cannot decrypt: give it the key unencrypted (openssl pkey -in ${file.path} -out KEY)`
              : `names ${file.path}, which holds no ${holds} in PEM`
          })
      })
    )
  )

/** The signal's certificates, or `undefined` where no variable names one. */
const tlsOf = (signal: Signal): Effect.Effect<Tls | undefined, InvalidConfig> =>
  Effect.gen(function*() {
    const authority = yield* fileOf(signal, "CERTIFICATE")
    const certificate = yield* fileOf(signal, "CLIENT_CERTIFICATE")
    const key = yield* fileOf(signal, "CLIENT_KEY")
    if (Option.isNone(authority) && Option.isNone(certificate) && Option.isNone(key)) return undefined
    const authorities = yield* Effect.transposeMapOption(authority, (file) =>
      readFile(file, "certificate", (text) => {
        new Crypto.X509Certificate(text)
        return text
      }))
    if (Option.isSome(certificate) !== Option.isSome(key)) {
      const [set, missing] = Option.isSome(certificate) ? [certificate.value.name, "CLIENT_KEY"] : [Option.getOrThrow(key).name, "CLIENT_CERTIFICATE"]
      return yield* invalid(set, `is set without OTEL_EXPORTER_OTLP_${missing} (or the signal's own): a client certificate goes with its key`)
    }
    const client = Option.isSome(certificate) && Option.isSome(key)
      ? yield* Effect.gen(function*() {
        const shown = yield* readFile(certificate.value, "certificate", (text) => ({ text, x509: new Crypto.X509Certificate(text) }))
        const secret = yield* readFile(key.value, "private key", (text) => ({ text, key: Crypto.createPrivateKey(text) }))
        if (!shown.x509.checkPrivateKey(secret.key)) {
          return yield* invalid(key.value.name, `names ${key.value.path}, which is not the key of the certificate in ${certificate.value.path}`)
        }
        return { certificate: shown.text, key: Redacted.make(secret.text) }
      })
      : undefined
    return { authority: Option.getOrUndefined(authorities), client }
  })

/** What the generic variables say, for every signal that has no variable of its own. */
interface Generic {
  /** The base URL. */
  readonly endpoint: Option.Option<URL>
  readonly protocol: Destination["protocol"]
  readonly headers: Readonly<Record<string, string>>
  /** `undefined` when no variable sets it. */
  readonly timeout: Duration.Duration | undefined
  readonly compression: Compression
}

/** A timeout in milliseconds, as OTEL_EXPORTER_OTLP_TIMEOUT (…) gives it. */
const parseTimeout = (name: string, text: string) => Effect.map(parseMillis(name, text), Duration.millis)

const generic: Effect.Effect<Generic, InvalidConfig> = Effect.gen(function*() {
  const endpoint = yield* Effect.transposeMapOption(
    yield* variable(genericEndpoint),
    (text) => parseEndpoint(genericEndpoint, text, "the collector's OTLP/HTTP base URL, such as http://localhost:4318")
  )
  return {
    endpoint,
    protocol: yield* setting<Destination["protocol"]>("OTEL_EXPORTER_OTLP_PROTOCOL", parseProtocol, "http/protobuf"),
    headers: yield* setting("OTEL_EXPORTER_OTLP_HEADERS", parseHeaders, {}),
    timeout: yield* setting<Duration.Duration | undefined>("OTEL_EXPORTER_OTLP_TIMEOUT", parseTimeout, undefined),
    compression: yield* setting<Compression>("OTEL_EXPORTER_OTLP_COMPRESSION", parseCompression, "none")
  }
})

/** Where and how `signal` goes, each of its own variables over the generic one; `undefined` when it is not sent. */
const destination = (signal: Signal, shared: Generic): Effect.Effect<Destination | undefined, InvalidConfig> =>
  Effect.gen(function*() {
    const exporterVariable = `OTEL_${signal.toUpperCase()}_EXPORTER`
    const exporters = yield* variable(exporterVariable)
    if (Option.isSome(exporters) && !(yield* parseExporters(exporterVariable, exporters.value))) return undefined
    const endpointVariable = ownVariable(signal, "ENDPOINT")
    const own = yield* variable(endpointVariable)
    // The signal's own endpoint is its full URL, as the specification has it: nothing is appended.
    const url = Option.isSome(own)
      ? yield* parseEndpoint(endpointVariable, own.value, `the collector's full URL for ${signal}, such as http://localhost:4318/v1/${signal}`)
      : Option.isSome(shared.endpoint)
      ? underBase(shared.endpoint.value, signal)
      : undefined
    if (url === undefined) return undefined
    const variableUsed = Option.isSome(own) ? endpointVariable : genericEndpoint
    const target = yield* requestTarget(variableUsed, url)
    const timeout = yield* setting<Duration.Duration | undefined>(ownVariable(signal, "TIMEOUT"), parseTimeout, shared.timeout)
    return {
      signal,
      url: target.url,
      variable: variableUsed,
      protocol: yield* setting(ownVariable(signal, "PROTOCOL"), parseProtocol, shared.protocol),
      // An authorization header set in a variable over the URL's credentials.
      headers: Redacted.make({
        ...target.headers,
        ...shared.headers,
        ...yield* setting(ownVariable(signal, "HEADERS"), parseHeaders, {})
      }),
      timeout: timeout ?? defaultTimeout,
      endWait: timeout === undefined ? lastFlush : Duration.min(timeout, maxEndWait),
      compression: yield* setting(ownVariable(signal, "COMPRESSION"), parseCompression, shared.compression),
      tls: yield* tlsOf(signal),
      ...yield* batchingOf(signal)
    }
  })

/**
 * The settings the environment gives, or none when nothing is to be sent.
 *
 * @since 0.1.0
 * @category constructors
 */
export const settings: Effect.Effect<Option.Option<Settings>, InvalidConfig> = Effect.gen(function*() {
  const disabled = yield* variable("OTEL_SDK_DISABLED")
  if (Option.exists(disabled, (value) => value.trim().toLowerCase() === "true")) return Option.none()
  // No endpoint at all: nothing else is read, so that an OTEL_ variable meant for another program fails nothing here.
  const endpoints = yield* Effect.forEach(
    [genericEndpoint, ...signals.map((signal) => ownVariable(signal, "ENDPOINT"))],
    variable
  )
  if (endpoints.every(Option.isNone)) return Option.none()
  const shared = yield* generic
  const traces = yield* destination("traces", shared)
  const metrics = yield* destination("metrics", shared)
  const logs = yield* destination("logs", shared)
  if (traces === undefined && metrics === undefined && logs === undefined) return Option.none()
  const samplerName = yield* variable("OTEL_TRACES_SAMPLER")
  const sampler = Option.isNone(samplerName)
    ? Sampling.defaultSampler
    : Sampling.parse(samplerName.value.trim(), Option.getOrUndefined(yield* variable("OTEL_TRACES_SAMPLER_ARG")))
  if ("mistake" in sampler) return yield* invalid(sampler.mistake.variable, sampler.mistake.detail)
  const serviceName = yield* variable("OTEL_SERVICE_NAME")
  const attributes = yield* variable("OTEL_RESOURCE_ATTRIBUTES")
  const namedInAttributes = Option.exists(attributes, (text) => /(^|,)\s*service\.name\s*=/.test(text))
  return Option.some({
    traces,
    metrics,
    logs,
    serviceName: Option.getOrElse(serviceName, () => namedInAttributes ? undefined : defaultServiceName),
    sampler
  })
})

/**
 * The modules of @effect/opentelemetry that send: each signal's exporter, built apart with its own URL and headers,
 * and the two encodings.
 *
 * @since 0.1.0
 * @category models
 */
export interface Exporter {
  readonly OtlpTracer: typeof OtlpTracer
  readonly OtlpMetrics: typeof OtlpMetrics
  readonly OtlpLogger: typeof OtlpLogger
  readonly OtlpSerialization: typeof OtlpSerialization
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const importExporter = (): Promise<Exporter> =>
  Promise.all([
    import("@effect/opentelemetry/OtlpTracer"),
    import("@effect/opentelemetry/OtlpMetrics"),
    import("@effect/opentelemetry/OtlpLogger"),
    import("@effect/opentelemetry/OtlpSerialization")
  ]).then(([OtlpTracer, OtlpMetrics, OtlpLogger, OtlpSerialization]) => ({ OtlpTracer, OtlpMetrics, OtlpLogger, OtlpSerialization }))

/**
 * The exporter, which the bin carries and an app that embeds the command line installs (an optional peer). `variable`
 * is the endpoint's, named when it cannot be loaded.
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadExporter = (load: () => Promise<Exporter>, variable: string): Effect.Effect<Exporter, InvalidConfig> =>
  Effect.tryPromise({
    try: load,
    catch: () =>
      new InvalidConfig({
        variable,
        detail:
          "is set, but @effect/opentelemetry, which sends the telemetry, is not installed where this program can import it: npm install @effect/opentelemetry@^0.64.1 beside @intercom-scroll/cli, or unset the variable"
      })
  })

/**
 * Sends the spans, metrics and log lines of what it is provided to, each signal to its destination (none where it has
 * none), from the moment it is built until its scope closes, where it lets an export under way finish and sends what is
 * left (waiting at most each signal's `endWait` for each).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (settings: Settings): Layer.Layer<never, InvalidConfig, HttpClient.HttpClient> => {
  const sent = [settings.traces, settings.metrics, settings.logs].filter((found) => found !== undefined)
  return Layer.unwrapEffect(Effect.map(loadExporter(importExporter, sent[0]?.variable ?? genericEndpoint), (exporter) => {
    const resource = { serviceName: settings.serviceName, serviceVersion: moduleVersion }
    const exporting = (
      destination: Destination | undefined,
      make: (options: {
        readonly url: string
        readonly resource: typeof resource
        readonly headers: Readonly<Record<string, string>>
        readonly shutdownTimeout: Duration.Duration
        readonly exportInterval?: Duration.Duration
        readonly maxBatchSize?: number
      }) => Layer.Layer<never, never, HttpClient.HttpClient | OtlpSerialization.OtlpSerialization>
    ): Layer.Layer<never, never, HttpClient.HttpClient> =>
      destination === undefined ? Layer.empty : Layer.unwrapEffect(Effect.sync(() => {
        const ending: Ending = { startedAt: undefined }
        const sending = make({
          url: destination.url,
          resource,
          headers: Redacted.value(destination.headers),
          shutdownTimeout: destination.endWait,
          ...(destination.exportInterval === undefined ? {} : { exportInterval: destination.exportInterval }),
          ...(destination.maxBatchSize === undefined ? {} : { maxBatchSize: destination.maxBatchSize })
        }).pipe(
          Layer.provide(
            destination.protocol === "http/json" ? exporter.OtlpSerialization.layerJson : exporter.OtlpSerialization.layerProtobuf
          ),
          Layer.provide(
            destination.tls === undefined
              ? sendingClient(destination, ending)
              // A client of its own, whose connections are made with the signal's certificates.
              : sendingClient(destination, ending).pipe(Layer.provide(Undici.layerWith({ tls: undiciTls(destination.tls) })))
          )
        )
        // Built after the exporter, so that the end is stamped before the exporter closes.
        return endStamped(ending).pipe(Layer.provide(sending))
      }))
    return Layer.mergeAll(
      settings.traces === undefined ? Layer.empty : sampled(exporting(settings.traces, exporter.OtlpTracer.layer), settings.sampler),
      exporting(settings.metrics, exporter.OtlpMetrics.layer),
      exporting(settings.logs, exporter.OtlpLogger.layer)
    )
  }))
}

const gzip = promisify(Zlib.gzip)

const undiciTls = (tls: Tls): Undici.Tls => ({
  ...(tls.authority === undefined ? {} : { ca: tls.authority }),
  ...(tls.client === undefined ? {} : { cert: tls.client.certificate, key: Redacted.value(tls.client.key) })
})

/**
 * How long the command's end waits for the collector, for an export under way and for the last flush after it, when
 * no OTEL_EXPORTER_OTLP_(…_)TIMEOUT is set: the specification's 10 s default bounds the exports of the run, and an
 * end held that long by a collector that never answers would be felt by every command.
 */
const lastFlush = Duration.seconds(2)

/**
 * The most a timeout set in a variable holds the end. The signals end side by side, and an export under way and the
 * last flush share the wait, so the end takes this long, twice at worst: within the stop deadline (`stopDeadline.ts`,
 * 60 s), with room for what stops before them (a fleet runner's syncs, 15 s).
 */
const maxEndWait = Duration.seconds(20)

/** When a signal's end began: its exporter's scope closing, stamped just before (`endStamped`). */
interface Ending {
  startedAt: number | undefined
}

/**
 * Gives a request interrupted under way what is left of `allowance` from the signal's end. The exporter interrupts an
 * export under way when its scope closes, and that export holds what was said just before the end, which the last
 * flush no longer has: without this, those spans and log lines were lost. The last flush, which the exporter gives up
 * itself (its `shutdownTimeout`), has no time left by then, so that each waits `allowance` at most. The request runs in
 * a fiber of its own, which the exporter's interruption does not reach; `givenUp` when it is given up unanswered.
 */
const finishingWithin = (allowance: Duration.Duration, ending: Ending, givenUp: Effect.Effect<void>) =>
<A, E, R>(request: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.uninterruptibleMask((restore) =>
    // Its exit, not its failure: a fiber that fails is logged (at debug), and a request's error holds its URL.
    Effect.flatMap(Effect.forkDaemon(Effect.exit(restore(request))), (fiber) =>
      restore(Effect.flatten(Fiber.join(fiber))).pipe(
        Effect.onInterrupt(() =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            ending.startedAt ??= now
            const left = ending.startedAt + Duration.toMillis(allowance) - now
            // Interruptible, or the timeout, in this finalizer, would wait for it.
            return Effect.interruptible(Fiber.await(fiber)).pipe(
              Effect.timeoutTo({ duration: Duration.millis(Math.max(0, left)), onSuccess: () => true, onTimeout: () => false }),
              Effect.flatMap((finished) => finished ? Effect.void : Effect.zipRight(Fiber.interrupt(fiber), givenUp))
            )
          })
        )
      ))
  )

/** Stamps the signal's end as its scope begins to close, before the exporter built under it closes. */
const endStamped = (ending: Ending) =>
  Layer.scopedDiscard(Effect.addFinalizer(() =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.sync(() => {
        ending.startedAt ??= now
      }))
  ))

/**
 * The HTTP client a signal's exporter sends with, over the command's own. For each request the exporter gives (its
 * retries of a batch give the same one):
 * - it compresses the body when the destination says `gzip`;
 * - it gives up waiting for the collector at the destination's timeout from the batch's first try, its retries
 *   included, as the specification has it (a batch's export), as a transport failure, which the exporter retries at
 *   once and then drops: a collector that takes connections and never answers would otherwise hold each export for
 *   undici's 5 minutes, and the requests of every batch sent meanwhile, bodies and sockets, with it;
 * - it lets a request under way when the command ends finish, its compression included, within the last flush's
 *   time (`finishingWithin`);
 * - it says the first request that fails (a transport failure, no answer in time, or a status other than 2xx) as a
 *   warning, once: the exporter itself says so only at debug, so that a collector set wrong went unnoticed. The URL
 *   is said without its credentials and query, which may hold a key, and its errors name it so (the exporter logs
 *   them at debug).
 */
const sendingClient = (destination: Destination, ending: Ending): Layer.Layer<HttpClient.HttpClient, never, HttpClient.HttpClient> =>
  Layer.effect(
    HttpClient.HttpClient,
    Effect.map(HttpClient.HttpClient, (client) => {
      const parsed = new URL(destination.url)
      const shown = `${parsed.origin}${parsed.pathname}`
      const shownRequest = HttpClientRequest.post(shown)
      let said = false
      const say = (reason: string, consequence = "the exporter drops what it holds and tries again in a minute") =>
        Effect.suspend(() => {
          if (said) return Effect.void
          said = true
          return Effect.logWarning(
            `Could not send ${destination.signal} to ${shown} (${reason}): ${consequence}; later failures are not said`
          )
        })
      const noAnswer = new HttpClientError.RequestError({
        request: shownRequest,
        reason: "Transport",
        description: `no answer within ${Duration.format(destination.timeout)}`
      })
      // When each batch's time is up, by the request the exporter tries it with.
      const deadlines = new WeakMap<HttpClientRequest.HttpClientRequest, number>()
      const send = (request: HttpClientRequest.HttpClientRequest) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const deadline = deadlines.get(request) ?? now + Duration.toMillis(destination.timeout)
          deadlines.set(request, deadline)
          if (deadline <= now) return yield* Effect.fail(noAnswer)
          const sent = destination.compression === "gzip" ? yield* gzipped(request) : request
          return yield* Effect.timeoutFail(client.execute(sent), { duration: deadline - now, onTimeout: () => noAnswer })
        }).pipe(
          Effect.mapError((error) =>
            error._tag === "RequestError"
              ? new HttpClientError.RequestError({ ...errorFields(error), request: shownRequest })
              : new HttpClientError.ResponseError({ ...errorFields(error), request: shownRequest, response: error.response })
          ),
          // Never the error's `message`, which ends with the request's URL, credentials and query included.
          Effect.tapError((error) =>
            say(
              error.reason === "Transport" && error.cause !== undefined
                ? String(error.cause)
                : `${error.reason}${error.description === undefined ? "" : `: ${error.description}`}`
            )
          ),
          Effect.tap((response) => response.status >= 200 && response.status < 300 ? Effect.void : say(`HTTP ${response.status}`)),
          finishingWithin(
            destination.endWait,
            ending,
            say(`no answer within the ${Duration.format(destination.endWait)} the command's end waits`, "what it held is not sent")
          )
        )
      // Nothing of its own before the request, as the client under it adds its span and headers once.
      return HttpClient.makeWith<never, never, HttpClientError.HttpClientError, never>(
        (request) => Effect.flatMap(request, send),
        Effect.succeed
      )
    })
  )

/** The request with its body gzipped: the exporters' bodies are bytes, protobuf or JSON alike. */
const gzipped = (request: HttpClientRequest.HttpClientRequest) => {
  const body = request.body
  return body._tag !== "Uint8Array" ? Effect.succeed(request) : Effect.map(
    Effect.promise(() => gzip(body.body)),
    (zipped) =>
      request.pipe(
        HttpClientRequest.setBody(HttpBody.uint8Array(zipped, body.contentType)),
        HttpClientRequest.setHeader("content-encoding", "gzip")
      )
  )
}

/** An HTTP client error's fields but its request and response. */
const errorFields = <Reason extends string>(
  error: { readonly reason: Reason; readonly cause?: unknown; readonly description?: string | undefined }
) => ({
  reason: error.reason,
  ...(error.cause === undefined ? {} : { cause: error.cause }),
  ...(error.description === undefined ? {} : { description: error.description })
})

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
