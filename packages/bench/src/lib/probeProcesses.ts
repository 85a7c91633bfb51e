/**
 * What the probes that run the CLI's processes against a PostgreSQL of their own share (probeFleetScale.ts,
 * probeRunnerCpu.ts, measure 10): a child's exit, a line it prints, a process's CPU, and the Debian PostgreSQL 15
 * they start (as root: PostgreSQL runs as the `postgres` user).
 */
import { type ChildProcess, execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"

/** The child's exit code (null when a signal ended it), at once if it has already exited. */
export const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode)
    else child.once("exit", (code) => resolve(code))
  })

/** A line of `child`'s output containing `text`, or a rejection once it exits. */
export const untilPrinted = (child: ChildProcess, stream: "stdout" | "stderr", text: string) =>
  new Promise<string>((resolve, reject) => {
    // The tail only: a runner prints for hours.
    let seen = ""
    child[stream]!.on("data", (data: Buffer) => {
      seen = (seen + data.toString()).slice(-200_000)
      const at = seen.indexOf(text)
      if (at !== -1) resolve(seen.slice(at).split("\n")[0])
    })
    child.once("exit", () => reject(new Error(`exited before printing ${JSON.stringify(text)}:\n${seen.slice(-2_000)}`)))
  })

let clockTicks: number | undefined

/** User and system CPU seconds of a live process, from /proc; undefined once it is gone (or off Linux). */
export const cpuSeconds = (pid: number): number | undefined => {
  try {
    const fields = Fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")
    clockTicks ??= Number(execFileSync("getconf", ["CLK_TCK"]).toString())
    return (Number(fields[11]) + Number(fields[12])) / clockTicks
  } catch {
    return undefined
  }
}

const pgBin = "/usr/lib/postgresql/15/bin"

/**
 * A PostgreSQL 15 of the Debian package in `directory` (made by the caller; given to the `postgres` user here), on
 * 127.0.0.1:`port` with fsync on, its defaults and `settings` (`-c NAME=VALUE` each). Stopped, and `directory` removed,
 * when this process exits, whatever failed on the way (a port taken, say). `psql` runs one statement as `postgres`
 * and gives its rows, tab-separated.
 */
export const debianPostgres = (directory: string, port: number, settings: ReadonlyArray<string> = []) => {
  Fs.chmodSync(directory, 0o755)
  execFileSync("chown", ["postgres", directory])
  const asPostgres = (command: string, ...args: Array<string>) =>
    execFileSync("runuser", ["-u", "postgres", "--", NodePath.join(pgBin, command), ...args], { stdio: "pipe" })
  process.on("exit", () => {
    try {
      asPostgres("pg_ctl", "-D", `${directory}/data`, "-m", "immediate", "stop")
    } catch {
      // already stopped, or never started
    }
    Fs.rmSync(directory, { recursive: true, force: true })
  })
  asPostgres("initdb", "-D", `${directory}/data`, "-A", "trust", "-U", "postgres")
  const options = [`-p ${port}`, `-k ${directory}`, "-c listen_addresses=127.0.0.1", ...settings.map((setting) => `-c ${setting}`)]
  asPostgres("pg_ctl", "-D", `${directory}/data`, "-w", "-l", `${directory}/log`, "-o", options.join(" "), "start")
  const psql = (database: string, query: string): string =>
    execFileSync("psql", ["-X", "-q", "-A", "-t", "-F", "\t", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", database, "-c", query])
      .toString()
      .trim()
  return { psql, url: (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}` }
}
