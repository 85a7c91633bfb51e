import { FetchHttpClient, type HttpClient, type HttpServer } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Simulator } from "@intercom-scroll/simulator"
import { Effect, Layer } from "effect"
import { IntercomClient } from "../../src/index.js"

/**
 * The platform's HTTP clients, which differ in who decodes a compressed page: undici's `request`
 * (`NodeHttpClient.layerUndici`) hands over the bytes as sent, with their Content-Encoding and Content-Length; Node's
 * fetch (`FetchHttpClient.layer`) decodes gzip, deflate and br itself, also when the request sets Accept-Encoding, and
 * still shows the Content-Encoding and the compressed Content-Length.
 */
export const platformClients: ReadonlyArray<readonly [string, Layer.Layer<HttpClient.HttpClient>]> = [
  ["undici (NodeHttpClient.layerUndici)", NodeHttpClient.layerUndici],
  ["fetch (FetchHttpClient.layer)", FetchHttpClient.layer]
]

/** The client over `http`, at the base URL of the server in context. */
export const clientAtServer = (
  http: Layer.Layer<HttpClient.HttpClient>,
  options: Omit<IntercomClient.Options, "baseUrl">
): Layer.Layer<IntercomClient.IntercomClient, never, HttpServer.HttpServer> =>
  Layer.unwrapEffect(Effect.map(Simulator.baseUrl, (baseUrl) => IntercomClient.layer({ ...options, baseUrl }))).pipe(
    Layer.provide(http),
    Layer.orDie
  )
