/**
 * A vitest setup file for measuring the suite (vitest.config.ts adds it when TEST_CPU_REPORT names a file): after each
 * test file, one JSON line with the CPU seconds its worker process spent, its own and its children's (every process
 * it started and waited for: the bins, bash, pnpm), read from /proc. A worker runs its files in one process
 * (`isolate: false`), so the lines of one pid are cumulative: a file's cost is the difference from the line before it.
 * packages/bench/NOTES.md ("The test suite's time") says how the numbers were used.
 */
import { afterAll, expect } from "vitest"
import { appendFileSync, readFileSync } from "node:fs"

const ticksPerSecond = 100

const cpuSeconds = () => {
  // The fields after the command's closing parenthesis: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
  const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ")
  const [utime, stime, cutime, cstime] = fields.slice(11, 15).map(Number) as [number, number, number, number]
  return { own: (utime + stime) / ticksPerSecond, children: (cutime + cstime) / ticksPerSecond }
}

const started = Date.now()

afterAll(() => {
  const report = process.env.TEST_CPU_REPORT
  if (report === undefined) return
  appendFileSync(report, `${JSON.stringify({ file: expect.getState().testPath, pid: process.pid, wall: (Date.now() - started) / 1000, ...cpuSeconds() })}\n`)
})
