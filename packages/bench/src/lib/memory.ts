/**
 * The peak resident memory of a process: GNU time's "Maximum resident set size" (the kernel's own account) when
 * `/usr/bin/time -v` works, else a preloaded sampler (rss-sampler.mjs) that polls process.memoryUsage().
 */
import { spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

const sampler = NodePath.join(NodePath.dirname(fileURLToPath(import.meta.url)), "rss-sampler.mjs")

export type Method = "gnu-time" | "sampler"

let detected: Method | undefined
export const method = (): Method =>
  detected ??= spawnSync("/usr/bin/time", ["-v", "true"], { encoding: "utf8" }).stderr?.includes("Maximum resident set size")
    ? "gnu-time"
    : "sampler"

export interface Finished {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
  readonly peakRssBytes: number
  readonly seconds: number
  /** CPU time (user + system) by GNU time; undefined with the sampler. */
  readonly cpuSeconds: number | undefined
}

/**
 * The environment without Intercom's variables of the machine (a developer's real token is never used) and without
 * INIT_CWD, which pnpm sets and scripts/run.mjs changes directory to.
 */
export const cleanEnvironment = (extra: Record<string, string>): Record<string, string> => ({
  ...Object.fromEntries(
    Object.entries(process.env).filter((entry): entry is [string, string] =>
      entry[1] !== undefined && !entry[0].startsWith("INTERCOM_") && entry[0] !== "INIT_CWD"
    )
  ),
  ...extra
})

/** Runs `node …args` to the end and reports its peak RSS. */
export const runNode = (
  args: ReadonlyArray<string>,
  options: { readonly env: Record<string, string>; readonly cwd: string }
): Promise<Finished> => {
  const directory = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "intercom-bench-rss-"))
  const report = NodePath.join(directory, "peak")
  const [file, argv, env] = method() === "gnu-time"
    ? ["/usr/bin/time", ["-v", "-o", report, process.execPath, ...args], options.env] as const
    : [process.execPath, ["--import", sampler, ...args], { ...options.env, BENCH_MEMORY_FILE: report }] as const
  const started = performance.now()
  return new Promise<Finished>((resolve, reject) => {
    const child = spawn(file, argv, { env: cleanEnvironment(env), cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (text: string) => stdout += text)
    child.stderr.setEncoding("utf8").on("data", (text: string) => stderr += text)
    child.on("error", reject)
    child.on("close", (code) => {
      const seconds = (performance.now() - started) / 1000
      try {
        const text = Fs.readFileSync(report, "utf8")
        const peakRssBytes = method() === "gnu-time"
          ? Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(text)?.[1]) * 1024
          : (JSON.parse(text) as { readonly peak: { readonly rss: number } }).peak.rss
        const cpuSeconds = method() === "gnu-time"
          ? ["User", "System"].reduce((sum, kind) => sum + Number(new RegExp(`${kind} time \\(seconds\\): ([\\d.]+)`).exec(text)?.[1]), 0)
          : undefined
        resolve({ exitCode: code ?? -1, stdout, stderr, peakRssBytes, seconds, cpuSeconds })
      } catch (error) {
        reject(new Error(`no memory report for node ${args.join(" ")} (exit ${code}): ${String(error)}\n${stderr}`))
      } finally {
        Fs.rmSync(directory, { recursive: true, force: true })
      }
    })
  })
}
