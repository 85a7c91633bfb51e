// Preloaded with `node --import` into a process whose peak memory is measured: samples process.memoryUsage() every
// 20 ms and, at exit, writes the peaks (bytes) as JSON to the file named by BENCH_MEMORY_FILE.
import { writeFileSync } from "node:fs"
import { setInterval } from "node:timers"

const file = process.env.BENCH_MEMORY_FILE
if (file !== undefined && file !== "") {
  const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }
  const trace = process.env.BENCH_MEMORY_TRACE === "1" ? [] : undefined
  const started = Date.now()
  const sample = () => {
    const usage = process.memoryUsage()
    for (const key of Object.keys(peak)) peak[key] = Math.max(peak[key], usage[key])
    if (trace !== undefined) trace.push([Date.now() - started, usage.rss, usage.heapTotal, usage.heapUsed, usage.external, usage.arrayBuffers])
  }
  setInterval(sample, 20).unref()
  process.on("exit", () => {
    sample()
    writeFileSync(file, JSON.stringify({ peak, trace }))
  })
}
