/**
 * How the command line ends: one line on stderr naming what went wrong (`Unauthorized: Intercom refused …`), and
 * the exit code. Pure, so each case is tested without a process.
 *
 * A scroll's error says what happened in the library's words (its `problem`); what to do about it is said here, in the
 * terms of this command line (its flags and variables), not in those of the library's options.
 *
 * @since 0.1.0
 */
import { ValidationError } from "@effect/cli"
import { IntercomClient, ScrollError } from "@intercom-scroll/core"
import { SyncError } from "@intercom-scroll/sync"
import { Cause, Option, type Redacted, Schema } from "effect"
import { InvalidConfig, OutputError } from "../ExportError.js"
import { isStdoutClosed } from "./exitCode.js"

export { exitCode, hungUpExitCode, interruptedExitCode, stdoutClosedExitCode, terminatedExitCode } from "./exitCode.js"

/** A record with a field of a type Intercom does not document: the base URL is not the suspect, the record is. */
const recordAdvice =
  "The run stopped at this record (an export to --out leaves no file; a sync keeps the pages before it and marks nothing deleted). Look the record up in Intercom by its id and correct that field there (an app that wrote it through the API may have sent the wrong type); if Intercom itself sends such values, report the field to intercom-scroll."

/** A 429 without Intercom's headers may be a proxy's: the library's advice for it, which the tables' replace. */
const proxyLimit = (error: ScrollError.RateLimited): string =>
  error.isIntercom ? "" : " If a proxy of yours limits the requests, raise its limit for Intercom's API."

/**
 * What to do after each of the scroll's errors, with the flags and variables of this command line. Empty where
 * nothing general helps.
 */
const advice: { readonly [E in ScrollError.ScrollError as E["_tag"]]: (error: E) => string } = {
  Expired: () =>
    "If writing the records stalled for over a minute (a slow reader of stdout, a slow disk), export to a file with --out and read it after; --prefetch N (default 1) rides out a stall only as long as N pages take to arrive; --max-restarts N (default 5) starts over more often.",
  ConcurrentScroll: (error) =>
    error.ownScroll === true
      ? "Run again in about a minute, or wait for it with --wait-for-other-scroll DURATION (default 2m), such as --wait-for-other-scroll 2m."
      : "Another app may be scrolling the workspace: run again once it is done, or wait longer for it with --wait-for-other-scroll DURATION (default 2m), such as --wait-for-other-scroll 10m.",
  RestartRequired: (error) =>
    error.cause._tag === "Timeout"
      ? `No page came whole within --request-timeout (${error.cause.millis} ms): if Intercom (or the link) is that slow, give it longer with --request-timeout DURATION, such as --request-timeout 2m; else run again later.`
      : "Run again later, or try again more often with --max-restarts N (default 5).",
  RateLimited: (error) => `Run again after ${error.resetTime}.${proxyLimit(error)}`,
  Unauthorized: (error) =>
    `Check INTERCOM_ACCESS_TOKEN, the workspace's region (--region or INTERCOM_REGION: us, eu or au), and that the app may read ${error.resource}.`,
  ApiError: () => "",
  InvalidResponse: (error) =>
    error.id !== undefined
      ? recordAdvice
      : error.maxResponseBytes !== undefined
      ? `Intercom's pages of about 100 records stay far below this command's limit of ${error.maxResponseBytes} bytes a page: check that --base-url (or INTERCOM_BASE_URL) points at Intercom's API, or a faithful proxy; if it does, and the workspace's records are that large, raise the limit with --max-response-bytes SIZE, such as --max-response-bytes 256M.`
      : error.location === undefined
      ? "Check that --base-url (or INTERCOM_BASE_URL) points at Intercom's API, or a faithful proxy."
      : `If ${error.location} is Intercom's API (or a proxy you trust), point --base-url (or INTERCOM_BASE_URL) there, without the scroll's path; otherwise check --base-url.`,
  Unreachable: (error) =>
    error.proxy === undefined
      ? "Check --base-url (or INTERCOM_BASE_URL, or --region), that the server there is running, and the network or proxy in between."
      : "Check the proxy that HTTPS_PROXY or HTTP_PROXY names (its address, and its user:password@ if it asks for one), that it is running and lets this machine through; NO_PROXY names the hosts reached without it."
}

/**
 * The same, for a workspace of `fleet sync`: its token is in the variable its `tokenEnv` names on the runners, where it
 * is, in the workspaces file, and a run sent again under its name is answered as it was.
 */
const fleetAdvice: { readonly [E in ScrollError.ScrollError as E["_tag"]]: (error: E) => string } = {
  Expired: () => "The sync fell behind Intercom's minute more often than it restarts: sync again under a new --run.",
  ConcurrentScroll: () => "Another app may be scrolling the workspace: sync again under a new --run once it is done.",
  RestartRequired: () => "Sync again later, under a new --run.",
  RateLimited: (error) => `Sync again after ${error.resetTime}, under a new --run.${proxyLimit(error)}`,
  Unauthorized: (error) =>
    `Check the token in the variable the workspace's tokenEnv names, on the runners; its baseUrl or region in the workspaces file; and that the app may read ${error.resource}.`,
  ApiError: () => "",
  InvalidResponse: (error) =>
    error.id !== undefined
      ? recordAdvice
      : error.maxResponseBytes !== undefined
      ? `Intercom's pages of about 100 records stay far below the runners' limit of ${error.maxResponseBytes} bytes a page: check that the workspace's baseUrl in the workspaces file points at Intercom's API, or a faithful proxy; if it does, report the page's size to intercom-scroll.`
      : error.location === undefined
      ? "Check that the workspace's baseUrl in the workspaces file points at Intercom's API, or a faithful proxy."
      : `If ${error.location} is Intercom's API (or a proxy you trust), point the workspace's baseUrl in the workspaces file there, without the scroll's path; otherwise check it.`,
  Unreachable: (error) =>
    error.proxy === undefined
      ? "Check the workspace's baseUrl or region in the workspaces file, and that the runners can reach it."
      : "Check the proxy that the runners' HTTPS_PROXY or HTTP_PROXY names, that it is running and lets them through; NO_PROXY names the hosts reached without it."
}

const isScrollError = Schema.is(ScrollError.ScrollError)

/**
 * A scroll's error (or a sync's `TableLocked`) of a workspace that `fleet sync` sent, with advice in the fleet's terms
 * (the workspaces file, the runners' variables, `--run`), or undefined for any other error.
 *
 * @since 0.1.0
 * @category rendering
 */
export const describeInFleet = (error: unknown): string | undefined => {
  // The library's advice names its tableLockTimeout option, which a fleet's syncs do not take: theirs is its default.
  if (isTableLocked(error)) return `${error._tag}: ${error.problem} ${tableLockedInFleetAdvice}`
  if (!isScrollError(error)) return undefined
  const said = (fleetAdvice[error._tag] as (error: ScrollError.ScrollError) => string)(error)
  return said === "" ? `${error._tag}: ${error.problem}` : `${error._tag}: ${error.problem} ${said}`
}

/** A sync that waited out its `--lock-timeout`: the library's advice names its option, this says the flag. */
const isLockTimeout = Schema.is(SyncError.LockTimeout)
const lockTimeoutAdvice =
  "Run again once the other sync has finished, or wait longer for it with --lock-timeout DURATION, such as --lock-timeout 10m (by default a sync waits as long as it takes)."

/** A statement held by another session's lock: the library's advice names its option, this says the flag. */
const isTableLocked = Schema.is(SyncError.TableLocked)
const tableLockedAdvice =
  "End that session's transaction (COMMIT or ROLLBACK it, or SELECT pg_terminate_backend(pid)) and sync again, or wait longer for it with --table-lock-timeout DURATION, such as --table-lock-timeout 10m (default 1m)."

/** `Sync.migrate`'s, which only a runner's start calls here: it takes no option, and the runner no flag for it. */
const tableLockedAtStartAdvice =
  "End that session's transaction (COMMIT or ROLLBACK it, or SELECT pg_terminate_backend(pid)) and start the runner again: its migrations wait 1 minute for such a lock."

const tableLockedInFleetAdvice =
  "End that session's transaction (COMMIT or ROLLBACK it, or SELECT pg_terminate_backend(pid)) and sync again under a new --run: a runner's sync waits 1 minute for such a lock."

/** A sync whose database answered nothing for its `--unanswered-timeout`: the flag that rides out a longer outage. */
const isLockLost = Schema.is(SyncError.LockLost)
const unansweredAdvice =
  "If the database is coming back (a failover, a restart, a network outage), sync again, or give it longer with --unanswered-timeout DURATION, such as --unanswered-timeout 10m (default 2m)."

/** A token of another workspace than the rows': the library's advice speaks of names, this says the flag. */
const isWorkspaceMismatch = Schema.is(SyncError.WorkspaceMismatch)
const workspaceMismatchAdvice = (error: SyncError.WorkspaceMismatch) =>
  `Sync this token under a name of its own (--workspace NAME), or run with the token of ${error.boundApp}. If ${
    JSON.stringify(error.workspace)
  } should hold ${error.tokenApp}'s records from now on (the next complete sync then marks the old ones deleted), bind it to that workspace: ${error.rebind}`

/** The errors whose text this package and the core write, never holding the token: the client redacts what it quotes. */
const isOwnError = Schema.is(
  Schema.Union(
    ScrollError.ScrollError,
    ScrollError.InvalidOptions,
    SyncError.LockTimeout,
    SyncError.WorkspaceMismatch,
    InvalidConfig,
    OutputError
  )
)

/**
 * Where the failed run was started from.
 *
 * @since 0.1.0
 * @category models
 */
export interface Surface {
  /**
   * The command whose flags the advice names, when the program that failed takes none itself (`pnpm start`), so that
   * the user can act on the advice from where they are.
   */
  readonly flagsOf?: string | undefined
  /** The subcommand that ran (`["fleet", "runner"]`, from `Help.subcommandPath`): what stopping it part-way leaves. */
  readonly subcommand?: ReadonlyArray<string> | undefined
}

/**
 * The line for a command stopped part-way (Ctrl-C, SIGTERM, SIGHUP), by subcommand: what each leaves behind differs.
 * An export's without one (`pnpm start`).
 */
const stoppedLine = (subcommand: ReadonlyArray<string>): string => {
  switch (subcommand.join(" ")) {
    case "sync":
      return "Interrupted: stopped before the end (a run begun is recorded as interrupted; a record is marked deleted only once a complete scroll missed it)"
    case "fleet runner":
      // A runner's way to end: its syncs have finished, or gone back to the fleet's storage for the next owner.
      return "Stopped: the runner's syncs finished, or went back to the fleet for another runner"
    case "fleet sync":
      return "Interrupted: stopped, and so did the syncs it was waiting for (a run begun is recorded as interrupted; a record is marked deleted only once a complete scroll missed it)"
    case "fleet status":
      return "Interrupted: stopped before the end (it only reads: nothing changed)"
    case "fleet prune":
      return "Interrupted: stopped before the end (what it pruned stays pruned; run it again for the rest)"
    case "export":
      return "Interrupted: stopped before the end (an export leaves its --out file as it was)"
    default:
      return "Interrupted: stopped before the end (the export's file is left as it was)"
  }
}

/** An error whose `code` (PostgreSQL's SQLSTATE, Node's errno name) is `code`, anywhere down its causes (five deep at most). */
const hasCode = (code: string) => (error: unknown): boolean => {
  let cause = error
  for (let depth = 0; typeof cause === "object" && cause !== null && depth < 5; depth++) {
    if ((cause as { readonly code?: unknown }).code === code) return true
    cause = (cause as { readonly cause?: unknown }).cause
  }
  return false
}

/** PostgreSQL's SQLSTATE 42501 (insufficient_privilege): the role may not do it. */
const lacksPrivilege = hasCode("42501")

const portInUse = hasCode("EADDRINUSE")

/**
 * Which flag gave a port that another process listens on, at a runner's start: the platform's errors say the address,
 * and a runner has two ports, its own (`SocketServerError`, the cluster's server) and its health probe's (`ServeError`).
 */
const portInUseAdvice = (label: string, subcommand: ReadonlyArray<string>): string | undefined => {
  if (subcommand.join(" ") !== "fleet runner") return undefined
  if (label === "SocketServerError") {
    return "Another process listens on this runner's port: give --port (or INTERCOM_SCROLL_RUNNER_PORT) a free one."
  }
  if (label === "ServeError") {
    return "Another process listens on the health port: give --health-port (or INTERCOM_SCROLL_HEALTH_PORT) a free one."
  }
  return undefined
}

/**
 * What the role needs, by subcommand: PostgreSQL names the object it refused, not which command needs what, and since
 * PostgreSQL 15 no role but the database's owner may create in schema public.
 */
const privilegeAdvice = (subcommand: ReadonlyArray<string>): string => {
  const ownSchema = "or give the role a schema of its own, named in the URL (?options=-c%20search_path%3Dintercom)"
  switch (subcommand.join(" ")) {
    case "fleet runner":
    case "fleet sync":
      return `The fleet's processes create the cluster's tables, and check them at every start with CREATE … IF NOT EXISTS, which needs CREATE on the schema even once they exist, as well as SELECT, INSERT, UPDATE and DELETE on the tables: run them with the tables' owner, ${ownSchema}.`
    case "fleet status":
      return "fleet status only reads: its role needs USAGE on the schema and SELECT on the sync's and the cluster's tables."
    case "fleet prune":
      return "fleet prune deletes: its role needs USAGE on the schema, and SELECT and DELETE on the sync's runs and the cluster's tables, and the same CREATE as a runner, whose cluster layer it opens."
    default:
      return `A sync creates or upgrades its tables when they are missing or older than this version, which needs CREATE on the schema; once they are current, a role with USAGE on the schema and SELECT, INSERT, UPDATE and DELETE on the tables (and USAGE on their sequences) syncs. Run the first sync, and the first after an upgrade, with the tables' owner, ${ownSchema}.`
  }
}

const withAdvice = (error: ScrollError.ScrollError, surface: Surface): string => {
  const said = (advice[error._tag] as (error: ScrollError.ScrollError) => string)(error)
  if (said === "") return error.problem
  const namesFlags = surface.flagsOf !== undefined && / --[a-z]/.test(said)
  return namesFlags ? `${error.problem} ${said} (Those are flags of ${surface.flagsOf}, which runs the same export.)` : `${error.problem} ${said}`
}

const describe = (error: unknown, surface: Surface = {}): string => {
  if (isScrollError(error)) return `${error._tag}: ${withAdvice(error, surface)}`
  if (isLockTimeout(error)) return `${error._tag}: ${error.problem} ${lockTimeoutAdvice}`
  if (isTableLocked(error)) {
    return `${error._tag}: ${error.problem} ${error.workspace === undefined ? tableLockedAtStartAdvice : tableLockedAdvice}`
  }
  if (isWorkspaceMismatch(error)) return `${error._tag}: ${error.problem} ${workspaceMismatchAdvice(error)}`
  if (isLockLost(error) && error.unanswered) return `${error._tag}: ${error.message} ${unansweredAdvice}`
  if (typeof error === "object" && error !== null) {
    const { _tag, name, message } = error as { readonly _tag?: unknown; readonly name?: unknown; readonly message?: unknown }
    const label = typeof _tag === "string" ? _tag : typeof name === "string" ? name : "Error"
    // What another library's error says its causes were, when they say more than it: @effect/sql's `SqlError` is
    // "Failed to execute statement", the database's words ("relation … does not exist") in its cause. An error that
    // says all in its cause (the platform's ServeError: a port in use) has no message of its own.
    const { cause } = error as { readonly cause?: unknown }
    const said = typeof message === "string" && message !== ""
      ? `${label}: ${SyncError.explain({ message, cause })}`
      : `${label}${SyncError.explain({ message: "", cause })}`
    if (lacksPrivilege(error)) return `${said}. ${privilegeAdvice(surface.subcommand ?? [])}`
    // A statement outside a run (which says `TablesAltered` itself) that met a table of the sync's missing.
    const altered = SyncError.TablesAltered.fromError(error)
    if (altered !== undefined) return `${said}. ${altered.advice}`
    const port = portInUse(error) ? portInUseAdvice(label, surface.subcommand ?? []) : undefined
    return port === undefined ? said : `${said}. ${port}`
  }
  return `Error: ${String(error)}`
}

/**
 * The one line to print for a failed run, or undefined when there is nothing to add: @effect/cli has already
 * printed its usage error, or the reader of stdout has gone away (a closed pipe is no one's mistake, and Unix tools
 * say nothing about it). A scroll's error comes with advice in this command line's terms (and, for a program without
 * flags, the command that takes them: `surface`). Line breaks are folded.
 *
 * The library's and this package's own errors are printed as they are: the client has already replaced the token in
 * whatever they quote from a server or the transport, and their own words are never touched, which a short token would
 * damage. Anything else (a defect, a failure of unknown kind) has each secret replaced, as the client would.
 *
 * @since 0.1.0
 * @category rendering
 */
export const line = (
  cause: Cause.Cause<unknown>,
  secrets: ReadonlyArray<Redacted.Redacted<string>> = [],
  surface: Surface = {}
): string | undefined => {
  if (isStdoutClosed(cause)) return undefined
  const oneLine = (text: string) => text.replace(/\s*[\r\n]+\s*/g, " ").trim()
  if (Cause.isInterruptedOnly(cause)) return stoppedLine(surface.subcommand ?? [])
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && ValidationError.isValidationError(failure.value)) return undefined
  if (Option.isSome(failure) && isOwnError(failure.value)) return oneLine(describe(failure.value, surface))
  const text = Option.match(failure, {
    onSome: (error) => describe(error, surface),
    onNone: () => Option.match(Cause.dieOption(cause), { onSome: (error) => describe(error, surface), onNone: () => `Error: ${Cause.pretty(cause)}` })
  })
  return secrets.map(IntercomClient.redactToken).reduce((redacted, redact) => redact(redacted), oneLine(text))
}
