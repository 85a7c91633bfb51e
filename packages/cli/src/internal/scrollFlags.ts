/**
 * What every subcommand that scrolls a workspace shares: where the workspace is (`--base-url`, `--region`), how to
 * scroll it (`--max-restarts`, `--prefetch`, `--wait-for-other-scroll`). The client they configure is `client.ts`'s,
 * loaded with the subcommand that runs.
 *
 * @since 0.1.0
 */
import { HelpDoc, Options as Flag, ValidationError } from "@effect/cli"
import type { IntercomClient } from "@intercom-scroll/core"
import { Config, Duration, Effect, Either, Option } from "effect"

const regions = ["us", "eu", "au"] as const satisfies ReadonlyArray<IntercomClient.Region>

/** Whether `text` parses as an http or https URL (`localhost:4010` parses, with the scheme "localhost:"). */
const isHttpUrl = (text: string): boolean => {
  try {
    const { protocol } = new URL(text)
    return protocol === "http:" || protocol === "https:"
  } catch {
    return false
  }
}

/**
 * `--name N`, a whole number that `accepts`; anything else is refused with `refusal`, which names the flag and says
 * what N is. Read as text: @effect/cli's own integer flag refuses "abc" in its words ("is not a integer").
 *
 * @since 0.1.0
 * @category flags
 */
export const integer = (name: string, accepts: (n: number) => boolean, refusal: string, variable?: string) =>
  text(name, variable).pipe(
    Flag.filterMap((text) => {
      const n = Number(text)
      return /^-?\d+$/.test(text) && Number.isSafeInteger(n) && accepts(n) ? Option.some(n) : Option.none()
    }, refusal),
    Flag.withPseudoName("N")
  )

/**
 * `--name TEXT`, else the environment variable `variable` when it is set: a container, a systemd unit or a pod
 * configures a process by its environment, and a flag's value is seen by every user of the host in `ps`. Read before
 * the flag's checks, so that a value from either is checked alike.
 *
 * @since 0.1.0
 * @category flags
 */
export const text = (name: string, variable?: string): Flag.Options<string> =>
  variable === undefined ? Flag.text(name) : Flag.text(name).pipe(Flag.withFallbackConfig(Config.string(variable)))

/**
 * `--name VALUE`, one of `values` in any case, as `INTERCOM_REGION` and an `--out` file's extension are read; anything
 * else is refused naming the flag and what it got. @effect/cli's own choice refuses `EU`, and says only "Expected one
 * of the following cases: us, eu, au", which names no flag of the several on a line.
 *
 * @since 0.1.0
 * @category flags
 */
export const choice = <const A extends string>(name: string, values: readonly [A, A, ...Array<A>]): Flag.Options<A> =>
  Flag.text(name).pipe(
    Flag.withPseudoName(values.join(" | ")),
    Flag.mapEffect((text) => {
      const value = values.find((value) => value === text.trim().toLowerCase())
      return value !== undefined ? Effect.succeed(value) : Effect.fail(
        ValidationError.invalidValue(
          HelpDoc.p(`--${name} takes ${values.slice(0, -1).join(", ")} or ${values.at(-1)}; got ${JSON.stringify(text)}`)
        )
      )
    })
  )

/**
 * `--name N`, a whole number 0 or more.
 *
 * @since 0.1.0
 * @category flags
 */
export const count = (name: string, meaning: string) =>
  integer(name, (n) => n >= 0, `--${name} must be a whole number, 0 or more: ${meaning}`)

const durationUnits: ReadonlyArray<readonly [RegExp, (n: number) => Duration.Duration]> = [
  [/^(s|sec|secs|second|seconds)?$/, Duration.seconds],
  [/^(m|min|mins|minute|minutes)$/, Duration.minutes],
  [/^(h|hour|hours)$/, Duration.hours],
  [/^(d|day|days)$/, Duration.days]
]

/**
 * A duration as a person types it: `90s`, `10m`, `1h`, `90d`, `2 minutes`, or a bare number of seconds (as `sleep` and
 * `timeout` read one).
 *
 * @since 0.1.0
 * @category flags
 */
export const parseDuration = (text: string): Either.Either<Duration.Duration, string> => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text)
  const unit = match === null ? undefined : durationUnits.find(([pattern]) => pattern.test(match[2].toLowerCase()))
  if (match === null || unit === undefined) {
    return Either.left(`${JSON.stringify(text)} is not a duration: use a number and a unit, such as 90s, 10m or 1h`)
  }
  const duration = unit[1](Number(match[1]))
  // Beyond this a time so long ago is no date: `--since 1000000000d` made a cutoff that threw "Invalid time value".
  return Duration.greaterThan(duration, maxDuration)
    ? Either.left(`${JSON.stringify(text)} is longer than 100 years`)
    : Either.right(duration)
}

const maxDuration = Duration.days(36_500)

/**
 * A flag that takes a duration as `parseDuration` reads it, refused in words that name the flag. With `unit:
 * "required"`, a number alone is refused too; with `zero: "refused"`, a duration of zero.
 *
 * @since 0.1.0
 * @category flags
 */
export const duration = (
  name: string,
  options: {
    readonly unit?: "required"
    readonly zero?: "refused"
    /** The longest the flag takes, and why. */
    readonly max?: { readonly duration: Duration.Duration; readonly because: string }
    /** The environment variable read when the flag is not given (`text`). */
    readonly variable?: string
  } = {}
): Flag.Options<Duration.Duration> =>
  text(name, options.variable).pipe(
    Flag.withPseudoName("DURATION"),
    Flag.mapEffect((text) => {
      // Where a number alone could be read as days as well as seconds, and a wrong guess deletes: ask which.
      const parsed = options.unit === "required" && /^\s*\d+(?:\.\d+)?\s*$/.test(text)
        ? Either.left(`${JSON.stringify(text)} has no unit: give one, such as ${text.trim()}d, ${text.trim()}h or ${text.trim()}m`)
        : Either.filterOrLeft(
          parseDuration(text),
          (duration) => options.zero !== "refused" || !Duration.isZero(duration),
          () => `${JSON.stringify(text)} must be longer than zero`
        ).pipe(Either.filterOrLeft(
          (duration) => options.max === undefined || Duration.lessThanOrEqualTo(duration, options.max.duration),
          () => `${JSON.stringify(text)} is longer than ${Duration.format(options.max?.duration ?? Duration.zero)}: ${options.max?.because}`
        ))
      return Either.match(parsed, {
        onLeft: (problem) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name}: ${problem}`))),
        onRight: Effect.succeed
      })
    })
  )

const sizeUnits: { readonly [unit: string]: number } = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }

/**
 * A size as `curl --max-filesize` and `ulimit` read one: a number of bytes, or of KiB, MiB or GiB with `k`, `M` or `G`
 * (`64M`, `1.5G`), a `B` or `iB` after the letter allowed. Undefined for anything else, or for less than a byte.
 *
 * @since 0.1.0
 * @category flags
 */
export const parseSize = (text: string): number | undefined => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmg])(?:i?b)?|b)?\s*$/i.exec(text)
  if (match === null) return undefined
  const bytes = Math.floor(Number(match[1]) * sizeUnits[(match[2] ?? "").toLowerCase()])
  return Number.isSafeInteger(bytes) && bytes >= 1 ? bytes : undefined
}

/**
 * What the help of every subcommand that scrolls one workspace says of where it is and whose token: a user reading
 * `export --help` alone learns nowhere else that the token is not a flag.
 *
 * @since 0.1.0
 * @category flags
 */
export const workspaceSentence =
  "The access token comes from INTERCOM_ACCESS_TOKEN, never from a flag; INTERCOM_REGION (us, eu, au) or INTERCOM_BASE_URL says where the workspace is, as --region and --base-url do."

/**
 * The flags, which each subcommand adds to its own. The pages are "written" to a file or stdout by `export`, to the
 * database by `sync`.
 *
 * @since 0.1.0
 * @category flags
 */
export const flags = {
  maxRestarts: count("max-restarts", "how many times to start over").pipe(
    Flag.withDescription("Start the scroll over at most N times after a 5xx, a transport failure or an expiry (default 5; 0 never); a first page asked for again counts as one."),
    Flag.optional
  ),
  prefetch: count("prefetch", "how many pages to fetch ahead of the writing").pipe(
    Flag.withDescription(
      "Fetch up to N pages (about 100 records each) ahead while earlier ones are written (default 1; 0 fetches a page only when the last is written). More keeps a slow disk, reader or database from letting the scroll expire."
    ),
    Flag.optional
  ),
  waitForOtherScroll: duration("wait-for-other-scroll").pipe(
    Flag.withDescription(
      "How long to wait while another scroll of the workspace is open on Intercom's side (Intercom allows one at a time, and drops one about a minute after its last use), such as 90s, 10m or 1h (default 2m; 0 gives up at once)."
    ),
    Flag.optional
  ),
  requestTimeout: duration("request-timeout", {
    zero: "refused",
    // Past an hour the flag would say what does not happen: undici gives up at an hour (the platform's headersTimeout),
    // and past 2³¹−1 ms (24.8 days) Effect's clock never fires the timeout at all.
    max: { duration: Duration.hours(1), because: "the HTTP client stops waiting for a page's headers after an hour whatever it says" }
  }).pipe(
    Flag.withDescription(
      "How long a page may take to arrive, its body included, such as 10s or 2m (default 30s, at most 1h). A page that takes longer is a transport failure: the scroll starts over, as after a 5xx."
    ),
    Flag.optional
  ),
  maxResponseBytes: Flag.text("max-response-bytes").pipe(
    Flag.filterMap(
      (text) => Option.fromNullable(parseSize(text)),
      "--max-response-bytes must be a size of a byte or more: a number of bytes, or with k, M or G, such as 64M"
    ),
    Flag.withPseudoName("SIZE"),
    Flag.withDescription(
      "The most a page's body may hold once decompressed, such as 64M or 1G (default 32M). Intercom's pages of about 100 records take a few hundred KB; a larger body is refused as it arrives (InvalidResponse), before it fills the memory."
    ),
    Flag.optional
  ),
  baseUrl: Flag.text("base-url").pipe(
    // Refused here in the flag's words: the client would refuse it too, as "Invalid Intercom client options".
    Flag.filterMap(
      (text) => isHttpUrl(text) ? Option.some(text) : Option.none(),
      "--base-url must be an http(s) URL, such as https://api.eu.intercom.io (plain http only for this machine: http://localhost:4010)"
    ),
    Flag.withPseudoName("URL"),
    Flag.withDescription("The API's base URL; overrides INTERCOM_BASE_URL and --region."),
    Flag.optional
  ),
  region: choice("region", regions).pipe(
    Flag.withDescription("The workspace's region (us, eu, au); overrides INTERCOM_REGION and INTERCOM_BASE_URL."),
    Flag.optional
  )
}

/**
 * The shared flags as parsed.
 *
 * @since 0.1.0
 * @category flags
 */
export interface Parsed {
  readonly baseUrl: Option.Option<string>
  readonly region: Option.Option<IntercomClient.Region>
  readonly maxRestarts: Option.Option<number>
  readonly prefetch: Option.Option<number>
  readonly waitForOtherScroll: Option.Option<Duration.Duration>
  readonly requestTimeout: Option.Option<Duration.Duration>
  readonly maxResponseBytes: Option.Option<number>
}
