/**
 * Attributes a contender's CPU in its gaps: `tsx src/probeGaps.ts EXCHANGES.json PROFILE.cpuprofile [contender]`,
 * after `probeLink.ts --profile`. The samples of the profile (CLOCK_MONOTONIC µs, as the probe's stamps) that fall
 * between a response's last write and the next request's arrival, by what they were doing: the innermost frame that
 * names a known step, else the leaf's package.
 */
import * as Fs from "node:fs"

interface Node {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly startTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}
interface Exchange {
  readonly arrive: number
  readonly lastWrite: number
  readonly finish: number
}

const [exchangesFile, profileFile, contender = "Scroll.companies"] = process.argv.slice(2)
const runs = (JSON.parse(Fs.readFileSync(exchangesFile, "utf8")) as Record<string, ReadonlyArray<{ exchanges: ReadonlyArray<Exchange> }>>)[contender]
const profile = JSON.parse(Fs.readFileSync(profileFile, "utf8")) as Profile

const parent = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
const byId = new Map(profile.nodes.map((node) => [node.id, node]))

/** Steps named by a frame anywhere on the stack, innermost first. */
const steps: ReadonlyArray<readonly [string, (frame: Node["callFrame"]) => boolean]> = [
  ["decode (zlib)", (f) => /zlib/.test(f.url) || /brotliDecompressSync|gunzipSync|zlibBufferSync/.test(f.functionName)],
  ["scroll_param read ahead", (f) => /envelope/.test(f.url) && /scrollParamAhead|startsWithNonEmptyList|lastRootString|isKeyBefore|skipWhitespace/.test(f.functionName)],
  ["parse + validate (JSON.parse, the envelope check)", (f) => /JSON|parse$|validatePage|compileIs|interpret/.test(f.functionName) && /core|\(native\)|^$/.test(f.url)],
  ["undici", (f) => /undici/.test(f.url)],
  ["@effect/platform", (f) => /@effect\/platform|platform-node/.test(f.url)],
  ["core (packages/core)", (f) => /packages\/core/.test(f.url)]
]

const leafPackage = (f: Node["callFrame"]): string => {
  if (f.functionName === "(idle)") return "(idle)"
  if (f.functionName === "(garbage collector)") return "(gc)"
  if (f.functionName === "(program)") return "(program)"
  const m = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(f.url)
  if (m !== null) return m[1]
  if (f.url.startsWith("node:")) return `node (${f.url.replace(/^node:internal\//, "").split("/")[0]})`
  return f.url === "" ? `(native) ${f.functionName}` : f.url.replace(/.*\/packages\//, "")
}

const classify = (id: number): { step: string; leaf: string } => {
  const leafFrame = byId.get(id)!.callFrame
  const leaf = `${leafFrame.functionName || "(anonymous)"} ${leafFrame.url.replace(/.*\/(node_modules|packages)\//, "")}:${leafFrame.lineNumber + 1}`
  if (/^\((idle|garbage collector|program)\)$/.test(leafFrame.functionName)) return { step: leafPackage(leafFrame), leaf }
  for (const [name, matches] of steps) {
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      if (matches(byId.get(at)!.callFrame)) return { step: name, leaf }
    }
  }
  return { step: `other: ${leafPackage(leafFrame)}`, leaf }
}

/** From the server's stamps, or, given a hook file (`probeHook.ts`) as HOOK, from the client's: last bytes in → head out. */
const hookEvents = process.env.HOOK === undefined ? undefined : JSON.parse(Fs.readFileSync(process.env.HOOK, "utf8")) as Array<[string, number]>
const clientWindows = (events: ReadonlyArray<[string, number]>) => {
  const found: Array<readonly [number, number]> = []
  let lastRead: number | undefined
  for (const [kind, at] of events) {
    if (kind === "r") lastRead = at
    else if (lastRead !== undefined && at - lastRead < 30_000) found.push([lastRead, at] as const)
  }
  return found
}
const windows = hookEvents !== undefined
  ? clientWindows(hookEvents)
  : runs.flatMap((run) => run.exchanges.slice(1).map((e, i) => [run.exchanges[i].lastWrite, e.arrive] as const))
windows.sort((a, b) => a[0] - b[0])
const gapMicros = windows.reduce((s, [a, b]) => s + b - a, 0)

const inGap = new Map<string, number>()
const leaves = new Map<string, number>()
const everywhere = new Map<string, number>()
let t = profile.startTime
let w = 0
let sampled = 0
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i]
  const next = profile.timeDeltas[i + 1] ?? 0
  const { leaf, step } = classify(profile.samples[i])
  everywhere.set(step, (everywhere.get(step) ?? 0) + next)
  while (w < windows.length && windows[w][1] < t) w++
  if (w < windows.length && windows[w][0] <= t && t <= windows[w][1]) {
    inGap.set(step, (inGap.get(step) ?? 0) + next)
    leaves.set(leaf, (leaves.get(leaf) ?? 0) + next)
    sampled += next
  }
}
const pages = windows.length
const rows = (map: Map<string, number>, n: number) =>
  [...map].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([key, us]) => `${(us / 1000 / pages).toFixed(3).padStart(7)} ms a gap  ${(100 * us / sampled).toFixed(1).padStart(5)}%  ${key}`)
    .join("\n")
console.log(`${pages} gaps, ${(gapMicros / 1000 / pages).toFixed(2)} ms each on average (the server's stamps); samples in them ${(sampled / 1000 / pages).toFixed(2)} ms a gap`)
console.log(`\nin the gaps, by step\n${rows(inGap, 20)}\n\nin the gaps, by leaf\n${rows(leaves, 40)}`)
console.log(`\nthe whole profile, by step (ms)\n${[...everywhere].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, us]) => `${(us / 1000).toFixed(0).padStart(7)}  ${k}`).join("\n")}`)

// A few gaps as timelines: runs of samples with the same step, from the last write (ms).
const show = Number(process.env.TIMELINES ?? 0)
if (show > 0) {
  const stamps: Array<number> = []
  let at = profile.startTime
  for (const delta of profile.timeDeltas) stamps.push(at += delta)
  const pick = windows.filter((_, i) => i % Math.floor(windows.length / show) === 5).slice(0, show)
  for (const [from, to] of pick) {
    const line: Array<string> = []
    let current = ""
    let started = 0
    for (let i = 0; i < stamps.length; i++) {
      if (stamps[i] < from - 2000 || stamps[i] > to + 1000) continue
      const { leaf, step } = classify(profile.samples[i])
      const label = step.startsWith("other: effect") || step === "core (packages/core)" ? `${step} [${leaf.split(" ")[0]}]` : step
      if (label !== current) {
        if (current !== "") line.push(`${((started - from) / 1000).toFixed(2)}…${((stamps[i] - from) / 1000).toFixed(2)} ${current}`)
        current = label
        started = stamps[i]
      }
    }
    console.log(`\ngap of ${((to - from) / 1000).toFixed(2)} ms (request arrives at ${((to - from) / 1000).toFixed(2)}):\n  ${line.join("\n  ")}`)
  }
}
