/**
 * The smallest program: every user of the workspace, one JSON line each, into out/users.ndjson.
 *
 * Runs against an embedded simulator unless INTERCOM_ACCESS_TOKEN is set.
 */
import { FileSystem } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Scroll } from "@intercom-scroll/core"
import { Embedded } from "@intercom-scroll/cli"
import { Console, Effect, Layer, Ref, Stream } from "effect"

const program = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  yield* fs.makeDirectory("out", { recursive: true })
  const exported = yield* Ref.make(0)
  yield* Scroll.users().pipe(
    Stream.tap(() => Ref.update(exported, (n) => n + 1)),
    Stream.map((user) => `${JSON.stringify(user)}\n`),
    Stream.encodeText,
    Stream.run(fs.sink("out/users.ndjson"))
  )
  yield* Console.log(`Exported ${yield* Ref.get(exported)} users to out/users.ndjson`)
})

const Intercom = Embedded.layerFromEnv({ simulator: { workspaces: [{ token: "example", users: 2_500 }] } })

program.pipe(Effect.provide(Layer.merge(Intercom, NodeContext.layer)), NodeRuntime.runMain)
