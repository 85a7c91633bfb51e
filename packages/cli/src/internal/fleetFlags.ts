/**
 * The `fleet runner`, `fleet sync`, `fleet prune` and `fleet status` flags, and what their help says: all that `intercom-scroll --help` needs of them.
 * What runs them (`fleet.ts`: the cluster, the sync, the database drivers) is loaded only when they run.
 *
 * @since 0.1.0
 */
import { HelpDoc, Options as Flag, ValidationError } from "@effect/cli"
import type { Resource } from "@intercom-scroll/core"
import { Cron, Duration, Effect, Either, Option } from "effect"
import * as ScrollFlags from "./scrollFlags.js"
import { maxTimerMillis } from "./timer.js"

/**
 * @since 0.1.0
 * @category flags
 */
export const description =
  "Sync many workspaces on a fleet of runner processes (@effect/cluster) sharing one database: one scroll per workspace across the fleet."

/**
 * @since 0.1.0
 * @category flags
 */
export const runnerDescription =
  "Serve a runner until SIGTERM (it then finishes or hands back its syncs). Tokens come from the environment variables the workspaces file names."

/**
 * @since 0.1.0
 * @category flags
 */
export const syncDescription =
  "Sync every workspace of FILE on the fleet's runners and wait: one progress line, one line per workspace as it answers, and the totals once all have; exit 0 only if every workspace completed."

/**
 * @since 0.1.0
 * @category flags
 */
export const pruneDescription =
  "Delete what syncs answered longer ago than --older-than left in the fleet's database: the requests and their answers, the ticks of --cron, and the runs that ended. Nothing else removes them (~2 KB a sync)."

/**
 * @since 0.1.0
 * @category flags
 */
export const statusDescription =
  "Print the fleet's state from its database: the runners alive, the syncs sent and not answered, the runs under way, and since --since (24h) the runs ended by status, the rows they changed and the latest failures. With --workspaces FILE (or --stale-after), the workspaces that need attention: failing, stale, never synced, removed from the file. Writes nothing."

/**
 * The environment variables the fleet's flags fall back on, by flag: what a container, a systemd unit or a pod sets.
 *
 * @since 0.1.0
 * @category flags
 */
export const variables = {
  database: "INTERCOM_SCROLL_DATABASE",
  workspaces: "INTERCOM_SCROLL_WORKSPACES",
  resources: "INTERCOM_SCROLL_RESOURCES",
  maxInFlight: "INTERCOM_SCROLL_MAX_IN_FLIGHT",
  cron: "INTERCOM_SCROLL_CRON",
  port: "INTERCOM_SCROLL_RUNNER_PORT",
  host: "INTERCOM_SCROLL_RUNNER_HOST",
  maxSyncs: "INTERCOM_SCROLL_MAX_SYNCS",
  pagesPerTransaction: "INTERCOM_SCROLL_PAGES_PER_TRANSACTION",
  healthPort: "INTERCOM_SCROLL_HEALTH_PORT",
  terminationTimeout: "INTERCOM_SCROLL_TERMINATION_TIMEOUT",
  unansweredTimeout: "INTERCOM_SCROLL_UNANSWERED_TIMEOUT",
  allowBaseUrls: "INTERCOM_SCROLL_ALLOWED_BASE_URLS"
} as const

/**
 * By subcommand, the flags a variable may stand in for that it needs all the same, for its help's usage.
 *
 * @since 0.1.0
 * @category flags
 */
export const needed: Readonly<Record<string, ReadonlyArray<string>>> = {
  "sync": ["--database"],
  "fleet runner": ["--database", "--port"],
  "fleet sync": ["--database", "--workspaces"],
  "fleet prune": ["--database"],
  "fleet status": ["--database"]
}

const orVariable = (name: keyof typeof variables) => ` Else ${variables[name]}.`

/**
 * `--unanswered-timeout`, for `sync` (`"the sync"`) and `fleet runner` (`"a runner's syncs"`) alike: zero and past a
 * timer's ceiling refused as it is read, not once a sync starts; `INTERCOM_SCROLL_UNANSWERED_TIMEOUT` when it is not
 * given, for both, as every flag `sync` shares with the runner reads the runner's variable.
 *
 * @since 0.1.0
 * @category flags
 */
export const unansweredTimeoutFlag = (
  of: "the sync" | "a runner's syncs"
): Flag.Options<Option.Option<Duration.Duration>> =>
  ScrollFlags.duration("unanswered-timeout", {
    zero: "refused",
    max: { duration: Duration.millis(maxTimerMillis), because: "a timer waits at most 2147483647 ms (about 24.8 days)" },
    variable: variables.unansweredTimeout
  }).pipe(
    Flag.withDescription(
      `PostgreSQL: how long the database may answer nothing at all, on any connection (its host gone, an address that drops everything), while a statement of ${
        of === "the sync" ? "the sync waits for its answer, before the sync" : "a sync waits for its answer, before that sync"
      } fails with LockLost, such as 30s or 10m (default 2m). Any answer starts the count again.${orVariable("unansweredTimeout")}`
    ),
    Flag.optional
  )

const databaseFlag = ScrollFlags.text("database", variables.database).pipe(
  Flag.withPseudoName("URL"),
  Flag.withDescription(
    `The fleet's database: postgres://USER:PASSWORD@HOST:PORT/DATABASE (or PGPASSWORD for the password) for runners on any number of machines, or sqlite:PATH for one runner on this machine. Every process of a fleet names the same one. Else ${variables.database}, which keeps a password out of ps.`
  )
)

const positive = (name: string, meaning: string, variable: string) =>
  ScrollFlags.integer(name, (n) => n >= 1, `--${name} must be a whole number, 1 or more: ${meaning} (or ${variable})`, variable)

const resources = ["users", "leads", "companies"] as const satisfies ReadonlyArray<Resource.Resource>

const workspacesFlag = ScrollFlags.text("workspaces", variables.workspaces).pipe(
  Flag.withPseudoName("FILE"),
  Flag.withDescription(
    `A JSON array of workspaces: [{"workspace":"acme","tokenEnv":"ACME_TOKEN"}, …], each with "baseUrl" or "region" (us, eu, au) where it is not in the US. tokenEnv names the variable that holds the token on the runners.${orVariable("workspaces")}`
  )
)

const resourcesFlag = ScrollFlags.text("resources", variables.resources).pipe(
  Flag.withPseudoName("R,…"),
  Flag.withDefault("users"),
  Flag.mapEffect((text) => {
    const names = text.split(",").map((name) => name.trim())
    const unknown = names.filter((name) => !(resources as ReadonlyArray<string>).includes(name))
    const distinct = new Set(names)
    return unknown.length > 0 || distinct.size !== names.length || names.length === 0
      ? Effect.fail(
        ValidationError.invalidValue(HelpDoc.p(`--resources takes users, leads and companies, each once, separated by commas; got ${JSON.stringify(text)}`))
      )
      : Effect.succeed(names as unknown as readonly [Resource.Resource, ...Array<Resource.Resource>])
  })
)

const resourcesOrder = `in order: users, leads, companies (default users).${orVariable("resources")}`

const maxInFlightFlag = positive("max-in-flight", "how many workspaces are sent and not yet answered at once", variables.maxInFlight).pipe(
  Flag.optional,
  Flag.withDescription(
    `Workspaces sent to the fleet and not yet answered at once (default 1000; each costs this process ~66 KB while it waits); the next is sent as one is answered. Keep it above the runners × --max-syncs, or runners wait for work. On a runner, it goes with --cron.${orVariable("maxInFlight")}`
  )
)

const usageError = (text: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(text)))

/** What makes a runner a fleet's scheduler: `--cron` with the workspaces it syncs, or neither. */
const scheduleFlags = Flag.all({
  cron: ScrollFlags.text("cron", variables.cron).pipe(
    Flag.withPseudoName("EXPR"),
    Flag.mapEffect((text) =>
      Either.match(Cron.parse(text, "UTC"), {
        onLeft: (error) =>
          Effect.fail(ValidationError.invalidValue(HelpDoc.p(
            `--cron: ${JSON.stringify(text)} is not a cron expression (${error.message}): minute hour day month weekday, such as "0 */6 * * *", or six fields with the seconds first`
          ))),
        // Parsed, yet without a next time (the 31st of February): a runner would wait for a tick that never comes.
        onRight: (cron) =>
          Either.isRight(Either.try(() => Cron.next(cron)))
            ? Effect.succeed(cron)
            : usageError(`--cron: ${JSON.stringify(text)} never comes: no date has that day in that month`)
      })
    ),
    Flag.optional,
    Flag.withDescription(
      `Also sync every workspace of --workspaces on this schedule, in UTC: "0 */6 * * *" is every six hours. Give the runners that have --cron the same --cron, --workspaces and --resources: the fleet runs each tick on one of them, a round at a time, and names its runs cron@TIME. Each round reads --workspaces again: a workspace added to it, removed or changed is synced so from the next round, without a restart. A runner without --cron takes no tick.${orVariable("cron")}`
    )
  ),
  workspaces: workspacesFlag.pipe(Flag.optional),
  resources: resourcesFlag.pipe(Flag.withDescription(`With --cron: the resources to sync at each tick, ${resourcesOrder}`)),
  maxInFlight: maxInFlightFlag
}).pipe(
  Flag.mapEffect(({ cron, maxInFlight, resources, workspaces }) => {
    if (Option.isSome(cron) && Option.isSome(workspaces)) {
      return Effect.succeed(Option.some({ cron: cron.value, workspaces: workspaces.value, resources, maxInFlight }))
    }
    if (Option.isNone(cron) && Option.isNone(workspaces)) {
      // A runner without --cron sends no workspace: the flag would do nothing. (--resources has a default, which cannot
      // be told apart from one given: its help says that it goes with --cron.)
      return Option.isSome(maxInFlight)
        ? usageError("--max-in-flight on a runner goes with --cron: how many workspaces of a tick are sent and not yet answered at once")
        : Effect.succeed(Option.none())
    }
    return usageError(
      Option.isSome(cron)
        ? "--cron needs --workspaces FILE: the workspaces to sync at each tick"
        : "--workspaces on a runner goes with --cron: the schedule to sync them on (fleet sync sends them once)"
    )
  })
)

/** The addresses that mean "every address of this machine" to a server, and none to a client. */
const unspecifiedHosts = new Set(["", "0.0.0.0", "::", "[::]", "0:0:0:0:0:0:0:0"])

/**
 * `fleet runner`'s flags.
 *
 * @since 0.1.0
 * @category flags
 */
export const runner = {
  database: databaseFlag,
  port: ScrollFlags.integer("port", (n) => n >= 1 && n <= 65_535, `--port must be a TCP port, 1 to 65535 (or ${variables.port})`, variables.port).pipe(
    Flag.withPseudoName("P"),
    Flag.withDescription(`The port the runner listens on, for the other processes of the fleet.${orVariable("port")}`)
  ),
  host: ScrollFlags.text("host", variables.host).pipe(
    Flag.withPseudoName("H"),
    // The address is what the other processes dial, not only where this one listens: 0.0.0.0 (how a server is told to
    // listen on every interface) reaches no other machine, and runners on several given it were one address to the
    // cluster, so all but one exit with AddressInUse 20 s in, and on other ports each would dial itself.
    Flag.mapEffect((host) =>
      unspecifiedHosts.has(host.trim().toLowerCase())
        ? Effect.fail(ValidationError.invalidValue(HelpDoc.p(
          `--host ${JSON.stringify(host)} (or ${variables.host}) is no address the fleet's other processes can reach this runner at, and --host is that address as well as where the runner listens: give this machine's IP or name as they reach it (in Kubernetes, the pod's IP), or leave --host out for one machine (127.0.0.1)`
        )))
        : Effect.succeed(host)
    ),
    Flag.withDefault("127.0.0.1"),
    Flag.withDescription(`The address the other processes reach this runner at (default 127.0.0.1: one machine).${orVariable("host")}`)
  ),
  maxSyncs: positive("max-syncs", "how many syncs the runner runs at once", variables.maxSyncs).pipe(
    Flag.withDefault(4),
    Flag.withDescription(`Syncs this runner runs at once, across workspaces (default 4); more wait their turn.${orVariable("maxSyncs")}`)
  ),
  pagesPerTransaction: positive("pages-per-transaction", "at most how many pages one transaction writes", variables.pagesPerTransaction).pipe(
    Flag.withDefault(1),
    Flag.withDescription(
      `At most how many pages one transaction of a sync writes (default 1): above 1, the pages that came in while a transaction ran go in the next one together, which keeps syncs at Intercom's pace with a database 30 ms away or more; such as 4.${
        orVariable("pagesPerTransaction")
      }`
    )
  ),
  terminationTimeout: ScrollFlags.duration("termination-timeout", {
    zero: "refused",
    max: { duration: Duration.millis(maxTimerMillis), because: "a timer waits at most 2147483647 ms (about 24.8 days); a longer one never runs out" },
    variable: variables.terminationTimeout
  }).pipe(
    Flag.withDefault(Duration.seconds(15)),
    Flag.withDescription(
      `How long a sync under way may run on once the runner is told to stop (SIGTERM) or its workspace moves to a runner that joins, such as 10m or 2h (default 15s); one still running then is cut, and syncs again from its first page elsewhere. Longer lets a deploy or a scale-up keep the syncs it would cut, but a stop (and a workspace that moves) with syncs waiting for a slot takes that long; give Kubernetes' terminationGracePeriodSeconds more than it.${
        orVariable("terminationTimeout")
      }`
    )
  ),
  unansweredTimeout: unansweredTimeoutFlag("a runner's syncs"),
  healthPort: ScrollFlags.integer(
    "health-port",
    (n) => n >= 1 && n <= 65_535,
    `--health-port must be a TCP port, 1 to 65535 (or ${variables.healthPort})`,
    variables.healthPort
  ).pipe(
    Flag.withPseudoName("P"),
    Flag.optional,
    Flag.withDescription(
      `Also answer GET /health on this port, at --host, for a container's probe or a monitor: 200 and {"healthy":true,"database":"ok","shards":N} while the database answers, 503 and why when it does not; GET /ready (200 only while it holds shards too) for a readiness probe, GET /live (200 while the process answers) for a liveness probe.${
        orVariable("healthPort")
      }`
    )
  ),
  allowBaseUrls: ScrollFlags.text("allow-base-url", variables.allowBaseUrls).pipe(
    Flag.withPseudoName("URL,…"),
    Flag.optional,
    Flag.mapEffect(Option.match({
      onNone: () => Effect.succeed([]),
      onSome: (text) => {
        // Empty (a variable set to nothing) allows nothing more. Plain http goes nowhere but this machine, allowed already.
        const urls = text.split(",").map((url) => url.trim()).filter((url) => url !== "")
        const wrong = urls.filter((url) => !URL.canParse(url) || new URL(url).protocol !== "https:")
        return wrong.length > 0
          ? usageError(`--allow-base-url takes https URLs separated by commas, such as https://intercom-gateway.internal; got ${JSON.stringify(text)}`)
          : Effect.succeed(urls)
      }
    })),
    Flag.withDescription(
      `Base URLs, besides Intercom's hosts and this machine's, that this runner sends a workspace's token to, separated by commas: a gateway in front of Intercom, a simulator on another machine. A sync names its base URL and the variable that holds its token, and whoever can write the fleet's database could otherwise have a runner send any variable of its environment anywhere; one naming another base URL fails, and nothing is sent.${
        orVariable("allowBaseUrls")
      }`
    )
  ),
  schedule: scheduleFlags
}

/**
 * `fleet sync`'s flags.
 *
 * @since 0.1.0
 * @category flags
 */
export const sync = {
  database: databaseFlag,
  workspaces: workspacesFlag,
  resources: resourcesFlag.pipe(Flag.withDescription(`The resources to sync, ${resourcesOrder}`)),
  run: Flag.text("run").pipe(
    Flag.filterMap((name) => name.trim() === "" ? Option.none() : Option.some(name), "--run must name the run: it is empty"),
    Flag.withPseudoName("NAME"),
    Flag.optional,
    Flag.withDescription(
      "Names this run (default: fleet-sync and the time). A run sent again under the same name syncs nothing again: it is answered with the first one's results."
    )
  ),
  maxInFlight: maxInFlightFlag
}

/**
 * `fleet prune`'s flags.
 *
 * @since 0.1.0
 * @category flags
 */
export const prune = {
  database: databaseFlag,
  olderThan: ScrollFlags.duration("older-than", { unit: "required" }).pipe(
    Flag.withDescription(
      "Delete the requests answered, the ticks of --cron whose rounds ended, and the runs that ended, longer ago than this, with its unit: 90d, 12h. What is not answered yet, and a run still running, stay. Keep it to days: a sender still waiting reads its answer within seconds, and one pruned before it does is waited for forever."
    )
  )
}

/**
 * `fleet status --workspaces`' bound for a stale workspace when `--stale-after` is not given. The schedule's
 * expression is not in the database (only its next tick), so it cannot be derived from it.
 *
 * @since 0.1.0
 * @category flags
 */
export const defaultStaleAfter: Duration.Duration = Duration.hours(48)

/**
 * `fleet status`'s flags.
 *
 * @since 0.1.0
 * @category flags
 */
export const status = {
  database: databaseFlag,
  since: ScrollFlags.duration("since").pipe(
    Flag.withDefault(Duration.hours(24)),
    Flag.withDescription("How far back to count the runs that ended and to list failures, such as 24h (the default), 7d or 30m.")
  ),
  workspaces: workspacesFlag.pipe(
    Flag.optional,
    Flag.withDescription(
      "On fleet status: the workspaces the fleet syncs, to say which need attention: failing, stale, never synced, and those the database holds that the file no longer names."
    )
  ),
  resources: resourcesFlag.pipe(
    Flag.withDescription(`With --workspaces or --stale-after: the resources each workspace is looked at for, ${resourcesOrder}`)
  ),
  staleAfter: ScrollFlags.duration("stale-after", { unit: "required", zero: "refused" }).pipe(
    Flag.optional,
    Flag.withDescription(
      `A workspace's resource with no complete run for longer than this is stale, such as 13h for a --cron every 6 hours (default ${Duration.format(defaultStaleAfter)}: a daily schedule's round missed). Alone, without --workspaces: the failing and stale workspaces the database holds.`
    )
  ),
  format: ScrollFlags.choice("format", ["text", "json"]).pipe(
    Flag.withDefault("text" as const),
    Flag.withDescription("text (the default): a few lines to read; json: one object, times in ISO 8601, for a script or a monitor.")
  )
}
