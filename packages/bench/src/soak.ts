/**
 * `pnpm soak`: a bounded soak. A million users through the CLI (`intercom-scroll export users --out FILE`, dedupe
 * on) against the standalone simulator with faults on: another client's scroll at the start, a 500, an expiry, a
 * body cut short and a dropped connection (four restarts, each from the first page, the last two waiting out the
 * scroll the server still holds), and a tight rate limit. It
 * reports the records, restarts, rate-limit waits, peak memory and time, and checks that the file holds every id of
 * the workspace exactly once: the ids the simulator's own data set gives for the same seed.
 *
 * Flags: --users N (default 1,000,000; the faults move with it), --keep (leave the export in results/), --heap-limit
 * MiB (runs the CLI with `--max-old-space-size`: an export that completes under a cap has a bounded live set, whatever
 * peak V8 lets the heap reach without one).
 */
import { NodeContext } from "@effect/platform-node"
import { Simulator as InProcess } from "@intercom-scroll/simulator"
import { Console, Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as Readline from "node:readline"
import * as Cli from "./lib/cli.js"
import * as Memory from "./lib/memory.js"
import * as Simulator from "./lib/simulator.js"

const argv = process.argv.slice(2)
const usersFlag = argv.indexOf("--users")
const users = usersFlag === -1 ? 1_000_000 : Number(argv[usersFlag + 1])
const keep = argv.includes("--keep")
const heapLimitFlag = argv.indexOf("--heap-limit")
const heapLimitMiB = heapLimitFlag === -1 ? undefined : Number(argv[heapLimitFlag + 1])
if (heapLimitMiB !== undefined && !(Number.isInteger(heapLimitMiB) && heapLimitMiB > 0)) {
  throw new Error(`--heap-limit takes a whole number of MiB, got ${argv[heapLimitFlag + 1]}`)
}
const TOKEN = "soak-token"
const SEED = 1
const MiB = 1024 * 1024

/** Page requests (the simulator's count, across attempts) at which each fault fires, scaled to the workspace. */
const pagesPerScroll = Math.ceil(users / 100) + 1
const at = (fraction: number) => String(Math.max(2, Math.round(pagesPerScroll * fraction)))
const faults = {
  "--foreign-scroll": "3",
  "--restart-at": at(0.06),
  "--expire-at": at(0.15),
  "--cut-body-at": at(0.5),
  "--drop-connection-at": at(0.9),
  // 100 requests a second, a little under what the CLI asks at full speed: it paces itself and meets a 429 now and then.
  "--rate-limit": "100",
  "--rate-window": "1",
  // After a cut body or a dropped connection the server's side of the scroll lives on, and the restart waits
  // (scroll_exists) until it expires: 20 s instead of Intercom's minute keeps the soak bounded.
  "--expiry": "20"
}

interface Check {
  readonly lines: number
  readonly distinct: number
  readonly duplicates: number
  readonly unexpected: number
  readonly missing: number
}

/** Reads the NDJSON export line by line and compares its ids with the expected ones. */
const checkExport = (file: string, expected: ReadonlyArray<string>): Promise<Check> =>
  new Promise((resolve, reject) => {
    const wanted = new Set(expected)
    const seen = new Set<string>()
    let lines = 0
    let duplicates = 0
    let unexpected = 0
    const reader = Readline.createInterface({ input: Fs.createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity })
    reader.on("line", (line) => {
      if (line === "") return
      lines++
      const { id } = JSON.parse(line) as { readonly id: string }
      if (!wanted.has(id)) unexpected++
      else if (seen.has(id)) duplicates++
      else seen.add(id)
    })
    reader.on("close", () => resolve({ lines, distinct: seen.size, duplicates, unexpected, missing: wanted.size - seen.size }))
    reader.on("error", reject)
  })

const program = Effect.gen(function*() {
  const flags = Object.entries(faults).flat()
  yield* Console.error(`Soak: ${users.toLocaleString("en-US")} users, seed ${SEED}, faults ${flags.join(" ")}`)
  const baseUrl = yield* Simulator.start(["--token", TOKEN, "--seed", String(SEED), "--users", String(users), ...flags])
  const expected = yield* Effect.flatMap(
    InProcess.make({ workspaces: [{ token: TOKEN, seed: SEED, users }] }),
    (simulator) => simulator.ids(TOKEN, "users")
  )
  const directory = keep
    ? NodePath.join(Simulator.root, "packages", "bench", "results")
    : Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "intercom-soak-"))
  const out = NodePath.join(directory, "soak-users.ndjson")
  yield* Effect.addFinalizer(() => Effect.sync(() => keep ? undefined : Fs.rmSync(directory, { recursive: true, force: true })))

  yield* Console.error(`Exporting with the CLI to ${out} (peak RSS by ${Memory.method()}) …`)
  const nodeFlags = heapLimitMiB === undefined ? [] : [`--max-old-space-size=${heapLimitMiB}`]
  const exported = yield* Effect.promise(() => Cli.exportUsers(baseUrl, TOKEN, out, [], nodeFlags))
  yield* Console.error(exported.stderr.trim().split("\n").slice(-1)[0] ?? "")
  yield* Console.error("Checking every id …")
  const check = yield* Effect.promise(() => checkExport(out, expected))
  const exactlyOnce = check.lines === expected.length && check.duplicates === 0 && check.unexpected === 0 &&
    check.missing === 0

  const result = {
    date: new Date().toISOString(),
    command: `pnpm soak${argv.length > 0 ? ` ${argv.join(" ")}` : ""}`,
    users,
    seed: SEED,
    faults,
    node: process.versions.node,
    cpus: Os.cpus().length,
    records: exported.records,
    pages: exported.pages,
    restarts: exported.restarts,
    rateLimitWaits: exported.rateLimitWaits,
    heapLimitMiB: heapLimitMiB ?? null,
    peakRssMiB: Math.round(exported.peakRssBytes / MiB),
    seconds: Math.round(exported.seconds * 10) / 10,
    check,
    exactlyOnce
  }
  const rows = [
    ["users in the workspace", users.toLocaleString("en-US")],
    ["records written", exported.records.toLocaleString("en-US")],
    ["pages received (all attempts)", exported.pages.toLocaleString("en-US")],
    ["restarts", String(exported.restarts)],
    ["rate-limit waits", String(exported.rateLimitWaits)],
    ["peak RSS of the CLI", `${result.peakRssMiB} MiB${heapLimitMiB === undefined ? "" : ` (old space capped at ${heapLimitMiB} MiB)`}`],
    ["time", `${result.seconds} s`],
    ["every id exactly once", exactlyOnce ? "✅ yes" : `❌ no (${check.missing} missing, ${check.duplicates} duplicated, ${check.unexpected} unexpected)`]
  ]
  yield* Console.log(`\n| soak | |\n| --- | --- |\n${rows.map(([k, v]) => `| ${k} | ${v} |`).join("\n")}\n`)
  const results = NodePath.join(Simulator.root, "packages", "bench", "results")
  Fs.mkdirSync(results, { recursive: true })
  Fs.writeFileSync(NodePath.join(results, "soak.json"), `${JSON.stringify(result, null, 2)}\n`)
  yield* Console.log("Wrote packages/bench/results/soak.json")
  if (!exactlyOnce) process.exitCode = 1
}).pipe(Effect.scoped)

program.pipe(Effect.provide(NodeContext.layer), Effect.runPromise).catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
