/**
 * A second PostgreSQL server that a client's URL reaches after a failover (with `BlackHole.failover`): the primary's
 * role, password and database name, data of its own (none), and a PID namespace of its own, so that a session on it
 * can be given the pid of any session on the primary. A watch that names a session by its pid alone, and asks about it
 * or ends it on a new connection after the failover, finds that session instead: the bystander.
 *
 * ```ts
 * const url = yield* PostgresDatabase.make
 * const hole = yield* BlackHole.make(url) // clients connect to hole.url
 * const standby = yield* Standby.make(url)
 * // … once the session under test has a pid on the primary:
 * yield* hole.failover(standby.url)
 * const bystander = yield* standby.bystander(pid) // idle, its pid that pid
 * // … and at the end: expect(yield* bystander.alive).toBe(true)
 * ```
 *
 * Linux, as root (`unshare --pid`, `nsenter`); a server's start costs a few seconds (initdb).
 */
import type { SqlError } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Effect, Redacted, type Scope } from "effect"
import { spawnSync } from "node:child_process"
import * as PostgresServer from "./PostgresServer.js"

let tried: boolean | undefined

/**
 * Whether this machine lets a test make a PID namespace (Linux, root, `unshare` installed, not refused by a container's
 * seccomp profile): a test of `Standby` is skipped, saying why, on one that does not. Asked of `unshare` at the first
 * call only, not as the module loads: every test file that imports the testing package paid for it (~2.4 ms, up to
 * 10 s where `unshare` hangs), the few that use it included.
 */
export const supported = (): boolean => {
  tried ??= spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "true"], { stdio: "ignore", timeout: 10_000 }).status === 0
  return tried
}

export interface Standby {
  /** The primary's URL with the standby's port: what a client reaches once `BlackHole.failover` sent it there. */
  readonly url: Redacted.Redacted<string>
  /**
   * A session on the standby, as the primary's role, on its database, whose server process has `pid`, left idle until
   * the scope closes. Dies where `pid` is taken on the standby already.
   */
  readonly bystander: (pid: number) => Effect.Effect<Bystander, never, Scope.Scope>
}

export interface Bystander {
  readonly pid: number
  /** Whether its session still answers (a statement of its own: its state changes): false once the server ended it. */
  readonly alive: Effect.Effect<boolean>
  /** Runs `statement` on its session: a long one stands for another application's work there, which a cancel would cut. */
  readonly execute: (statement: string) => Effect.Effect<ReadonlyArray<unknown>, SqlError.SqlError>
}

export const make = (primary: Redacted.Redacted<string>): Effect.Effect<Standby, never, Scope.Scope> =>
  Effect.gen(function*() {
    const source = new URL(Redacted.value(primary))
    const server = yield* Effect.acquireRelease(
      Effect.promise(() => PostgresServer.startWith({ password: decodeURIComponent(source.password), pidNamespace: true })),
      (server) => Effect.promise(() => server.stop())
    )
    const { nextPid } = server
    if (nextPid === undefined) return yield* Effect.dieMessage("The standby was started without a PID namespace")
    const url = new URL(source.href)
    url.hostname = "127.0.0.1"
    url.port = new URL(server.url).port
    const database = decodeURIComponent(source.pathname.slice(1))
    if (database !== "postgres") {
      // The name is the primary's, quoted: CREATE DATABASE takes no parameters.
      yield* Effect.scoped(Effect.flatMap(
        PgClient.make({ url: Redacted.make(server.url), maxConnections: 1 }),
        (admin) => admin.unsafe(`CREATE DATABASE "${database.replaceAll("\"", "\"\"")}"`)
      )).pipe(Effect.provide(Reactivity.layer), Effect.orDie)
    }
    return {
      url: Redacted.make(url.href),
      bystander: (pid) =>
        Effect.gen(function*() {
          yield* Effect.promise(() => nextPid(pid))
          const client = yield* PgClient.make({ url: Redacted.make(url.href), maxConnections: 1, applicationName: "bystander" })
          const connection = yield* client.reserve
          const [row] = (yield* connection.execute("SELECT pg_backend_pid() AS pid", [], undefined)) as ReadonlyArray<
            { readonly pid: number }
          >
          if (row?.pid !== pid) return yield* Effect.dieMessage(`The bystander's session has pid ${row?.pid}, not ${pid}`)
          return {
            pid,
            alive: connection.execute("SELECT 1", [], undefined).pipe(Effect.as(true), Effect.orElseSucceed(() => false)),
            execute: (statement) => connection.execute(statement, [], undefined)
          } satisfies Bystander
        }).pipe(Effect.provide(Reactivity.layer), Effect.orDie)
    } satisfies Standby
  })
