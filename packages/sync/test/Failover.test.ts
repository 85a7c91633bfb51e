/**
 * PostgreSQL: the silence watch after a failover whose old primary's path went silent. The pool's new connections
 * reach another server, where the watched session's pid may be another's (pids collide across servers, and a
 * container's are small and sequential): the watch must end no session that is not its own, and still end the run.
 * `Standby` (testing) is that other server, in a PID namespace of its own, with a bystander given the watched pid;
 * `BlackHole` makes the silence. The watch runs on the TestClock.
 */
import { expect, it } from "@effect/vitest"
import { Progress } from "@intercom-scroll/core"
import { BlackHole, ClockSteps, PostgresDatabase, Standby } from "@intercom-scroll/testing"
import { SqlClient } from "@effect/sql"
import { Cause, Context, Effect, Exit, Fiber, Layer, Option, type Redacted, Ref, Schedule, Scope, TestServices } from "effect"
import { Sync, SyncDatabase, type SyncError } from "../src/index.js"
import * as Lock from "../src/internal/lock.js"
import { freshToken, intercom } from "./support/world.js"

// A machine that cannot make a PID namespace cannot give two servers' sessions one pid: said, not hidden.
if (!Standby.supported()) console.warn("Failover.test.ts: no PID namespaces here (unshare --pid refused): the failover cases are skipped")

const users = (token: string) => intercom(token, { pageSize: 5, workspace: { seed: 12, users: 20 } })

const steps = { step: "1 second", maxSteps: 150, realPause: "30 millis" } as const

/** A pool of its own on `url`, as another process's. */
const poolAt = (url: Redacted.Redacted<string>, maxConnections: number) =>
  Layer.build(PostgresDatabase.layerAt(url, { maxConnections })).pipe(Effect.map(Context.get(SqlClient.SqlClient)))

/** The server process of the session that holds the workspace's lock, asked on `sql`. */
const holderOf = (sql: SqlClient.SqlClient, workspace: string) => {
  const [classid, objid] = Lock.workspaceKey(workspace).map((half) => half >>> 0)
  return sql<{ pid: number }>`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
    AND classid = ${classid}::bigint::oid AND objid = ${objid}::bigint::oid AND objsubid = 2`.pipe(
    Effect.map((rows) => rows.map((row) => row.pid)),
    Effect.orDie
  )
}

const failure = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

it.scoped.skipIf(!Standby.supported())("a run whose connection goes silent in a failover fails with LockLost, and ends no session of the new server's that has its session's pid", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const hole = yield* BlackHole.make(url)
    const standby = yield* Standby.make(url)
    const proxied = SyncDatabase.layer(SyncDatabase.Database.Postgres({ url: hole.url }))
    const workspace = freshToken("failover")
    yield* Effect.provide(Sync.run("users", { workspace }), Layer.merge(users(freshToken()), proxied))

    // At the second page: the session that holds the lock on the primary has its pid given to an idle session on the
    // standby, and the path to the primary goes silent while new connections reach the standby.
    const primary = yield* poolAt(url, 1)
    const scope = yield* Effect.scope
    const bystander = yield* Ref.make<Standby.Bystander | undefined>(undefined)
    let pages = 0
    const failover: Progress.Reporter = {
      report: (event) =>
        event._tag === "Page" && ++pages === 2
          ? Effect.gen(function*() {
            const [pid] = yield* holderOf(primary, workspace)
            yield* Ref.set(bystander, yield* Scope.extend(standby.bystander(pid!), scope))
            yield* hole.failover(standby.url)
          })
          : Effect.void
    }
    const fiber = yield* Effect.fork(
      Effect.provide(
        Sync.run("users", { workspace }).pipe(Effect.provideService(Progress.Progress, failover)),
        Layer.merge(users(freshToken()), proxied)
      )
    )
    const error = failure(yield* Effect.exit(ClockSteps.runToEnd(steps)(fiber)))
    const seen = yield* Ref.get(bystander)
    expect(seen).toBeDefined()
    expect(yield* seen!.alive).toBe(true)
    expect(error?._tag).toBe("LockLost")
    expect((error as SyncError.LockLost).reason).toMatch(
      /^its PostgreSQL connection went silent: a statement waited \d+ s for an answer from its server session \(pid \d+\), which the server the pool reaches no longer has: it ended without a word reaching it, or that server is another \(a failover\)(: |$)/
    )
  }), { timeout: 120_000 })

it.scoped.skipIf(!Standby.supported())("a lock's try whose statement is lost in a failover fails with LockLost, and ends no session of the new server's that has its connection's pid", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const hole = yield* BlackHole.make(url)
    const standby = yield* Standby.make(url)
    // A connection of the pool opened (a statement of its own, no try), its session's pid given to one on the standby.
    const sql = yield* poolAt(hole.url, 2)
    const [{ pid }] = yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`
    const bystander = yield* standby.bystander(pid)
    yield* hole.failover(standby.url)
    const fiber = yield* Effect.fork(
      Effect.scoped(Lock.acquire(sql, "pg", { workspace: freshToken("failover-try"), resource: "users", timeout: undefined }))
    )
    const error = failure(yield* Effect.exit(ClockSteps.runToEnd(steps)(fiber)))
    expect(yield* bystander.alive).toBe(true)
    expect(error?._tag).toBe("LockLost")
    expect((error as SyncError.LockLost).reason).toMatch(
      /^its PostgreSQL connection went silent: a statement waited \d+ s for an answer while the session by its pid \(\d+\) sat idle without the statement: the statement was lost on the way, or that session is another server's \(a failover\)$/
    )
  }), { timeout: 120_000 })

it.scoped("a lock's try whose answer is lost, on a connection that answered no try before, ends its own session: the lock comes free", () =>
  Effect.gen(function*() {
    const url = yield* PostgresDatabase.make
    const hole = yield* BlackHole.make(url)
    const workspace = freshToken("lost-answer")
    // A connection of the pool opened by a statement of its own, no try: its session is known by its pid alone.
    const sql = yield* poolAt(hole.url, 2)
    yield* sql`SELECT 1`
    // Its answers lost; once the try took the lock on the server, the path goes silent both ways: closing the
    // connection here tells the server nothing.
    yield* hole.loseAnswers
    const fiber = yield* Effect.fork(Effect.scoped(Lock.acquire(sql, "pg", { workspace, resource: "users", timeout: undefined })))
    const direct = yield* poolAt(url, 2)
    yield* ClockSteps.until("the try takes the lock on the server", { step: "0 millis", maxSteps: 200, realPause: "25 millis" })(
      Effect.map(holderOf(direct, workspace), (pids) => pids.length === 1)
    )
    yield* hole.silence
    const error = failure(yield* Effect.exit(ClockSteps.runToEnd(steps)(fiber)))
    expect(error?._tag).toBe("LockLost")

    // Its session was ended on the server, and the lock with it: taken at once next.
    const free = Effect.flatMap(holderOf(direct, workspace), (pids) => pids.length === 0 ? Effect.void : Effect.fail("held"))
    yield* Effect.orDie(free.pipe(Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("5 seconds"))), TestServices.provideLive))
    expect((error as SyncError.LockLost).reason).toMatch(
      /^its PostgreSQL connection went silent: a statement waited \d+ s for an answer while its server session \(pid \d+\) sat idle: the answer, or the statement, was lost on the way$/
    )
    const waits = yield* Ref.make(0)
    const reporter: Progress.Reporter = {
      report: (event) => event._tag === "Waiting" ? Ref.update(waits, (n) => n + 1) : Effect.void
    }
    const next = yield* Effect.fork(
      Effect.scoped(Lock.acquire(direct, "pg", { workspace, resource: "users", timeout: undefined })).pipe(
        Effect.provideService(Progress.Progress, reporter)
      )
    )
    expect(Exit.isSuccess(yield* Fiber.await(next))).toBe(true)
    expect(yield* Ref.get(waits)).toBe(0)
  }), { timeout: 120_000 })
