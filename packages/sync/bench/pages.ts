/**
 * What the sync's benches write: a workspace's users as the simulator serves them, page by page, and a median.
 */
import { IntercomClient, type Models, Scroll } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Chunk, Effect, Layer, Redacted, Stream } from "effect"

/** `users` users in pages of 100, from a simulator in process. */
export const pages = (users: number) =>
  Scroll.pages("users").pipe(
    Stream.map((page) => page.records as ReadonlyArray<Models.RecordOf<"users">>),
    Stream.runCollect,
    Effect.map(Chunk.toReadonlyArray),
    Effect.provide(IntercomClient.layer({ accessToken: Redacted.make("bench"), baseUrl: "https://api.intercom.io" }).pipe(
      Layer.provide(Simulator.layerClient({ workspaces: [{ token: "bench", users }] })),
      Layer.orDie
    ))
  )

export const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
