/**
 * A scroll in a fresh connection pool, as a new process or a fleet's sync meets it, on the real link's profile with the
 * handshake it charges: `pnpm --filter @intercom-scroll/bench exec tsx src/probeFreshPool.ts --variant ENTRY
 * [--users N] [--rounds N]`. The core against a copy of it (the entry module of a patched src/, as measure 18 makes
 * them), in one process, alternating, each scroll over an undici dispatcher of its own (closed after), each in a
 * workspace of its own so that the simulator's stats give each one's connections.
 */
import { NodeHttpClient } from "@effect/platform-node"
import * as Core from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Context, Duration, Effect, Layer, Redacted, Stream } from "effect"
import { median } from "./lib/measure.js"
import { realLink } from "./measures/realLink.js"
import { flag } from "./lib/args.js"

const variantEntry = flag("--variant")
if (variantEntry === undefined) throw new Error("--variant ENTRY: the entry module of the core to compare with")
const users = Number(flag("--users") ?? 300)
const rounds = Number(flag("--rounds") ?? 8)

const program = Effect.gen(function*() {
  const variant = (yield* Effect.promise(() => import(variantEntry))) as typeof Core
  const contenders = [{ name: "core", core: Core, token: "core" }, { name: "variant", core: variant, token: "variant" }]
  const context = yield* Layer.build(Simulator.layerServer({
    workspaces: contenders.map(({ token }) => ({ token, users, faults: { latency: Duration.millis(realLink.latencyMillis) } })),
    bandwidth: realLink.megabits,
    handshake: Duration.millis(realLink.handshakeMillis),
    compression: true
  }))
  const baseUrl = yield* Effect.provide(Simulator.baseUrl, context)
  const scroll = ({ core, token }: (typeof contenders)[number]) =>
    Effect.gen(function*() {
      const start = performance.now()
      yield* Stream.runCount(core.Scroll.users()).pipe(
        Effect.provide(core.IntercomClient.layer({ accessToken: Redacted.make(token), baseUrl }).pipe(
          Layer.provide(NodeHttpClient.layerUndiciWithoutDispatcher),
          Layer.provide(NodeHttpClient.dispatcherLayer)
        ))
      )
      return performance.now() - start
    })
  const times = new Map(contenders.map(({ name }) => [name, [] as Array<number>]))
  for (let round = -1; round < rounds; round++) {
    for (const contender of round % 2 === 0 ? contenders : [...contenders].reverse()) {
      const millis = yield* scroll(contender)
      if (round >= 0) times.get(contender.name)!.push(millis)
    }
  }
  const stats = yield* Context.get(context, Simulator.Simulator).stats
  for (const { name, token } of contenders) {
    const list = times.get(name)!
    const connections = stats.workspaces[token].connectionsOpened / (rounds + 1)
    console.log(`${name}: median ${median(list).toFixed(0)} ms (${list.map((t) => t.toFixed(0)).join(" ")}), ${connections} connections a scroll`)
  }
}).pipe(Effect.scoped)

Effect.runPromise(program)
