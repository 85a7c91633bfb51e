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
 * Imports a driver, saying what to install when it is missing, and where: a package resolves its imports from where it
 * is installed, so a global `intercom-scroll` finds only what is installed globally beside it.
 */
export const load = <A>(name: keyof typeof drivers, importer: () => Promise<A>): Effect.Effect<A, Error> =>
  Effect.tryPromise({
    try: importer,
    catch: (cause) =>
      new Error(
        `the driver ${name} is not installed where this program can import it (npm install ${name}@${
          drivers[name]
        } beside it; with -g beside a global intercom-scroll): ${cause instanceof Error ? cause.message : String(cause)}`
      )
  })

/**
 * What to do about a database that could not be opened, where the driver's words do not say it: a password the server
 * asks for and was not given (node-postgres's words under SCRAM, the server's under password or md5 authentication),
 * and better-sqlite3 installed without its native addon (its install script did not run: pnpm 10 runs one only once
 * allowed), whose words are a list of the paths it looked in.
 */
export const advise = (detail: string): string => {
  if (/client password must be a string|empty password returned by client/.test(detail)) {
    return `the server asks for a password and none was given: put it in the URL (postgres://USER:PASSWORD@…) or in PGPASSWORD (${detail})`
  }
  if (/Could not locate the bindings file/.test(detail)) {
    return "better-sqlite3 is installed without its native addon: its install script did not run (pnpm 10 runs it only once allowed: pnpm approve-builds, then pnpm rebuild better-sqlite3; with npm, npm rebuild better-sqlite3)"
  }
  return detail
}
