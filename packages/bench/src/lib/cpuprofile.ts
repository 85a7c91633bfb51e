/**
 * Reads a `.cpuprofile` (V8's format, as `node --cpu-prof` writes it) and tells where the time went: self time by
 * package and by function.
 */
import * as Fs from "node:fs"

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number }
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const packageOf = (url: string): string => {
  const match = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (match !== null) return match[1]
  if (url.includes("/packages/")) return url.replace(/.*\/packages\//, "").split("/").slice(0, 3).join("/")
  return url === "" ? "(native)" : url
}

/** tsx compiles a module onto few lines, so a function is named by its line and column in the compiled code. */
const frameName = (frame: ProfileNode["callFrame"]): string =>
  `${frame.functionName || "(anonymous)"} ${frame.url.replace(/.*\/(node_modules|packages)\//, "")}:${frame.lineNumber + 1}:${frame.columnNumber + 1}`

export const summarize = (file: string, top = 30): string => {
  const profile = JSON.parse(Fs.readFileSync(file, "utf8")) as Profile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map<number, number>()
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  let total = 0
  const byFunction = new Map<string, number>()
  const byPackage = new Map<string, number>()
  for (const [id, micros] of self) {
    const frame = byId.get(id)?.callFrame
    if (frame === undefined) continue
    total += micros
    const key = frameName(frame)
    byFunction.set(key, (byFunction.get(key) ?? 0) + micros)
    const name = frame.functionName
    const pkg = name === "(idle)" ? "(idle)" : name === "(garbage collector)" ? "(gc)" : packageOf(frame.url)
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + micros)
  }
  const rows = (map: Map<string, number>, n: number) =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, n)
      .map(([key, micros]) => `${(100 * micros / total).toFixed(1).padStart(5)}%  ${(micros / 1000).toFixed(0).padStart(6)} ms  ${key}`)
      .join("\n")
  return `total ${(total / 1000).toFixed(0)} ms\n\nby package\n${rows(byPackage, 15)}\n\nby function (self)\n${rows(byFunction, top)}`
}
