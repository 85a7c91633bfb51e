/**
 * A fleet's process starting beside another on the same database: the cluster's storage creates its tables as its
 * layer is built, and the one that loses the race starts again rather than going on without them or dying.
 */
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import { SyncDatabase } from "@intercom-scroll/sync"
import { ClockSteps } from "@intercom-scroll/testing"
import { Cause, Clock, Context, Effect, Exit, type Fiber, Layer, Logger, LogLevel, Option, Ref, TestServices } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Fleet } from "../src/index.js"

/** A fresh SQLite file, and a connection of "another process" to it. */
const sqliteFile = Effect.gen(function*() {
  const directory = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "fleet-start-"))),
    (path) => Effect.sync(() => rmSync(path, { recursive: true, force: true }))
  )
  const filename = join(directory, "fleet.db")
  const other = Context.get(yield* Layer.build(SqliteClient.layer({ filename })), SqlClient.SqlClient)
  return { database: SyncDatabase.Database.Sqlite({ filename }), other }
})

/**
 * The cluster's migrator records its migrations before it runs them, and takes any failure to record them for another
 * process running them ("Migrations already running"): it then goes on without its tables. SQLite refuses that write
 * when another process wrote since the migrator read (a runner starting beside a client). Here a trigger refuses it,
 * for as long as the test keeps it.
 */
const migrationsCannotBeRecorded = (other: SqlClient.SqlClient) =>
  Effect.orDie(Effect.all([
    other.unsafe(`CREATE TABLE cluster_migrations (
      migration_id integer PRIMARY KEY NOT NULL,
      created_at datetime NOT NULL DEFAULT current_timestamp,
      name VARCHAR(255) NOT NULL
    )`),
    other.unsafe(`CREATE TRIGGER lost_write BEFORE INSERT ON cluster_migrations
      BEGIN SELECT RAISE(ABORT, 'database is locked'); END`)
  ]))

const tableExists = (sql: SqlClient.SqlClient, name: string) =>
  Effect.orDie(Effect.map(
    sql<{ readonly n: number }>`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ${name}`,
    ([row]) => row.n === 1
  ))

/** Starts a client-only process's layer in the background, its debug logs (the cluster's migrator's) kept. */
const startClient = (database: SyncDatabase.Database) =>
  Effect.gen(function*() {
    const logs = yield* Ref.make<ReadonlyArray<string>>([])
    const logger = Logger.make(({ message }) => Ref.update(logs, (all) => [...all, String(message)]).pipe(Effect.runSync))
    const fiber = yield* Layer.build(Fleet.layerClient({ database })).pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.Debug),
      Effect.fork
    )
    return { fiber, logs: Ref.get(logs) }
  })

/** The layer's build driven to its end under the TestClock, as an `Exit`. */
const buildExit = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  Effect.exit(ClockSteps.runToEnd({ step: "100 millis", maxSteps: 300, realPause: "2 millis" })(fiber))

describe("Fleet.layerClient", () => {
  it.scoped("starts again when the cluster's migrator went on without its tables, and has them once the other process is done", () =>
    Effect.gen(function*() {
      const { database, other } = yield* sqliteFile
      yield* migrationsCannotBeRecorded(other)
      const client = yield* startClient(database)
      // The first start has taken the refusal for another process's migrations.
      yield* Effect.repeat(Effect.zipRight(TestServices.provideLive(Effect.sleep("2 millis")), client.logs), {
        until: (logs) => logs.includes("Migrations already running")
      }).pipe(
        // Real time: the first start runs on the file, which the TestClock does not move.
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the migrator never said it found its migrations running") }),
        TestServices.provideLive,
        Effect.orDie
      )
      // That other process done, the next start records and runs the migrations.
      yield* other.unsafe("DROP TRIGGER lost_write").pipe(Effect.orDie)
      const exit = yield* buildExit(client.fiber)
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(yield* tableExists(other, "cluster_messages")).toBe(true)
      expect(yield* tableExists(other, "cluster_replies")).toBe(true)
    }))

  it.scoped("fails with the missing table after a few starts, if the cluster's tables never come", () =>
    Effect.gen(function*() {
      const { database, other } = yield* sqliteFile
      yield* migrationsCannotBeRecorded(other)
      const exit = yield* buildExit((yield* startClient(database)).fiber)
      const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
      const error = Option.getOrThrow(failure)
      expect(error._tag === "SqlError" ? String(error.cause) : error._tag).toContain("no such table: cluster_messages")
      // Five starts again, a quarter of a second doubling each time (jittered): more than 6 seconds.
      expect(yield* Clock.currentTimeMillis).toBeGreaterThan(6_000)
    }))

  it.scoped("starts again when the cluster's storage dies creating its tables, and fails with that error, not a defect", () =>
    Effect.gen(function*() {
      const { database, other } = yield* sqliteFile
      // The messages' index cannot be created (a table has its name): the migration fails, and the cluster's layer
      // dies with it (as a statement that lost a race to another process's does).
      yield* other.unsafe("CREATE TABLE cluster_messages_shard_idx (x)").pipe(Effect.orDie)
      const exit = yield* buildExit((yield* startClient(database)).fiber)
      const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
      expect(Option.map(failure, (error) => error._tag)).toEqual(Option.some("MigrationError"))
      expect(yield* Clock.currentTimeMillis).toBeGreaterThan(6_000)
    }))
})
