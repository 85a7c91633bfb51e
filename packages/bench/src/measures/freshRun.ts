/**
 * A user's program, run by `fresh.ts` in a node process of its own for every sample: it loads what it needs, scrolls
 * `scrolls` times, and prints one line of JSON with the times it took. Nothing is loaded before the clock starts but
 * node (the imports are dynamic and timed), so the first scroll meets cold code, as a user's first one does.
 *
 * `fresh.ts` runs it compiled, as plain JavaScript with the core's built `dist/` (a user's program runs the published
 * package's JavaScript, not its TypeScript through tsx):
 *
 *   node build/fresh/freshRun.mjs '{"program":"scroll","baseUrl":…,"token":…,"prefetch":0,"chunkWorkMillis":25,"scrolls":2}'
 */

export interface FreshSetup {
  readonly program: "scroll" | "bare fetch"
  readonly baseUrl: string
  readonly token: string
  /** Scroll.users' prefetch (the default when unset). */
  readonly prefetch?: number
  /** Work a chunk of 100 records (`Stream.grouped(100)`), in milliseconds; none when unset. */
  readonly chunkWorkMillis?: number
  readonly scrolls: number
}

export interface FreshTimes {
  /** From the process's start to this module's first line (node booting), seconds. */
  readonly boot: number
  /** Loading the program's modules and building the client, seconds. */
  readonly load: number
  /** Each scroll, seconds. */
  readonly scrolls: ReadonlyArray<number>
  readonly records: number
}

const boot = performance.now()
const setup = JSON.parse(process.argv[2] ?? "{}") as FreshSetup
const since = (start: number) => (performance.now() - start) / 1000

interface Program {
  readonly scroll: () => Promise<number>
  readonly dispose: () => Promise<void>
}

const load = async (): Promise<Program> => {
  if (setup.program === "bare fetch") {
    const { bareUsers } = await import("../lib/bareFetch.js")
    return { scroll: () => bareUsers(setup.baseUrl, setup.token), dispose: async () => {} }
  }
  const [{ NodeHttpClient }, { IntercomClient, Scroll }, { Effect, Layer, ManagedRuntime, Redacted, Stream }] = await Promise
    .all([import("@effect/platform-node"), import("@intercom-scroll/core"), import("effect")])
  const runtime = ManagedRuntime.make(
    IntercomClient.layer({ accessToken: Redacted.make(setup.token), baseUrl: setup.baseUrl }).pipe(
      Layer.provide(NodeHttpClient.layerUndici)
    )
  )
  await runtime.runtime()
  const users = Scroll.users(setup.prefetch === undefined ? undefined : { prefetch: setup.prefetch })
  const work = setup.chunkWorkMillis
  // The consumer as the README shows one: chunks of 100 records, each taking its time.
  const program = work === undefined
    ? Stream.runCount(users)
    : users.pipe(
      Stream.grouped(100),
      Stream.mapEffect((chunk) => Effect.as(Effect.sleep(work), chunk.length)),
      Stream.runFold(0, (sum, n) => sum + n)
    )
  return { scroll: () => runtime.runPromise(program), dispose: () => runtime.dispose() }
}

const main = async () => {
  const loading = performance.now()
  const { dispose, scroll } = await load()
  const loaded = since(loading)
  const scrolls: Array<number> = []
  let records = 0
  for (let i = 0; i < setup.scrolls; i++) {
    const start = performance.now()
    records = await scroll()
    scrolls.push(since(start))
  }
  const times: FreshTimes = { boot: boot / 1000, load: loaded, scrolls, records }
  process.stdout.write(`${JSON.stringify(times)}\n`)
  // Then the process ends on its own, as a user's does once its program is done (the parent times that too).
  await dispose()
}

void main()
