/**
 * Profiles before optimising: `pnpm --filter @intercom-scroll/bench profile <contender> [rounds] [users]` runs one
 * contender against the standalone simulator under `node --cpu-prof`, then prints where the time went, by package and
 * by function. The profiles stay in results/profiles/ (not committed) for Chrome DevTools or speedscope.
 *
 * Contenders: core (Scroll.users, defaults), core-nodedupe, core-noprefetch, bare (fetch + JSON.parse), plain (a
 * client that parses nothing), simulator (profiles the simulator's process while plain runs). `summary FILE` prints
 * the summary of an existing profile.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Contenders from "./lib/contenders.js"
import { summarize } from "./lib/cpuprofile.js"
import * as Simulator from "./lib/simulator.js"

const [contender = "core", roundsArg = "6", usersArg = "30000"] = process.argv.slice(2)
const rounds = Number(roundsArg)
const users = Number(usersArg)
const profiles = NodePath.join(Simulator.root, "packages", "bench", "results", "profiles")

const newProfiles = async (run: () => Promise<void>): Promise<Array<string>> => {
  Fs.mkdirSync(profiles, { recursive: true })
  const before = new Set(Fs.readdirSync(profiles))
  await run()
  return Fs.readdirSync(profiles).filter((file) => !before.has(file)).map((file) => NodePath.join(profiles, file))
}

/** The largest of the profiles a process wrote: its main thread (tsx's loader thread writes a small one too). */
const mainProfile = (files: ReadonlyArray<string>): string =>
  [...files].sort((a, b) => Fs.statSync(b).size - Fs.statSync(a).size)[0]

const run = Effect.gen(function*() {
  const profileServer = contender === "simulator"
  const url = yield* Simulator.start(
    ["--token", "T", "--users", String(users), "--default-version", "1.4", "--rate-limit", "1000000"],
    profileServer ? ["--cpu-prof", "--cpu-prof-dir", profiles] : []
  )
  const core = Contenders.core(url, "T")
  const once: () => Promise<number> = {
    core: () => core.users(),
    "core-nodedupe": () => core.users({ dedupe: false }),
    "core-noprefetch": () => core.users({ prefetch: 0 }),
    bare: () => Contenders.bareUsers(url, "T"),
    plain: () => Contenders.plainScroll(url, "T"),
    simulator: () => Contenders.plainScroll(url, "T")
  }[contender] ?? (() => Promise.reject(new Error(`unknown contender ${contender}`)))
  yield* Effect.promise(async () => {
    await Contenders.plainScroll(url, "T") // the simulator renders and caches the records
    for (let round = 0; round < rounds; round++) {
      const started = performance.now()
      const records = await once()
      const seconds = (performance.now() - started) / 1000
      console.log(`${contender} round ${round + 1}: ${records} records, ${Math.round(records / seconds)} records/s`)
    }
    await core.dispose()
  })
}).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

if (contender === "summary") {
  console.log(summarize(roundsArg, 40))
} else if (contender === "simulator") {
  const written = await newProfiles(async () => {
    await Effect.runPromise(run)
    await Contenders.sleep(2000) // the simulator writes its profile as it exits
  })
  const file = mainProfile(written)
  console.log(`\n${file}\n${summarize(file, 40)}`)
} else if (process.execArgv.some((arg) => arg.startsWith("--cpu-prof"))) {
  await Effect.runPromise(run)
} else {
  const self = NodePath.join(Simulator.root, "packages", "bench", "src", "profile.ts")
  const written = await newProfiles(async () => {
    const child = spawnSync(
      process.execPath,
      ["--cpu-prof", "--cpu-prof-dir", profiles, "--import", "tsx", self, contender, roundsArg, usersArg],
      { stdio: "inherit" }
    )
    if (child.status !== 0) process.exit(child.status ?? 1)
  })
  const file = mainProfile(written)
  console.log(`\n${file}\n${summarize(file, 40)}`)
}
