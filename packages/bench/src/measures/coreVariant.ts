/**
 * Scroll.users or Scroll.companies from a patched copy of the core (`speedups.ts` makes them), in a worker of its own:
 * the copy is imported on the first run, which the warm-up round absorbs.
 */
import * as Contenders from "../lib/contenders.js"
import type { Make } from "../lib/worker.js"

/** A scroll of `resource` from the copy named by `setup.coreModule`. */
const fromCopy = (resource: "users" | "companies"): Make => (setup, work) => {
  const { coreModule } = setup
  if (coreModule === undefined) throw new Error("a core variant needs setup.coreModule")
  const client = import(coreModule).then((modules: Contenders.CoreModules) =>
    Contenders.coreFrom(modules, setup.baseUrl, setup.token)
  )
  return {
    run: async () => (await client)[resource](undefined, work),
    dispose: async () => (await client).dispose()
  }
}

export const contenders = {
  "Scroll.users, core variant": fromCopy("users"),
  "Scroll.companies, core variant": fromCopy("companies")
} as const
