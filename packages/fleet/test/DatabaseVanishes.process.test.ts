/**
 * A runner whose PostgreSQL vanishes while it syncs (its host gone from the network: every connection silent, new ones
 * too), given a short `--unanswered-timeout` and a long `--termination-timeout`: the CLI's bin as a real process, its
 * database through the testing package's `BlackHole`. Real time throughout: the runner's pools wait 10 s for a
 * connection and its shard locks' deadlines are its own; every wait here is bounded.
 */
import { describe, expect, layer } from "@effect/vitest"
import { BlackHole, PostgresDatabase } from "@intercom-scroll/testing"
import { Duration, Effect, Layer, Redacted } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { logged, said, Scripts, serve } from "./support/fleet.js"
import { bundle, eventually, node, startRunner, tempDir } from "./support/processes.js"

describe("fleet runner, its database vanished", () => {
  layer(Layer.effect(Scripts, bundle), { excludeTestServices: true })("over PostgreSQL", (it) => {
    it.scoped("--unanswered-timeout 5s: the sync under way ends within two minutes of the vanish, not at the 10-minute termination timeout", () =>
      Effect.gen(function*() {
        const scripts = yield* Scripts
        const token = "acme-token-7e41"
        // 100 pages at 1 s each: the sync runs for minutes.
        const simulator = yield* serve({ pageSize: 10, workspaces: [{ token, users: 1_000, faults: { latency: Duration.seconds(1) } }] })
        const hole = yield* BlackHole.make(yield* Effect.orDie(PostgresDatabase.make))
        const database = Redacted.value(hole.url)
        const dir = yield* tempDir("fleet-vanish-")
        const file = join(dir, "workspaces.json")
        writeFileSync(file, JSON.stringify([{ workspace: "acme", baseUrl: simulator.baseUrl, tokenEnv: "ACME_TOKEN" }]))
        const env = { ACME_TOKEN: token }
        const runner = yield* startRunner("runner", scripts.runner, (port) => [
          "--database", database, "--port", String(port), "--max-syncs", "1",
          "--unanswered-timeout", "5s", "--termination-timeout", "10m"
        ], env)
        yield* node("client", scripts.client, ["--database", database, "--workspaces", file, "--run", "vanish"], env)
        yield* eventually("the sync to be under way", 60, Effect.gen(function*() {
          const stats = yield* simulator.stats
          return logged(runner, "Sync started").length > 0 && (stats.workspaces[token]?.pagesServed ?? 0) >= 3 || undefined
        }))

        yield* hole.vanish
        const vanished = Date.now()
        // Its end as the runner logs it: interrupted (the cluster, its shard locks lost, stopped it, and the sync's watch
        // met that at its first look no connection answered), or its lock lost to a server that answered nothing.
        const ended = (text: string) => text.includes(`message="Sync interrupted"`) || text.includes("its PostgreSQL server stopped answering")
        const end = yield* eventually("the sync's end", 150, Effect.sync(() => runner.lines.find((line) => ended(line.text)))).pipe(
          Effect.catchAllDefect((defect) => Effect.dieMessage(`${String(defect)}\n${said([runner])}`))
        )
        const after = end.at - vanished
        yield* Effect.logInfo(`the runner's sync ended ${after} ms after its database vanished: ${end.text.slice(0, 300)}`)
        expect(after, said([runner])).toBeLessThan(120_000)

        // Back, so that the runner's stop finds its database; SIGTERM, its sync over, it exits.
        yield* hole.reset
        runner.signal("SIGTERM")
        const exit = yield* runner.exit.pipe(
          Effect.timeout("60 seconds"),
          Effect.catchAll(() => Effect.dieMessage(`the runner did not exit within 60 s of SIGTERM\n${said([runner])}`))
        )
        expect(exit.code, said([runner])).toBe(143)
      }), 300_000)
  })
})
