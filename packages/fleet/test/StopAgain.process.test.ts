/**
 * A runner given a long `--termination-timeout`, stopped from a terminal: the first Ctrl-C lets its syncs finish, a
 * second one pressed a while later stops it at once. The CLI's bin as a real process over SQLite, a sync under way.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { logged, said, Scripts, serve } from "./support/fleet.js"
import { bundle, eventually, node, startRunner, tempDir } from "./support/processes.js"

describe("fleet runner, stopped twice", () => {
  layer(Layer.effect(Scripts, bundle), { excludeTestServices: true })("over SQLite", (it) => {
    it.scoped("a second Ctrl-C 2 s or more after the first stops it at once, with the first's exit code; a copy of the first changes nothing", () =>
      Effect.gen(function*() {
        const scripts = yield* Scripts
        const token = "acme-token-2c1f"
        // 100 pages at 1 s each: the sync runs for minutes, well within the runner's 10 minutes.
        const simulator = yield* serve({
          pageSize: 10,
          workspaces: [{ token, users: 1_000, faults: { latency: Duration.seconds(1) } }]
        })
        const dir = yield* tempDir("fleet-stop-again-")
        const filename = join(dir, "fleet.db")
        const file = join(dir, "workspaces.json")
        writeFileSync(file, JSON.stringify([{ workspace: "acme", baseUrl: simulator.baseUrl, tokenEnv: "ACME_TOKEN" }]))
        const env = { ACME_TOKEN: token }
        const runner = yield* startRunner(
          "runner",
          scripts.runner,
          (port) => ["--database", `sqlite:${filename}`, "--port", String(port), "--termination-timeout", "10m"],
          env
        )
        yield* node("client", scripts.client, ["--database", `sqlite:${filename}`, "--workspaces", file], env)
        yield* eventually("the sync to be under way", 60, Effect.gen(function*() {
          const stats = yield* simulator.stats
          return logged(runner, "Sync started").length > 0 && (stats.workspaces[token]?.pagesServed ?? 0) >= 2 || undefined
        }))

        // Ctrl-C reaches the runner, and a parent passing it on sends it again at once: the syncs may finish.
        runner.signal("SIGINT")
        yield* Effect.sleep("50 millis")
        runner.signal("SIGINT")
        yield* eventually("the runner to say it is stopping", 30, Effect.sync(() =>
          runner.lines.some((line) => line.text.includes("Stopping: the syncs running may finish for up to 10m")) || undefined))
        const stillRunning = yield* Effect.raceFirst(
          Effect.as(runner.exit, false),
          Effect.as(Effect.sleep("3 seconds"), true)
        )
        expect(stillRunning, said([runner])).toBe(true)

        // Pressed again: it exits now, not once its sync ends minutes later.
        const pressed = Date.now()
        runner.signal("SIGINT")
        const exit = yield* runner.exit.pipe(
          Effect.timeout("20 seconds"),
          Effect.catchAll(() => Effect.dieMessage(`the runner did not exit within 20 s of the second Ctrl-C\n${said([runner])}`))
        )
        expect(exit.code, said([runner])).toBe(130)
        expect(exit.at - pressed).toBeLessThan(20_000)
        expect(runner.lines.map((line) => line.text)).toContainEqual(
          expect.stringMatching(/^Stopped at once: SIGINT \d+\.\d s after SIGINT; exiting without the rest of its cleanup\.$/)
        )
        expect(logged(runner, "Sync done"), said([runner])).toEqual([])
      }), 180_000)
  })
})
