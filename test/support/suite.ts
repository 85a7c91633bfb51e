/**
 * What a suite of process tests shares, over vitest's hooks: kept out of `processes.ts`, which the bench imports
 * outside vitest (through `install.ts`), where importing vitest throws.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll } from "vitest"
import { simulator } from "./processes.js"

/**
 * One standalone simulator (`simulator`) for every case of the suite this is called in: started before the first,
 * stopped after the last. Each case scrolls a workspace of its own on it, so that none waits on another's scroll; a
 * simulator's start costs ~0.7 s of CPU. Gives its base URL, once the suite has begun.
 */
export const simulatorForAll = (args: ReadonlyArray<string>): () => string => {
  const scope = Effect.runSync(Scope.make())
  let baseUrl = ""
  beforeAll(async () => {
    baseUrl = await simulator(args).pipe(Scope.extend(scope), Effect.provide(NodeContext.layer), Effect.runPromise)
  }, 60_000)
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  return () => baseUrl
}
