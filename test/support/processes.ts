/**
 * Our programs as real processes: the standalone simulator, the CLI's bin and the examples, each started the way a
 * user starts it, with an environment that holds no INTERCOM_* variable of the machine's. The bins run the bundles
 * the test run's global setup (support/bundles.ts) builds from the current source.
 */
import { Command, type CommandExecutor } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Option, type Scope, Stream } from "effect"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Net from "node:net"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import * as Cli from "@intercom-scroll/simulator/Cli"
import { isFresh, writeAtomically } from "../../scripts/bundle.mjs"

export const root = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..", "..")
export const cliBin = NodePath.join(root, "packages", "cli", "bin", "intercom-scroll.js")
const simulatorBin = NodePath.join(root, "packages", "simulator", "bin", "intercom-simulator.js")

/** A variable that names a proxy, or the hosts reached without it, as curl, npm and the CLI read them (either case). */
const isProxyVariable = (name: string) => /^(?:https?|no)_proxy$/i.test(name)

/**
 * The machine's proxy variables, for a run that reaches the registry (npm), which may need them to: every other
 * program here talks to servers on loopback, which the machine's proxy would be asked to reach.
 */
export const machineProxy = (): Record<string, string> =>
  Object.fromEntries(
    Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined && isProxyVariable(entry[0]))
  )

/**
 * A TMPDIR of this test process's own, made at its first program and removed as it exits: the CLI keeps its note of a
 * scroll it cut short there (`$TMPDIR/intercom-scroll-<uid>/`, by base URL and token), and in the machine's, the notes
 * of every test run piled up, and a later test on a recycled port with the same token could take one for its own. The
 * programs of one test file share it, as a user's runs share theirs; a test that needs one apart gives TMPDIR.
 */
let ownTmpdir: string | undefined
const testTmpdir = () => {
  if (ownTmpdir === undefined) {
    const made = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "intercom-scroll-tests-"))
    process.once("exit", () => Fs.rmSync(made, { recursive: true, force: true }))
    ownTmpdir = made
  }
  return ownTmpdir
}

/**
 * The machine's environment without Intercom's variables, so that a developer's real token is never used, without its
 * proxy's (`machineProxy`), and without what pnpm sets for its scripts: INIT_CWD (scripts/run.mjs changes directory to
 * it) and `npm_*` (npm would read them as its configuration); TMPDIR the test process's own (`testTmpdir`).
 */
const cleanEnvironment = (extra: Record<string, string>): Record<string, string> => {
  const kept = Object.entries(process.env).filter(
    (entry): entry is [string, string] =>
      entry[1] !== undefined && !entry[0].startsWith("INTERCOM_") && entry[0] !== "INIT_CWD" &&
      !entry[0].toLowerCase().startsWith("npm_") && !isProxyVariable(entry[0])
  )
  return { ...Object.fromEntries(kept), TMPDIR: testTmpdir(), ...extra }
}

export interface Finished {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

const text = <E>(stream: Stream.Stream<Uint8Array, E>) => stream.pipe(Stream.decodeText(), Stream.mkString)

const command = (file: string, args: ReadonlyArray<string>, options: {
  readonly env?: Record<string, string> | undefined
  readonly cwd?: string | undefined
}) =>
  Command.make(file, ...args).pipe(
    Command.env(cleanEnvironment(options.env ?? {}), { extendEnv: false }),
    Command.workingDirectory(options.cwd ?? root)
  )

/** The last `characters` of `output`, for a line of the log. */
const lastOf = (output: string, characters = 2_000) =>
  JSON.stringify(output.length > characters ? `…${output.slice(-characters)}` : output)

/**
 * Runs to the end, collecting both outputs. With `sayAfterMillis`, a program still running then is said on stderr
 * with what it has printed so far, and goes on: a test that times out on a hung program (once in CI, an installed
 * bin's export at a load of ~10) otherwise says nothing of what the program was doing. A real timer: the tests that
 * run programs may run under the TestClock.
 */
export const run = (
  file: string,
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly cwd?: string; readonly sayAfterMillis?: number } = {}
): Effect.Effect<Finished, PlatformError, CommandExecutor.CommandExecutor> =>
  Effect.scoped(Effect.gen(function*() {
    const process = yield* Command.start(command(file, args, options))
    const printed = { stdout: "", stderr: "" }
    const collect = (stream: Stream.Stream<Uint8Array, PlatformError>, into: keyof typeof printed) =>
      stream.pipe(Stream.decodeText(), Stream.runForEach((chunk) => Effect.sync(() => printed[into] += chunk)))
    const { sayAfterMillis } = options
    if (sayAfterMillis !== undefined) {
      yield* Effect.acquireRelease(
        Effect.sync(() =>
          setTimeout(() =>
            console.error(
              `still running after ${sayAfterMillis / 1000} s: ${file} ${args.join(" ")} (cwd ${options.cwd ?? root}); ` +
                `its stdout so far ${lastOf(printed.stdout)}; its stderr so far ${lastOf(printed.stderr)}`
            ), sayAfterMillis)
        ),
        (timer) => Effect.sync(() => clearTimeout(timer))
      )
    }
    const [, , exitCode] = yield* Effect.all([collect(process.stdout, "stdout"), collect(process.stderr, "stderr"), process.exitCode], {
      concurrency: "unbounded"
    })
    return { exitCode, stdout: printed.stdout, stderr: printed.stderr }
  }))

/**
 * stderr without the plain progress lines (`users: 950 records | 19 pages | …`), which a command prints every 5 s
 * when stderr is not a terminal: how many depends on the machine's load, so a summary is asserted on the rest.
 */
export const withoutProgress = (stderr: string): string =>
  stderr.replace(/^(?:users|leads|companies): [\d,]+ records? \| [^\n]*\n/gm, "")

/** `intercom-scroll …` through the package's bin. */
export const cli = (args: ReadonlyArray<string>, options: { readonly env?: Record<string, string>; readonly cwd?: string } = {}) =>
  run("node", [cliBin, ...args], options)

/**
 * `intercom-scroll … | reader` in bash with pipefail: the exit code is the CLI's unless the reader fails. With
 * `from: "stderr"`, stderr alone goes to the reader (`2>&1 >/dev/null | reader`); with `from: "fd3"`, descriptor 3
 * alone, stdout discarded (`3>&1 >/dev/null | reader`), for `--out /dev/fd/3`.
 */
export const cliPipedTo = (
  args: ReadonlyArray<string>,
  reader: string,
  options: { readonly env?: Record<string, string>; readonly cwd?: string; readonly from?: "stdout" | "stderr" | "fd3" } = {}
) => {
  const redirect = { stdout: "", stderr: " 2>&1 >/dev/null", fd3: " 3>&1 >/dev/null" }[options.from ?? "stdout"]
  return run("bash", ["-c", `set -o pipefail; node "$@"${redirect} | ${reader}`, "bash", cliBin, ...args], options)
}

/**
 * A program started and left running, to be signalled. It leads a process group of its own: its `kill` signals the
 * whole group, as a terminal's Ctrl-C does (`process.kill(pid)` signals the program alone).
 */
export const start = (
  file: string,
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly cwd?: string } = {}
): Effect.Effect<CommandExecutor.Process, PlatformError, CommandExecutor.CommandExecutor | Scope.Scope> =>
  Command.start(command(file, args, options))

/** `intercom-scroll …` started and left running, to be signalled. */
export const startCli = (args: ReadonlyArray<string>, options: { readonly env?: Record<string, string>; readonly cwd?: string } = {}) =>
  start("node", [cliBin, ...args], options)

/** An example of examples/src, from the bundle `bundleExamples` keeps of it. */
export const example = (name: string, options: { readonly env?: Record<string, string>; readonly cwd?: string } = {}) =>
  run("node", [NodePath.join(root, exampleBundle(name).output)], options)

/** `pnpm -C examples <name>` as a user runs it (tsx from the source), from `cwd`. */
export const exampleScript = (name: string, options: { readonly env?: Record<string, string>; readonly cwd?: string } = {}) =>
  run("pnpm", ["-s", "-C", NodePath.join(root, "examples"), name], options)

/** Where the examples' bundles are kept from one run to the next, with the files each was built from (paths from the root). */
const examplesBundles = NodePath.join("node_modules", ".cache", "intercom-scroll", "examples")

const exampleBundle = (name: string) => ({
  output: NodePath.join(examplesBundles, `${name}.mjs`),
  record: NodePath.join(examplesBundles, `${name}.bundle.json`)
})

/**
 * Each example of examples/src bundled by esbuild, effect included, into node_modules/.cache/intercom-scroll/examples/
 * `<name>.mjs`, as scripts/bundle.mjs bundles the bins: tsx loads effect and the platform module by module through its
 * loader hooks, which costs each process several seconds of CPU; the bundle of the same source starts in a fraction of
 * that. Like the bins' bundles, one is built again only when a file it was built from (or this one) is newer than it,
 * or gone: bundling the eight costs ~9 s of CPU, which a run whose examples did not change no longer spends.
 * better-sqlite3 stays outside (a native module, found where it is installed).
 */
export const bundleExamples = async (names: ReadonlyArray<string>): Promise<void> => {
  const stale = names.filter((name) => !isFresh(exampleBundle(name)))
  if (stale.length === 0) return
  const esbuild = await import("esbuild")
  const built = await esbuild.build({
    absWorkingDir: root,
    entryPoints: stale.map((name) => ({ in: NodePath.join("examples", "src", `${name}.ts`), out: name })),
    outdir: examplesBundles,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
    metafile: true,
    write: false,
    plugins: [{
      name: "native",
      setup: (build) => {
        build.onResolve({ filter: /^better-sqlite3$/ }, (args) => ({
          path: createRequire(NodePath.join(args.resolveDir, "index.js")).resolve(args.path),
          external: true
        }))
      }
    }],
    // Bundled CommonJS calls require() for Node's own modules; an ES module has none of its own.
    banner: { js: `import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);` }
  })
  for (const file of built.outputFiles) writeAtomically(file.path, file.contents)
  const self = NodePath.relative(root, fileURLToPath(import.meta.url))
  for (const name of stale) {
    const { output, record } = exampleBundle(name)
    const inputs = Object.keys(built.metafile.outputs[output]?.inputs ?? {})
    writeAtomically(NodePath.join(root, record), JSON.stringify({ inputs: [self, ...inputs] }))
  }
}

/**
 * The standalone simulator on a free port, through the package's bin (or another installation's); stopped when the
 * scope closes.
 * Gives the base URL it prints.
 */
export const simulator = (
  args: ReadonlyArray<string>,
  bin: string = simulatorBin
): Effect.Effect<string, PlatformError | Error, CommandExecutor.CommandExecutor | Scope.Scope> =>
  Effect.gen(function*() {
    const process = yield* Command.start(command("node", [bin, "--port", "0", ...args], {}))
    const banner = yield* Cli.listeningUrl(process.stdout)
    if (Option.isNone(banner)) {
      return yield* Effect.fail(new Error(`the simulator did not start: ${yield* text(process.stderr)}`))
    }
    return banner.value
  })

/** Waits (in real time: the other side is another process) until `check` holds, for 20 s at most. */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 400; attempt++) {
      if (yield* check) return
      yield* Effect.sleep("50 millis")
    }
    return yield* Effect.dieMessage("the condition did not hold within 20 s")
  })

/** A loopback port nothing listens on: one the system just gave out, closed again. */
export const closedPort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})
