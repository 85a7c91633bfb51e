/**
 * The standalone simulator as a child process, started the way a user starts it (its bin, through tsx), on a free
 * loopback port; stopped when the scope closes.
 */
import { Command } from "@effect/platform"
import type { CommandExecutor } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Option, type Scope, Stream } from "effect"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import * as Cli from "@intercom-scroll/simulator/Cli"

export const root = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..")
export const simulatorBin = NodePath.join(root, "packages", "simulator", "bin", "intercom-simulator.js")
export const cliBin = NodePath.join(root, "packages", "cli", "bin", "intercom-scroll.js")

export class SimulatorDidNotStart extends Error {}

/** Starts `node …nodeArgs intercom-simulator --port 0 …flags` and gives the base URL it prints. */
export const start = (
  flags: ReadonlyArray<string>,
  nodeArgs: ReadonlyArray<string> = []
): Effect.Effect<string, PlatformError | SimulatorDidNotStart, CommandExecutor.CommandExecutor | Scope.Scope> =>
  Effect.gen(function*() {
    const process = yield* Command.start(
      Command.make("node", ...nodeArgs, simulatorBin, "--port", "0", ...flags).pipe(Command.workingDirectory(root))
    )
    const banner = yield* Cli.listeningUrl(process.stdout)
    if (Option.isNone(banner)) {
      const stderr = yield* process.stderr.pipe(Stream.decodeText(), Stream.mkString)
      return yield* Effect.fail(new SimulatorDidNotStart(`the simulator did not start: ${stderr}`))
    }
    return banner.value
  })
