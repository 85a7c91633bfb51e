// Preloaded with `node --import` into a process whose runtime work is counted (probeRunnerCpu.ts): the timers it
// sets (setTimeout, setInterval), the fibers Effect made (its global fiber id counter, read from effect's global
// store, so a bundled copy of effect is read too), and the time and count of V8's garbage collections. On SIGUSR2 it
// writes them as one JSON line to the file named by BENCH_COUNTERS_FILE (appended), so that a reader can take the
// difference across a stretch of the process's life.
import { appendFileSync } from "node:fs"
import { PerformanceObserver } from "node:perf_hooks"

const file = process.env.BENCH_COUNTERS_FILE
if (file !== undefined && file !== "") {
  const counts = { timeouts: 0, intervals: 0, immediates: 0, gcCount: 0, gcMillis: 0 }
  const wrap = (name, key) => {
    const original = globalThis[name]
    globalThis[name] = function(...args) {
      counts[key]++
      return original.apply(this, args)
    }
  }
  wrap("setTimeout", "timeouts")
  wrap("setInterval", "intervals")
  wrap("setImmediate", "immediates")
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      counts.gcCount++
      counts.gcMillis += entry.duration
    }
  }).observe({ entryTypes: ["gc"] })
  const fibers = () => {
    const store = globalThis["effect/GlobalValue"]
    const counter = store instanceof Map ? store.get(Symbol.for("effect/Fiber/Id/_fiberCounter")) : undefined
    return typeof counter?.current === "number" ? counter.current : -1
  }
  process.on("SIGUSR2", () => {
    const usage = process.cpuUsage()
    appendFileSync(
      file,
      JSON.stringify({
        ...counts,
        fibers: fibers(),
        cpuMillis: (usage.user + usage.system) / 1000
      }) + "\n"
    )
  })
}
