/**
 * `pnpm bench`: the core against its peers, over loopback, against the standalone simulator. Contenders run
 * interleaved within one run and are compared round by round: each result is the median over rounds of the comparison
 * within a round (the machine is shared and noisy, and its speed drifts over a run).
 *
 *   1. Throughput, 30k users, no latency: Scroll.users (validation, dedupe, fetch ahead) against a bare fetch +
 *      JSON.parse loop that validates nothing. Ratio of records/s, goal ≥ 0.80.
 *   2. Slow consumer: 25 ms a page on the server, 25 ms of work a page in the consumer. Scroll.users against serial
 *      fetch-then-work. Ratio of total times, goal ≤ 0.70.
 *   3. The official SDK, intercom-client 7's companies.scroll(), under the same latency and work: goal ≥ 1.8× faster.
 *      Beside them, a plain client that parses nothing and does no work gives the ceiling any client could reach.
 *   4. Memory: peak RSS of the CLI exporting 200k users against 20k users, dedupe on. Goal ≤ +64 MiB.
 *   5. The simulator alone, serving a client that parses nothing: it must not be what limits 1 (goal: at least 2× the
 *      records/s of the faster contender of 1, i.e. under half of each round trip).
 *   6. Start-up: `intercom-scroll --help` through the bin installed from the packed packages (npm, a project of its
 *      own), median of fresh processes, beside `node -e ''`. Goal ≤ 0.5 s.
 *   7. Memory: peak RSS of that bin exporting 200k users to a file, beside a node process holding nothing. Goal
 *      ≤ 160 MiB.
 *   8. Sync into SQLite: `intercom-scroll sync users --database sqlite:FILE` against `intercom-scroll export users --out
 *      FILE` of the same 200k users, in the same rounds. Ratio of records/s, goal ≥ 0.70.
 *   9. The same into PostgreSQL (a server the bench starts, as the tests do). Goal ≥ 0.70.
 *  10. The fleet: 60 workspaces of 5,000 users at 20 ms a page, synced by `intercom-scroll fleet sync` on 1, 2 and 3
 *      runner processes over PostgreSQL: total time and the runners' CPU, the speed-up against 1 runner (reported,
 *      no goal: it says where scaling stops on the machine). Once per configuration; --quick: 12 workspaces of 2,000.
 *
 * Measures of src/measures/ (each registered below):
 *
 *  11–14. A user's link (realLink.ts): Scroll.users against a bare fetch loop, Scroll.companies against
 *      intercom-client 7, at 40 ms a page and 20 Mbit/s (11, 12) and at 120 ms and 100 Mbit/s (13, 14), compression on,
 *      with each contender's bytes on the wire and the link's physical limit.
 *  15–17. In fresh processes (fresh.ts), timed from spawn to exit: the slow consumer (Stream.grouped(100), 25 ms a
 *      chunk, 25 ms a page) against prefetch 0, goal ≤ 0.60, beside its floor (a bare fetch loop doing no work);
 *      loopback throughput against the bare loop with the simulator's compression on (16, goal ≥ 0.80) and off (17),
 *      beside its ceiling for a program that loads what ours loads.
 *  18. The A/B of #17's speed-ups (speedups.ts): the core against copies with one taken out each, real link and
 *      loopback, in one run.
 *  19. Memory of the sync: peak RSS of `intercom-scroll sync users --database sqlite:FILE`, 200k users against 20k.
 *      Goal ≤ +64 MiB.
 *  20. Measure 15 over 20,000 users (fresh.ts): what the slow consumer's ratio comes to once the load, which both
 *      contenders pay, is small beside the scroll. Same goal.
 *  21, 22. Measures 11 and 12 over a link made of packets (realLink.ts, lib/packetLink.ts): the contenders in a network
 *      namespace whose packets to the simulator are delayed and serialized by scripts/packet-link.py, so that TCP pays
 *      the link as on a real one. Recorded beside 11 and 12. Needs root, /dev/net/tun, ip and python3; else not run.
 *
 * Flags: --only 1,4 or --only real-link,far-link,packet-link,fresh,speedups, or --only 11,12 (a subset; results/ is then left alone), --rounds N
 * (every measure), --quick (fewer rounds), --sync-users N (measures 8 and 9), --variants 1,8 (measure 18's variants
 * by number, as its log lists them), --node PATH (the node that runs measures 15–17 and 20's fresh programs: a user's
 * Node.js 22 or 24, say).
 */
import { NodeContext } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as Install from "@intercom-scroll/test/install"
import * as PostgresServer from "@intercom-scroll/testing/PostgresServer"
import * as Cli from "./lib/cli.js"
import * as Installed from "./lib/installed.js"
import { contender, type Harness } from "./measures/harness.js"
import * as Fresh from "./measures/fresh.js"
import * as RealLink from "./measures/realLink.js"
import * as Speedups from "./measures/speedups.js"
import { type Contender, interleave, pairedMedian, type Sample } from "./lib/measure.js"
import * as Memory from "./lib/memory.js"
import { fleet } from "./measures/fleet.js"
import { chart, type ContenderResult, formatValue, type MeasureResult, type Results, table } from "./lib/report.js"
import * as Simulator from "./lib/simulator.js"
import type { RunResult, Setup } from "./lib/worker.js"
import * as Workers from "./lib/workers.js"
import { argv, flag, has } from "./lib/args.js"

const only = flag("--only")?.split(",")
/** A measure by its number, or a group of them by name (`real-link`). */
const wants = (id: number | string) => only === undefined || only.includes(String(id))
const quick = has("--quick")
const roundsOverride = flag("--rounds") === undefined ? undefined : Number(flag("--rounds"))
const rounds = (full: number, fast: number) => roundsOverride ?? (quick ? fast : full)
/** Users for measures 8 and 9: 200k, or `--sync-users N`. */
const syncUsers = Number(flag("--sync-users") ?? 200_000)

const TOKEN = "bench-token"
const MiB = 1024 * 1024
/** High enough that no contender is ever paced or throttled: rate limits are not what these measures are about. */
const noRateLimit = ["--rate-limit", "100000000"]

const log = (line: string) => Console.error(line)
const progress = (measure: string, unit: ContenderResult["unit"]) => (round: number, name: string, sample: Sample) =>
  process.stderr.write(`  ${measure} ${round < 0 ? "warm-up" : `round ${round + 1}`}: ${name} ${formatValue(sample.value, unit)}\n`)

/** A contender's worker process as a contender of `interleave`, its sample being `value` of each run. */
const viaWorker = (name: string, setup: Setup, value: (run: RunResult) => number, options?: Workers.Options) =>
  Effect.map(Workers.start(setup, options), (worker): Contender => ({
    name,
    run: async () => {
      const result = await worker.run()
      runs.push({ contender: name, ...result })
      return { value: value(result), records: result.records }
    }
  }))

/** Every run of every contender, with its CPU and GC time, for the JSON. */
const runs: Array<{ readonly contender: string } & RunResult> = []

const harness: Harness = { viaWorker, progress, log, rounds }

/** Measures 1 and 5, in the same rounds. */
const throughput = (users: number, roundCount: number) =>
  Effect.gen(function*() {
    yield* log(`Measures 1 and 5: ${users.toLocaleString("en-US")} users, no latency, ${roundCount} rounds, each contender in a process of its own`)
    const baseUrl = yield* Simulator.start(["--token", TOKEN, "--users", String(users), ...noRateLimit])
    const names = { scroll: "Scroll.users", bare: "bare fetch + JSON.parse", plain: "simulator alone" }
    const perSecond = (run: RunResult) => run.records / run.seconds
    const contenders = yield* Effect.all([
      viaWorker(names.scroll, { contender: "Scroll.users", baseUrl, token: TOKEN }, perSecond),
      viaWorker(names.bare, { contender: "bare fetch", baseUrl, token: TOKEN }, perSecond),
      viaWorker(names.plain, { contender: "plain client", baseUrl, token: TOKEN }, perSecond)
    ])
    const result = yield* Effect.promise(() =>
      interleave(contenders, { rounds: roundCount, warmup: 1, expectedRecords: () => users, onSample: progress("1/5", "records/s") })
    )
    const scroll = result.medians[names.scroll]
    const bare = result.medians[names.bare]
    const plain = result.medians[names.plain]
    const setup = `${users.toLocaleString("en-US")} users, loopback, no latency`
    const ratio = pairedMedian(result, [names.scroll, names.bare], ([s, b]) => s / b)
    const headroom = pairedMedian(result, [names.plain, names.scroll, names.bare], ([p, s, b]) => p / Math.max(s, b))
    const one: MeasureResult = {
      id: 1,
      title: "Throughput: Scroll.users against a bare fetch loop",
      setup,
      contenders: [
        contender(names.scroll, "records/s", result.samples[names.scroll], scroll),
        contender(names.bare, "records/s", result.samples[names.bare], bare)
      ],
      result: ratio,
      resultText: `${ratio.toFixed(2)}× the bare loop's records/s`,
      goal: "≥ 0.80",
      holds: ratio >= 0.8
    }
    const five: MeasureResult = {
      id: 5,
      title: "The simulator alone, to a client that parses nothing",
      setup,
      contenders: [contender(names.plain, "records/s", result.samples[names.plain], plain)],
      result: headroom,
      resultText: `${headroom.toFixed(1)}× the faster contender of 1`,
      goal: "≥ 2× (not what limits 1)",
      holds: headroom >= 2
    }
    return [one, five].filter((measure) => wants(measure.id))
  }).pipe(Effect.scoped)

/** Measures 2 and 3, in the same rounds, against one simulator with latency. */
const slowConsumer = (records: number, latencyMillis: number, workMillis: number, roundCount: number) =>
  Effect.gen(function*() {
    yield* log(`Measures 2 and 3: ${records.toLocaleString("en-US")} users and companies, ${latencyMillis} ms a page on the server, ${workMillis} ms of work a page, ${roundCount} rounds`)
    const url = yield* Simulator.start([
      "--token", TOKEN, "--users", String(records), "--companies", String(records), "--latency", String(latencyMillis), ...noRateLimit
    ])
    const names = {
      scrollUsers: "Scroll.users (prefetch 1)",
      serial: "serial: fetch, then work",
      scrollCompanies: "Scroll.companies (prefetch 1)",
      sdk: "intercom-client 7 companies.scroll()",
      floor: "plain client: no parsing, no work"
    }
    const time = (run: RunResult) => run.seconds
    const common = { baseUrl: url, token: TOKEN, workMillis }
    const contenders = yield* Effect.all([
      ...(wants(2)
        ? [
          viaWorker(names.scrollUsers, { ...common, contender: "Scroll.users" }, time),
          viaWorker(names.serial, { ...common, contender: "bare fetch" }, time)
        ]
        : []),
      ...(wants(3)
        ? [
          viaWorker(names.scrollCompanies, { ...common, contender: "Scroll.companies" }, time),
          viaWorker(names.sdk, { ...common, contender: "intercom-client 7" }, time),
          // The floor: the pages alone, fetched as fast as the server gives them, work hidden entirely.
          viaWorker(names.floor, { ...common, contender: "plain client, companies" }, time)
        ]
        : [])
    ])
    const result = yield* Effect.promise(() =>
      interleave(contenders, { rounds: roundCount, warmup: 1, expectedRecords: () => records, onSample: progress("2/3", "s") })
    )
    const setup = `${records.toLocaleString("en-US")} records, ${latencyMillis} ms a page on the server, ${workMillis} ms of work a page`
    const measures: Array<MeasureResult> = []
    if (wants(2)) {
      const ratio = pairedMedian(result, [names.scrollUsers, names.serial], ([s, t]) => s / t)
      measures.push({
        id: 2,
        title: "Slow consumer: Scroll.users against serial fetch-then-work",
        setup,
        contenders: [names.scrollUsers, names.serial].map((name) => contender(name, "s", result.samples[name], result.medians[name])),
        result: ratio,
        resultText: `${ratio.toFixed(2)}× the serial time`,
        goal: "≤ 0.70",
        holds: ratio <= 0.7
      })
    }
    if (wants(3)) {
      const speedup = pairedMedian(result, [names.sdk, names.scrollCompanies], ([sdk, ours]) => sdk / ours)
      // What a client with no overhead at all would show: the SDK's time against the pages' own.
      const ceiling = pairedMedian(result, [names.sdk, names.floor], ([sdk, floor]) => sdk / floor)
      measures.push({
        id: 3,
        title: "Against the official SDK: Scroll.companies against intercom-client 7",
        setup,
        contenders: [names.scrollCompanies, names.sdk, names.floor].map((name) =>
          contender(name, "s", result.samples[name], result.medians[name])
        ),
        result: speedup,
        resultText: `${speedup.toFixed(2)}× faster (the ceiling here, a client that parses nothing: ${ceiling.toFixed(2)}×)`,
        goal: "≥ 1.8× faster",
        holds: speedup >= 1.8
      })
    }
    return measures
  }).pipe(Effect.scoped)

/** Measure 4: the CLI as a process, against two simulators (one per data set size). */
/** How a memory measure runs the CLI on a workspace of N users: the summary line's records and the peak RSS. */
interface MemoryMeasure {
  readonly id: number
  /** What runs, e.g. "exporting" or "syncing into SQLite". */
  readonly doing: string
  readonly title: string
  readonly setup: string
  readonly run: (baseUrl: string, directory: string) => Promise<{ readonly peakRssBytes: number; readonly records: number }>
}

/** Peak RSS of the CLI on `large` users against `small`, the same command, rounds interleaved. */
const memoryGrowth = (measure: MemoryMeasure, small: number, large: number, roundCount: number) =>
  Effect.gen(function*() {
    yield* log(`Measure ${measure.id}: the CLI ${measure.doing} ${small.toLocaleString("en-US")} and ${large.toLocaleString("en-US")} users, dedupe on, peak RSS by ${Memory.method()}, ${roundCount} rounds`)
    const smallUrl = yield* Simulator.start(["--token", TOKEN, "--users", String(small), ...noRateLimit])
    const largeUrl = yield* Simulator.start(["--token", TOKEN, "--users", String(large), ...noRateLimit])
    const directory = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "intercom-bench-memory-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true })))
    const names = { small: `CLI, ${small.toLocaleString("en-US")} users`, large: `CLI, ${large.toLocaleString("en-US")} users` }
    const run = (url: string) => async (): Promise<Sample> => {
      const finished = await measure.run(url, directory)
      return { value: finished.peakRssBytes / MiB, records: finished.records }
    }
    const result = yield* Effect.promise(() =>
      interleave([
        { name: names.small, run: run(smallUrl) },
        { name: names.large, run: run(largeUrl) }
      ], {
        rounds: roundCount,
        warmup: 0,
        expectedRecords: (name) => name === names.small ? small : large,
        onSample: progress(String(measure.id), "MiB")
      })
    )
    const growth = pairedMedian(result, [names.large, names.small], ([large, small]) => large - small)
    const found: MeasureResult = {
      id: measure.id,
      title: measure.title,
      setup: measure.setup,
      contenders: [names.small, names.large].map((name) => contender(name, "MiB", result.samples[name], result.medians[name])),
      result: growth,
      resultText: `${growth >= 0 ? "+" : ""}${growth.toFixed(0)} MiB for 10× the users`,
      goal: "≤ +64 MiB",
      holds: growth <= 64
    }
    return found
  }).pipe(Effect.scoped)

/** Measure 4: the export. */
const exportMemory: MemoryMeasure = {
  id: 4,
  doing: "exporting",
  title: "Memory: peak RSS of the CLI, 200k users against 20k",
  setup: "intercom-scroll export users --out FILE, NDJSON, dedupe on",
  run: async (baseUrl, directory) => {
    const out = NodePath.join(directory, "users.ndjson")
    const exported = await Cli.exportUsers(baseUrl, TOKEN, out)
    Fs.rmSync(out, { force: true })
    return exported
  }
}

/** Measure 19: the sync into SQLite, each run into a database of its own (every user inserted). */
const syncMemory: MemoryMeasure = {
  id: 19,
  doing: "syncing into SQLite",
  title: "Memory: peak RSS of the CLI's sync into SQLite, 200k users against 20k",
  setup: "intercom-scroll sync users --database sqlite:FILE, a new file each run, dedupe on",
  run: async (baseUrl, directory) => {
    const file = NodePath.join(directory, "intercom.sqlite")
    Fs.rmSync(file, { force: true })
    return await Cli.syncUsers(baseUrl, TOKEN, `sqlite:${file}`)
  }
}

/**
 * Measures 8 and 9: the CLI's sync of the users against its export of them, each a process timed from start to exit.
 * Each database holds the users from the warm-up on, so a measured run is the sync as it recurs: every record
 * scrolled and compared, its seen row moved (the stored record is not written again: it is unchanged), and none
 * deleted.
 */
const sync = (users: number, roundCount: number) =>
  Effect.gen(function*() {
    yield* log(`Measures 8 and 9: the CLI syncing ${users.toLocaleString("en-US")} users into SQLite and PostgreSQL against exporting them, ${roundCount} rounds`)
    const baseUrl = yield* Simulator.start(["--token", TOKEN, "--users", String(users), ...noRateLimit])
    const directory = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "intercom-bench-sync-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true })))
    const postgres = yield* Effect.acquireRelease(Effect.promise(PostgresServer.start), (server) => Effect.promise(server.stop))
    const names = { export: "export to a file", sqlite: "sync into SQLite", postgres: "sync into PostgreSQL" }
    const perSecond = (finished: { readonly records: number; readonly seconds: number }): Sample => ({
      value: finished.records / finished.seconds,
      records: finished.records
    })
    const exportRun = async (): Promise<Sample> => {
      const out = NodePath.join(directory, "users.ndjson")
      const exported = await Cli.exportUsers(baseUrl, TOKEN, out)
      Fs.rmSync(out, { force: true })
      return perSecond(exported)
    }
    const result = yield* Effect.promise(() =>
      interleave([
        { name: names.export, run: exportRun },
        { name: names.sqlite, run: async () => perSecond(await Cli.syncUsers(baseUrl, TOKEN, `sqlite:${NodePath.join(directory, "intercom.sqlite")}`)) },
        { name: names.postgres, run: async () => perSecond(await Cli.syncUsers(baseUrl, TOKEN, postgres.url)) }
      ], { rounds: roundCount, warmup: 1, expectedRecords: () => users, onSample: progress("8/9", "records/s") })
    )
    const measure = (id: number, name: string, database: string): MeasureResult => {
      const ratio = pairedMedian(result, [name, names.export], ([synced, exported]) => synced / exported)
      return {
        id,
        title: `Sync into ${database} ÷ export, ${users.toLocaleString("en-US")} users`,
        setup: `intercom-scroll sync users --database ${database === "SQLite" ? "sqlite:FILE" : "postgres://…"} (the users already stored) against intercom-scroll export users --out FILE, each a process`,
        contenders: [names.export, name].map((contenderName) =>
          contender(contenderName, "records/s", result.samples[contenderName], result.medians[contenderName])),
        result: ratio,
        resultText: `${ratio.toFixed(2)}× the export's records/s`,
        goal: "≥ 0.70",
        holds: ratio >= 0.7
      }
    }
    return [measure(8, names.sqlite, "SQLite"), measure(9, names.postgres, "PostgreSQL")].filter((found) => wants(found.id))
  }).pipe(Effect.scoped)

const gitCommit = (): string | undefined => {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: Simulator.root, encoding: "utf8" }).trim()
  } catch {
    return undefined
  }
}

const program = Effect.gen(function*() {
  const started = performance.now()
  const loadAverageBefore = Os.loadavg()

  const measures: Array<MeasureResult> = []
  if (wants(1) || wants(5)) measures.push(...yield* throughput(30_000, rounds(11, 3)))
  if (wants(2) || wants(3)) measures.push(...yield* slowConsumer(3_000, 25, 25, rounds(7, 3)))
  if (wants(4)) measures.push(yield* memoryGrowth(exportMemory, 20_000, 200_000, rounds(3, 1)))
  if (wants(6) || wants(7)) {
    measures.push(...yield* Effect.scoped(Effect.gen(function*() {
      yield* log("Measures 6 and 7: building, packing and installing the packages with npm in a project of their own")
      const project = yield* Install.installed()
      const installed: Array<MeasureResult> = []
      if (wants(6)) {
        yield* log(`Measure 6: intercom-scroll --help, installed, ${rounds(15, 5)} rounds`)
        installed.push(yield* Installed.startup(project, rounds(15, 5), progress("6", "s")))
      }
      if (wants(7)) {
        yield* log(`Measure 7: the installed bin exporting 200,000 users, peak RSS by ${Memory.method()}, ${rounds(3, 1)} rounds`)
        installed.push(yield* Installed.memory(project, 200_000, TOKEN, rounds(3, 1), progress("7", "MiB")))
      }
      return installed
    })))
  }
  if (wants(8) || wants(9)) measures.push(...yield* sync(syncUsers, rounds(5, 2)))
  if (wants(19)) measures.push(yield* memoryGrowth(syncMemory, 20_000, 200_000, rounds(3, 1)))
  if (wants(10)) {
    measures.push(
      yield* fleet({
        workspaces: quick ? 12 : 60,
        users: quick ? 2_000 : 5_000,
        latencyMillis: 20,
        runners: [1, 2, 3],
        maxSyncs: 20,
        settleSeconds: 20
      }, noRateLimit, log)
    )
  }
  // By group (`--only real-link`) or by number (`--only 11,12`): the two of a link run together either way.
  for (
    const [group, link, full, fast] of [
      ["real-link", RealLink.realLink, 7, 3],
      ["far-link", RealLink.farLink, 5, 2],
      ["packet-link", RealLink.packetLink, 7, 3]
    ] as const
  ) {
    if (wants(group) || wants(link.ids.users) || wants(link.ids.companies)) {
      const both = yield* RealLink.measure(harness, link, 3_000, rounds(full, fast))
      measures.push(...both.filter((measure) => wants(group) || wants(measure.id)))
    }
  }
  // By group (`--only fresh`) or by number (`--only 15,16,17,20`).
  if (wants("fresh") || wants(15)) measures.push(yield* Fresh.slowConsumer(harness, 15, 3_000, 25, 25, rounds(5, 2)))
  if (wants("fresh") || wants(16) || wants(17)) {
    const both = yield* Fresh.throughput(harness, 10_000, rounds(5, 2))
    measures.push(...both.filter((measure) => wants("fresh") || wants(measure.id)))
  }
  // 15's profile over 20,000 users: where loading Effect, which both contenders pay, stops deciding the ratio.
  if (wants("fresh") || wants(20)) measures.push(yield* Fresh.slowConsumer(harness, 20, 20_000, 25, 25, rounds(3, 1)))
  if (wants("speedups") || wants(18)) {
    measures.push(yield* Speedups.measure(harness, 3_000, 10_000, rounds(5, 2), flag("--variants")?.split(",").map(Number)))
  }
  measures.sort((a, b) => a.id - b.id)

  const results: Results = {
    date: new Date().toISOString(),
    command: `pnpm bench${argv.length > 0 ? ` ${argv.join(" ")}` : ""}`,
    commit: gitCommit(),
    machine: {
      node: process.versions.node,
      platform: `${Os.platform()} ${Os.release()}`,
      cpus: Os.cpus().length,
      cpuModel: Os.cpus()[0]?.model ?? "unknown",
      loadAverageBefore,
      loadAverageAfter: Os.loadavg(),
      memoryMethod: Memory.method()
    },
    rounds: { "1/5": rounds(11, 3), "2/3": rounds(7, 3), "4": rounds(3, 1), "19": rounds(3, 1), "6": rounds(15, 5), "7": rounds(3, 1), "8/9": rounds(5, 2), "real-link": rounds(7, 3), "far-link": rounds(5, 2), "packet-link": rounds(7, 3), fresh: rounds(5, 2), "20": rounds(3, 1), speedups: rounds(5, 2) },
    measures,
    runs,
    seconds: (performance.now() - started) / 1000
  }
  const rendered = table(results)
  yield* Console.log(`\n${rendered}\n`)
  yield* Console.log(`${results.command} · ${results.date.slice(0, 16).replace("T", " ")} UTC · commit ${results.commit ?? "?"} · Node ${results.machine.node} · ${results.machine.cpus} CPUs · load ${loadAverageBefore.map((l) => l.toFixed(1)).join(" ")} · ${results.seconds.toFixed(0)} s`)
  if (only === undefined) {
    const directory = NodePath.join(Simulator.root, "packages", "bench", "results")
    Fs.mkdirSync(directory, { recursive: true })
    Fs.writeFileSync(NodePath.join(directory, "latest.json"), `${JSON.stringify(results, null, 2)}\n`)
    Fs.writeFileSync(NodePath.join(directory, "latest.svg"), chart(results))
    Fs.writeFileSync(NodePath.join(directory, "latest.md"), `${rendered}\n\n\`${results.command}\`, ${results.date.slice(0, 10)}, commit ${results.commit ?? "?"}, Node ${results.machine.node}, ${results.machine.cpus} CPUs (${results.machine.cpuModel}).\n`)
    yield* Console.log(`Wrote packages/bench/results/latest.{json,svg,md}`)
  }
})

program.pipe(Effect.provide(NodeContext.layer), Effect.runPromise).catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
