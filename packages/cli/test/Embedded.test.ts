import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { Embedded } from "../src/index.js"

const simulator = { workspaces: [{ token: "embedded", users: 10 }] }

const targetWith = (environment: ReadonlyArray<readonly [string, string]>) =>
  Embedded.Target.pipe(
    Effect.provide(Embedded.layerFromEnv({ simulator })),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(environment)))
  )

describe("Embedded.layerFromEnv", () => {
  it.scoped("without INTERCOM_ACCESS_TOKEN, or with a blank one, points at the simulator; with one, at Intercom", () =>
    Effect.gen(function*() {
      expect((yield* targetWith([])).kind).toBe("simulator")
      // `INTERCOM_ACCESS_TOKEN= pnpm start`: an empty bearer would only be refused by Intercom.
      expect((yield* targetWith([["INTERCOM_ACCESS_TOKEN", " "]])).kind).toBe("simulator")
      expect(yield* targetWith([["INTERCOM_ACCESS_TOKEN", "tok"], ["INTERCOM_REGION", "eu"]])).toEqual({
        kind: "intercom",
        baseUrl: "https://api.eu.intercom.io"
      })
    }))
})
