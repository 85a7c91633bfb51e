/**
 * A database named by a URL: what is accepted, what is refused (in words that never repeat a password), and the
 * `SqlClient` it gives, over a real SQLite file and the run's real PostgreSQL server.
 */
import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "@effect/vitest"
import { PostgresDatabase } from "@intercom-scroll/testing"
import { Cause, Context, Duration, Effect, Exit, Layer, Option, Redacted } from "effect"
import * as fs from "node:fs/promises"
import { createRequire } from "node:module"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Directories from "../src/internal/directories.js"
import * as Driver from "../src/internal/driver.js"
import { SyncDatabase } from "../src/index.js"

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

const refusal = (url: string) => Effect.map(Effect.exit(SyncDatabase.parse(url)), failureOf)

/** The first answer through the layer's client, or how building it failed. */
const selectOne = <E>(database: Layer.Layer<SqlClient.SqlClient, E>) =>
  Effect.exit(Effect.scoped(Effect.flatMap(Layer.build(database), (context) =>
    Effect.map(
      Effect.provide(Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ one: number }>`SELECT 1 AS one`), context),
      (rows) => Number(rows[0]?.one)
    ))))

const temporaryDirectory = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "intercom-scroll-database-"))),
  (directory) => Effect.promise(() => fs.rm(directory, { recursive: true, force: true }))
)

/** A loopback port nothing listens on. */
const closedPort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
)

/** Whether the layer's session speaks TLS to the server, or how building the layer failed. */
const sessionUsesTls = <E>(database: Layer.Layer<SqlClient.SqlClient, E>) =>
  Effect.exit(Effect.scoped(Effect.flatMap(Layer.build(database), (context) =>
    Effect.map(
      Effect.provide(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ ssl: boolean }>`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`),
        context
      ),
      (rows) => rows[0]?.ssl
    ))))

/** The first column of the first row a query answers through the layer's client, or how building the layer failed. */
const ask = <E>(database: Layer.Layer<SqlClient.SqlClient, E>, query: string) =>
  Effect.exit(Effect.scoped(Effect.flatMap(Layer.build(database), (context) =>
    Effect.map(
      Effect.provide(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<Record<string, unknown>>(query)), context),
      (rows) => Object.values(rows[0] ?? {})[0]
    ))))

/** Runs `effect` with the environment's variables set as given (undefined: unset), and puts them back after. */
const withEnvironment = <A, E, R>(variables: Record<string, string | undefined>, effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const previous = Object.fromEntries(Object.keys(variables).map((name) => [name, process.env[name]]))
      for (const [name, value] of Object.entries(variables)) {
        if (value === undefined) delete process.env[name]
        else process.env[name] = value
      }
      return previous
    }),
    () => effect,
    (previous) =>
      Effect.sync(() => {
        for (const [name, value] of Object.entries(previous)) {
          if (value === undefined) delete process.env[name]
          else process.env[name] = value
        }
      })
  )

/** The test server's own certificate (self-signed, so its own authority), and an authority that signed nothing here. */
const serverCertificate = fileURLToPath(new URL("../../testing/fixtures/tls/server.crt", import.meta.url))
const otherAuthority = fileURLToPath(new URL("../../testing/fixtures/tls/other-ca.crt", import.meta.url))

/** PostgreSQL's request for TLS, the first message of a client that asks for it: its length (8), then this code. */
const sslRequestCode = 80877103

/**
 * A server that speaks no TLS, as one with `ssl=off`: a proxy before the run's server (which does) that answers a
 * client's request for TLS with a no, then passes the rest on both ways. Its port.
 */
const serverWithoutTls = (target: URL) =>
  Effect.map(
    Effect.acquireRelease(
      Effect.async<{ readonly server: net.Server; readonly sockets: Set<net.Socket> }>((resume) => {
        const sockets = new Set<net.Socket>()
        const server = net.createServer((client) => {
          const upstream = net.connect(Number(target.port || 5432), target.hostname)
          for (const socket of [client, upstream]) {
            sockets.add(socket)
            socket.on("error", () => {
              client.destroy()
              upstream.destroy()
            })
            socket.on("close", () => sockets.delete(socket))
          }
          client.once("data", (first) => {
            const asksForTls = first.length >= 8 && first.readInt32BE(0) === 8 && first.readInt32BE(4) === sslRequestCode
            if (asksForTls) client.write("N")
            const rest = asksForTls ? first.subarray(8) : first
            if (rest.length > 0) upstream.write(rest)
            client.pipe(upstream)
            upstream.pipe(client)
          })
        })
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, sockets })))
      }),
      ({ server, sockets }) =>
        Effect.async<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resume(Effect.void))
        })
    ),
    ({ server }) => (server.address() as net.AddressInfo).port
  )

describe("SyncDatabase.parse", () => {
  it.effect("reads sqlite:PATH (sqlite:///ABSOLUTE too) and postgres:// or postgresql:// URLs", () =>
    Effect.gen(function*() {
      expect(yield* SyncDatabase.parse("sqlite:data/intercom.sqlite")).toEqual(
        SyncDatabase.Database.Sqlite({ filename: "data/intercom.sqlite" })
      )
      expect(yield* SyncDatabase.parse("sqlite:/var/lib/intercom.sqlite")).toEqual(
        SyncDatabase.Database.Sqlite({ filename: "/var/lib/intercom.sqlite" })
      )
      expect(yield* SyncDatabase.parse("sqlite:///var/lib/intercom.sqlite")).toEqual(
        SyncDatabase.Database.Sqlite({ filename: "/var/lib/intercom.sqlite" })
      )
      expect(yield* SyncDatabase.parse("sqlite:~/intercom.sqlite")).toEqual(
        SyncDatabase.Database.Sqlite({ filename: path.join(os.homedir(), "intercom.sqlite") })
      )
      for (const url of ["postgres://sync:pw@db.internal:5433/intercom", "postgresql://db.internal/intercom"]) {
        const database = yield* SyncDatabase.parse(url)
        expect(database._tag).toBe("Postgres")
        expect(database._tag === "Postgres" && Redacted.value(database.url)).toBe(url)
      }
    }))

  it.effect("refuses anything else in words that name the problem and never the URL's password", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, RegExp]> = [
        ["mysql://root:hunter2@db/intercom", /the scheme "mysql" is neither sqlite nor postgres/],
        ["intercom.sqlite", /names no scheme/],
        ["sqlite:", /needs the path of a file/],
        ["sqlite::memory:", /gone when the process ends/],
        ["sqlite://data/intercom.sqlite", /takes a path/],
        ["postgres://sync:hunter%2@/intercom", /cannot be parsed/],
        ["postgres://sync:hunter2@db:port/intercom", /cannot be parsed/],
        // The driver would throw on the escape, a defect: said as the URL's mistake.
        ["postgres://sync:hunter2%zz@db/intercom", /the password in the postgres:\/\/ URL has a malformed %-escape/],
        ["postgres://sy%g1nc:hunter2@db/intercom", /the user in the postgres:\/\/ URL has a malformed %-escape/]
      ]
      for (const [url, detail] of cases) {
        const error = yield* refusal(url)
        expect(error?._tag, url).toBe("InvalidDatabaseUrl")
        expect(error?.message, url).toMatch(detail)
        expect(error?.message, url).toMatch(/Give sqlite:PATH .* or postgres:\/\//)
        expect(error?.message, url).not.toContain("hunter2")
      }
    }))

  it.effect("refuses an sslmode the driver does not know, as libpq does, naming those it knows", () =>
    Effect.gen(function*() {
      for (const mode of ["requir", "", "allow", "REQUIRE"]) {
        const error = yield* refusal(`postgres://u:secret@db.internal/intercom?sslmode=${mode}`)
        expect(error?._tag).toBe("InvalidDatabaseUrl")
        expect(error?.message).toContain(
          `its sslmode ${JSON.stringify(mode)} is not one of disable, prefer, require, verify-ca, verify-full, no-verify`
        )
        expect(error?.message).not.toContain("secret")
      }
      expect((yield* refusal("postgres://u@db.internal/intercom?sslmode=allow"))?.message).toContain("give disable or prefer")
      for (const mode of ["disable", "prefer", "require", "verify-ca", "verify-full", "no-verify"]) {
        expect(yield* refusal(`postgres://u@db.internal/intercom?sslmode=${mode}`)).toBeUndefined()
      }
    }))

  it.effect("reads libpq's ?dbname= as the URL's database, and refuses what the driver would not read: a service, two databases, a query after sqlite:", () =>
    Effect.gen(function*() {
      const named = yield* SyncDatabase.parse("postgres://sync:pw@db.internal:5433?dbname=intercom&sslmode=require")
      expect(named._tag === "Postgres" && Redacted.value(named.url)).toBe("postgres://sync:pw@db.internal:5433/intercom?sslmode=require")
      const same = yield* SyncDatabase.parse("postgres://sync@db.internal/intercom?dbname=intercom")
      expect(same._tag === "Postgres" && Redacted.value(same.url)).toBe("postgres://sync@db.internal/intercom")
      expect((yield* refusal("postgres://sync@db.internal/intercom?dbname=other"))?.message).toContain(
        `it names two databases, "intercom" and dbname="other"`
      )
      expect((yield* refusal("postgres://sync:secret@db.internal/intercom?service=prod"))?.message).toContain(
        "service= names an entry of libpq's service file, which the driver does not read"
      )
      expect((yield* refusal("sqlite:/tmp/q.db?mode=ro"))?.message).toContain("sqlite: takes a path and no query")
    }))

  it.effect("reads libpq's URL with credentials and no host (a Unix socket's) as the same URL with them as parameters", () =>
    Effect.gen(function*() {
      const database = yield* SyncDatabase.parse("postgres://sync:p%40ss@/intercom?host=/var/run/postgresql")
      expect(database._tag === "Postgres" && Redacted.value(database.url)).toBe(
        "postgres:///intercom?host=%2Fvar%2Frun%2Fpostgresql&user=sync&password=p%40ss"
      )
      // The socket's directory is shown, the password is not.
      expect(SyncDatabase.display(database)).toBe("postgres://sync@/intercom?host=/var/run/postgresql")
      expect(SyncDatabase.secrets(database)).toContain("p@ss")
      // A socket's port tells another server's socket in the same directory apart.
      const otherServer = yield* SyncDatabase.parse("postgres://sync@/intercom?host=/tmp/pg&port=55432")
      expect(SyncDatabase.display(otherServer)).toBe("postgres://sync@/intercom?host=/tmp/pg&port=55432")
      const userOnly = yield* SyncDatabase.parse("postgresql://sync@")
      expect(userOnly._tag === "Postgres" && Redacted.value(userOnly.url)).toBe("postgresql:///?user=sync")
    }))

  it("display names the database without its password or query; secrets lists what to scrub", () => {
    const postgres = SyncDatabase.Database.Postgres({
      url: Redacted.make("postgres://sync:p%40ss@db.internal:5433/intercom?sslmode=require&password=other")
    })
    expect(SyncDatabase.display(postgres)).toBe("postgres://sync@db.internal:5433/intercom")
    expect(SyncDatabase.secrets(postgres)).toEqual(expect.arrayContaining(["p@ss", "p%40ss", "other"]))
    expect(SyncDatabase.display(SyncDatabase.Database.Sqlite({ filename: "out/x.sqlite" }))).toBe(
      `sqlite:${path.resolve("out/x.sqlite")}`
    )
  })
})

describe("SyncDatabase.layer", () => {
  it.effect("refuses fewer than two connections: a run waiting for the lock would have none to try with", () =>
    Effect.gen(function*() {
      const url = yield* SyncDatabase.parse("postgres://sync@127.0.0.1:1/never_opened")
      for (const maxConnections of [1, 0, 2.5, Number.NaN]) {
        const exit = yield* Effect.exit(Layer.build(SyncDatabase.layer(url, { maxConnections })).pipe(Effect.scoped))
        expect(Exit.isFailure(exit) && Cause.isDie(exit.cause) && String(Cause.squash(exit.cause))).toContain(
          `maxConnections must be a whole number from 2 (a sync holds one for its whole run, and a sync of the workspace waiting for it needs another to try), not ${maxConnections}`
        )
      }
    }))

  it.effect("refuses a connectTimeout that is not a duration above zero that Node's timers can hold, instead of reporting the database unavailable", () =>
    Effect.gen(function*() {
      const url = yield* SyncDatabase.parse("postgres://sync@127.0.0.1:1/never_opened")
      const refused: ReadonlyArray<Duration.DurationInput> = [0, -5, Number.NaN, "-5 seconds", "bogus" as Duration.DurationInput, Infinity, Duration.infinity, "30 days"]
      for (const connectTimeout of refused) {
        const exit = yield* Effect.exit(Layer.build(SyncDatabase.layer(url, { connectTimeout })).pipe(Effect.scoped))
        expect(Exit.isFailure(exit) && Cause.isDie(exit.cause) && String(Cause.squash(exit.cause))).toContain(
          `SyncDatabase option connectTimeout must be a duration above zero and at most 24 days, such as "10 seconds", not ${String(connectTimeout)}`
        )
      }
      // A good one goes on to the server, which is not there: the database is unavailable.
      const exit = yield* Effect.exit(Layer.build(SyncDatabase.layer(url, { connectTimeout: "1 second" })).pipe(Effect.scoped))
      expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause).pipe(Option.map((error) => error._tag), Option.getOrNull)).toBe("DatabaseUnavailable")
    }))

  it.scoped("SQLite: creates the file and its missing parent directories", () =>
    Effect.gen(function*() {
      const directory = yield* temporaryDirectory
      const filename = path.join(directory, "a", "b", "intercom.sqlite")
      expect(yield* selectOne(SyncDatabase.layerFromUrl(`sqlite:${filename}`))).toEqual(Exit.succeed(1))
      expect((yield* Effect.promise(() => fs.stat(filename))).isFile()).toBe(true)
    }))

  it.scoped("SQLite: each missing directory made is flushed into its parent, so the file's name survives a power loss", () =>
    Effect.gen(function*() {
      const directory = yield* temporaryDirectory
      const filename = path.join(directory, "a", "b", "intercom.sqlite")
      const calls: Array<string> = []
      // The node's operations, telling what they make and flush, in turn.
      const node = yield* Directories.Directories
      const recording: typeof node = {
        make: (made) => (calls.push(`make ${made}`), node.make(made)),
        flush: (flushed) => (calls.push(`flush ${flushed}`), node.flush(flushed)),
        mayWrite: node.mayWrite
      }
      const opened = selectOne(SyncDatabase.layerFromUrl(`sqlite:${filename}`))
      expect(yield* Effect.provideService(opened, Directories.Directories, recording)).toEqual(Exit.succeed(1))
      expect(calls).toEqual([`make ${directory}/a/b`, `flush ${directory}`, `flush ${directory}/a`])
      // Opened again: nothing to make, nothing flushed.
      calls.length = 0
      expect(yield* Effect.provideService(opened, Directories.Directories, recording)).toEqual(Exit.succeed(1))
      expect(calls).toEqual([`make ${directory}/a/b`])
    }))

  it.scoped("SQLite: a file or directory this user may not write, and a file that is not a database, said with what to do", () =>
    Effect.gen(function*() {
      const directory = yield* temporaryDirectory
      const filename = path.join(directory, "intercom.sqlite")
      yield* selectOne(SyncDatabase.layerFromUrl(`sqlite:${filename}`))
      const node = yield* Directories.Directories
      // As access(2) answers another user than the file's owner (root, who runs these tests, may write anything).
      const refusing = (refused: string): typeof node => ({
        ...node,
        mayWrite: (target) => target === refused ? Promise.resolve(false) : node.mayWrite(target)
      })
      const opened = selectOne(SyncDatabase.layerFromUrl(`sqlite:${filename}`))
      for (const [refused, what] of [[filename, `the file ${filename}`], [directory, `its directory ${directory}`]] as const) {
        const error = failureOf(yield* Effect.provideService(opened, Directories.Directories, refusing(refused)))
        expect(error?._tag).toBe("DatabaseUnavailable")
        expect(error?.message).toBe(
          `Could not open the database sqlite:${filename}: ${what} may not be written by this user (a sync writes the file, and its -wal and -shm files beside it: give this user write access to the file and its directory, or name a path where it may write (a reader that may not write reads a copy: sqlite3 FILE ".backup COPY"))`
        )
      }
      const text = path.join(directory, "notes.txt")
      yield* Effect.promise(() => fs.writeFile(text, "not a database, but some notes of mine\n".repeat(100)))
      expect(failureOf(yield* selectOne(SyncDatabase.layerFromUrl(`sqlite:${text}`)))?.message).toBe(
        `Could not open the database sqlite:${text}: file is not a database (the file is not a SQLite database: name another path (sqlite:PATH makes the file where there is none))`
      )
      // SQLite's words where the file system refuses past the check (a file made read-only as the sync opened it).
      const readonly = Object.assign(new Error("attempt to write a readonly database"), { code: "SQLITE_READONLY_DBMOVED" })
      expect(Driver.advise(readonly.message, readonly)).toContain("attempt to write a readonly database (a sync writes the file")
    }))

  it.scoped("SQLite: the WAL is copied into the file every 10,000 pages, not SQLite's 1,000", () =>
    Effect.gen(function*() {
      const directory = yield* temporaryDirectory
      const context = yield* Layer.build(SyncDatabase.layerFromUrl(`sqlite:${path.join(directory, "intercom.sqlite")}`))
      const sql = Context.get(context, SqlClient.SqlClient)
      expect(yield* sql`PRAGMA wal_autocheckpoint`).toEqual([{ wal_autocheckpoint: 10_000 }])
      // 30 commits of ~100 pages each: past 1,000 pages a commit would have checkpointed, and the WAL begun again.
      yield* sql`CREATE TABLE filler (data BLOB NOT NULL)`
      for (let i = 0; i < 30; i++) {
        yield* sql`INSERT INTO filler (data) WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
          SELECT randomblob(4000) FROM n`.pipe(sql.withTransaction)
      }
      const [{ log }] = yield* sql<{ log: number }>`PRAGMA wal_checkpoint(PASSIVE)`
      expect(log).toBeGreaterThan(3_000)
    }))

  it.scoped("SQLite: a path that is a directory, or a file that is no database, is DatabaseUnavailable naming it", () =>
    Effect.gen(function*() {
      const directory = yield* temporaryDirectory
      const notDatabase = path.join(directory, "notes.txt")
      yield* Effect.promise(() => fs.writeFile(notDatabase, "these are not the tables you are looking for\n".repeat(100)))
      for (const filename of [directory, notDatabase]) {
        const error = failureOf(yield* selectOne(SyncDatabase.layerFromUrl(`sqlite:${filename}`)))
        expect(error).toMatchObject({ _tag: "DatabaseUnavailable", database: `sqlite:${filename}` })
        expect(error?.message).toMatch(new RegExp(`^Could not open the database sqlite:${filename}: \\S`))
      }
      // SQLite says only "unable to open database file" of a directory: said as what it is, with what to write.
      const error = failureOf(yield* selectOne(SyncDatabase.layerFromUrl(`sqlite:${directory}`)))
      expect(error?.message).toBe(
        `Could not open the database sqlite:${directory}: it is a directory; name a file in it, such as sqlite:${
          path.join(directory, "intercom.sqlite")
        }`
      )
    }))

  it.effect("PostgreSQL: connects with the URL's password, or PGPASSWORD's when the URL has none", () =>
    Effect.gen(function*() {
      const url = Redacted.value(yield* PostgresDatabase.make)
      expect(yield* selectOne(SyncDatabase.layerFromUrl(url))).toEqual(Exit.succeed(1))
      const parsed = new URL(url)
      const password = decodeURIComponent(parsed.password)
      parsed.password = ""
      const previous = process.env.PGPASSWORD
      process.env.PGPASSWORD = password
      const exit = yield* selectOne(SyncDatabase.layerFromUrl(parsed.href)).pipe(
        Effect.ensuring(Effect.sync(() => {
          if (previous === undefined) delete process.env.PGPASSWORD
          else process.env.PGPASSWORD = previous
        }))
      )
      expect(exit).toEqual(Exit.succeed(1))
    }))

  // On TLS too: node-postgres wraps the socket the keepalives were set on.
  it.scoped.each(["disable", "require"])("PostgreSQL: each connection runs TCP keepalives, started after 10 s idle (sslmode=%s)", (sslmode) =>
    Effect.gen(function*() {
      // Linux's table of TCP sockets: the kernel's own word on which timer runs on one. Elsewhere, nothing to read.
      const table = yield* Effect.promise(() => fs.readFile("/proc/net/tcp", "utf8").catch(() => undefined))
      if (table === undefined) return
      const url = new URL(Redacted.value(yield* PostgresDatabase.make))
      url.searchParams.set("sslmode", sslmode)
      const sql = Context.get(yield* Layer.build(SyncDatabase.layerFromUrl(url.href)), SqlClient.SqlClient)
      const connection = yield* sql.reserve
      const [{ port, ssl }] = (yield* connection.execute(
        "SELECT inet_client_port() AS port, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        [],
        undefined
      )) as ReadonlyArray<{ port: number; ssl: boolean }>
      expect(ssl).toBe(sslmode === "require")
      // A moment for the delayed acknowledgement's timer (at most 200 ms), which shares the column, to pass.
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 500)))
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when …, the ports in hex, tm->when in 1/100 s.
      const lines = (yield* Effect.promise(() => fs.readFile("/proc/net/tcp", "utf8"))).split("\n")
      const own = lines.map((line) => line.trim().split(/\s+/)).find((fields) =>
        Number.parseInt(fields[1]?.split(":")[1] ?? "", 16) === port && fields[3] === "01"
      )
      const [timer, when] = own?.[5]?.split(":") ?? []
      // Timer 2 is the keepalive's, due in ~9.5 s of the 10; without keepalives an idle connection runs none (0).
      expect(timer).toBe("02")
      expect(Number.parseInt(when ?? "", 16) / 100).toBeGreaterThan(5)
    }))

  it.effect("PostgreSQL: a PGSSLMODE the driver does not know is refused, where the driver would connect without TLS; the URL's sslmode comes first", () =>
    Effect.gen(function*() {
      const url = Redacted.value(yield* PostgresDatabase.make)
      const withMode = <A, E>(mode: string, effect: Effect.Effect<A, E>) => withEnvironment({ PGSSLMODE: mode }, effect)
      const error = failureOf(yield* withMode("requir", selectOne(SyncDatabase.layerFromUrl(url))))
      expect(error?._tag).toBe("DatabaseUnavailable")
      expect(error?.message).toContain(`PGSSLMODE "requir" is not one of disable, prefer, require, verify-ca, verify-full, no-verify`)
      expect(yield* withMode("requir", selectOne(SyncDatabase.layerFromUrl(`${url}?sslmode=disable`)))).toEqual(Exit.succeed(1))
      // A `Database` made without `parse` is checked as well.
      const direct = SyncDatabase.layer(SyncDatabase.Database.Postgres({ url: Redacted.make(`${url}?sslmode=requir`) }))
      expect(failureOf(yield* selectOne(direct))?.message).toContain(`: sslmode "requir" is not one of disable, prefer,`)
    }))

  it.scoped("PostgreSQL: sslmode=prefer speaks TLS where the server does, and goes without where it does not, as psql does; require insists", () =>
    Effect.gen(function*() {
      const url = new URL(Redacted.value(yield* PostgresDatabase.make))
      url.searchParams.set("sslmode", "prefer")
      expect(yield* sessionUsesTls(SyncDatabase.layerFromUrl(url.href))).toEqual(Exit.succeed(true))
      const plain = new URL(url)
      plain.hostname = "127.0.0.1"
      plain.port = String(yield* serverWithoutTls(url))
      expect(yield* sessionUsesTls(SyncDatabase.layerFromUrl(plain.href))).toEqual(Exit.succeed(false))
      plain.searchParams.set("sslmode", "require")
      expect(failureOf(yield* sessionUsesTls(SyncDatabase.layerFromUrl(plain.href)))?.message).toContain("the server speaks no TLS")
    }))

  it.effect("PostgreSQL: ?dbname= connects to that database, not PGDATABASE's", () =>
    Effect.gen(function*() {
      const url = new URL(Redacted.value(yield* PostgresDatabase.make))
      const database = url.pathname.slice(1)
      url.pathname = ""
      url.searchParams.set("dbname", database)
      const answer = yield* withEnvironment({ PGDATABASE: "postgres" }, ask(SyncDatabase.layerFromUrl(url.href), "SELECT current_database()"))
      expect(answer).toEqual(Exit.succeed(database))
    }))

  it.scoped("PostgreSQL: a root certificate libpq would read (PGSSLROOTCERT, ~/.postgresql/root.crt) is checked against, as psql checks it", () =>
    Effect.gen(function*() {
      const url = new URL(Redacted.value(yield* PostgresDatabase.make))
      const withMode = (mode: string) => {
        const target = new URL(url)
        target.searchParams.set("sslmode", mode)
        return SyncDatabase.layerFromUrl(target.href)
      }
      const home = yield* temporaryDirectory
      const unset = { PGSSLROOTCERT: undefined, PGSSLCERT: undefined, PGSSLKEY: undefined, PGSSLMODE: undefined, HOME: home }
      // require with the authority of another server: refused, where it encrypted without checking.
      const other = yield* withEnvironment({ ...unset, PGSSLROOTCERT: otherAuthority }, sessionUsesTls(withMode("require")))
      expect(failureOf(other)?.message).toMatch(/^Could not open the database .*: self-signed certificate/)
      // verify-ca with the server's own: the chain is checked, and holds.
      expect(yield* withEnvironment({ ...unset, PGSSLROOTCERT: serverCertificate }, sessionUsesTls(withMode("verify-ca"))))
        .toEqual(Exit.succeed(true))
      // The default file in the home directory, as libpq reads it; and nothing of it without a mode that asks for TLS.
      yield* Effect.promise(() => fs.mkdir(path.join(home, ".postgresql")))
      yield* Effect.promise(() => fs.copyFile(otherAuthority, path.join(home, ".postgresql", "root.crt")))
      expect(failureOf(yield* withEnvironment(unset, sessionUsesTls(withMode("require"))))?.message).toContain("self-signed certificate")
      expect(yield* withEnvironment(unset, sessionUsesTls(SyncDatabase.layerFromUrl(url.href)))).toEqual(Exit.succeed(false))
      expect(yield* withEnvironment(unset, sessionUsesTls(withMode("prefer")))).toEqual(Exit.succeed(true))
    }))

  it.effect("PostgreSQL: connects by libpq's URL with credentials and the host as a parameter", () =>
    Effect.gen(function*() {
      const url = new URL(Redacted.value(yield* PostgresDatabase.make))
      const hostless = `postgres://${url.username}:${url.password}@${url.pathname}?host=${url.hostname}&port=${url.port}`
      expect(yield* selectOne(SyncDatabase.layerFromUrl(hostless))).toEqual(Exit.succeed(1))
    }))

  it.effect("PostgreSQL: no password where the server asks for one says where to put it", () =>
    Effect.gen(function*() {
      const url = new URL(Redacted.value(yield* PostgresDatabase.make))
      url.password = ""
      const previous = process.env.PGPASSWORD
      delete process.env.PGPASSWORD
      const exit = yield* selectOne(SyncDatabase.layerFromUrl(url.href)).pipe(
        Effect.ensuring(Effect.sync(() => {
          if (previous !== undefined) process.env.PGPASSWORD = previous
        }))
      )
      expect(failureOf(exit)?.message).toMatch(
        /: the server asks for a password and none was given: put it in the URL \(postgres:\/\/USER:PASSWORD@…\) or in PGPASSWORD \(/
      )
    }))

  it.effect("PostgreSQL: a wrong password or a refused connection is DatabaseUnavailable, the password nowhere, with what to do; only the refusal is transient", () =>
    Effect.gen(function*() {
      const url = new URL(Redacted.value(yield* PostgresDatabase.make))
      url.password = "wrong-password-5d1e"
      const refused = new URL(url)
      refused.port = String(yield* closedPort)
      const missing = new URL(url)
      missing.password = new URL(Redacted.value(yield* PostgresDatabase.make)).password
      missing.pathname = "/no_such_database_7f"
      // A server not there (yet) may answer a little later; a wrong password or database will not.
      const cases: ReadonlyArray<readonly [URL, RegExp, boolean]> = [
        [url, /password authentication failed for user "postgres" \(check the user and password \(in the URL or PGPASSWORD\)\)$/, false],
        [missing, /database "no_such_database_7f" does not exist \(create it \(CREATE DATABASE …\) or name one that exists in the URL\)$/, false],
        [refused, /ECONNREFUSED [^ ]+ \(check that PostgreSQL runs there and listens on that host and port\)$/, true]
      ]
      for (const [target, detail, transient] of cases) {
        const error = failureOf(yield* selectOne(SyncDatabase.layerFromUrl(target.href)))
        const shown = `postgres://postgres@${target.host}${target.pathname}`
        expect(error).toMatchObject({ _tag: "DatabaseUnavailable", database: shown, transient })
        expect(error?.message).toMatch(detail)
        expect(error?.message.startsWith(`Could not open the database ${shown}: `)).toBe(true)
        expect(JSON.stringify(error)).not.toContain("wrong-password-5d1e")
        expect(error?.message).not.toContain("wrong-password-5d1e")
      }
    }))
})

describe("a server with no connection to spare", () => {
  it.effect("PostgreSQL: too many connections (53300) is DatabaseUnavailable, transient (a process waiting for its database tries again), and says what to raise", () =>
    Effect.gen(function*() {
      const url = new URL(Redacted.value(yield* PostgresDatabase.make))
      // The role's CONNECTION LIMIT answers as a full max_connections does: SQLSTATE 53300.
      const role = `full_${Math.random().toString(36).slice(2, 10)}`
      yield* Effect.scoped(Effect.flatMap(
        Layer.build(PostgresDatabase.layerAt(Redacted.make(url.href))),
        (context) => Context.get(context, SqlClient.SqlClient).unsafe(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT 0 PASSWORD 'never-in-a-role-name'`)
      ))
      const full = new URL(url)
      full.username = role
      // A password no role name can hold: every message is scrubbed of it, and a one-letter one scrubbed the role's name.
      full.password = "never-in-a-role-name"
      const error = failureOf(yield* selectOne(SyncDatabase.layerFromUrl(full.href)))
      expect(error).toMatchObject({ _tag: "DatabaseUnavailable", transient: true, busy: true })
      expect(error?.message).toMatch(/too many connections for role "full_\w+" \(every connection the server allows is in use: raise max_connections/)
    }))
})

describe("SyncDatabase.isTransient", () => {
  it("finds a busy or absent server down an SqlError's causes, and not a failure that waiting does not mend", () => {
    const coded = (code: string, message = code) => Object.assign(new Error(message), { code })
    const sqlError = (cause: unknown) => new SqlError({ message: "Failed to acquire connection for transaction", cause })
    expect(SyncDatabase.isTransient(sqlError(coded("53300", "too many connections for role \"r\"")))).toBe(true)
    expect(SyncDatabase.isTransient(sqlError(new AggregateError([coded("ECONNREFUSED"), coded("ECONNREFUSED")])))).toBe(true)
    expect(SyncDatabase.isTransient(sqlError(new Error("Connection terminated unexpectedly")))).toBe(true)
    expect(SyncDatabase.isTransient(new SqlError({ message: "outer", cause: sqlError(coded("57P03")) }))).toBe(true)
    expect(SyncDatabase.isTransient(new SyncDatabase.DatabaseUnavailable({ database: "d", detail: "x", transient: true }))).toBe(true)
    expect(SyncDatabase.isTransient(new SyncDatabase.DatabaseUnavailable({ database: "d", detail: "x" }))).toBe(false)
    expect(SyncDatabase.isTransient(sqlError(coded("28P01", "password authentication failed")))).toBe(false)
    expect(SyncDatabase.isTransient(sqlError(coded("42501", "permission denied")))).toBe(false)
    expect(SyncDatabase.isTransient(sqlError(new AggregateError([coded("ECONNREFUSED"), coded("28P01")])))).toBe(false)
    expect(SyncDatabase.isTransient("53300")).toBe(false)
  })
})

describe("SyncDatabase.isBusy", () => {
  it("finds a server with no session to spare (53300), in a DatabaseUnavailable or down an SqlError's causes, and nothing else", () => {
    const coded = (code: string, message = code) => Object.assign(new Error(message), { code })
    const sqlError = (cause: unknown) => new SqlError({ message: "Failed to acquire connection", cause })
    expect(SyncDatabase.isBusy(sqlError(coded("53300", "too many connections for role \"r\"")))).toBe(true)
    expect(SyncDatabase.isBusy(new SyncDatabase.DatabaseUnavailable({ database: "d", detail: "x", transient: true, busy: true }))).toBe(true)
    // A server that does not answer is transient, not busy: a short-lived process fails at once.
    expect(SyncDatabase.isBusy(new SyncDatabase.DatabaseUnavailable({ database: "d", detail: "x", transient: true }))).toBe(false)
    expect(SyncDatabase.isBusy(sqlError(coded("ECONNREFUSED")))).toBe(false)
    expect(SyncDatabase.isBusy(sqlError(coded("57P03")))).toBe(false)
    expect(SyncDatabase.isBusy("53300")).toBe(false)
  })
})

describe("a missing driver", () => {
  it.effect("is named with the range to install, the one package.json's peerDependencies ask for", () =>
    Effect.gen(function*() {
      const manifest = JSON.parse(
        yield* Effect.promise(() => fs.readFile(path.join(import.meta.dirname, "..", "package.json"), "utf8"))
      ) as { readonly peerDependencies: Readonly<Record<string, string>> }
      for (const [name, range] of Object.entries(Driver.drivers)) expect(manifest.peerDependencies[name]).toBe(range)

      const missing = yield* Effect.flip(
        Driver.load("@effect/sql-pg", () => Promise.reject(new Error("Cannot find package '@effect/sql-pg'")))
      )
      expect(missing.message).toBe(
        "the driver @effect/sql-pg is not installed where this program can import it (npm install @effect/sql-pg@^0.53.0 beside it; with -g beside a global intercom-scroll): Cannot find package '@effect/sql-pg'"
      )
    }))

  it.effect("names the native addon under SQLite's driver when that is what is missing, with the range the driver asks for", () =>
    Effect.gen(function*() {
      const driverManifest = JSON.parse(
        yield* Effect.promise(() => fs.readFile(createRequire(import.meta.url).resolve("@effect/sql-sqlite-node/package.json"), "utf8"))
      ) as { readonly dependencies: Readonly<Record<string, string>> }
      expect(driverManifest.dependencies["better-sqlite3"]).toBe(Driver.nativeAddons["better-sqlite3"])

      // Node's words where a bundle that carries the driver (the CLI's bin) requires the addon.
      const words = "Cannot find module 'better-sqlite3'\nRequire stack:\n- /usr/lib/node_modules/@intercom-scroll/cli/dist/bin.cjs"
      const missing = yield* Effect.flip(Driver.load("@effect/sql-sqlite-node", () => Promise.reject(new Error(words))))
      expect(missing.message).toBe(
        `the driver @effect/sql-sqlite-node needs better-sqlite3, which is not installed where this program can import it (npm install better-sqlite3@^12.6.2 beside it; with -g beside a global intercom-scroll): ${words}`
      )
    }))
})

describe("a database that cannot be opened for want of a step of the user's", () => {
  it("says what to do: better-sqlite3 without its native addon or built for another Node.js, a password not given", () => {
    // better-sqlite3's words when its install script never ran, as pnpm 10 leaves it.
    const unbuilt = "Could not locate the bindings file. Tried:\n → /app/node_modules/better-sqlite3/build/better_sqlite3.node\n → /app/node_modules/better-sqlite3/build/Debug/better_sqlite3.node"
    expect(Driver.advise(unbuilt)).toBe(
      "better-sqlite3 is installed without its native addon: its install script did not run (pnpm 10 runs it only once allowed: pnpm approve-builds, then pnpm rebuild better-sqlite3; with npm, npm rebuild better-sqlite3)"
    )
    // Node's words for an addon built under another Node.js (installed under 20, run under 22).
    const otherNode =
      "The module '/app/node_modules/better-sqlite3/build/Release/better_sqlite3.node'\nwas compiled against a different Node.js version using\nNODE_MODULE_VERSION 115. This version of Node.js requires\nNODE_MODULE_VERSION 127. Please try re-compiling or re-installing\nthe module (for instance, using `npm rebuild` or `npm install`)."
    expect(Driver.advise(otherNode)).toBe(
      `better-sqlite3 was built for another version of Node.js than this one (${process.version}): rebuild it with this one (npm rebuild better-sqlite3; with pnpm, pnpm rebuild better-sqlite3) (${otherNode})`
    )
    expect(Driver.advise("SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string")).toMatch(
      /^the server asks for a password and none was given: put it in the URL/
    )
    expect(Driver.advise("connect ECONNREFUSED 127.0.0.1:5432")).toBe("connect ECONNREFUSED 127.0.0.1:5432")
  })
})
