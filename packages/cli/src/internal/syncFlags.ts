/**
 * The `sync` subcommand's argument and flags, and what its help says: all that `intercom-scroll --help` needs of it.
 * What runs it (`sync.ts`: the sync package, the database drivers) is loaded only when it runs.
 *
 * @since 0.1.0
 */
import { Args, type Command, Options as Flag } from "@effect/cli"
import type { Resource } from "@intercom-scroll/core"
import { Config, Duration, Option } from "effect"
import * as FleetFlags from "./fleetFlags.js"
import * as ScrollFlags from "./scrollFlags.js"
import { maxTimerMillis } from "./timer.js"

/**
 * What a sync command line names: one resource, or `all` of them.
 *
 * @since 0.1.0
 * @category models
 */
export type Target = Resource.Resource | "all"

/**
 * What `intercom-scroll sync --help` says the subcommand does.
 *
 * @since 0.1.0
 * @category flags
 */
export const description =
  `Copy every user, lead or company of an Intercom workspace into a table of a SQLite or PostgreSQL database, and mark deleted the rows Intercom no longer has. Each run scrolls the whole workspace: Intercom's scroll has no "changed since". ${ScrollFlags.workspaceSentence}`

/**
 * The `sync` subcommand's own argument and flags; the scroll's are `ScrollFlags.flags`.
 *
 * @since 0.1.0
 * @category flags
 */
export const flags = {
  target: Args.choice<Target>(
    [["users", "users"], ["leads", "leads"], ["companies", "companies"], ["all", "all"]],
    { name: "resource" }
  ).pipe(Args.withDescription("What to sync: users, leads, companies, or all three one after the other.")),
  // Redacted: the URL may hold a password.
  database: Flag.redacted("database").pipe(
    // As a fleet's: a URL with its password in the environment is not in ps.
    Flag.withFallbackConfig(Config.redacted(FleetFlags.variables.database)),
    Flag.withPseudoName("URL"),
    Flag.withDescription(
      `sqlite:PATH (a file, created if missing) or postgres://USER@HOST:PORT/DATABASE (postgresql:// too), the password in the URL or in PGPASSWORD. It is never printed. Else ${FleetFlags.variables.database}, which keeps a password out of ps.`
    )
  ),
  workspace: Flag.text("workspace").pipe(
    // Refused before the database is opened (or created), as Sync.run would refuse it after.
    Flag.filterMap((name) => name === "" ? Option.none() : Option.some(name), "--workspace must name the workspace: it is empty"),
    Flag.withPseudoName("NAME"),
    Flag.withDescription(
      "The name the workspace's rows and runs are kept under, so that one database can hold several (default default). A name holds one Intercom workspace: a token of another is refused under it."
    ),
    Flag.optional
  ),
  pagesPerTransaction: ScrollFlags.integer(
    "pages-per-transaction",
    (n) => n >= 1,
    `--pages-per-transaction must be a whole number, 1 or more: at most how many pages one transaction writes (or ${FleetFlags.variables.pagesPerTransaction})`,
    FleetFlags.variables.pagesPerTransaction
  ).pipe(
    Flag.withDescription(
      `At most how many pages one transaction writes (default 1): above 1, the pages that came in while a transaction ran go in the next one together. It speeds up a sync to a database 30 ms away or more, where the transactions are slower than Intercom's pages; such as 4. Else ${FleetFlags.variables.pagesPerTransaction}.`
    ),
    Flag.optional
  ),
  // Zero taken: one try, no wait. Past the ceiling refused by the sync too, but only once it starts: here, as it is read.
  lockTimeout: ScrollFlags.duration("lock-timeout", {
    max: { duration: Duration.millis(maxTimerMillis), because: "the sync waits at most 2147483647 ms (about 24.8 days) for another's lock; leave the flag out to wait as long as it takes" }
  }).pipe(
    Flag.withDescription(
      "Wait at most this long while another sync of the workspace runs, then fail, such as 90s, 10m or 600 (seconds); 0 tries once and does not wait (default: wait as long as it takes). Intercom allows one scroll of a workspace at a time."
    ),
    Flag.optional
  ),
  tableLockTimeout: ScrollFlags.duration("table-lock-timeout", {
    // Refused by the sync too, but only once it starts (its database file made by then): here, as the flag is read.
    zero: "refused",
    // Longer, PostgreSQL would take it for no limit at all.
    max: { duration: Duration.millis(maxTimerMillis), because: "PostgreSQL waits at most 2147483647 ms (about 24.8 days) for a lock" }
  }).pipe(
    Flag.withDescription(
      "PostgreSQL: how long one statement waits for a lock another session holds on the sync's tables (an open LOCK TABLE, ALTER TABLE or SELECT … FOR UPDATE) before the sync fails with TableLocked, naming that session, such as 30s or 5m (default 1m)."
    ),
    Flag.optional
  ),
  unansweredTimeout: FleetFlags.unansweredTimeoutFlag("the sync")
}

/**
 * The flags as parsed.
 *
 * @since 0.1.0
 * @category flags
 */
export type Flags = Command.Command.ParseConfig<typeof flags> & ScrollFlags.Parsed
