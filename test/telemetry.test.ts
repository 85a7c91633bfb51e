/**
 * The CLI's spans, metrics and logs as an operator collects them: the bin in a process of its own, with the OTEL_*
 * variables an OpenTelemetry collector is named by, sending over real HTTP to a collector's OTLP/HTTP endpoint that
 * this process serves (and records), scrolling a simulator on a port of this process.
 */
import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { OtlpCollector } from "@intercom-scroll/testing"
import { Effect, Layer } from "effect"
import * as Net from "node:net"
import { cli, closedPort } from "./support/processes.js"
import { ndjsonIds } from "./support/workspace.js"

const TOKEN = "telemetry-test-token-7c21"
const USERS = 1_200
const PAGE_SIZE = 50

const served = Simulator.layerServer({ workspaces: [{ token: TOKEN, seed: 5, users: USERS }], pageSize: PAGE_SIZE })

/** `intercom-scroll …` against the simulator, with `variables` added to its environment. */
const run = (args: ReadonlyArray<string>, variables: Record<string, string>) =>
  Effect.flatMap(Simulator.baseUrl, (baseUrl) =>
    cli(args, { env: { INTERCOM_ACCESS_TOKEN: TOKEN, INTERCOM_BASE_URL: baseUrl, ...variables } }))

const outFile = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  return path.join(yield* fs.makeTempDirectoryScoped({ prefix: "telemetry-e2e-" }), "users.ndjson")
})

const layer = Layer.merge(served, NodeContext.layer)

describe.concurrent("the CLI's telemetry, sent to an OpenTelemetry collector", () => {
  it.scopedLive("an export's spans, counters and resource, over OTLP/HTTP in JSON, with the headers asked for and never the token", () =>
    Effect.gen(function*() {
      const collector = yield* OtlpCollector.make
      const { received, url } = collector
      const out = yield* outFile
      const result = yield* run(["export", "users", "--out", out], {
        OTEL_EXPORTER_OTLP_ENDPOINT: url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_HEADERS: "x-api-key=collector%20secret",
        OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=test"
      })
      expect(result.exitCode).toBe(0)
      const exported = ndjsonIds(yield* (yield* FileSystem.FileSystem).readFileString(out))
      expect(exported).toHaveLength(USERS)

      expect(new Set(received.map((request) => request.path))).toEqual(new Set(["/v1/traces", "/v1/metrics"]))
      for (const request of received) {
        expect(request.headers["content-type"]).toBe("application/json")
        expect(request.headers["x-api-key"]).toBe("collector secret")
        expect(request.body.toString("utf8")).not.toContain(TOKEN)
      }

      const spans = collector.spans()
      const resource = spans[0]!.resource
      expect(OtlpCollector.attribute(resource, "service.name")).toBe("intercom-scroll")
      expect(OtlpCollector.attribute(resource, "service.version")).toMatch(/^\d+\.\d+\.\d+/)
      expect(OtlpCollector.attribute(resource, "deployment.environment")).toBe("test")
      // One scroll: its span, its pages' (the empty last one too) under it, and each page's request.
      const named = (name: string) => spans.filter((span) => span.name === name)
      const pages = USERS / PAGE_SIZE
      expect(named("Scroll.users")).toHaveLength(1)
      expect(named("Scroll.page")).toHaveLength(pages + 1)
      expect(named("IntercomClient.scrollPage").length + named("IntercomClient.receivePage").length).toBe(pages + 1)
      const scroll = named("Scroll.pages")[0]!
      expect(named("Scroll.page").every((page) => page.parentSpanId === scroll.spanId)).toBe(true)
      expect(OtlpCollector.attribute(scroll.attributes, "resource")).toBe("users")

      expect(collector.counter("intercom_scroll_records")).toContainEqual({ attributes: { resource: "users" }, value: USERS })
      expect(collector.counter("intercom_scroll_pages")).toContainEqual({ attributes: { resource: "users" }, value: pages })
    }).pipe(Effect.provide(layer)), 60_000)

  it.scopedLive("protobuf unless OTEL_EXPORTER_OTLP_PROTOCOL says otherwise, with a sync's spans", () =>
    Effect.gen(function*() {
      const collector = yield* OtlpCollector.make
      const { received, url } = collector
      const directory = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped({ prefix: "telemetry-e2e-" })
      const result = yield* run(["sync", "users", "--database", `sqlite:${directory}/copy.sqlite`], {
        OTEL_EXPORTER_OTLP_ENDPOINT: url,
        OTEL_SERVICE_NAME: "nightly-sync"
      })
      expect(result.exitCode).toBe(0)
      const traces = received.filter((request) => request.path === "/v1/traces")
      expect(traces.length).toBeGreaterThan(0)
      for (const request of received) expect(request.headers["content-type"]).toBe("application/x-protobuf")
      // A protobuf message carries its strings as they are.
      const bytes = Buffer.concat(traces.map((request) => request.body)).toString("latin1")
      for (const name of ["nightly-sync", "Sync.run", "Scroll.pages", "IntercomClient.scrollPage"]) expect(bytes).toContain(name)
      expect(bytes).not.toContain(TOKEN)
    }).pipe(Effect.provide(layer)), 60_000)

  it.scopedLive("OTEL_EXPORTER_OTLP_COMPRESSION=gzip: every request gzipped, a fraction of the bytes, and read whole", () =>
    Effect.gen(function*() {
      const collector = yield* OtlpCollector.make
      const { received, url } = collector
      const result = yield* run(["export", "users", "--out", yield* outFile], {
        OTEL_EXPORTER_OTLP_ENDPOINT: url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_COMPRESSION: "gzip"
      })
      expect(result.exitCode).toBe(0)
      expect(received.length).toBeGreaterThan(0)
      for (const request of received) expect(request.headers["content-encoding"]).toBe("gzip")
      const wire = received.reduce((sum, request) => sum + request.wireBytes, 0)
      const read = received.reduce((sum, request) => sum + request.body.length, 0)
      expect(wire).toBeLessThan(read / 4)
      expect(collector.spans().filter((span) => span.name === "Scroll.page")).toHaveLength(USERS / PAGE_SIZE + 1)
      expect(collector.counter("intercom_scroll_records")).toContainEqual({ attributes: { resource: "users" }, value: USERS })
    }).pipe(Effect.provide(layer)), 60_000)

  it.scopedLive("a refused token: the failed spans say what failed, in the error's name, and never the token sent", () =>
    Effect.gen(function*() {
      const collector = yield* OtlpCollector.make
      const wrongToken = "telemetry-wrong-token-2b8e"
      const result = yield* Effect.flatMap(Simulator.baseUrl, (baseUrl) =>
        cli(["export", "users", "--out", "/dev/null"], {
          env: {
            INTERCOM_ACCESS_TOKEN: wrongToken,
            INTERCOM_BASE_URL: baseUrl,
            OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
            OTEL_EXPORTER_OTLP_PROTOCOL: "http/json"
          }
        }))
      expect(result.exitCode).toBe(1)
      const scroll = collector.spans().find((span) => span.name === "Scroll.users")!
      expect(scroll.status.code).toBe(2)
      const exception = scroll.events?.find((event) => event.name === "exception")
      expect(OtlpCollector.attribute(exception!.attributes, "exception.type")).toBe("Unauthorized")
      for (const request of collector.received) expect(request.body.toString("utf8")).not.toContain(wrongToken)
    }).pipe(Effect.provide(layer)), 60_000)

  it.scopedLive("a collector that cannot be reached fails nothing, loses no record, and is said once a signal at warning", () =>
    Effect.gen(function*() {
      const out = yield* outFile
      const port = yield* closedPort
      const result = yield* run(["export", "users", "--out", out, "--log-level", "warning"], {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`
      })
      expect(result.exitCode).toBe(0)
      expect(ndjsonIds(yield* (yield* FileSystem.FileSystem).readFileString(out))).toHaveLength(USERS)
      const said = result.stderr.split("\n").filter((line) => line.includes("Could not send"))
      expect(said.some((line) => line.includes(`Could not send traces to http://127.0.0.1:${port}/v1/traces (`))).toBe(true)
      expect(said.filter((line) => line.includes("Could not send traces"))).toHaveLength(1)
    }).pipe(Effect.provide(layer)), 60_000)

  it.scopedLive("a collector that takes the connection and never answers is given up after OTEL_EXPORTER_OTLP_TIMEOUT, said, and fails nothing", () =>
    Effect.gen(function*() {
      // Reads every request and answers none, holding each connection open.
      const silent = yield* Effect.acquireRelease(
        Effect.async<Net.Server>((resume) => {
          const server = Net.createServer((socket) => socket.resume())
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.sync(() => server.close())
      )
      const { port } = silent.address() as Net.AddressInfo
      const out = yield* outFile
      const result = yield* run(["export", "users", "--out", out, "--log-level", "warning"], {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
        OTEL_METRICS_EXPORTER: "none",
        // A request every 10 spans, each waiting a quarter of a second: given up while the export runs, or in the last
        // flush (which waits as long) if the export ends first; either way said once.
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "10",
        OTEL_EXPORTER_OTLP_TIMEOUT: "250"
      })
      expect(result.exitCode).toBe(0)
      expect(ndjsonIds(yield* (yield* FileSystem.FileSystem).readFileString(out))).toHaveLength(USERS)
      const said = result.stderr.split("\n").filter((line) => line.includes("Could not send"))
      // By the request's own timeout, or by the end's wait of as long, whichever comes first.
      expect(said).toEqual([
        expect.stringMatching(
          new RegExp(`Could not send traces to http://127\\.0\\.0\\.1:${port}/v1/traces \\((Transport: no answer within 250ms|no answer within the 250ms the command's end waits)\\)`)
        )
      ])
    }).pipe(Effect.provide(layer)), 60_000)

  it.scopedLive("an https:// collector of a private authority that asks for a client certificate: OTEL_EXPORTER_OTLP_CERTIFICATE, CLIENT_CERTIFICATE and CLIENT_KEY", () =>
    Effect.gen(function*() {
      const collector = yield* OtlpCollector.makeTls({ clientCertificate: true })
      const certificates = {
        OTEL_EXPORTER_OTLP_CERTIFICATE: OtlpCollector.tlsFixture("server.crt"),
        OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: OtlpCollector.tlsFixture("client.crt"),
        OTEL_EXPORTER_OTLP_CLIENT_KEY: OtlpCollector.tlsFixture("client.key")
      }
      const exporting = (variables: Record<string, string>) =>
        Effect.flatMap(outFile, (out) =>
          run(["export", "users", "--out", out, "--log-level", "warning"], {
            OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
            OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
            OTEL_METRICS_EXPORTER: "none",
            ...variables
          }))
      const sent = yield* exporting(certificates)
      expect(sent.exitCode).toBe(0)
      expect(sent.stderr).not.toContain("Could not send")
      expect(collector.spans().filter((span) => span.name === "Scroll.users")).toHaveLength(1)

      // Without the authority, the collector's certificate is not trusted; without the client's, the collector refuses.
      const { OTEL_EXPORTER_OTLP_CERTIFICATE, ...client } = certificates
      const untrusted = yield* exporting(client)
      expect(untrusted.exitCode).toBe(0)
      expect(untrusted.stderr).toMatch(/Could not send traces to https:\/\/localhost:\d+\/v1\/traces \(.*(self-signed|self signed)/)
      const anonymous = yield* exporting({ OTEL_EXPORTER_OTLP_CERTIFICATE })
      expect(anonymous.exitCode).toBe(0)
      expect(anonymous.stderr).toContain("Could not send traces to https://localhost:")
      expect(collector.spans().filter((span) => span.name === "Scroll.users")).toHaveLength(1)

      // A key that is not the certificate's is refused before anything runs, naming the variable.
      const mismatched = yield* exporting({ ...certificates, OTEL_EXPORTER_OTLP_CLIENT_KEY: OtlpCollector.tlsFixture("server.key") })
      expect(mismatched.exitCode).not.toBe(0)
      expect(mismatched.stderr).toContain("OTEL_EXPORTER_OTLP_CLIENT_KEY names ")
      expect(mismatched.stderr).toContain("which is not the key of the certificate in ")
    }).pipe(Effect.provide(layer)), 90_000)

  it.scopedLive("OTEL_TRACES_EXPORTER=none sends no span, the counters still; OTEL_METRICS_EXPORTER=none the other way", () =>
    Effect.gen(function*() {
      const untraced = yield* OtlpCollector.make
      const counted = yield* run(["export", "users", "--out", yield* outFile], {
        OTEL_EXPORTER_OTLP_ENDPOINT: untraced.url,
        OTEL_TRACES_EXPORTER: "none"
      })
      expect(counted.exitCode).toBe(0)
      expect(new Set(untraced.received.map((request) => request.path))).toEqual(new Set(["/v1/metrics"]))

      const uncounted = yield* OtlpCollector.make
      const traced = yield* run(["export", "users", "--out", yield* outFile], {
        OTEL_EXPORTER_OTLP_ENDPOINT: uncounted.url,
        OTEL_METRICS_EXPORTER: " None "
      })
      expect(traced.exitCode).toBe(0)
      expect(new Set(uncounted.received.map((request) => request.path))).toEqual(new Set(["/v1/traces"]))
    }).pipe(Effect.provide(layer)), 60_000)

  it.scopedLive("a signal's own endpoint is its full URL: alone, that signal alone is sent, there; with the generic one, over it", () =>
    Effect.gen(function*() {
      const collector = yield* OtlpCollector.make
      const alone = yield* run(["export", "users", "--out", yield* outFile], {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/otlp/traces?tenant=eu-1`,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json"
      })
      expect(alone.exitCode).toBe(0)
      expect(new Set(collector.received.map((request) => request.path))).toEqual(new Set(["/otlp/traces?tenant=eu-1"]))
      const spans = collector.received.flatMap((request) =>
        (JSON.parse(request.body.toString("utf8")) as { resourceSpans: ReadonlyArray<unknown> }).resourceSpans
      )
      expect(spans.length).toBeGreaterThan(0)

      const generic = yield* OtlpCollector.make
      const ownTraces = yield* OtlpCollector.make
      const both = yield* run(["export", "users", "--out", yield* outFile], {
        OTEL_EXPORTER_OTLP_ENDPOINT: `${generic.url}/base/`,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${ownTraces.url}/traces`
      })
      expect(both.exitCode).toBe(0)
      expect(new Set(ownTraces.received.map((request) => request.path))).toEqual(new Set(["/traces"]))
      expect(new Set(generic.received.map((request) => request.path))).toEqual(new Set(["/base/v1/metrics"]))
    }).pipe(Effect.provide(layer)), 60_000)

  it.scopedLive("a signal's own headers and protocol go over the generic ones, for that signal only", () =>
    Effect.gen(function*() {
      const collector = yield* OtlpCollector.make
      const result = yield* run(["export", "users", "--out", yield* outFile], {
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_EXPORTER_OTLP_HEADERS: "x-api-key=generic%20key,x-tenant=eu-1",
        OTEL_EXPORTER_OTLP_TRACES_HEADERS: "X-Api-Key=traces%20key",
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "http/json"
      })
      expect(result.exitCode).toBe(0)
      const sentTo = (path: string) => collector.received.filter((request) => request.path === path)
      expect(sentTo("/v1/traces").length).toBeGreaterThan(0)
      expect(sentTo("/v1/metrics").length).toBeGreaterThan(0)
      for (const request of sentTo("/v1/traces")) {
        expect(request.headers["x-api-key"]).toBe("traces key")
        expect(request.headers["x-tenant"]).toBe("eu-1")
        expect(request.headers["content-type"]).toBe("application/x-protobuf")
      }
      for (const request of sentTo("/v1/metrics")) {
        expect(request.headers["x-api-key"]).toBe("generic key")
        expect(request.headers["x-tenant"]).toBe("eu-1")
        expect(request.headers["content-type"]).toBe("application/json")
      }
    }).pipe(Effect.provide(layer)), 60_000)

  it.scopedLive("an exporter other than otlp or none is refused, naming its variable, before the command starts", () =>
    Effect.gen(function*() {
      const collector = yield* OtlpCollector.make
      const out = yield* outFile
      const result = yield* run(["export", "users", "--out", out], {
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_METRICS_EXPORTER: "prometheus"
      })
      expect(result.exitCode).toBe(1)
      expect(result.stderr).toBe(
        "InvalidConfig: OTEL_METRICS_EXPORTER must be otlp (the default) or none, not \"prometheus\": intercom-scroll sends over OTLP/HTTP only\n"
      )
      expect(yield* (yield* FileSystem.FileSystem).exists(out)).toBe(false)
      expect(collector.received).toEqual([])
    }).pipe(Effect.provide(layer)), 60_000)

  it.scopedLive("nothing is sent with OTEL_SDK_DISABLED=true, no span with always_off; a variable set wrong stops the command before it starts", () =>
    Effect.gen(function*() {
      const collector = yield* OtlpCollector.make
      const { received, url } = collector
      const disabled = yield* run(["export", "users", "--out", yield* outFile], { OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_SDK_DISABLED: "true" })
      expect(disabled.exitCode).toBe(0)

      const out = yield* outFile
      const wrong = yield* run(["export", "users", "--out", out], {
        OTEL_EXPORTER_OTLP_ENDPOINT: url,
        OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer collector-s3cr3t,x-tenant"
      })
      expect(wrong.exitCode).toBe(1)
      expect(wrong.stderr).toBe(
        "InvalidConfig: OTEL_EXPORTER_OTLP_HEADERS is not a list of key=value pairs (entry 2 of 2 is not one; values are percent-encoded)\n"
      )
      expect(yield* (yield* FileSystem.FileSystem).exists(out)).toBe(false)
      expect(received).toEqual([])

      expect(yield* Simulator.Simulator.pipe(Effect.flatMap((simulator) => simulator.stats))).toMatchObject({
        total: { scrollsOpened: 1 }
      })

      // No trace sampled: the counters still go.
      const unsampled = yield* OtlpCollector.make
      const counted = yield* run(["export", "users", "--out", yield* outFile], {
        OTEL_EXPORTER_OTLP_ENDPOINT: unsampled.url,
        OTEL_TRACES_SAMPLER: "always_off"
      })
      expect(counted.exitCode).toBe(0)
      expect(new Set(unsampled.received.map((request) => request.path))).toEqual(new Set(["/v1/metrics"]))
    }).pipe(Effect.provide(layer)), 60_000)
})

