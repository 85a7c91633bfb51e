/**
 * The smallest program: every user of the workspace, one JSON line each, into out/users.ndjson (in the directory you
 * run it from).
 *
 * The client is the one for production: its token, region and base URL come from INTERCOM_ACCESS_TOKEN,
 * INTERCOM_REGION and INTERCOM_BASE_URL. Without a token, an Intercom simulator started in this process stands in.
 */
import { FileSystem, Path } from "@effect/platform"
import { NodeContext, NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { IntercomClient, Scroll } from "@intercom-scroll/core"
import { Embedded } from "@intercom-scroll/simulator"
import { Console, Effect, Layer, Ref, Stream } from "effect"

const program = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const file = (yield* Path.Path).resolve("out", "users.ndjson")
  yield* fs.makeDirectory("out", { recursive: true })
  const exported = yield* Ref.make(0)
  // Written beside the file and renamed over it once whole: a failed or interrupted export leaves the last one as it was.
  const partial = `${file}.partial`
  yield* Scroll.users().pipe(
    Stream.tap(() => Ref.update(exported, (n) => n + 1)),
    Stream.map((user) => `${JSON.stringify(user)}\n`),
    Stream.encodeText,
    Stream.run(fs.sink(partial)),
    Effect.onError(() => Effect.ignore(fs.remove(partial, { force: true })))
  )
  yield* fs.rename(partial, file)
  yield* Console.log(`Exported ${yield* Ref.get(exported)} users to ${file}`)
})

const Intercom = IntercomClient.layerConfig().pipe(
  Layer.provide(NodeHttpClient.layerUndici),
  // Without INTERCOM_ACCESS_TOKEN: a simulated workspace of 2,500 users, and the token and base URL to reach it.
  Layer.provideMerge(Embedded.layer({ workspaces: [{ token: "dG9rOmV4YW1wbGU6MTIzNA==", users: 2_500 }] }))
)

program.pipe(Effect.provide(Layer.merge(Intercom, NodeContext.layer)), NodeRuntime.runMain)
