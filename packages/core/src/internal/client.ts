import { Effect } from "effect"
import { globalValue } from "effect/GlobalValue"
import type { FetchedPage, PageRequest, Service } from "../IntercomClient.js"
import type { Resource } from "../Resource.js"
import type { ScrollError } from "../ScrollError.js"
import * as WorkspaceLock from "./workspaceLock.js"

/**
 * A scroll page whose body has arrived but is not parsed yet.
 */
export interface ReceivedPage<R extends Resource> {
  /**
   * The scroll_param, read from the body's bytes without decoding or parsing them where they leave no doubt (undefined
   * otherwise, and on the empty page), so that the next request can go out while this page is parsed. `page` has the
   * last word.
   */
  readonly scrollParamAhead: () => string | undefined
  /** Parses and validates the body: the page, or the typed error the response stands for. */
  readonly page: Effect.Effect<FetchedPage<R>, ScrollError>
}

/**
 * What `Scroll` needs of a client beyond the public `Service`: to send the next request while a page is parsed, and
 * the workspace's lock.
 */
export interface Internals {
  /** `scrollPage` in two steps: the exchange (waiting out 429s, as `scrollPage` does), then the parse. */
  readonly receivePage: <R extends Resource>(
    resource: R,
    request: PageRequest
  ) => Effect.Effect<ReceivedPage<R>, ScrollError>
  readonly workspaceLock: WorkspaceLock.WorkspaceLock
}

/** Not `Symbol.for`: nothing outside this module can name it, so nothing outside can forge or read it. */
const internalsKey = Symbol("@intercom-scroll/core/internal/client")

/**
 * Gives the `scrollPage` of a client built by `IntercomClient.make` its internals, as a property nobody sees (neither
 * enumerable nor named by a public symbol). On `scrollPage` rather than on the service, because internals are a
 * split form of that function: a service spread into a new one (`{ ...client, baseUrl }`) keeps them with the function,
 * and one whose `scrollPage` is replaced (a wrapper, a test double) has none, so `Scroll` calls its `scrollPage` and
 * nothing behind it.
 */
export const attach = (scrollPage: Service["scrollPage"], internals: Internals): void => {
  Object.defineProperty(scrollPage, internalsKey, { value: internals })
}

const attached = (client: Service): Internals | undefined =>
  Object.prototype.hasOwnProperty.call(client.scrollPage, internalsKey)
    ? (client.scrollPage as unknown as { readonly [internalsKey]: Internals })[internalsKey]
    : undefined

/**
 * The internals of any other service, made once per service object: pages one by one through its own `scrollPage`
 * (nothing to read ahead), and a lock of its own, so two scrolls over one test double still take turns.
 */
const derived = globalValue(
  Symbol.for("@intercom-scroll/core/internal/client/derived"),
  () => new WeakMap<Service, Internals>()
)

const derive = (client: Service): Internals => ({
  receivePage: (resource, request) =>
    Effect.map(client.scrollPage(resource, request), (page) => ({
      scrollParamAhead: () => undefined,
      page: Effect.succeed(page)
    })),
  workspaceLock: WorkspaceLock.make()
})

/** The internals of `client`: its own if `IntercomClient.make` built it, otherwise derived from its `scrollPage`. */
export const internalsOf = (client: Service): Internals => {
  const own = attached(client)
  if (own !== undefined) return own
  let internals = derived.get(client)
  if (internals === undefined) {
    internals = derive(client)
    derived.set(client, internals)
  }
  return internals
}
