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

/** Imports a driver, saying what to install when it is missing. */
export const load = <A>(name: keyof typeof drivers, importer: () => Promise<A>): Effect.Effect<A, Error> =>
  Effect.tryPromise({
    try: importer,
    catch: (cause) =>
      new Error(
        `the driver ${name} is not installed (npm install ${name}@${drivers[name]}): ${
          cause instanceof Error ? cause.message : String(cause)
        }`
      )
  })
