/**
 * An OpenTelemetry collector's OTLP/HTTP endpoint on a loopback port of the test's process: it answers 200 to every
 * request and keeps each one (its body gunzipped when it came with `Content-Encoding: gzip`, as a collector reads it),
 * and reads what came in JSON (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) as spans, log
 * records and counters. `makeTls` is the same over HTTPS, with the self-signed certificate of `fixtures/tls`.
 */
import { Effect, type Scope } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Https from "node:https"
import type * as Net from "node:net"
import { fileURLToPath } from "node:url"
import * as Zlib from "node:zlib"

/** A request as received. */
export interface Received {
  readonly path: string
  readonly headers: Http.IncomingHttpHeaders
  /** As the collector reads it: gunzipped when it came gzipped. */
  readonly body: Buffer
  /** How many bytes of body came over the wire. */
  readonly wireBytes: number
}

/** An attribute as OTLP's JSON encodes it. */
export interface Attribute {
  readonly key: string
  readonly value: { readonly stringValue?: string; readonly intValue?: string | number; readonly doubleValue?: number }
}

export interface Span {
  /** The `service.name` of the process that sent it. */
  readonly service: string | undefined
  readonly resource: ReadonlyArray<Attribute>
  readonly name: string
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly attributes: ReadonlyArray<Attribute>
  /** 1 ok, 2 error (0 unset). */
  readonly status: { readonly code: number; readonly message?: string }
  readonly events?: ReadonlyArray<{ readonly name: string; readonly attributes: ReadonlyArray<Attribute> }>
}

export interface LogRecord {
  readonly service: string | undefined
  readonly body: string | undefined
  readonly severity: string | undefined
  readonly traceId: string | undefined
}

export interface Collector {
  /** What to set OTEL_EXPORTER_OTLP_ENDPOINT to. */
  readonly url: string
  readonly received: ReadonlyArray<Received>
  readonly spans: () => ReadonlyArray<Span>
  readonly logs: () => ReadonlyArray<LogRecord>
  /** Every point sent of the counter `name`, with its attributes, in the order sent (each the total so far). */
  readonly counter: (name: string) => ReadonlyArray<{ readonly attributes: Readonly<Record<string, string | number | undefined>>; readonly value: number }>
}

/** An attribute's value: a string, or a number (OTLP's JSON sends 64-bit integers as strings). */
export const attribute = (attributes: ReadonlyArray<Attribute>, key: string): string | number | undefined => {
  const value = attributes.find((candidate) => candidate.key === key)?.value
  return value?.stringValue ?? (value?.intValue === undefined ? value?.doubleValue : Number(value.intValue))
}

interface Resourced {
  readonly resource: { readonly attributes: ReadonlyArray<Attribute> }
}
interface Traces {
  readonly resourceSpans: ReadonlyArray<Resourced & { readonly scopeSpans: ReadonlyArray<{ readonly spans: ReadonlyArray<Omit<Span, "service" | "resource">> }> }>
}
interface Logs {
  readonly resourceLogs: ReadonlyArray<
    Resourced & {
      readonly scopeLogs: ReadonlyArray<{
        readonly logRecords: ReadonlyArray<{ readonly body?: { readonly stringValue?: string }; readonly severityText?: string; readonly traceId?: string }>
      }>
    }
  >
}
interface Point {
  readonly attributes: ReadonlyArray<Attribute>
  readonly asDouble?: number
  readonly asInt?: string | number
}
interface Metrics {
  readonly resourceMetrics: ReadonlyArray<{
    readonly scopeMetrics: ReadonlyArray<{ readonly metrics: ReadonlyArray<{ readonly name: string; readonly sum?: { readonly dataPoints: ReadonlyArray<Point> } }> }>
  }>
}

const serviceOf = (resource: Resourced["resource"]) => {
  const name = attribute(resource.attributes, "service.name")
  return name === undefined ? undefined : String(name)
}

/** The path of a file of `fixtures/tls`: `server.crt` (the collector's, for `localhost`), `client.crt`, `client.key`, … */
export const tlsFixture = (name: string): string => fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url))

/** The collector, listening until the scope closes. */
export const make: Effect.Effect<Collector, never, Scope.Scope> = Effect.suspend(() => serve("http", Http.createServer))

/**
 * The collector over HTTPS at `https://localhost:PORT`, its certificate `fixtures/tls/server.crt` (self-signed: a client
 * trusts it only when told to). `clientCertificate`: it takes only clients that show `fixtures/tls/client.crt`.
 */
export const makeTls = (options: { readonly clientCertificate: boolean }): Effect.Effect<Collector, never, Scope.Scope> =>
  Effect.suspend(() =>
    serve("https", (listener) =>
      Https.createServer({
        cert: Fs.readFileSync(tlsFixture("server.crt")),
        key: Fs.readFileSync(tlsFixture("server.key")),
        ...(options.clientCertificate ? { requestCert: true, rejectUnauthorized: true, ca: Fs.readFileSync(tlsFixture("client.crt")) } : {})
      }, listener))
  )

const serve = (
  scheme: "http" | "https",
  createServer: (listener: Http.RequestListener) => Http.Server
): Effect.Effect<Collector, never, Scope.Scope> => Effect.acquireRelease(
  Effect.async<{ readonly collector: Collector; readonly server: Http.Server }>((resume) => {
    const received: Array<Received> = []
    const bodies = <A>(path: string) =>
      received.filter((request) => request.path === path).map((request) => JSON.parse(request.body.toString("utf8")) as A)
    const server = createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        const wire = Buffer.concat(chunks)
        const body = request.headers["content-encoding"] === "gzip" ? Zlib.gunzipSync(wire) : wire
        received.push({ path: request.url ?? "", headers: request.headers, body, wireBytes: wire.length })
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    // Over HTTPS, on the address `localhost` resolves to, as the client resolves it: the name its certificate is for.
    server.listen(0, scheme === "http" ? "127.0.0.1" : "localhost", () => {
      const { port } = server.address() as Net.AddressInfo
      const collector: Collector = {
        url: scheme === "http" ? `http://127.0.0.1:${port}` : `https://localhost:${port}`,
        received,
        spans: () =>
          bodies<Traces>("/v1/traces").flatMap(({ resourceSpans }) =>
            resourceSpans.flatMap(({ resource, scopeSpans }) =>
              scopeSpans.flatMap(({ spans }) =>
                spans.map((span) => ({ ...span, service: serviceOf(resource), resource: resource.attributes, parentSpanId: span.parentSpanId || undefined }))
              )
            )
          ),
        logs: () =>
          bodies<Logs>("/v1/logs").flatMap(({ resourceLogs }) =>
            resourceLogs.flatMap(({ resource, scopeLogs }) =>
              scopeLogs.flatMap(({ logRecords }) =>
                logRecords.map((record) => ({
                  service: serviceOf(resource),
                  body: record.body?.stringValue,
                  severity: record.severityText,
                  traceId: record.traceId || undefined
                }))
              )
            )
          ),
        counter: (name) =>
          bodies<Metrics>("/v1/metrics").flatMap(({ resourceMetrics }) =>
            resourceMetrics.flatMap(({ scopeMetrics }) => scopeMetrics.flatMap(({ metrics }) => metrics))
              .filter((metric) => metric.name === name)
              .flatMap((metric) => metric.sum?.dataPoints ?? [])
              .map((point) => ({
                attributes: Object.fromEntries(point.attributes.map(({ key }) => [key, attribute(point.attributes, key)])),
                value: Number(point.asDouble ?? point.asInt)
              }))
          )
      }
      resume(Effect.succeed({ collector, server }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map(({ collector }) => collector))
