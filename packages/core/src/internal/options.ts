/**
 * The client's options, checked once when it is built. One that cannot work is refused there with `InvalidOptions`
 * naming it: left to the transport, a token with a newline or a zero timeout fails every request, and each failure
 * looks like a network's and spends the scroll's restarts.
 */
import { Duration, Either, Option, Redacted } from "effect"
import type { Options, Region } from "../IntercomClient.js"
import { defaultVersions, type Resource } from "../Resource.js"
import { InvalidOptions } from "../ScrollError.js"
import type * as RateLimit from "./rateLimit.js"
import { redactor } from "./redaction.js"

/** The options as the client uses them: every default applied, every value known to work. */
export interface Checked {
  /** Without a trailing slash. */
  readonly baseUrl: string
  readonly token: string
  readonly versions: { readonly [R in Resource]: string }
  readonly maxBytes: number
  readonly timeoutMillis: number
  readonly rateLimit: RateLimit.Settings
}

/** Whether a URL's `hostname` (an IPv6 address in its brackets) names this machine. */
export const isLoopback = (hostname: string) =>
  hostname === "localhost" || hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname)

/**
 * `raw` as a message may show it: without what comes before an `@` that ends its authority (`user:password@`), which
 * may hold a proxy's password, or a token pasted there. Checked before it is parsed, so a URL that does not parse (a
 * typo in its port) is shown without it too.
 */
const shownUrl = (raw: string): string =>
  JSON.stringify(raw.replace(/^([^@/?#]*?\/\/)?[^@/?#]*@/, (_match, scheme: string | undefined) => `${scheme ?? ""}…@`))

/** The URL in `raw`, or why it cannot be a base URL whatever the host: not a URL, or not http(s). */
export const parseUrl = (raw: string): Either.Either<URL, string> => {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return Either.left(`${shownUrl(raw)} is not a URL: use https://… (plain http only for this machine)`)
  }
  // Named as given, not by origin: that of `localhost:4010` (read as the scheme "localhost:") is "null".
  return url.protocol === "http:" || url.protocol === "https:"
    ? Either.right(url)
    : Either.left(`${shownUrl(raw)} is not an http(s) URL: use https://… (plain http only for this machine)`)
}

const baseUrlOf = (raw: string): Either.Either<string, string> =>
  Either.flatMap(parseUrl(raw), (url) => {
    // Named by origin and path only: whatever else is refused may hold a password.
    const named = `${url.origin}${url.pathname.replace(/\/+$/, "")}`
    if (url.username !== "" || url.password !== "") {
      return Either.left(
        `base URL ${named} carries credentials (user:password@): Intercom takes only the access token, and errors and logs would show them`
      )
    }
    if (url.search !== "" || url.hash !== "") {
      return Either.left(`base URL ${named} has a query or a fragment: the scroll's path and scroll_param go after it`)
    }
    if (url.protocol !== "https:" && !isLoopback(url.hostname)) {
      return Either.left(
        `base URL ${url.origin} is plain http, which would send the access token in clear; use https (http is allowed only for localhost)`
      )
    }
    return Either.right(url.href.replace(/\/+$/, ""))
  })

/** What is not allowed in an HTTP header value: control characters (a line break among them) and beyond Latin-1. */
const notInHeader = /[^\t\x20-\x7e\x80-\xff]/

const describeCharacter = (char: string) =>
  char === "\n" || char === "\r"
    ? "a line break"
    : `the character U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`

/** Why `value` cannot be sent as a header, or undefined. Never shows the value: the token is one. */
const headerProblem = (value: string): string | undefined => {
  const found = notInHeader.exec(value)
  if (found === null) return undefined
  return `contains ${describeCharacter(found[0])} (character ${found.index + 1} of ${value.length}), which cannot be sent in a header`
}

/** A value as a message shows it: a string quoted, a number as JavaScript writes it (`NaN`, which JSON writes `null`). */
const shownValue = (value: unknown): string => typeof value === "number" ? String(value) : JSON.stringify(value)

/** The longest `setTimeout` waits (2³¹−1 ms); Effect's clock never fires a longer timer at all. */
const maxTimerMillis = 2 ** 31 - 1

const durationOf = (name: string, input: Duration.DurationInput): Either.Either<number, string> => {
  // A negative or NaN number, or a negative "-5 seconds", decodes to zero: refused here rather than taken for "no time
  // at all".
  const negative = (typeof input === "number" && !(input >= 0)) || (typeof input === "string" && input.trim().startsWith("-"))
  return Option.match(negative ? Option.none() : Duration.decodeUnknown(input), {
    onNone: () => Either.left(`${name} ${shownValue(input)} is not a duration (such as "30 seconds", or millis)`),
    onSome: (duration) => Either.right(Duration.toMillis(duration))
  })
}

const check = <A>(valid: boolean, value: A, problem: () => string): Either.Either<A, string> =>
  valid ? Either.right(value) : Either.left(problem())

/** Whether `value` is one of the regions of `regionUrls` (`regionBaseUrls`): its own keys, so not `toString`. */
export const isRegion = (regionUrls: { readonly [R in Region]: string }, value: string): value is Region =>
  Object.prototype.hasOwnProperty.call(regionUrls, value)

/**
 * The options checked, or the first that cannot work. `regionUrls` are the regions' base URLs (`regionBaseUrls`),
 * passed in so that this module does not import the public one back.
 */
export const checkOptions = (
  options: Options,
  regionUrls: { readonly [R in Region]: string }
): Either.Either<Checked, InvalidOptions> =>
  Either.gen(function*() {
    const token = Redacted.value(options.accessToken)
    const region = options.region ?? "us"
    yield* check(
      isRegion(regionUrls, region),
      region,
      () => `region ${JSON.stringify(region)} is not one of ${Object.keys(regionUrls).join(", ")}`
    )
    const baseUrl = yield* baseUrlOf(options.baseUrl ?? regionUrls[region])

    if (token.trim() === "") {
      return yield* Either.left("the access token is blank: give the workspace's token (an app's Access Token in Intercom's Developer Hub)")
    }
    const tokenProblem = headerProblem(token)
    if (tokenProblem !== undefined) {
      return yield* Either.left(
        `the access token ${tokenProblem}; a token is one line of printable characters (a newline at the end of the file it was read from?)`
      )
    }

    const versions = { ...defaultVersions }
    for (const resource of Object.keys(defaultVersions) as Array<Resource>) {
      const version = options.versions?.[resource]
      if (version === undefined) continue
      const problem = headerProblem(version)
      if (problem !== undefined || version.trim() === "") {
        return yield* Either.left(`versions.${resource} ${JSON.stringify(version)} ${problem ?? "is blank"}`)
      }
      versions[resource] = version
    }

    const maxBytes = options.maxResponseBytes ?? 32 * 1024 * 1024
    yield* check(
      Number.isSafeInteger(maxBytes) && maxBytes > 0,
      maxBytes,
      () => `maxResponseBytes must be a whole number of bytes above 0, not ${maxBytes}`
    )

    const timeoutMillis = yield* durationOf("requestTimeout", options.requestTimeout ?? Duration.seconds(30))
    yield* check(timeoutMillis > 0, timeoutMillis, () => `requestTimeout must be longer than zero`)
    yield* check(
      timeoutMillis <= maxTimerMillis || timeoutMillis === Infinity,
      timeoutMillis,
      () => `requestTimeout must be at most ${maxTimerMillis} ms (about 24.8 days), the longest a timer waits, or Duration.infinity for no limit: a longer one never fires, so a request would wait as if there were none`
    )

    const lowWater = options.rateLimit?.lowWater ?? 0.1
    yield* check(
      lowWater >= 0 && lowWater <= 1,
      lowWater,
      () => `rateLimit.lowWater is a fraction of the budget, from 0 to 1, not ${lowWater}`
    )
    const maxWaitMillis = yield* durationOf("rateLimit.maxWait", options.rateLimit?.maxWait ?? Duration.minutes(1))
    // As `requestTimeout`: a finite bound past the timer's ceiling would let through a wait that never ends.
    yield* check(
      maxWaitMillis <= maxTimerMillis || maxWaitMillis === Infinity,
      maxWaitMillis,
      () => `rateLimit.maxWait must be at most ${maxTimerMillis} ms (about 24.8 days), the longest a timer waits, or Duration.infinity to wait for any reset: a longer wait never ends, so a request would hang instead of failing with RateLimited`
    )
    const maxRetries = options.rateLimit?.maxRetries ?? 10
    yield* check(
      Number.isSafeInteger(maxRetries) && maxRetries >= 0,
      maxRetries,
      () => `rateLimit.maxRetries must be a whole number from 0, not ${maxRetries}`
    )

    return { baseUrl, token, versions, maxBytes, timeoutMillis, rateLimit: { lowWater, maxWaitMillis, maxRetries } }
  }).pipe(Either.mapLeft((detail) => new InvalidOptions({ detail: withoutToken(detail, Redacted.value(options.accessToken)) })))

/**
 * `detail` without the access token, wherever a value it quotes held it (pasted into the base URL, or into the wrong
 * variable), by `redactor`'s rules. Trimmed: a token read with the line break its file ends with is pasted elsewhere
 * without it.
 */
export const withoutToken = (detail: string, token: string): string => redactor(token.trim())(detail)
