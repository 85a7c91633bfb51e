/**
 * The database a sync writes to, named by a URL as a command line or a configuration file gives it: `sqlite:PATH`
 * (a file, created with its parent directories if missing) or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`
 * (`postgresql://` too; without a password in the URL, `PGPASSWORD` is read, as libpq does). `layerFromUrl` gives a
 * `SqlClient` for it, loading the driver it needs (`@effect/sql-sqlite-node` or `@effect/sql-pg`, optional peers of
 * this package) only then: a program that never opens a PostgreSQL database never loads `pg`.
 *
 * A URL may hold a password: it is kept `Redacted`, and what names the database in a message (`display`) leaves it
 * out.
 *
 * @example
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { IntercomClient } from "@intercom-scroll/core"
 * import { Sync, SyncDatabase } from "@intercom-scroll/sync"
 * import { Console, Effect, Layer } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const summary = yield* Sync.run("users", { workspace: "acme" })
 *   yield* Console.log(`${summary.inserted} new, ${summary.deleted} deleted`)
 * })
 *
 * // Run it with NodeRuntime.runMain(main), INTERCOM_ACCESS_TOKEN set.
 * export const main = program.pipe(
 *   Effect.provide(Layer.mergeAll(
 *     IntercomClient.layerConfig().pipe(Layer.provide(NodeHttpClient.layerUndici)),
 *     SyncDatabase.layerFromUrl("sqlite:data/intercom.sqlite") // or "postgres://sync@db.internal/intercom"
 *   ))
 * )
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Cause, Config, Context, type ConfigError, Data, Duration, Effect, Layer, Option, Redacted, Schema, type Scope } from "effect"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as DatabaseClock from "./internal/databaseClock.js"
import * as Directories from "./internal/directories.js"
import * as Driver from "./internal/driver.js"
import { maxTimerMillis } from "./internal/timer.js"

/**
 * A database the sync can write to.
 *
 * @since 0.1.0
 * @category models
 */
export type Database = Data.TaggedEnum<{
  /** A SQLite file; a relative path is against the working directory. */
  Sqlite: { readonly filename: string }
  /** A PostgreSQL connection URL, redacted: it may hold a password. */
  Postgres: { readonly url: Redacted.Redacted<string> }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const Database = Data.taggedEnum<Database>()

/**
 * A URL that names no database the sync can use.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidDatabaseUrl extends Schema.TaggedError<InvalidDatabaseUrl>()("InvalidDatabaseUrl", {
  /** What is wrong, without the URL itself (it may hold a password). */
  detail: Schema.String
}) {
  override get message(): string {
    return `Invalid database URL: ${this.detail}. Give sqlite:PATH (a file, created if missing) or postgres://USER:PASSWORD@HOST:PORT/DATABASE (or PGPASSWORD for the password).`
  }
}

/**
 * The database could not be opened: a server that refuses the connection or the password, a file that cannot be
 * created or is not a SQLite database, a driver that is not installed.
 *
 * @since 0.1.0
 * @category errors
 */
export class DatabaseUnavailable extends Schema.TaggedError<DatabaseUnavailable>()("DatabaseUnavailable", {
  /** The database as `display` names it: never its password. */
  database: Schema.String,
  detail: Schema.String,
  /**
   * The server did not answer (refused, unreachable, not found by name, still starting): it may a little later, as
   * when a process starts before its database. False for an answer that will not change by itself (a password, a
   * database that does not exist).
   */
  transient: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /**
   * Of those, the server answered that every session it allows is taken (53300: `max_connections`, or the role's
   * `CONNECTION LIMIT`): one frees as another client ends, where a server that does not answer may not come back.
   */
  busy: Schema.optionalWith(Schema.Boolean, { default: () => false })
}) {
  override get message(): string {
    return `Could not open the database ${this.database}: ${this.detail}`
  }
}

const postgresScheme = /^postgres(?:ql)?:\/\//i

/** A URL whose authority is credentials and an empty host: `postgres://USER:PASSWORD@/DATABASE?…`. */
const credentialsWithoutHost = /^(postgres(?:ql)?:\/\/)([^/?#]*)@((?:[/?#][\s\S]*)?)$/i

/**
 * libpq's `postgres://USER:PASSWORD@/DATABASE?host=/var/run/postgresql` (a Unix socket, or the default host) leaves
 * the host empty, which WHATWG's URL refuses after credentials. The same URL with them as `user` and `password`
 * parameters, which libpq and node-postgres read alike; undefined for anything else.
 */
const credentialsAsParameters = (url: string): string | undefined => {
  const [, scheme, userinfo, rest] = credentialsWithoutHost.exec(url) ?? []
  if (scheme === undefined || userinfo === undefined || rest === undefined) return undefined
  const withoutCredentials = `${scheme}${rest.startsWith("/") ? "" : "/"}${rest}`
  if (!URL.canParse(withoutCredentials)) return undefined
  const parsed = new URL(withoutCredentials)
  const colon = userinfo.indexOf(":")
  const credentials = { user: colon < 0 ? userinfo : userinfo.slice(0, colon), password: colon < 0 ? "" : userinfo.slice(colon + 1) }
  try {
    for (const [name, value] of Object.entries(credentials)) {
      if (value !== "" && !parsed.searchParams.has(name)) parsed.searchParams.set(name, decodeURIComponent(value))
    }
  } catch {
    return undefined // a malformed percent-escape
  }
  return parsed.href
}

/** A URL component percent-decoded; undefined where an escape is malformed. */
const decoded = (text: string): string | undefined => {
  try {
    return decodeURIComponent(text)
  } catch {
    return undefined
  }
}

/**
 * Reads `sqlite:PATH` (`~/` at its start is the home directory) and `postgres://…` (or `postgresql://…`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse = (url: string): Effect.Effect<Database, InvalidDatabaseUrl> => {
  if (postgresScheme.test(url)) {
    const readable = URL.canParse(url) ? url : credentialsAsParameters(url)
    if (readable === undefined) {
      return Effect.fail(new InvalidDatabaseUrl({ detail: "the postgres:// URL cannot be parsed" }))
    }
    const parsed = new URL(readable)
    // The driver decodes the user and password, and throws on a malformed escape ("p%zz"): said here, without them.
    for (const [part, text] of [["user", parsed.username], ["password", parsed.password]] as const) {
      if (decoded(text) === undefined) {
        return Effect.fail(
          new InvalidDatabaseUrl({ detail: `the ${part} in the postgres:// URL has a malformed %-escape (write a % as %25)` })
        )
      }
    }
    const sslMode = parsed.searchParams.get("sslmode")
    const problem = sslMode === null ? undefined : sslModeProblem(sslMode)
    if (problem !== undefined) return Effect.fail(new InvalidDatabaseUrl({ detail: `its sslmode ${problem}` }))
    if (parsed.searchParams.has("service")) {
      return Effect.fail(
        new InvalidDatabaseUrl({
          detail: "service= names an entry of libpq's service file, which the driver does not read: give the host, port, user and database in the URL"
        })
      )
    }
    // libpq's `?dbname=`, which the driver does not read: it would connect to PGDATABASE's, or the user's.
    const dbname = parsed.searchParams.get("dbname")
    if (dbname !== null) {
      const inPath = decoded(parsed.pathname.replace(/^\//, ""))
      if (inPath !== undefined && inPath !== "" && inPath !== dbname) {
        return Effect.fail(new InvalidDatabaseUrl({ detail: `it names two databases, ${JSON.stringify(inPath)} and dbname=${JSON.stringify(dbname)}` }))
      }
      parsed.pathname = `/${encodeURIComponent(dbname)}`
      parsed.searchParams.delete("dbname")
      return Effect.succeed(Database.Postgres({ url: Redacted.make(parsed.href) }))
    }
    return Effect.succeed(Database.Postgres({ url: Redacted.make(readable) }))
  }
  if (url.toLowerCase().startsWith("sqlite:")) {
    let filename = url.slice("sqlite:".length)
    // sqlite:///abs/path, as some tools write it, is the path /abs/path; sqlite://x would name a host.
    if (filename.startsWith("///")) filename = filename.slice(2)
    else if (filename.startsWith("//")) {
      return Effect.fail(
        new InvalidDatabaseUrl({ detail: "sqlite: takes a path, as in sqlite:data/intercom.sqlite or sqlite:/var/lib/intercom.sqlite" })
      )
    }
    // The shell expands `~/` only at the start of a word, never after `sqlite:`.
    if (filename.startsWith("~/")) filename = path.join(os.homedir(), filename.slice(2))
    if (filename === "") return Effect.fail(new InvalidDatabaseUrl({ detail: "sqlite: needs the path of a file" }))
    if (filename.includes("?")) {
      return Effect.fail(
        new InvalidDatabaseUrl({ detail: "sqlite: takes a path and no query: what follows the ? would be part of the file's name" })
      )
    }
    if (filename === ":memory:") {
      return Effect.fail(
        new InvalidDatabaseUrl({ detail: "sqlite::memory: would be gone when the process ends: give the path of a file" })
      )
    }
    return Effect.succeed(Database.Sqlite({ filename }))
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]
  return Effect.fail(
    new InvalidDatabaseUrl({
      detail: scheme === undefined
        ? "it names no scheme"
        // The scheme alone: what follows it may be a password.
        : `the scheme ${JSON.stringify(scheme)} is neither sqlite nor postgres`
    })
  )
}

/**
 * The database as a message may name it: `sqlite:PATH` with the path made absolute, or `postgres://USER@HOST:PORT/DB`
 * without the password and without the query (whose parameters may hold one), but for the `host` and `port` parameters
 * of a URL with no host of its own (a Unix socket's directory and port, which tell servers of one machine apart).
 *
 * @since 0.1.0
 * @category rendering
 */
export const display = (database: Database): string =>
  Database.$match(database, {
    Sqlite: ({ filename }) => `sqlite:${path.resolve(filename)}`,
    Postgres: ({ url }) => {
      const parsed = new URL(Redacted.value(url))
      // The user may be a parameter (libpq's `?user=`), as `parse` writes a URL with credentials and no host.
      const username = parsed.username !== "" ? parsed.username : encodeURIComponent(parsed.searchParams.get("user") ?? "")
      const user = username === "" ? "" : `${username}@`
      const socket = parsed.host === "" ? parsed.searchParams.get("host") : null
      // A socket's port names its file in that directory (`.s.PGSQL.5433`): another server of the machine.
      const socketPort = socket === null ? null : parsed.searchParams.get("port")
      return `${parsed.protocol}//${user}${parsed.host}${parsed.pathname === "/" ? "" : parsed.pathname}${
        socket === null ? "" : `?host=${socket}`
      }${socketPort === null ? "" : `&port=${socketPort}`}`
    }
  })

/**
 * The secrets a URL carries (its password, in the userinfo or as a `password` parameter), for a caller that must
 * scrub them from text it did not write, such as a driver's error message.
 *
 * @since 0.1.0
 * @category rendering
 */
export const secrets = (database: Database): ReadonlyArray<string> =>
  Database.$match(database, {
    Sqlite: () => [],
    Postgres: ({ url }) => {
      const parsed = new URL(Redacted.value(url))
      const fromQuery = parsed.searchParams.get("password")
      return [decoded(parsed.password) ?? "", parsed.password, fromQuery ?? ""].filter((secret) => secret !== "")
    }
  })

/** The message of whatever a driver failed with, in one line. */
const describe = (cause: unknown): string => {
  if (cause instanceof AggregateError && cause.errors.length > 0) {
    // Node reports a refused connection to a name with several addresses (localhost: ::1 and 127.0.0.1) this way,
    // with an empty message of its own.
    return [...new Set(cause.errors.map(describe))].join("; ")
  }
  if (cause instanceof Error) {
    const { cause: inner, code } = cause as Error & { readonly code?: unknown }
    if (cause.message !== "") return cause.message
    if (inner !== undefined) return describe(inner)
    if (typeof code === "string") return code
    return cause.name
  }
  return String(cause)
}

/** The driver's own error under @effect/sql's wrapper ("PgClient: Failed to connect"), which says little. */
const driverError = (cause: Cause.Cause<unknown>): unknown => {
  const error = Option.getOrElse(Cause.failureOption(cause), () => Cause.squash(cause))
  return (error as { readonly cause?: unknown }).cause ?? error
}

/**
 * Node's codes for a server that did not answer, PostgreSQL's for one shutting down or starting up (57P01–57P03), and
 * for one whose connections are all taken (53300: `max_connections`, or the role's `CONNECTION LIMIT`), which frees
 * them as other clients end. node-postgres ends a connection that timed out with "Connection terminated unexpectedly",
 * and no code.
 */
const notAnswering = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "57P01",
  "57P02",
  "57P03",
  "53300"
])

/** Whether a driver's own error says the server had no session to spare (53300). */
const busyError = (error: unknown): boolean =>
  error instanceof Error && (error as Error & { readonly code?: unknown }).code === "53300"

/** Whether a driver's own error (not its wrapper's) says the server did not answer, or had no connection to spare. */
const notAnsweringError = (error: unknown): boolean => {
  if (error instanceof AggregateError) return error.errors.length > 0 && error.errors.every(notAnsweringError)
  if (!(error instanceof Error)) return false
  const { code } = error as Error & { readonly code?: unknown }
  return (typeof code === "string" && notAnswering.has(code)) || error.message === "Connection terminated unexpectedly"
}

/**
 * Whether a failure of the database may pass by itself: the server did not answer (refused, reset, timed out, not
 * found by name), is starting up or shutting down, or had all its connections taken (53300, `max_connections` or the
 * role's `CONNECTION LIMIT`). Looked for in a `DatabaseUnavailable` (its `transient`) and down an `SqlError`'s causes,
 * so that a process that waits and tries again, as a fleet's runner does at its start, can tell such a failure from
 * one that waiting does not mend: a password, a privilege, a missing database.
 *
 * @since 0.1.0
 * @category errors
 */
export const isTransient = (error: unknown): boolean => foundDown(error, (unavailable) => unavailable.transient, notAnsweringError)

/**
 * Whether the server answered that every session it allows is taken (53300: `max_connections`, or the role's
 * `CONNECTION LIMIT`), in a `DatabaseUnavailable` (its `busy`) or down an `SqlError`'s causes: a short-lived process
 * (`fleet sync`, `fleet status`) waits for a session to free, where it fails at once for a server that does not
 * answer.
 *
 * @since 0.1.0
 * @category errors
 */
export const isBusy = (error: unknown): boolean => foundDown(error, (unavailable) => unavailable.busy, busyError)

/** What `inUnavailable` says of a `DatabaseUnavailable`, or whether `driver` takes an error down `error`'s causes. */
const foundDown = (
  error: unknown,
  inUnavailable: (error: DatabaseUnavailable) => boolean,
  driver: (error: unknown) => boolean
): boolean => {
  // A few levels at most: a cause's chain is the driver's, and may loop.
  let cause = error
  for (let depth = 0; depth < 5 && typeof cause === "object" && cause !== null; depth++) {
    if (cause instanceof DatabaseUnavailable) return inUnavailable(cause)
    if (driver(cause)) return true
    cause = (cause as { readonly cause?: unknown }).cause
  }
  return false
}

const unavailable = (database: Database) => (cause: Cause.Cause<unknown>): Layer.Layer<unknown, DatabaseUnavailable> => {
  // An interrupt is not the database's doing.
  if (Cause.isInterruptedOnly(cause)) return Layer.failCause(cause as Cause.Cause<never>)
  const said = Cause.failureOption(cause).pipe(Option.filter((error) => error instanceof DatabaseUnavailable))
  if (Option.isSome(said)) return Layer.fail(said.value)
  const error = driverError(cause)
  let detail = describe(error)
  for (const secret of secrets(database)) detail = detail.replaceAll(secret, "<redacted>")
  return Layer.fail(
    new DatabaseUnavailable({
      database: display(database),
      detail: Driver.advise(detail, error),
      transient: notAnsweringError(error),
      busy: busyError(error)
    })
  )
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * PostgreSQL: connections in the pool. One for each workspace syncing at once, and one more: a run holding its
   * workspace's lock keeps a connection to its end (and records its end on it), while runs waiting for a lock, and each
   * run's look at the tables' version before it tries, take the one more for a moment at a time. So 2 for one
   * workspace, 5 for four workspaces at once. A run that finds none free fails once `connectTimeout` has passed.
   * Default 4. Fewer than 2 is a mistake in the code: the layer dies with it.
   */
  readonly maxConnections?: number | undefined
  /**
   * PostgreSQL: how long to wait for the server to answer a new connection, and for a free connection of the pool.
   * Default 10 seconds. Zero, negative, or over 24 days (Node's timers) is a mistake in the code: the layer dies with it.
   */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** PostgreSQL: names the sessions in `pg_stat_activity`. Default `intercom-scroll`. */
  readonly applicationName?: string | undefined
}

/** The `sslmode`s the driver knows: libpq's but `allow`, and node-postgres's own `no-verify`. */
const sslModes: ReadonlyArray<string> = ["disable", "prefer", "require", "verify-ca", "verify-full", "no-verify"]

/**
 * What is wrong with an `sslmode`, as libpq refuses one it does not know. The driver takes any other word in a URL
 * for `verify-full`, and in `PGSSLMODE` for `disable`: a typo there would connect without TLS.
 */
const sslModeProblem = (mode: string): string | undefined =>
  sslModes.includes(mode) ? undefined : `${JSON.stringify(mode)} is not one of ${sslModes.join(", ")}${
    mode === "allow" ? " (libpq's allow, without TLS unless the server insists, is not the driver's: give disable or prefer)" : ""
  }`

/** node-postgres's words for a server that answered its request for TLS with a no. */
const speaksNoTls = /does not support SSL/

const withSslMode = (url: string, mode: string): string => {
  const parsed = new URL(url)
  parsed.searchParams.set("sslmode", mode)
  return parsed.href
}

/**
 * What libpq reads for TLS where the URL does not say, and node-postgres does not read: `PGSSLMODE`, the files
 * `PGSSLROOTCERT`, `PGSSLCERT` and `PGSSLKEY` name, and else those of `~/.postgresql/` that exist (`root.crt`, and
 * `postgresql.crt` with `postgresql.key`).
 */
interface LibpqEnvironment {
  readonly sslMode: string | undefined
  readonly files: ReadonlyArray<readonly ["sslrootcert" | "sslcert" | "sslkey", string]>
}

const exists = (file: string): Effect.Effect<boolean> =>
  Effect.promise(() => fs.access(file).then(() => true, () => false))

const libpqEnvironment: Effect.Effect<LibpqEnvironment, ConfigError.ConfigError> = Effect.gen(function*() {
  const read = (name: string) => Effect.map(Config.option(Config.string(name)), Option.getOrUndefined)
  const home = path.join(os.homedir(), ".postgresql")
  const orDefault = (given: string | undefined, file: string) =>
    given !== undefined ? Effect.succeed(given) : Effect.map(exists(file), (found) => found ? file : undefined)
  const rootCert = yield* orDefault(yield* read("PGSSLROOTCERT"), path.join(home, "root.crt"))
  const cert = yield* orDefault(yield* read("PGSSLCERT"), path.join(home, "postgresql.crt"))
  const key = yield* orDefault(yield* read("PGSSLKEY"), path.join(home, "postgresql.key"))
  const files: Array<readonly ["sslrootcert" | "sslcert" | "sslkey", string]> = []
  if (rootCert !== undefined) files.push(["sslrootcert", rootCert])
  // A certificate without its key (or a key alone) is of no use to the handshake, and the driver would fail on it.
  if (cert !== undefined && key !== undefined) files.push(["sslcert", cert], ["sslkey", key])
  return { sslMode: yield* read("PGSSLMODE"), files }
})

/**
 * The URL with TLS meaning what libpq (psql) makes of it, as a URL copied from psql or a managed database's console
 * means it: `require` and `prefer` encrypt without verifying the server's certificate, where node-postgres 8 verifies
 * it fully (a self-signed certificate failed where psql connected, after a warning of a dozen lines), unless a root
 * certificate is given (`sslrootcert`, `PGSSLROOTCERT` or `~/.postgresql/root.crt`): `require` then checks the chain,
 * as `verify-ca` does. `verify-full`, `disable` and node-postgres's own `no-verify` mean the same either way. What the
 * URL does not say comes from the environment, as in libpq (`LibpqEnvironment`), where the mode asks for TLS; a URL
 * that says `uselibpqcompat` itself is left as it is.
 */
const libpqTls = (url: string, environment: LibpqEnvironment): string => {
  const parsed = new URL(url)
  if (parsed.searchParams.has("uselibpqcompat")) return url
  const mode = parsed.searchParams.get("sslmode") ?? environment.sslMode
  if (mode === undefined || mode === "disable") return url
  let added = false
  for (const [parameter, file] of environment.files) {
    if (!parsed.searchParams.has(parameter)) {
      parsed.searchParams.set(parameter, file)
      added = true
    }
  }
  const differs = mode === "require" || mode === "prefer" || (mode === "verify-ca" && parsed.searchParams.has("sslrootcert"))
  if (!differs && !added) return url
  parsed.searchParams.set("sslmode", mode)
  if (differs) parsed.searchParams.set("uselibpqcompat", "true")
  return parsed.href
}

/**
 * A `SqlClient` for the database, its driver loaded when the layer is built. A SQLite file is created if missing,
 * with its parent directories, and its WAL is copied into it every 10,000 pages (SQLite's default is 1,000: see
 * the README's "What it costs"). Fails with `DatabaseUnavailable` when the database cannot be opened: PostgreSQL is
 * asked for a first answer before the layer is built, so a wrong password or an unreachable server fails here.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (database: Database, options: Options = {}): Layer.Layer<SqlClient, DatabaseUnavailable> => {
  const problem = optionsProblem(options)
  return problem === undefined ? layerOpened(database, options) : Layer.die(new Error(`SyncDatabase option ${problem}`))
}

/** What is wrong with `options`, numbers of a program rather than data: the layer dies with it, naming it. */
const optionsProblem = ({ connectTimeout, maxConnections }: Options): string | undefined => {
  if (maxConnections !== undefined && !(Number.isSafeInteger(maxConnections) && maxConnections >= 2)) {
    // With one, a run holding its lock keeps it, and a run waiting for the lock has none to try with.
    return `maxConnections must be a whole number from 2 (a sync holds one for its whole run, and a sync of the workspace waiting for it needs another to try), not ${maxConnections}`
  }
  if (connectTimeout !== undefined) {
    // Unchecked, a zero or negative one timed out at once and a NaN or "bogus" failed to decode, each reported as the
    // database being unavailable; an infinite one overflowed Node's timer, which fires at once.
    const decoded = Duration.decodeUnknown(connectTimeout)
    const negative = (typeof connectTimeout === "number" && !(connectTimeout > 0)) ||
      (typeof connectTimeout === "string" && connectTimeout.trim().startsWith("-"))
    if (
      negative || Option.isNone(decoded) || !Duration.isFinite(decoded.value) || Duration.toMillis(decoded.value) <= 0 ||
      Duration.toMillis(decoded.value) > maxTimerMillis
    ) {
      return `connectTimeout must be a duration above zero and at most 24 days, such as "10 seconds", not ${String(connectTimeout)}`
    }
  }
  return undefined
}

/**
 * SQLite: the WAL's length, in pages, past which a commit copies it into the database file (SQLite's default is
 * 1,000). A first sync's page rewrites ~200 leaves of the key index and the seen table (the ids come in no order), so a
 * checkpoint every ~4 pages wrote the same leaves again and again: every 40 pages, a first sync of 50,000 users writes
 * 18 % fewer bytes and fsyncs a tenth as often (packages/bench/NOTES.md, "The first sync into SQLite, checkpointed
 * less often"). The WAL grows to ~40 MB meanwhile, and goes when the database is closed.
 */
const walAutocheckpointPages = 10_000

/** How long SQLite's client keeps a statement prepared, or failed to prepare, before it prepares it again. */
const preparedFor = Duration.seconds(10)

/**
 * PostgreSQL: how long a connection may be idle, or wait for an answer already acknowledged, before its TCP keepalives
 * start. Node then probes every second and gives up after 10 unanswered probes (libuv's settings on Linux), so a path to
 * the server that went silent without a reset (a firewall or NAT that dropped the connection's state, an old primary's
 * address after a failover) fails the waiting statement with ETIMEDOUT ~20 s on, where the system's defaults (2 hours,
 * then 9 probes 75 s apart) held it for over two. A server busy with a long statement still answers them (its kernel
 * does), so no statement is cut for its length. They do not help while a statement is unacknowledged (the kernel's
 * retransmissions, ~15 minutes by `tcp_retries2`), nor against a peer that acknowledges and never answers.
 */
const keepAliveIdleMillis = 10_000

/** node-postgres's socket, with keepalives, which @effect/sql-pg passes no option for. */
const keepAliveSocket = (): net.Socket => new net.Socket().setKeepAlive(true, keepAliveIdleMillis)

/**
 * A pool's sockets (`keepAliveSocket`), those still open destroyed as the scope closes: after the pool's own end, which
 * @effect/sql-pg gives a second. pg-pool ends a connection only once it has it back, and one it never gets back kept
 * a finished process alive: an interrupted statement's cancel (`pool.query("SELECT pg_cancel_backend(…)")`) that
 * landed on a connection gone silent, which @effect/sql-pg stops waiting for after 5 s and pg-pool holds until an answer
 * that never comes.
 */
const poolSockets: Effect.Effect<() => net.Socket, never, Scope.Scope> = Effect.map(
  Effect.acquireRelease(
    Effect.sync(() => new Set<net.Socket>()),
    (sockets) =>
      Effect.sync(() => {
        for (const socket of sockets) socket.destroy()
      })
  ),
  (sockets) => () => {
    const socket = keepAliveSocket()
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
    return socket
  }
)

const layerOpened = (database: Database, options: Options): Layer.Layer<SqlClient, DatabaseUnavailable> =>
  Database.$match(database, {
    Sqlite: ({ filename }) =>
      Layer.unwrapEffect(Effect.gen(function*() {
        yield* Directories.makeDurably(path.dirname(path.resolve(filename)))
        // SQLite says only "unable to open database file" of a directory (`sqlite:/tmp`): said with what to write.
        const isDirectory = yield* Effect.promise(() => fs.stat(filename).then((stat) => stat.isDirectory(), () => false))
        if (isDirectory) {
          return yield* new DatabaseUnavailable({
            database: display(database),
            detail: `it is a directory; name a file in it, such as sqlite:${path.join(filename, "intercom.sqlite")}`
          })
        }
        // SQLite opens a file it may not write read-only, without a word, and the run then failed at its first write with
        // an SqlError ("attempt to write a readonly database") that named neither the file nor what to do.
        const unwritable = yield* Directories.unwritable(filename)
        if (unwritable !== undefined) {
          return yield* new DatabaseUnavailable({
            database: display(database),
            detail: `${unwritable} may not be written by this user (${Driver.sqliteNeedsToWrite})`
          })
        }
        const { SqliteClient } = yield* Driver.load("@effect/sql-sqlite-node", () => import("@effect/sql-sqlite-node"))
        // The driver keeps a statement that failed to prepare as it keeps one prepared, failed, for its cache's time to
        // live (10 minutes by default): a table mended by hand (a key rebuilt, a column named back) failed this
        // process's runs for that long. Prepared again every 10 s instead (microseconds a statement).
        return Layer.tap(SqliteClient.layer({ filename, prepareCacheTTL: preparedFor }), (context) =>
          Context.get(context, SqlClient).unsafe(`PRAGMA wal_autocheckpoint = ${walAutocheckpointPages}`))
      })),
    Postgres: ({ url }) =>
      Layer.unwrapEffect(Effect.gen(function*() {
        const { PgClient } = yield* Driver.load("@effect/sql-pg", () => import("@effect/sql-pg"))
        const given = Redacted.value(url)
        const environment = yield* libpqEnvironment
        // PGSSLMODE counts where the URL says no sslmode, as in libpq. The URL's was checked by `parse`, unless the
        // `Database` was made without it.
        const modeOfUrl = new URL(given).searchParams.get("sslmode")
        const mode = modeOfUrl ?? environment.sslMode
        const problem = mode === undefined ? undefined : sslModeProblem(mode)
        if (problem !== undefined) return yield* Effect.fail(new Error(`${modeOfUrl === null ? "PGSSLMODE" : "sslmode"} ${problem}`))
        // The sockets' finalizer comes first, so it runs after the pool's.
        const client = (target: string) =>
          Layer.unwrapScoped(Effect.map(poolSockets, (stream) =>
            PgClient.layer({
              url: Redacted.make(libpqTls(target, environment)),
              maxConnections: options.maxConnections ?? 4,
              connectTimeout: options.connectTimeout ?? Duration.seconds(10),
              applicationName: options.applicationName ?? "intercom-scroll",
              stream
            })))
        if (mode !== "prefer") return client(given)
        // libpq's prefer (its default, and in many URLs copied from tools): TLS where the server speaks it, and without
        // it where the server does not, which node-postgres's prefer refuses.
        return Layer.catchAllCause(client(given), (cause) =>
          !Cause.isInterruptedOnly(cause) && speaksNoTls.test(describe(driverError(cause)))
            ? client(withSslMode(given, "disable"))
            : Layer.failCause(cause))
      }))
  }).pipe(
    // better-sqlite3 throws from its constructor (a directory, a file that is not a database): a defect to catch.
    Layer.catchAllCause(unavailable(database))
  )

/**
 * `layer` for the database a URL names (`parse`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromUrl = (
  url: string,
  options: Options = {}
): Layer.Layer<SqlClient, InvalidDatabaseUrl | DatabaseUnavailable> =>
  Layer.unwrapEffect(Effect.map(parse(url), (database) => layer(database, options)))

/**
 * Runs `effect` on the database's clock: PostgreSQL's `clock_timestamp()`, measured as it starts on the process's
 * monotonic clock, and again every 30 seconds while it runs (SQLite's clock is the process's own, which it keeps). A
 * sync run so stamps its run's row and its records' times in the database's time, which syncs and readers on other
 * machines, whose clocks may be minutes off, agree on; a step of this machine's wall clock does not move it.
 *
 * @since 0.1.0
 * @category clock
 */
export const withDatabaseClock: <A, E, R>(
  effect: Effect.Effect<A, E, R>
) => Effect.Effect<A, E | SqlError, R | SqlClient> = DatabaseClock.within

/**
 * The database's clock (as `withDatabaseClock`) as the clock of every layer built after this one and of their fibers,
 * measured again every 30 seconds while the layer lives. For SQLite, nothing.
 *
 * @since 0.1.0
 * @category clock
 */
export const layerDatabaseClock: (database: Database) => Layer.Layer<never, SqlError, SqlClient> = DatabaseClock.layer
