/**
 * undici's HttpClient (`NodeHttpClient.layerUndici`), loaded at the first request instead of when the CLI starts.
 * undici is the largest library the bin carries, and evaluating it loads Node's own copy as well (for
 * `globalThis.Headers`): about half of what `intercom-scroll --help` spent starting (packages/bench/NOTES.md,
 * "Startup"), for a command that never sends a request.
 *
 * @since 0.1.0
 */
import { HttpClient, type HttpClientError } from "@effect/platform"
import { Context, Effect, Layer } from "effect"

/**
 * An HttpClient that loads undici's and builds it in this layer's scope (its connections close with it) when the
 * first request is sent, then hands every request to it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<HttpClient.HttpClient> = Layer.scoped(
  HttpClient.HttpClient,
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const undici = yield* Effect.cached(
      Effect.promise(() => import("@effect/platform-node/NodeHttpClient")).pipe(
        Effect.flatMap((NodeHttpClient) => Layer.buildWithScope(NodeHttpClient.layerUndici, scope)),
        Effect.map(Context.get(HttpClient.HttpClient)),
        // Loaded once, whichever request comes first and even if that one is interrupted meanwhile.
        Effect.uninterruptible
      )
    )
    // makeWith adds nothing of its own (no span, no headers): undici's client does all that once, as it would alone.
    return HttpClient.makeWith<never, never, HttpClientError.HttpClientError, never>(
      (request) => Effect.flatMap(Effect.zip(undici, request), ([client, ready]) => client.execute(ready)),
      Effect.succeed
    )
  })
)
