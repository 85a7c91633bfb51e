/**
 * The main job behind `pnpm start`: every user of the workspace into `out/users.ndjson`, with the progress line and
 * a summary. Without INTERCOM_ACCESS_TOKEN the workspace is a simulator in this process, with faults that make a
 * restart and a rate-limit wait show up; with it, the workspace is the real one.
 *
 * @since 0.1.0
 */
import { type FileSystem, Path } from "@effect/platform"
import type { ServeError } from "@effect/platform/HttpServerError"
import { IntercomClient, type ScrollError } from "@intercom-scroll/core"
import { Embedded, type Simulator } from "@intercom-scroll/simulator"
import type { ConfigError } from "effect/ConfigError"
import { Effect, Layer, Option } from "effect"
import * as Client from "./client.js"
import * as Export from "./export.js"
import type { InvalidConfig, OutputError, StdoutClosed } from "../ExportError.js"
import * as Stdio from "./stdio.js"
import * as Undici from "./undici.js"

/**
 * The embedded workspace: 25,000 users (250 pages), a 500 "restart the scroll operation" at the 120th page request,
 * and a budget of 150 requests per 10 s window, which the scroll meets before it ends.
 *
 * @since 0.1.0
 * @category constants
 */
export const simulatedWorkspace: Simulator.ServerOptions = {
  workspaces: [{
    token: "dG9rOmV4YW1wbGU6MTIzNA==",
    users: 25_000,
    faults: { restartAt: [120], rateLimit: { limit: 150, windowSeconds: 10 } }
  }]
}

/**
 * The CLI's command that runs the same export as `pnpm start`, with flags to tune it.
 *
 * @since 0.1.0
 * @category constants
 */
export const sameExport = "pnpm -s cli export users --out out/users.ndjson"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Where the users go; relative to the working directory (where `pnpm start` was run). */
  readonly out?: string | undefined
  readonly simulator?: Simulator.ServerOptions | undefined
}

/**
 * What the embedded workspace holds, for the line that says the simulator is used: `25,000 users, a 500 at page
 * request 120, 150 requests per 10 s`.
 *
 * @since 0.1.0
 * @category rendering
 */
export const describeSimulator = (options: Simulator.ServerOptions): string => {
  const workspace = options.workspaces[0]
  const faults = workspace?.faults
  const parts = [`${(workspace?.users ?? 0).toLocaleString("en-US")} users`]
  if (faults?.restartAt !== undefined) parts.push(`a 500 at page request ${faults.restartAt.join(", ")}`)
  if (faults?.rateLimit !== undefined) {
    parts.push(`${faults.rateLimit.limit} requests per ${faults.rateLimit.windowSeconds ?? 10} s`)
  }
  return parts.join(", ")
}

/**
 * The client, as the CLI's `export` builds it from the environment (over undici; a variable it refuses is an
 * `InvalidConfig` that names it), with the simulator `Embedded.layer` starts as its configuration when
 * INTERCOM_ACCESS_TOKEN is unset or blank.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  simulator: Simulator.ServerOptions
): Layer.Layer<
  IntercomClient.IntercomClient | Embedded.Target,
  ServeError | ScrollError.InvalidOptions | InvalidConfig | ConfigError
> =>
  Client.layer({ baseUrl: Option.none(), region: Option.none(), requestTimeout: Option.none(), maxResponseBytes: Option.none() }).pipe(
    // Intercom through the machine's proxy, as the CLI reaches it; the embedded simulator, on loopback, directly (as
    // this machine always is).
    Layer.provide(Undici.layer),
    Layer.provideMerge(Embedded.layer(simulator))
  )

/**
 * Exports the users and returns the summary (which the progress output has already printed). The client is `layer`:
 * the simulator unless INTERCOM_ACCESS_TOKEN is set.
 *
 * @since 0.1.0
 * @category running
 */
export const run = Effect.fn("Quickstart.run")(function*(options: Options = {}): Effect.fn.Return<
  Export.Summary,
  ScrollError.ScrollError | ScrollError.InvalidOptions | OutputError | StdoutClosed | ServeError | InvalidConfig | ConfigError,
  FileSystem.FileSystem | Path.Path | Stdio.Stdio
> {
  const path = yield* Path.Path
  const simulator = options.simulator ?? simulatedWorkspace

  // Against the working directory: `pnpm start` runs in the directory pnpm was called from (scripts/run.mjs).
  // Its directory (`out/`) is made by the export, if missing.
  const out = path.resolve(options.out ?? path.join("out", "users.ndjson"))

  return yield* Effect.gen(function*() {
    const stdio = yield* Stdio.Stdio
    const target = yield* Embedded.Target
    const client = yield* IntercomClient.IntercomClient
    yield* stdio.writeStderr(
      target._tag === "Simulated"
        ? `No INTERCOM_ACCESS_TOKEN: exporting from the embedded simulator at ${target.baseUrl} (${
          describeSimulator(simulator)
        }).\n`
        : `Exporting from ${client.baseUrl}.\n`
    )
    return yield* Export.run({ resource: "users", out })
  }).pipe(Effect.provide(layer(simulator)))
})
