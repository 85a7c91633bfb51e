/**
 * `PostgresServer`'s traces in this process and on disk: the libraries' links directory removed once the last server
 * is stopped (or a start failed), the loader's path set rather than grown, and `Standby.supported` asked of `unshare`
 * only when called. Real servers, a real `unshare` (counted by a wrapper on the PATH that runs it).
 */
import { afterEach, beforeEach, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import * as PostgresServer from "../src/PostgresServer.js"

const saved = { TMPDIR: process.env.TMPDIR, LD_LIBRARY_PATH: process.env.LD_LIBRARY_PATH, PATH: process.env.PATH }
let temporary = ""

const restore = (name: keyof typeof saved) => {
  if (saved[name] === undefined) delete process.env[name]
  else process.env[name] = saved[name]
}

// A temporary directory of the test's own (`os.tmpdir()` reads TMPDIR), so that what a start leaves there is seen.
beforeEach(async () => {
  temporary = await fs.mkdtemp(path.join(os.tmpdir(), "postgres-server-test-"))
  // The server's user reaches its data and the links through it, as through /tmp.
  await fs.chmod(temporary, 0o755)
  process.env.TMPDIR = temporary
  process.env.LD_LIBRARY_PATH = "/inherited/lib"
})

afterEach(async () => {
  for (const name of ["TMPDIR", "LD_LIBRARY_PATH", "PATH"] as const) restore(name)
  await fs.rm(temporary, { recursive: true, force: true })
})

const ours = () => (process.env.LD_LIBRARY_PATH ?? "").split(":").filter((entry) => entry.includes("intercom-scroll-pg-lib-"))

it("two servers, one started while the other runs: one links directory on the loader's path, which does not grow; none left once both are stopped", async () => {
  const first = await PostgresServer.start()
  const afterFirst = process.env.LD_LIBRARY_PATH
  const [directory] = ours()
  expect(ours()).toHaveLength(1)
  expect(afterFirst?.endsWith(":/inherited/lib")).toBe(true)
  const second = await PostgresServer.start()
  expect(process.env.LD_LIBRARY_PATH).toBe(afterFirst)
  await first.stop()
  // Still the second's: its server's next processes load through it.
  expect((await fs.readdir(directory)).length).toBeGreaterThan(0)
  await second.stop()
  expect(await fs.readdir(temporary)).toEqual([])
  expect(process.env.LD_LIBRARY_PATH).toBe("/inherited/lib")
  // A start after them: the same path again, not one entry longer.
  const third = await PostgresServer.start()
  expect(process.env.LD_LIBRARY_PATH?.split(":")).toHaveLength(afterFirst?.split(":").length ?? 0)
  await third.stop()
  expect(await fs.readdir(temporary)).toEqual([])
}, 120_000)

it("a start that fails leaves no directory behind", async () => {
  // No `unshare` on the PATH: the server in a PID namespace of its own cannot start, once its data directory is made.
  const empty = await fs.mkdtemp(path.join(temporary, "no-unshare-"))
  process.env.PATH = empty
  await expect(PostgresServer.startWith({ pidNamespace: true })).rejects.toThrow("PostgreSQL did not start")
  restore("PATH")
  await fs.rm(empty, { recursive: true })
  expect(await fs.readdir(temporary)).toEqual([])
  expect(process.env.LD_LIBRARY_PATH).toBe("/inherited/lib")
}, 120_000)

it("Standby.supported asks unshare when first called, once, not when the module is imported", async () => {
  const bin = await fs.mkdtemp(path.join(temporary, "bin-"))
  const calls = path.join(temporary, "calls")
  const real = (await promisify(execFile)("sh", ["-c", "command -v unshare"])).stdout.trim()
  await fs.writeFile(path.join(bin, "unshare"), `#!/bin/sh\necho called >> "${calls}"\nexec "${real}" "$@"\n`, { mode: 0o755 })
  // In a process of its own: this worker may have imported the module for a file before.
  const standby = fileURLToPath(new URL("../src/Standby.ts", import.meta.url))
  const script = `
    const fs = await import("node:fs")
    const Standby = await import(${JSON.stringify(standby)})
    const imported = fs.existsSync(${JSON.stringify(calls)})
    const ask = () => typeof Standby.supported === "function" ? Standby.supported() : Standby.supported
    const answers = [ask(), ask()]
    console.log(JSON.stringify({ imported, answers, calls: fs.readFileSync(${JSON.stringify(calls)}, "utf8").split("\\n").filter(Boolean).length }))
  `
  const tsx = fileURLToPath(new URL("../../../node_modules/.bin/tsx", import.meta.url))
  const file = path.join(temporary, "probe.mts")
  await fs.writeFile(file, script)
  const { stdout } = await promisify(execFile)(tsx, [file], {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    cwd: fileURLToPath(new URL("..", import.meta.url))
  })
  expect(JSON.parse(stdout.trim().split("\n").at(-1) ?? "")).toEqual({ imported: false, answers: [true, true], calls: 1 })
}, 60_000)
