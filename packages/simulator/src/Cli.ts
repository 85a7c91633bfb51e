/**
 * The standalone simulator's command line: every option of `layerServer`, the fault plan as flags, one line on
 * stdout once listening, then serving until interrupted. Imported on its own (`@intercom-scroll/simulator/Cli`), not
 * from the package's index, so that a program that only simulates never loads @effect/cli.
 *
 * @example
 * ```ts
 * import * as Cli from "@intercom-scroll/simulator/Cli"
 * import { Effect, Option, Stream } from "effect"
 *
 * // `intercom-simulator --port 0 …` prints its URL on its first line: a test that starts the bin reads it so.
 * const stdout = Stream.make(new TextEncoder().encode("Intercom simulator listening on http://127.0.0.1:4010\n"))
 * assert.deepStrictEqual(Effect.runSync(Cli.listeningUrl(stdout)), Option.some("http://127.0.0.1:4010"))
 * ```
 *
 * @since 0.1.0
 */
import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Cause, Console, Duration, Effect, Option, Schema, Stream } from "effect"
import type { FaultPlan, Mutation } from "./FaultPlan.js"
import { Resource } from "./Resource.js"
import * as Help from "./internal/help.js"
import * as Link from "./internal/link.js"
import * as PlainConsole from "./internal/plainConsole.js"
import * as Simulator from "./Simulator.js"
import { moduleVersion } from "./internal/version.js"

const PageNumbers = Schema.compose(
  Schema.split(","),
  Schema.Array(Schema.compose(Schema.Trim, Schema.NumberFromString.pipe(Schema.int(), Schema.positive())))
)

/** `PAGE:RESOURCE:COUNT`, as in `5:users:10`. */
const MutationSpec = Schema.TemplateLiteralParser(
  Schema.NumberFromString.pipe(Schema.int(), Schema.positive()),
  ":",
  Resource,
  ":",
  Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())
)

/** `text` decoded by `schema`, or a usage error in one line of `words` (not the schema's tree). */
const decodedOr = <A, I>(schema: Schema.Schema<A, I>, words: (text: string) => string) => (text: string) =>
  Effect.mapError(Schema.decodeUnknown(schema)(text), () => ValidationError.invalidValue(HelpDoc.p(words(text))))

const pages = (name: string, description: string) =>
  Options.text(name).pipe(
    Options.withPseudoName("PAGES"),
    Options.mapEffect(decodedOr(PageNumbers, (text) =>
      `--${name} takes page request numbers, 1 or more, separated by commas, such as 3,7; got ${JSON.stringify(text)}`)),
    Options.withDescription(description),
    Options.optional
  )

/**
 * A flag that may be given any number of times. `Options.repeated` alone is shown in the usage line as required
 * (`--add-at text...`); a default marks it optional (`[--add-at text...]`), and is what parsing gives anyway when
 * the flag is absent.
 */
const mutations = (name: string, description: string) =>
  Options.text(name).pipe(
    Options.withPseudoName("PAGE:RESOURCE:COUNT"),
    Options.repeated,
    Options.mapEffect((specs) =>
      Effect.forEach(specs, decodedOr(MutationSpec, (text) =>
        `--${name} takes PAGE:RESOURCE:COUNT, such as 5:users:10 (RESOURCE users, leads or companies); got ${JSON.stringify(text)}`))
    ),
    Options.withDefault([]),
    Options.withDescription(description)
  )

/**
 * What is wrong with the `--token` values, in words naming the flag, or undefined: a token with whitespace (no
 * `Authorization` header carries it), an empty one (`--token A,`), one given twice.
 */
const tokensMistake = (values: ReadonlyArray<string>): string | undefined => {
  const seen = new Set<string>()
  for (const value of values) {
    if (/\s/.test(value)) {
      return `--token ${JSON.stringify(value)} holds whitespace, which no Authorization header carries: the tokens of one workspace are separated by commas alone`
    }
    for (const token of value.split(",")) {
      if (token === "") return `--token ${JSON.stringify(value)} holds an empty token: the tokens of one workspace are separated by single commas`
      if (seen.has(token)) {
        return `--token ${token} is given twice: each token is one workspace's, or one of the tokens of one workspace in --token A,B`
      }
      seen.add(token)
    }
  }
  return undefined
}

/** A whole number of at least `least`, refused in words that name the flag (not a schema's tree, and not served). */
const atLeast = (name: string, least: number) =>
  Options.filterMap((n: number) => n >= least ? Option.some(n) : Option.none(), `--${name} must be ${least} or more`)

/** `--name MS`: milliseconds, 0 up to what a timer can hold (`Link.longestWaitMillis`). */
const millis = (name: string, description: string) =>
  Options.integer(name).pipe(
    Options.withPseudoName("MS"),
    Options.filterMap(
      (n) => n >= 0 && n <= Link.longestWaitMillis ? Option.some(n) : Option.none(),
      `--${name} must be 0 to ${Link.longestWaitMillis} milliseconds (about 24.8 days)`
    ),
    Options.withDescription(description),
    Options.optional
  )

const count = (name: string, pseudoName: string, fallback: number, description: string, least = 0) =>
  Options.integer(name).pipe(
    Options.withPseudoName(pseudoName),
    atLeast(name, least),
    Options.withDefault(fallback),
    Options.withDescription(`${description} (default ${fallback})`)
  )

/**
 * @since 0.1.0
 * @category options
 */
export const options = {
  port: Options.integer("port").pipe(
    Options.withPseudoName("N"),
    Options.filterMap((n) => n >= 0 && n <= 65_535 ? Option.some(n) : Option.none(), "--port must be a TCP port, 0 to 65535"),
    Options.withDefault(4010),
    Options.withDescription("Port to listen on, 0 picking a free one (default 4010)")
  ),
  host: Options.text("host").pipe(
    Options.withPseudoName("H"),
    Options.withDefault("127.0.0.1"),
    Options.withDescription("Address to bind (default 127.0.0.1)")
  ),
  tokens: Options.text("token").pipe(
    Options.withPseudoName("TOKEN"),
    Options.atLeast(1),
    // Said as usage errors naming the flag, rather than as `make`'s defect (`RuntimeException: Simulator: …`).
    Options.mapEffect((tokens) => {
      const mistake = tokensMistake(tokens)
      return mistake === undefined ? Effect.succeed(tokens) : Effect.fail(ValidationError.invalidValue(HelpDoc.p(mistake)))
    }),
    Options.withDescription(
      "Access token of a workspace; repeat for several workspaces, or give several tokens of one workspace (its app) separated by commas"
    )
  ),
  users: count("users", "N", Simulator.defaults.users, "Users per workspace"),
  leads: count("leads", "N", Simulator.defaults.leads, "Leads per workspace"),
  companies: count("companies", "N", Simulator.defaults.companies, "Companies per workspace"),
  seed: Options.integer("seed").pipe(
    Options.withPseudoName("N"),
    Options.withDefault(1),
    Options.withDescription("Data set seed of the first workspace; the Nth --token uses seed + N - 1 (default 1)")
  ),
  pageSize: count("page-size", "N", Simulator.defaults.pageSize, "Records a page", 1),
  expiry: count("expiry", "S", Duration.toSeconds(Simulator.defaults.expiry), "Seconds an unused scroll_param lives", 1),
  defaultVersion: Options.text("default-version").pipe(
    Options.withPseudoName("V"),
    Options.withDefault(Simulator.defaults.defaultVersion),
    Options.withDescription(`API version of requests without an Intercom-Version header (default ${Simulator.defaults.defaultVersion})`)
  ),
  restartAt: pages("restart-at", "Page requests answered 500 'Please restart the scroll operation', e.g. 3,7"),
  restartRate: Options.float("restart-rate").pipe(
    Options.withPseudoName("F"),
    Options.filterMap(
      (rate) => rate >= 0 && rate <= 1 ? Option.some(rate) : Option.none(),
      "--restart-rate must be between 0 and 1"
    ),
    Options.withDescription("Fraction (0..1) of page requests answered 500"),
    Options.optional
  ),
  expireAt: pages("expire-at", "Page requests answered 404 not_found, as if the scroll had expired"),
  foreignScroll: Options.float("foreign-scroll").pipe(
    Options.withPseudoName("S"),
    // Infinity (`1e400`) would hold every workspace for good: no scroll could ever open.
    Options.filterMap(
      (seconds) => seconds >= 0 && Number.isFinite(seconds) ? Option.some(seconds) : Option.none(),
      "--foreign-scroll must be a number of seconds, 0 or more"
    ),
    Options.withDescription("Seconds another client's scroll holds each workspace from the start"),
    Options.optional
  ),
  rateLimit: Options.all({
    limit: Options.integer("rate-limit").pipe(
      Options.withPseudoName("N"),
      atLeast("rate-limit", 1),
      Options.withDescription("Requests allowed per rate-limit window (429 past it)"),
      Options.optional
    ),
    windowSeconds: Options.integer("rate-window").pipe(
      Options.withPseudoName("S"),
      atLeast("rate-window", 1),
      Options.withDescription("Rate-limit window in seconds (default 10), with --rate-limit"),
      Options.optional
    )
  }).pipe(
    // A window alone would be dropped without a word: the limit is what makes a window.
    Options.mapEffect(({ limit, windowSeconds }) =>
      Option.isNone(limit) && Option.isSome(windowSeconds)
        ? Effect.fail(ValidationError.invalidValue(HelpDoc.p("--rate-window goes with --rate-limit N, the requests a window allows")))
        : Effect.succeed(Option.map(limit, (limit) => ({ limit, windowSeconds: Option.getOrUndefined(windowSeconds) })))
    )
  ),
  latency: millis("latency", "Milliseconds added to every page"),
  bandwidth: Options.float("bandwidth").pipe(
    Options.withPseudoName("MBIT"),
    Options.filterMap(
      (megabits) => megabits > 0 && Number.isFinite(megabits) ? Option.some(megabits) : Option.none(),
      "--bandwidth must be a number of megabits per second above 0 (leave it out for no limit)"
    ),
    Options.withDescription(
      "Megabits per second of each response's link: B bytes take B * 8 / (bandwidth * 10^6) seconds"
    ),
    Options.optional
  ),
  handshake: millis(
    "handshake",
    "Milliseconds a new connection costs before its first response (TCP's and TLS's round trips; 2 x latency for TLS 1.3)"
  ),
  compression: Options.choice("compression", ["on", "off"]).pipe(
    Options.withDefault("on"),
    Options.withDescription("Compress pages for requests whose Accept-Encoding asks (br, gzip, deflate) (default on)")
  ),
  scrollParam: Options.choice("scroll-param", ["rotating", "stable"]).pipe(
    Options.withDefault(Simulator.defaults.scrollParam),
    Options.withDescription(
      `rotating: a new scroll_param every page; stable: the same one for every page of a scroll (default ${Simulator.defaults.scrollParam})`
    )
  ),
  restartOrder: Options.choice("restart-order", ["varied", "same"]).pipe(
    Options.withDefault(Simulator.defaults.restartOrder),
    Options.withDescription(
      `varied: a restarted scroll sends the records in another order; same: in the first scroll's (default ${Simulator.defaults.restartOrder})`
    )
  ),
  cutBodyAt: pages("cut-body-at", "Page requests whose body is cut short"),
  dropConnectionAt: pages("drop-connection-at", "Page requests whose connection is dropped before any response"),
  addAt: mutations("add-at", "COUNT records of RESOURCE added at that page request, e.g. 5:users:10; repeatable"),
  removeAt: mutations("remove-at", "COUNT records of RESOURCE removed at that page request, e.g. 5:leads:3; repeatable")
}

/**
 * @since 0.1.0
 * @category models
 */
export type Config = Command.Command.ParseConfig<typeof options>

const faultPlan = (config: Config): FaultPlan => ({
  restartAt: Option.getOrUndefined(config.restartAt),
  restartRate: Option.getOrUndefined(config.restartRate),
  expireAt: Option.getOrUndefined(config.expireAt),
  foreignScroll: Option.getOrUndefined(config.foreignScroll),
  rateLimit: Option.getOrUndefined(config.rateLimit),
  latency: Option.getOrUndefined(Option.map(config.latency, Duration.millis)),
  cutBodyAt: Option.getOrUndefined(config.cutBodyAt),
  dropConnectionAt: Option.getOrUndefined(config.dropConnectionAt),
  mutations: [
    ...config.addAt.map(([atPage, , resource, , add]): Mutation => ({ atPage, resource, add })),
    ...config.removeAt.map(([atPage, , resource, , remove]): Mutation => ({ atPage, resource, remove }))
  ]
})

/**
 * The server options a command line describes: one workspace per `--token`, each with the same sizes and faults and
 * its own seed; the comma-separated tokens of one `--token` are tokens of one workspace (one app, one seed).
 *
 * @since 0.1.0
 * @category conversions
 */
export const serverOptions = (config: Config): Simulator.ServerOptions => ({
  port: config.port,
  host: config.host,
  pageSize: config.pageSize,
  expiry: Duration.seconds(config.expiry),
  scrollParam: config.scrollParam,
  restartOrder: config.restartOrder,
  compression: config.compression === "on",
  ...Option.match(config.bandwidth, { onNone: () => ({}), onSome: (bandwidth) => ({ bandwidth }) }),
  ...Option.match(config.handshake, { onNone: () => ({}), onSome: (millis) => ({ handshake: Duration.millis(millis) }) }),
  // `--token A,B`: two tokens of one app, which share its seed (its records and id_code), its one open scroll and its
  // rate limit.
  workspaces: config.tokens.flatMap((tokens, index) =>
    tokens.split(",").map((token) => ({
      token,
      seed: config.seed + index,
      users: config.users,
      leads: config.leads,
      companies: config.companies,
      defaultVersion: config.defaultVersion,
      faults: faultPlan(config)
    }))
  )
})

/** The one line the standalone simulator prints once it listens. */
const banner = (baseUrl: string) => `Intercom simulator listening on ${baseUrl}`
const bannerPattern = /^Intercom simulator listening on (http:\/\/\S+)$/

/**
 * The base URL a standalone simulator announces, read from its stdout: for programs that start the bin as a child
 * process. None when the output ends without it (the simulator did not start).
 *
 * @since 0.1.0
 * @category parsing
 */
export const listeningUrl = <E>(stdout: Stream.Stream<Uint8Array, E>): Effect.Effect<Option.Option<string>, E> =>
  stdout.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.filterMap((line) => Option.fromNullable(bannerPattern.exec(line)?.[1])),
    Stream.runHead
  )

/**
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("intercom-simulator", options, (config) =>
  Effect.gen(function*() {
    const simulator = yield* Simulator.Simulator
    yield* Console.log(banner(yield* Simulator.baseUrl))
    // What it served, for a run against it from outside to check (`scrollExistsWhileLive`, `bytesSent`, …).
    const stopped = Effect.flatMap(simulator.stats, (stats) => Console.error(`${stoppedLine}${JSON.stringify(stats)}`))
    return yield* Effect.onInterrupt(Effect.never, () => stopped)
  }).pipe(Effect.provide(Simulator.layerServer(serverOptions(config)))))

/**
 * How the line the standalone simulator prints on stderr when it is stopped begins; its stats follow, as JSON.
 *
 * @since 0.1.0
 * @category commands
 */
export const stoppedLine = "Intercom simulator stopped; what it served: "

const runCommand = Command.run(command, { name: "Intercom simulator", version: moduleVersion })

const helpPage: Help.Page = {
  name: "intercom-simulator",
  version: moduleVersion,
  description:
    "A faithful Intercom Scroll API on this machine: workspaces of generated users, leads and companies, served a page at a time as Intercom serves them (its envelopes, errors, rate limits and scroll expiry), with the faults the flags ask for. Once listening it prints \"Intercom simulator listening on http://HOST:PORT\" on stdout, then serves until stopped (Ctrl-C, SIGTERM), when it prints what it served on stderr.",
  usage: "intercom-simulator --token TOKEN [--token TOKEN ...] [FLAG ...]",
  options: Options.all(options),
  examples: [
    ["intercom-simulator --token T", "One workspace of 1,000 users, 200 leads and 50 companies on http://127.0.0.1:4010."],
    ["intercom-simulator --port 0 --token A --token B", "Two workspaces on a free port: the first line on stdout says which."],
    ["intercom-simulator --token T --users 50000 --latency 200", "Each page 200 ms later: a scroll of 500 pages takes over 100 s."],
    ["intercom-simulator --token T --restart-at 3 --expire-at 7", "Intercom asks for a restart at the third page request, and the scroll expires at the seventh."],
    ["INTERCOM_BASE_URL=http://127.0.0.1:4010 INTERCOM_ACCESS_TOKEN=T intercom-scroll export users", "Exports the first example's users with @intercom-scroll/cli."]
  ]
}

/**
 * Runs the command line (`process.argv`). `--help` (or `-h`) prints what the simulator does, its usage, each flag on
 * a line and examples. Its usage errors carry styles only where this process's stderr is a terminal and NO_COLOR is
 * unset.
 *
 * @since 0.1.0
 * @category commands
 */
export const run = (args: ReadonlyArray<string>): ReturnType<typeof runCommand> =>
  args.slice(2).some((arg) => arg === "--help" || arg === "-h")
    ? Console.log(Help.render(helpPage).trimEnd())
    : PlainConsole.forThisProcess(runCommand(args))

/** An error's tag (or name), its message and its cause's: a server that cannot listen says why only in its cause. */
const describe = (error: unknown): string => {
  if (typeof error !== "object" || error === null) return `Error: ${String(error)}`
  const { _tag, name, message, cause } = error as { readonly _tag?: unknown; readonly name?: unknown; readonly message?: unknown; readonly cause?: unknown }
  const label = typeof _tag === "string" ? _tag : typeof name === "string" ? name : "Error"
  const said = [typeof message === "string" ? message : "", cause instanceof Error ? cause.message : ""]
  const parts = said.filter((text, index) => text !== "" && said.indexOf(text) === index)
  return `${label}: ${parts.join(": ") || "no details"}`.replace(/\s*[\r\n]+\s*/g, " ")
}

/**
 * The one line the standalone simulator prints on stderr when it fails, or none: for a usage error @effect/cli has
 * already printed what was wrong, and a stop by signal is how it ends.
 */
const failureLine = (cause: Cause.Cause<unknown>): string | undefined => {
  if (Cause.isInterruptedOnly(cause)) return undefined
  const error = Option.getOrElse(Cause.failureOption(cause), () => Cause.squash(cause))
  return ValidationError.isValidationError(error) ? undefined : describe(error)
}

/**
 * `run`, and on failure its one line (`failureLine`) on stderr: for the bin, whose runtime then reports nothing more
 * (no log record, no stack) and exits 1.
 *
 * @since 0.1.0
 * @category commands
 */
export const main = (args: ReadonlyArray<string>): ReturnType<typeof runCommand> =>
  run(args).pipe(Effect.tapErrorCause((cause) => {
    const line = failureLine(cause)
    return line === undefined ? Effect.void : Console.error(line)
  }))
