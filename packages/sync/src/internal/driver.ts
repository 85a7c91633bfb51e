import { Effect } from "effect"

/**
 * The database drivers, optional peers imported only to open their kind of database, with the ranges that
 * package.json's peerDependencies ask for: what a user is told to install. The range matters: npm's `latest` may be a
 * major the sync cannot run on (Effect 4's `@effect/sql-pg`).
 */
export const drivers = {
  "@effect/sql-sqlite-node": "^0.53.0",
  "@effect/sql-pg": "^0.53.0"
} as const

/**
 * The native addon SQLite's driver stands on, with the range `@effect/sql-sqlite-node` 0.53 depends on. A program that
 * bundles the driver (the CLI's bin) cannot bundle the addon: there it is the one thing to install beside the program,
 * and what is missing when the import fails.
 */
export const nativeAddons = {
  "better-sqlite3": "^12.6.2"
} as const

const installable: Readonly<Record<string, string>> = { ...drivers, ...nativeAddons }

/** The package an import failed to find, as Node's words name it (`Cannot find module 'x'`, `Cannot find package 'x' …`). */
const missingPackage = (cause: unknown): string | undefined =>
  cause instanceof Error ? /Cannot find (?:module|package) '((?:@[^/']+\/)?[^/']+)/.exec(cause.message)?.[1] : undefined

/**
 * Imports a driver, saying what to install when it is missing, and where: a package resolves its imports from where it
 * is installed, so a global `intercom-scroll` finds only what is installed globally beside it. What is missing may be
 * the addon under the driver (the CLI's bin, which carries the driver): that one is named.
 */
export const load = <A>(name: keyof typeof drivers, importer: () => Promise<A>): Effect.Effect<A, Error> =>
  Effect.tryPromise({
    try: importer,
    catch: (cause) => {
      const missing = missingPackage(cause)
      const install = missing !== undefined && missing !== name && Object.hasOwn(installable, missing) ? missing : name
      return new Error(
        `the driver ${name} ${install === name ? "is" : `needs ${install}, which is`} not installed where this program can import it (npm install ${install}@${
          installable[install]
        } beside it; with -g beside a global intercom-scroll): ${cause instanceof Error ? cause.message : String(cause)}`
      )
    }
  })

/** The code of a driver's error (Node's, TLS's or PostgreSQL's SQLSTATE), or the one all of an aggregate's share. */
const codeOf = (error: unknown): string | undefined => {
  if (error instanceof AggregateError) {
    const codes = new Set(error.errors.map(codeOf))
    return codes.size === 1 ? [...codes][0] : undefined
  }
  const code = error instanceof Error ? (error as Error & { readonly code?: unknown }).code : undefined
  return typeof code === "string" ? code : undefined
}

const untrustedCertificate = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
])

/**
 * What a sync into SQLite needs of the file system: said where SQLite says only "attempt to write a readonly database"
 * or "unable to open database file" (a file or directory this user may not write, a read-only mount).
 */
export const sqliteNeedsToWrite =
  "a sync writes the file, and its -wal and -shm files beside it: give this user write access to the file and its directory, or name a path where it may write (a reader that may not write reads a copy: sqlite3 FILE \".backup COPY\")"

/**
 * What the user can do about the driver's answer, to follow it in parentheses (a message may go on after it: a runner's
 * "Trying again in 2 s"); undefined where the answer says it all.
 */
const advice = (error: unknown): string | undefined => {
  const code = codeOf(error)
  const message = error instanceof Error ? error.message : ""
  if (code === "ECONNREFUSED") return "check that PostgreSQL runs there and listens on that host and port"
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "check the host name in the URL"
  if (code === "ETIMEDOUT" || code === "EHOSTUNREACH" || code === "ENETUNREACH" || /timeout|terminated unexpectedly/i.test(message)) {
    return "check the host and port in the URL, and any firewall between"
  }
  if (code === "53300") {
    return "every connection the server allows is in use: raise max_connections (or the role's CONNECTION LIMIT), or open fewer (a sync holds up to its pool's maxConnections, a fleet's runner maxSyncs + 4)"
  }
  if (code === "3D000") return "create it (CREATE DATABASE …) or name one that exists in the URL"
  if (code === "28P01") return "check the user and password (in the URL or PGPASSWORD)"
  if (code === "28000") {
    return /no encryption/.test(message)
      ? "the server accepts this client only over TLS: add ?sslmode=require (or verify-full) to the URL"
      : "check the user name; the server's pg_hba.conf decides who may connect from where"
  }
  if (code !== undefined && untrustedCertificate.has(code)) {
    return "its certificate is signed by no authority this machine trusts: name the one that signed it with sslrootcert=FILE (or PGSSLROOTCERT) to check it against; ?sslmode=require with no root certificate encrypts without checking it, as psql does"
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return "its certificate names another host: connect by the name it was issued for, or check the chain alone with sslmode=verify-ca and sslrootcert=FILE"
  }
  if (/does not support SSL/.test(message)) return "the server speaks no TLS: drop sslmode from the URL (and PGSSLMODE)"
  // better-sqlite3's SqliteError: SQLite's extended result code (`SQLITE_READONLY_DIRECTORY`, `SQLITE_CANTOPEN_ISDIR`).
  if (code?.startsWith("SQLITE_NOTADB")) {
    return "the file is not a SQLite database: name another path (sqlite:PATH makes the file where there is none)"
  }
  if (code?.startsWith("SQLITE_READONLY") || code?.startsWith("SQLITE_CANTOPEN") || code?.startsWith("SQLITE_PERM")) {
    return sqliteNeedsToWrite
  }
  return undefined
}

/**
 * What to do about a database that could not be opened, where the driver's words do not say it. Said first, with the
 * words after it: a password the server asks for and was not given (node-postgres's words under SCRAM, the server's
 * under password or md5 authentication), better-sqlite3 installed without its native addon (its install script
 * did not run: pnpm 10 runs one only once allowed), whose words are a list of the paths it looked in, and one built for
 * another Node.js (installed under 20, run under 22), whose words say only "npm rebuild". Said after the
 * words, in parentheses, from the driver's error (`error`): the usual reasons a server cannot be reached or refuses.
 */
export const advise = (detail: string, error?: unknown): string => {
  if (/client password must be a string|empty password returned by client/.test(detail)) {
    return `the server asks for a password and none was given: put it in the URL (postgres://USER:PASSWORD@…) or in PGPASSWORD (${detail})`
  }
  if (/Could not locate the bindings file/.test(detail)) {
    return "better-sqlite3 is installed without its native addon: its install script did not run (pnpm 10 runs it only once allowed: pnpm approve-builds, then pnpm rebuild better-sqlite3; with npm, npm rebuild better-sqlite3)"
  }
  if (/better_sqlite3\.node'\s+was compiled against a different Node\.js version/.test(detail)) {
    return `better-sqlite3 was built for another version of Node.js than this one (${process.version}): rebuild it with this one (npm rebuild better-sqlite3; with pnpm, pnpm rebuild better-sqlite3) (${detail})`
  }
  const toDo = advice(error)
  return toDo === undefined ? detail : `${detail} (${toDo})`
}
