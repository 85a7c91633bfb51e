/**
 * What the OTEL_* variables make of the CLI's telemetry (test/telemetry.test.ts sends it to a collector from the bin).
 */
import { describe, expect, it } from "@effect/vitest"
import { HttpClient, HttpClientError, type HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { Cause, ConfigProvider, Deferred, Duration, Effect, Either, Fiber, Layer, Logger, LogLevel, Metric, Option, Redacted, TestClock, Tracer } from "effect"
import { OtlpCollector } from "@intercom-scroll/testing"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Zlib from "node:zlib"
import { recordingTracer } from "../../core/test/support/recordingTracer.js"
import * as Sampling from "../src/internal/sampling.js"
import * as StopDeadline from "../src/internal/stopDeadline.js"
import * as Telemetry from "../src/internal/telemetry.js"

const settingsOf = (variables: Record<string, string>) =>
  Telemetry.settings.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(variables)))))

const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector.internal:4318/" }

/**
 * A collector over `HttpClient.make` that keeps each request with `keep` and answers 200, at once or, with `after`, that
 * long after taking it (on the TestClock).
 */
const answering = (keep: (request: HttpClientRequest.HttpClientRequest) => void, after?: Duration.DurationInput) =>
  Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request) => {
      const kept = Effect.sync(() => keep(request))
      return Effect.as(after === undefined ? kept : Effect.delay(kept, after), HttpClientResponse.fromWeb(request, new Response(null, { status: 200 })))
    })
  )

/** Each warning logged, as said. */
const collectingWarnings = () => {
  const warnings: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (logLevel._tag === "Warning") warnings.push(String(Array.isArray(message) ? message[0] : message))
  })
  return { logger, warnings }
}

describe("Telemetry.settings", () => {
  it.effect("nothing is sent without an endpoint, with a blank one, or with OTEL_SDK_DISABLED=true", () =>
    Effect.gen(function*() {
      expect(yield* settingsOf({})).toEqual(Option.none())
      expect(yield* settingsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "  " })).toEqual(Option.none())
      expect(yield* settingsOf({ ...endpoint, OTEL_SDK_DISABLED: "TRUE" })).toEqual(Option.none())
      expect(Option.isSome(yield* settingsOf({ ...endpoint, OTEL_SDK_DISABLED: "false" }))).toBe(true)
    }))

  it.effect("defaults: every signal under the endpoint, protobuf, no headers, the service named intercom-scroll", () =>
    Effect.gen(function*() {
      const settings = Option.getOrThrow(yield* settingsOf(endpoint))
      expect(settings.traces?.url).toBe("http://collector.internal:4318/v1/traces")
      expect(settings.metrics?.url).toBe("http://collector.internal:4318/v1/metrics")
      expect(settings.logs?.url).toBe("http://collector.internal:4318/v1/logs")
      expect(settings.traces?.protocol).toBe("http/protobuf")
      expect(Redacted.value(settings.traces!.headers)).toEqual({})
      expect(settings.serviceName).toBe("intercom-scroll")
    }))

  it.effect("OTEL_TRACES_EXPORTER (…): otlp sends the signal, none does not; nothing is loaded when none is sent", () =>
    Effect.gen(function*() {
      const untraced = Option.getOrThrow(yield* settingsOf({ ...endpoint, OTEL_TRACES_EXPORTER: "none" }))
      expect(untraced.traces).toBeUndefined()
      expect(untraced.metrics?.url).toBe("http://collector.internal:4318/v1/metrics")
      expect(untraced.logs?.url).toBe("http://collector.internal:4318/v1/logs")
      const onlyLogs = Option.getOrThrow(
        yield* settingsOf({ ...endpoint, OTEL_TRACES_EXPORTER: "None", OTEL_METRICS_EXPORTER: "none", OTEL_LOGS_EXPORTER: "otlp" })
      )
      expect([onlyLogs.traces, onlyLogs.metrics, onlyLogs.logs?.url]).toEqual([undefined, undefined, "http://collector.internal:4318/v1/logs"])
      const none = { OTEL_TRACES_EXPORTER: "none", OTEL_METRICS_EXPORTER: "none", OTEL_LOGS_EXPORTER: "none" }
      expect(yield* settingsOf({ ...endpoint, ...none })).toEqual(Option.none())
    }))

  it.effect("a signal's own endpoint is its full URL, alone or over the generic one; its headers over the generic ones", () =>
    Effect.gen(function*() {
      const alone = Option.getOrThrow(yield* settingsOf({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://traces.example/ingest?key=1" }))
      expect(alone.traces?.url).toBe("https://traces.example/ingest?key=1")
      expect(alone.traces?.variable).toBe("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
      expect([alone.metrics, alone.logs]).toEqual([undefined, undefined])

      const both = Option.getOrThrow(
        yield* settingsOf({
          ...endpoint,
          OTEL_EXPORTER_OTLP_HEADERS: "x-api-key=generic,x-tenant=eu-1",
          OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http://metrics.internal:4318/custom/",
          OTEL_EXPORTER_OTLP_METRICS_HEADERS: "X-Api-Key=metrics",
          OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: "http/json"
        })
      )
      expect(both.metrics?.url).toBe("http://metrics.internal:4318/custom/")
      expect(Redacted.value(both.metrics!.headers)).toEqual({ "x-api-key": "metrics", "x-tenant": "eu-1" })
      expect(both.traces?.url).toBe("http://collector.internal:4318/v1/traces")
      expect(both.traces?.variable).toBe("OTEL_EXPORTER_OTLP_ENDPOINT")
      expect(Redacted.value(both.traces!.headers)).toEqual({ "x-api-key": "generic", "x-tenant": "eu-1" })
      expect([both.traces?.protocol, both.metrics?.protocol, both.logs?.protocol]).toEqual(["http/protobuf", "http/protobuf", "http/json"])
    }))

  it.effect("the generic endpoint's path takes /v1/<signal>, its query kept; a URL's fragment is never sent", () =>
    Effect.gen(function*() {
      const found = Option.getOrThrow(yield* settingsOf({
        OTEL_EXPORTER_OTLP_ENDPOINT: "https://collector.example/otlp/?tenant=eu#part",
        OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: "https://logs.example/ingest?key=1#part"
      }))
      expect(found.traces?.url).toBe("https://collector.example/otlp/v1/traces?tenant=eu")
      expect(found.metrics?.url).toBe("https://collector.example/otlp/v1/metrics?tenant=eu")
      expect(found.logs?.url).toBe("https://logs.example/ingest?key=1")
    }))

  it.effect("a URL's credentials are sent as Basic authorization, as curl sends them, and leave the URL; a header set for it wins", () =>
    Effect.gen(function*() {
      const found = Option.getOrThrow(yield* settingsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "https://tenant-1:p%40ss%3Aword@collector.example" }))
      expect(found.traces?.url).toBe("https://collector.example/v1/traces")
      expect(Redacted.value(found.traces!.headers)).toEqual({
        authorization: `Basic ${Buffer.from("tenant-1:p@ss:word").toString("base64")}`
      })
      const own = Option.getOrThrow(yield* settingsOf({
        OTEL_EXPORTER_OTLP_ENDPOINT: "https://tenant-1:pw@collector.example",
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "https://metrics.example/v1/metrics",
        OTEL_EXPORTER_OTLP_LOGS_HEADERS: "Authorization=Bearer%20t0k"
      }))
      expect(Redacted.value(own.metrics!.headers)).toEqual({})
      expect(Redacted.value(own.logs!.headers)).toEqual({ authorization: "Bearer t0k" })
    }))

  it.effect("OTEL_SERVICE_NAME names the service; without it, a service.name in OTEL_RESOURCE_ATTRIBUTES does", () =>
    Effect.gen(function*() {
      const named = yield* settingsOf({ ...endpoint, OTEL_SERVICE_NAME: "nightly-export", OTEL_RESOURCE_ATTRIBUTES: "service.name=x" })
      expect(Option.getOrThrow(named).serviceName).toBe("nightly-export")
      const fromAttributes = yield* settingsOf({ ...endpoint, OTEL_RESOURCE_ATTRIBUTES: "team=data, service.name=fleet-eu" })
      // Left to the exporter, which reads OTEL_RESOURCE_ATTRIBUTES itself.
      expect(Option.getOrThrow(fromAttributes).serviceName).toBeUndefined()
    }))

  it.effect("headers are key=value pairs, values percent-decoded, kept redacted", () =>
    Effect.gen(function*() {
      const settings = Option.getOrThrow(
        yield* settingsOf({ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_EXPORTER_OTLP_HEADERS: "Authorization=Basic%20c2VjcmV0, x-tenant = eu-1," })
      )
      expect(settings.traces?.protocol).toBe("http/json")
      expect(Redacted.value(settings.traces!.headers)).toEqual({ authorization: "Basic c2VjcmV0", "x-tenant": "eu-1" })
      expect(String(settings.traces!.headers)).not.toContain("c2VjcmV0")
    }))

  it.effect("a variable set wrong is InvalidConfig naming it, never echoing a header's value", () =>
    Effect.gen(function*() {
      const refused = (variables: Record<string, string>) =>
        Effect.map(Effect.either(settingsOf({ ...endpoint, ...variables })), (result) =>
          Either.isLeft(result) ? `${result.left._tag}: ${result.left.message}` : "accepted")
      expect(yield* refused({ OTEL_EXPORTER_OTLP_ENDPOINT: "localhost:4318" })).toMatch(
        /^InvalidConfig: OTEL_EXPORTER_OTLP_ENDPOINT is not an http:\/\/ or https:\/\/ URL/
      )
      expect(yield* refused({ OTEL_EXPORTER_OTLP_ENDPOINT: "https://user%zz:s3cr3t@collector" })).toBe(
        "InvalidConfig: OTEL_EXPORTER_OTLP_ENDPOINT holds credentials that are not percent-encoded"
      )
      expect(yield* refused({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toMatch(/^InvalidConfig: OTEL_EXPORTER_OTLP_PROTOCOL is grpc, .*http\/protobuf/)
      expect(yield* refused({ OTEL_EXPORTER_OTLP_PROTOCOL: "json" })).toMatch(/^InvalidConfig: OTEL_EXPORTER_OTLP_PROTOCOL must be/)
      expect(yield* refused({ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc" })).toMatch(/^InvalidConfig: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL is grpc, /)
      expect(yield* refused({ OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: "collector:4318/v1/logs" })).toMatch(
        /^InvalidConfig: OTEL_EXPORTER_OTLP_LOGS_ENDPOINT is not an http:\/\/ or https:\/\/ URL: set it to the collector's full URL for logs/
      )
      expect(yield* refused({ OTEL_TRACES_EXPORTER: "zipkin" })).toBe(
        "InvalidConfig: OTEL_TRACES_EXPORTER must be otlp (the default) or none, not \"zipkin\": intercom-scroll sends over OTLP/HTTP only"
      )
      expect(yield* refused({ OTEL_METRICS_EXPORTER: "otlp,prometheus" })).toMatch(/^InvalidConfig: OTEL_METRICS_EXPORTER must be otlp .* not "prometheus"/)
      expect(yield* refused({ OTEL_LOGS_EXPORTER: "console" })).toMatch(/^InvalidConfig: OTEL_LOGS_EXPORTER must be otlp/)
      expect(yield* refused({ OTEL_LOGS_EXPORTER: "otlp,none" })).toMatch(/^InvalidConfig: OTEL_LOGS_EXPORTER names both otlp and none/)
      // No endpoint at all: nothing is read, so nothing is refused.
      expect(Option.isNone(yield* settingsOf({ OTEL_TRACES_EXPORTER: "zipkin", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }))).toBe(true)
      for (const headers of ["api-key=s3cr3t%0D%0Ax-injected: 1", "api-key=s3cr3t%00", "x=1,api-key=s3cr3t%E2%82%AC"]) {
        const message = yield* refused({ OTEL_EXPORTER_OTLP_HEADERS: headers })
        expect(message).toMatch(/^InvalidConfig: OTEL_EXPORTER_OTLP_HEADERS holds a value no HTTP header can carry \(entry \d of \d: a line break/)
        expect(message).not.toContain("s3cr3t")
      }
      expect(yield* refused({ OTEL_EXPORTER_OTLP_HEADERS: "x-team=caf\u00e9%09eu" })).toBe("accepted")
      for (const headers of ["api-key", "=s3cr3t-value", "api key=s3cr3t-value", "api-key=%E0%A4%As3cr3t-value"]) {
        const message = yield* refused({ OTEL_EXPORTER_OTLP_HEADERS: headers })
        expect(message).toMatch(/^InvalidConfig: OTEL_EXPORTER_OTLP_HEADERS is not a list of key=value pairs \(entry 1 of 1/)
        expect(message).not.toContain("s3cr3t")
        const own = yield* refused({ OTEL_EXPORTER_OTLP_METRICS_HEADERS: headers })
        expect(own).toMatch(/^InvalidConfig: OTEL_EXPORTER_OTLP_METRICS_HEADERS is not a list of key=value pairs \(entry 1 of 1/)
        expect(own).not.toContain("s3cr3t")
      }
    }))

  it.effect("how often each signal is sent, and in batches of how many: the specification's variables, else the exporter's defaults", () =>
    Effect.gen(function*() {
      const defaults = Option.getOrThrow(yield* settingsOf(endpoint))
      expect([defaults.traces, defaults.metrics, defaults.logs].map((d) => [d?.exportInterval, d?.maxBatchSize])).toEqual([
        [undefined, undefined],
        [undefined, undefined],
        [undefined, undefined]
      ])
      const set = Option.getOrThrow(yield* settingsOf({
        ...endpoint,
        OTEL_BSP_SCHEDULE_DELAY: "2000",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "256",
        OTEL_METRIC_EXPORT_INTERVAL: " 60000 ",
        OTEL_BLRP_SCHEDULE_DELAY: "500",
        OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: "100"
      }))
      expect([set.traces?.exportInterval, set.metrics?.exportInterval, set.logs?.exportInterval]).toEqual(
        [Duration.millis(2000), Duration.millis(60000), Duration.millis(500)]
      )
      expect([set.traces?.maxBatchSize, set.metrics?.maxBatchSize, set.logs?.maxBatchSize]).toEqual([256, undefined, 100])
      for (const [name, value] of [["OTEL_BSP_SCHEDULE_DELAY", "5s"], ["OTEL_METRIC_EXPORT_INTERVAL", "0"], ["OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "-1"]]) {
        const refused = yield* Effect.flip(settingsOf({ ...endpoint, [name!]: value! }))
        expect(refused.message).toMatch(new RegExp(`^${name} must be a whole number of (milliseconds|log lines), 1 or more, not "${value}"`))
      }
    }))

  it.scoped("OTEL_METRIC_EXPORT_INTERVAL is the exporter's: metrics are sent at that interval, not at its default of 10 s", () =>
    Effect.gen(function*() {
      const sent: Array<string> = []
      const collector = answering((request) => sent.push(request.url))
      const exporting = (variables: Record<string, string>) =>
        Effect.flatMap(settingsOf({ ...endpoint, OTEL_TRACES_EXPORTER: "none", OTEL_LOGS_EXPORTER: "none", ...variables }), (found) =>
          Layer.build(Telemetry.layer(Option.getOrThrow(found)).pipe(Layer.provide(collector))))
      yield* Metric.increment(Metric.counter("telemetry_test_ticks"))
      yield* exporting({})
      yield* exporting({ OTEL_METRIC_EXPORT_INTERVAL: "1000" })
      yield* TestClock.adjust("1 second")
      // Only the second exporter has sent: the first waits out its 10 s.
      expect(sent).toEqual(["http://collector.internal:4318/v1/metrics"])
    }))

  it.scoped("a collector that cannot be reached, or refuses, is said once a signal as a warning, without the URL's credentials", () => {
    const { logger, warnings } = collectingWarnings()
    const refused = new Error("connect ECONNREFUSED 127.0.0.1:4318")
    const collectors = [
      HttpClient.make((request) => Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause: refused }))),
      HttpClient.make((request) => Effect.succeed(HttpClientResponse.fromWeb(request, new Response(null, { status: 503 })))),
      // Its `message` would end with the URL, credentials and query included.
      HttpClient.make((request) => Effect.fail(new HttpClientError.RequestError({ request, reason: "Encode", description: "body not encoded" })))
    ]
    return Effect.gen(function*() {
      for (const client of collectors) {
        const found = Option.getOrThrow(yield* settingsOf({
          OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http://user:s3cret@collector.internal:4318/v1/metrics?key=s3cret",
          OTEL_METRIC_EXPORT_INTERVAL: "1000"
        }))
        yield* Layer.build(Telemetry.layer(found).pipe(Layer.provide(Layer.succeed(HttpClient.HttpClient, client))))
      }
      yield* Metric.increment(Metric.counter("telemetry_test_failures"))
      // Each exporter tries at 1 s, again three times a second apart, then waits a minute, and again.
      yield* TestClock.adjust("2 minutes")
      const said = (reason: string) =>
        `Could not send metrics to http://collector.internal:4318/v1/metrics (${reason}): the exporter drops what it holds and tries again in a minute; later failures are not said`
      // Once each, in whichever order the two exporters met their failure.
      expect([...warnings].sort()).toEqual([said("Encode: body not encoded"), said("Error: connect ECONNREFUSED 127.0.0.1:4318"), said("HTTP 503")])
      expect(warnings.join("\n")).not.toContain("s3cret")
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  })

  it.effect("how long a request waits for the collector, and whether its body is compressed: 10 s and none by default, a signal's own over the generic", () =>
    Effect.gen(function*() {
      const defaults = Option.getOrThrow(yield* settingsOf(endpoint))
      expect([defaults.traces, defaults.metrics, defaults.logs].map((d) => [d?.timeout, d?.compression])).toEqual([
        [Duration.seconds(10), "none"],
        [Duration.seconds(10), "none"],
        [Duration.seconds(10), "none"]
      ])
      const set = Option.getOrThrow(yield* settingsOf({
        ...endpoint,
        OTEL_EXPORTER_OTLP_TIMEOUT: "2500",
        OTEL_EXPORTER_OTLP_COMPRESSION: "gzip",
        OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: "30000",
        OTEL_EXPORTER_OTLP_LOGS_COMPRESSION: " NONE "
      }))
      expect([set.traces, set.metrics, set.logs].map((d) => [d?.timeout, d?.compression])).toEqual([
        [Duration.millis(2500), "gzip"],
        [Duration.millis(30000), "gzip"],
        [Duration.millis(2500), "none"]
      ])
      const refused = (variables: Record<string, string>) => Effect.map(Effect.flip(settingsOf({ ...endpoint, ...variables })), (error) => error.message)
      expect(yield* refused({ OTEL_EXPORTER_OTLP_TIMEOUT: "10s" })).toBe(
        `OTEL_EXPORTER_OTLP_TIMEOUT must be a whole number of milliseconds, 1 or more, not "10s"`
      )
      // Past the longest a timer waits, Effect's clock would never end the wait.
      expect(yield* refused({ OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: "2147483648" })).toBe(
        `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT must be at most 2147483647 milliseconds (about 24.8 days), the longest a timer waits, not "2147483648"`
      )
      expect(yield* refused({ OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: "br" })).toBe(
        `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION must be gzip or none (the default), not "br"`
      )
    }))

  it.effect("certificates: a PEM file each, a signal's own over the generic one, read and checked before anything is sent", () =>
    Effect.gen(function*() {
      const file = (name: string) => OtlpCollector.tlsFixture(name)
      const text = (name: string) => Fs.readFileSync(file(name), "utf8")
      expect(Option.getOrThrow(yield* settingsOf(endpoint)).traces?.tls).toBeUndefined()
      const set = Option.getOrThrow(yield* settingsOf({
        ...endpoint,
        OTEL_EXPORTER_OTLP_CERTIFICATE: file("server.crt"),
        OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE: file("other-ca.crt"),
        OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE: file("client.crt"),
        OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY: ` ${file("client.key")} `
      }))
      expect(set.traces?.tls).toEqual({ authority: text("server.crt"), client: undefined })
      expect(set.logs?.tls).toEqual({ authority: text("other-ca.crt"), client: undefined })
      expect(set.metrics?.tls?.authority).toBe(text("server.crt"))
      expect(set.metrics?.tls?.client?.certificate).toBe(text("client.crt"))
      expect(Redacted.value(set.metrics!.tls!.client!.key)).toBe(text("client.key"))

      const refused = (variables: Record<string, string>) => Effect.map(Effect.flip(settingsOf({ ...endpoint, ...variables })), (error) => error.message)
      const missing = path.join(os.tmpdir(), "no-such-directory-7f3a", "ca.pem")
      expect(yield* refused({ OTEL_EXPORTER_OTLP_CERTIFICATE: missing })).toBe(
        `OTEL_EXPORTER_OTLP_CERTIFICATE names ${missing}, which cannot be read (ENOENT)`
      )
      expect(yield* refused({ OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: file("README.md") })).toBe(
        `OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE names ${file("README.md")}, which holds no certificate in PEM`
      )
      expect(yield* refused({ OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: file("client.key"), OTEL_EXPORTER_OTLP_CLIENT_KEY: file("client.key") })).toBe(
        `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE names ${file("client.key")}, which holds no certificate in PEM`
      )
      expect(yield* refused({ OTEL_EXPORTER_OTLP_CLIENT_KEY: file("client.key") })).toBe(
        "OTEL_EXPORTER_OTLP_CLIENT_KEY is set without OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE (or the signal's own): a client certificate goes with its key"
      )
      expect(yield* refused({ OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: file("client.crt"), OTEL_EXPORTER_OTLP_CLIENT_KEY: file("server.key") })).toBe(
        `OTEL_EXPORTER_OTLP_CLIENT_KEY names ${file("server.key")}, which is not the key of the certificate in ${file("client.crt")}`
      )
      // A key kept encrypted, as `openssl genpkey -aes256` writes it: said so, not as a file that holds no key.
      const encrypted = path.join(Fs.mkdtempSync(path.join(os.tmpdir(), "telemetry-key-")), "client.key")
      Fs.writeFileSync(encrypted, Crypto.createPrivateKey(text("client.key")).export({ format: "pem", type: "pkcs8", cipher: "aes-256-cbc", passphrase: "secret" }))
      expect(yield* refused({ OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: file("client.crt"), OTEL_EXPORTER_OTLP_CLIENT_KEY: encrypted })).toBe(
        `OTEL_EXPORTER_OTLP_CLIENT_KEY names ${encrypted}, an encrypted key, which this program cannot decrypt: give it the key unencrypted (openssl pkey -in ${encrypted} -out KEY)`
      )
      Fs.rmSync(path.dirname(encrypted), { recursive: true })
    }))

  it.scoped("a collector that takes requests and never answers has each batch given up after the timeout, its retries included: nothing piles up behind it", () => {
    const { logger, warnings } = collectingWarnings()
    let started = 0
    let waiting = 0
    const silent = HttpClient.make(() =>
      Effect.suspend(() => {
        started++
        waiting++
        return Effect.never
      }).pipe(Effect.ensuring(Effect.sync(() => waiting--)))
    )
    return Effect.gen(function*() {
      const found = Option.getOrThrow(yield* settingsOf({
        ...endpoint,
        OTEL_METRICS_EXPORTER: "none",
        OTEL_LOGS_EXPORTER: "none",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "1"
      }))
      const context = yield* Layer.build(Telemetry.layer(found).pipe(Layer.provide(Layer.succeed(HttpClient.HttpClient, silent))))
      // Each span a batch of its own: a request each.
      for (let i = 0; i < 20; i++) yield* Effect.provide(Effect.withSpan(Effect.void, `span ${i}`), context)
      yield* TestClock.adjust("1 second")
      expect(waiting).toBe(20)
      // Each batch's request waits 10 s (the timeout is the batch's, as the specification has it) …
      yield* TestClock.adjust("10 seconds")
      expect(waiting).toBe(0)
      // … and its retries, its time spent, go no further: no new request, and its spans are dropped.
      yield* TestClock.adjust("1 minute")
      expect(started).toBe(20)
      expect(waiting).toBe(0)
      expect(warnings).toEqual([
        "Could not send traces to http://collector.internal:4318/v1/traces (Transport: no answer within 10s): the exporter drops what it holds and tries again in a minute; later failures are not said"
      ])
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  })

  it.effect("what was said last is sent when the command ends in the middle of an export: the export under way finishes, within 2 s", () =>
    Effect.gen(function*() {
      // A collector that answers each request half a second after taking it, and keeps what it answered.
      const answered: Array<string> = []
      const collector = answering((request) => {
        if (request.body._tag === "Uint8Array") answered.push(new TextDecoder().decode(request.body.body))
      }, "500 millis")
      const found = Option.getOrThrow(yield* settingsOf({
        ...endpoint,
        OTEL_TRACES_EXPORTER: "none",
        OTEL_METRICS_EXPORTER: "none",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json"
      }))
      // The line is said, the exporter sends it at 1 s, and the command ends at 1.2 s, before the collector answers.
      const started = yield* Deferred.make<void>()
      const command = Effect.log("the last line").pipe(
        Effect.zipRight(Deferred.succeed(started, undefined)),
        Effect.zipRight(Effect.sleep("1200 millis")),
        Effect.provide(Telemetry.layer(found).pipe(Layer.provide(collector)))
      )
      const ended = yield* Effect.fork(command)
      yield* Deferred.await(started)
      yield* TestClock.adjust("1200 millis")
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(ended)
      expect(answered.filter((body) => body.includes("the last line"))).toHaveLength(1)

      // A collector that never answers holds the end 2 s for the export under way and at most 2 s for the last flush.
      const silent = Layer.succeed(HttpClient.HttpClient, HttpClient.make(() => Effect.never))
      const stalled = yield* Deferred.make<void>()
      const held = yield* Effect.fork(Effect.log("unheard").pipe(
        Effect.zipRight(Deferred.succeed(stalled, undefined)),
        Effect.zipRight(Effect.sleep("1200 millis")),
        Effect.provide(Telemetry.layer(found).pipe(Layer.provide(silent)))
      ))
      yield* Deferred.await(stalled)
      yield* TestClock.adjust("1200 millis")
      yield* TestClock.adjust("1 second")
      expect(Option.isNone(yield* Fiber.poll(held))).toBe(true)
      yield* TestClock.adjust("3 seconds")
      expect(Option.isSome(yield* Fiber.poll(held))).toBe(true)
    }))

  it.effect("with no export under way, a collector that never answers holds the end 2 s at most, its loss said as a warning", () => {
    const { logger, warnings } = collectingWarnings()
    return Effect.gen(function*() {
      const found = Option.getOrThrow(yield* settingsOf({ ...endpoint, OTEL_METRICS_EXPORTER: "none", OTEL_LOGS_EXPORTER: "none" }))
      const silent = Layer.succeed(HttpClient.HttpClient, HttpClient.make(() => Effect.never))
      const built = yield* Deferred.make<void>()
      // A span ended just before the end: only the last flush sends it.
      const held = yield* Effect.fork(Deferred.succeed(built, undefined).pipe(
        Effect.zipRight(Effect.withSpan(Effect.void, "the last span")),
        Effect.provide(Telemetry.layer(found).pipe(Layer.provide(silent)))
      ))
      yield* Deferred.await(built)
      yield* TestClock.adjust("1900 millis")
      expect(Option.isNone(yield* Fiber.poll(held))).toBe(true)
      yield* TestClock.adjust("200 millis")
      expect(Option.isSome(yield* Fiber.poll(held))).toBe(true)
      expect(warnings).toEqual([
        "Could not send traces to http://collector.internal:4318/v1/traces (no answer within the 2s the command's end waits): what it held is not sent; later failures are not said"
      ])
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  })

  it.effect("OTEL_EXPORTER_OTLP_TIMEOUT, in milliseconds, is how long the end waits for a collector that never answers, within the stop deadline", () => {
    const { logger, warnings } = collectingWarnings()
    const silent = Layer.succeed(HttpClient.HttpClient, HttpClient.make(() => Effect.never))
    // How long the end of a command is held whose last span (and log line, and metrics) a silent collector never takes.
    const heldFor = (variables: Record<string, string>, steps: ReadonlyArray<Duration.DurationInput>) =>
      Effect.gen(function*() {
        const found = Option.getOrThrow(yield* settingsOf({ ...endpoint, ...variables }))
        const built = yield* Deferred.make<void>()
        const held = yield* Effect.fork(Deferred.succeed(built, undefined).pipe(
          Effect.zipRight(Effect.withSpan(Effect.log("the last line"), "the last span")),
          Effect.provide(Telemetry.layer(found).pipe(Layer.provide(silent)))
        ))
        yield* Deferred.await(built)
        const done: Array<boolean> = []
        for (const step of steps) {
          yield* TestClock.adjust(step)
          done.push(Option.isSome(yield* Fiber.poll(held)))
        }
        return done
      })
    return Effect.gen(function*() {
      const traces = { OTEL_METRICS_EXPORTER: "none", OTEL_LOGS_EXPORTER: "none" }
      // 5 s, not the 2 s of a command that sets none.
      expect(yield* heldFor({ ...traces, OTEL_EXPORTER_OTLP_TIMEOUT: "5000" }, ["4900 millis", "200 millis"])).toEqual([false, true])
      // Given up by the request's own timeout or by the end's wait, whichever comes first at 5 s: said once, either way.
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatch(/^Could not send traces to http:\/\/collector\.internal:4318\/v1\/traces \(.*no answer within (the )?5s/)
      // A signal's own over the generic one.
      expect(yield* heldFor({ ...traces, OTEL_EXPORTER_OTLP_TIMEOUT: "5000", OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "300" }, [
        "250 millis",
        "100 millis"
      ])).toEqual([false, true])
      // An hour, for all three signals: held 20 s (maxEndWait), the signals side by side, well before the stop deadline
      // gives up on it.
      const hour = yield* heldFor({ OTEL_EXPORTER_OTLP_TIMEOUT: "3600000" }, ["19900 millis", "200 millis"])
      expect(hour).toEqual([false, true])
      // Twice that, after a fleet runner's 15 s, is still within the stop deadline.
      expect(2 * 20_000 + 15_000).toBeLessThan(StopDeadline.graceMillis)
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  })

  it.scoped("a request that fails is never logged with its URL, even at debug: the URL may hold a key", () => {
    const lines: Array<string> = []
    const logger = Logger.make(({ cause, message }) => lines.push(`${String(message)} ${Cause.pretty(cause)}`))
    const failing = HttpClient.make((request) =>
      Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause: new Error("connect ECONNREFUSED") }))
    )
    return Effect.gen(function*() {
      const found = Option.getOrThrow(yield* settingsOf({
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http://collector.internal:4318/v1/metrics?key=s3cret",
        OTEL_METRIC_EXPORT_INTERVAL: "1000"
      }))
      yield* Layer.build(Telemetry.layer(found).pipe(Layer.provide(Layer.succeed(HttpClient.HttpClient, failing))))
      yield* Metric.increment(Metric.counter("telemetry_test_unlogged"))
      yield* TestClock.adjust("10 seconds")
      expect(lines.some((line) => line.includes("Could not send metrics"))).toBe(true)
      expect(lines.filter((line) => line.includes("s3cret"))).toEqual([])
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Logger.withMinimumLogLevel(LogLevel.All))
  })

  it.scoped("OTEL_EXPORTER_OTLP_COMPRESSION=gzip sends each body gzipped, saying so in Content-Encoding", () =>
    Effect.gen(function*() {
      const received: Array<{ readonly encoding: string | undefined; readonly body: Uint8Array }> = []
      const collector = answering((request) => {
        if (request.body._tag === "Uint8Array") received.push({ encoding: request.headers["content-encoding"], body: request.body.body })
      })
      const exporting = (variables: Record<string, string>) =>
        Effect.flatMap(settingsOf({
          ...endpoint,
          OTEL_TRACES_EXPORTER: "none",
          OTEL_LOGS_EXPORTER: "none",
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
          OTEL_METRIC_EXPORT_INTERVAL: "1000",
          ...variables
        }), (found) => Layer.build(Telemetry.layer(Option.getOrThrow(found)).pipe(Layer.provide(collector))))
      yield* Metric.increment(Metric.counter("telemetry_test_gzipped"))
      yield* exporting({ OTEL_EXPORTER_OTLP_COMPRESSION: "gzip" })
      yield* TestClock.adjust("1 second")
      yield* exporting({})
      yield* TestClock.adjust("1 second")
      // The first exporter sends again each second: find each by what it said of its body, once both have come (a
      // gzipped body is compressed on the thread pool, and may come after the plain one sent later).
      const bodyOf = (encoding: string | undefined) => received.find((each) => each.encoding === encoding)
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10))).pipe(
        Effect.repeat({ until: () => bodyOf("gzip") !== undefined && bodyOf(undefined) !== undefined, times: 500 })
      )
      const gzipped = bodyOf("gzip")!
      const plain = bodyOf(undefined)!
      expect(gzipped).toBeDefined()
      expect(plain).toBeDefined()
      expect(received.every((each) => each.encoding === "gzip" || each.encoding === undefined)).toBe(true)
      const unzipped = new TextDecoder().decode(Zlib.gunzipSync(gzipped.body))
      expect(unzipped).toContain("telemetry_test_gzipped")
      expect(gzipped.body.length).toBeLessThan(plain.body.length)
    }))

  it.effect("telemetry asked for where the exporter is not installed is InvalidConfig that says what to install", () =>
    Effect.gen(function*() {
      const missing = () => Promise.reject(new Error("Cannot find package '@effect/opentelemetry'"))
      const error = yield* Effect.flip(Telemetry.loadExporter(missing, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
      expect(error.message).toMatch(/^OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, but @effect\/opentelemetry, .* npm install @effect\/opentelemetry@\^0\.64\.1 beside/)
      const found = yield* Telemetry.loadExporter(Telemetry.importExporter, "OTEL_EXPORTER_OTLP_ENDPOINT")
      expect([found.OtlpTracer.layer, found.OtlpMetrics.layer, found.OtlpLogger.layer].every((layer) => typeof layer === "function")).toBe(true)
    }))

  it.effect("OTEL_TRACES_SAMPLER and its argument: parentbased_always_on by default, a ratio from 0 to 1, a mistake named", () =>
    Effect.gen(function*() {
      const samplerOf = (variables: Record<string, string>) =>
        Effect.map(settingsOf({ ...endpoint, ...variables }), (found) => Option.getOrThrow(found).sampler)
      expect(yield* samplerOf({})).toEqual({ parentBased: true, ratio: 1 })
      expect(yield* samplerOf({ OTEL_TRACES_SAMPLER: "always_off" })).toEqual({ parentBased: false, ratio: 0 })
      expect(yield* samplerOf({ OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" }))
        .toEqual({ parentBased: true, ratio: 0.25 })
      const refused = (variables: Record<string, string>) =>
        Effect.map(Effect.flip(settingsOf({ ...endpoint, ...variables })), (error) => error.message)
      expect(yield* refused({ OTEL_TRACES_SAMPLER: "jaeger_remote" })).toMatch(/^OTEL_TRACES_SAMPLER must be always_on, always_off, traceidratio/)
      expect(yield* refused({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "10%" })).toMatch(
        /^OTEL_TRACES_SAMPLER_ARG must be a share of traces from 0 to 1/
      )
    }))
})

describe("Sampling.tracer", () => {
  /** Runs a root span with a child, and a root statement, through the sampler; the names that reached the exporter. */
  const sentOf = (sampler: Sampling.Sampler, parent?: Tracer.AnySpan) =>
    Effect.gen(function*() {
      const { spans, tracer } = yield* recordingTracer
      const traced = Effect.void.pipe(
        Effect.withSpan("child"),
        Effect.withSpan("root"),
        Effect.zipRight(Effect.withSpan(Effect.void, "sql.execute")),
        (effect) => parent === undefined ? effect : Effect.withParentSpan(effect, parent)
      )
      yield* Effect.withTracer(traced, Sampling.tracer(tracer, sampler))
      return spans.map((span) => span.name)
    })
  const external = (sampled: boolean) => Tracer.externalSpan({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", sampled })

  it.effect("sends every trace by default, each span under the one it belongs to, but never a statement of its own", () =>
    Effect.gen(function*() {
      expect(yield* sentOf({ parentBased: true, ratio: 1 })).toEqual(["root", "child"])
    }))

  it.effect("a ratio decides where a trace begins, and the trace follows: whole or not at all", () =>
    Effect.gen(function*() {
      expect(yield* sentOf({ parentBased: true, ratio: 0 })).toEqual([])
      const outcomes = new Set<string>()
      for (let i = 0; i < 200; i++) outcomes.add((yield* sentOf({ parentBased: true, ratio: 0.5 })).join(","))
      expect(outcomes).toEqual(new Set(["", "root,child"]))
    }))

  it.effect("parent-based: a trace begun elsewhere is sent as its sender decided", () =>
    Effect.gen(function*() {
      expect(yield* sentOf({ parentBased: true, ratio: 1 }, external(false))).toEqual([])
      expect(yield* sentOf({ parentBased: true, ratio: 0 }, external(true))).toEqual(["root", "child", "sql.execute"])
      // Without parentbased_, always_on and always_off decide alike for every span.
      expect(yield* sentOf({ parentBased: false, ratio: 1 }, external(false))).toEqual(["root", "child", "sql.execute"])
    }))
})
