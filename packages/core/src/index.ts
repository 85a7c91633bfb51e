/**
 * Every user, lead and company of an Intercom workspace as an Effect `Stream`, exactly once, over the Scroll API.
 *
 * @example
 * import { FetchHttpClient } from "@effect/platform"
 * import { IntercomClient, Models, Scroll } from "@intercom-scroll/core"
 * import { Console, Effect, Layer, Stream } from "effect"
 *
 * const Intercom = IntercomClient.layerConfig().pipe(Layer.provide(FetchHttpClient.layer))
 *
 * const program = Scroll.users().pipe(
 *   Stream.filter(Models.hasValue("email")),
 *   Stream.runForEach((user) => Console.log(user.id, user.email)),
 *   Effect.provide(Intercom)
 * )
 *
 * @since 0.1.0
 */

/**
 * The client service over `HttpClient`: `scrollPage`, and `make`, `layer`, `layerConfig`.
 *
 * @since 0.1.0
 * @category modules
 */
export * as IntercomClient from "./IntercomClient.js"

/**
 * Users, leads and companies: their schemas, types and accessors.
 *
 * @since 0.1.0
 * @category modules
 */
export * as Models from "./Models.js"

/**
 * Progress events and a tracker that folds them into a snapshot.
 *
 * @since 0.1.0
 * @category modules
 */
export * as Progress from "./Progress.js"

/**
 * Users, leads and companies as resources: paths and API versions.
 *
 * @since 0.1.0
 * @category modules
 */
export * as Resource from "./Resource.js"

/**
 * The streams: `users`, `leads`, `companies` and `pages`, with restarts, dedupe and fetching ahead.
 *
 * @since 0.1.0
 * @category modules
 */
export * as Scroll from "./Scroll.js"

/**
 * The tagged errors a scroll fails with.
 *
 * @since 0.1.0
 * @category modules
 */
export * as ScrollError from "./ScrollError.js"

/**
 * The counters every scroll updates.
 *
 * @since 0.1.0
 * @category modules
 */
export * as ScrollMetrics from "./ScrollMetrics.js"
