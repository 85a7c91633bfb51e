/**
 * Where a runner sends a workspace's token. A `Sync` names its base URL, and anyone who can write the fleet's
 * database (or reach a runner's port) can send one, naming any variable of the runner's environment as the token:
 * the runner, which holds the secrets, decides where they may go. Intercom's own hosts, this machine (where the core
 * allows plain http too: the token stays here), and the origins the runner was given.
 *
 * @internal
 */
import { IntercomClient, ScrollError } from "@intercom-scroll/core"
import { Effect } from "effect"

export interface TokenDestinations {
  /** Fails with `InvalidOptions` when the runner does not send tokens to `baseUrl` (none: the region's host). */
  readonly check: (baseUrl: string | undefined) => Effect.Effect<void, ScrollError.InvalidOptions>
}

/** Dies naming the first of `allowedBaseUrls` that is not a URL: a mistake of the runner's own configuration. */
export const make = (allowedBaseUrls: ReadonlyArray<string>): Effect.Effect<TokenDestinations> => {
  const wrong = allowedBaseUrls.find((url) => !URL.canParse(url))
  if (wrong !== undefined) return Effect.dieMessage(`WorkspaceSync.layer: allowedBaseUrls must be URLs, got ${JSON.stringify(wrong)}`)
  const allowed = new Set([...Object.values(IntercomClient.regionBaseUrls), ...allowedBaseUrls].map((url) => new URL(url).origin))
  return Effect.succeed({
    check: (baseUrl) => {
      if (baseUrl === undefined || !URL.canParse(baseUrl)) return Effect.void // the client refuses what does not parse
      const url = new URL(baseUrl)
      if (allowed.has(url.origin) || IntercomClient.isThisMachine(url)) return Effect.void
      return Effect.fail(
        new ScrollError.InvalidOptions({
          detail:
            `baseUrl ${url.origin} is neither Intercom's nor this machine's, and this runner was not given it (allowedBaseUrls, or the runner's --allow-base-url): it sends no token there`
        })
      )
    }
  })
}
