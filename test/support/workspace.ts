/**
 * The workspace the CLI tests export: what the standalone simulator is started with, and what it must give back.
 */
import { Simulator } from "@intercom-scroll/simulator"
import { Effect } from "effect"

export const TOKEN = "cli-test-token-5f1c9e"
export const SEED = 7
export const USERS = 1_200

/** The users the standalone simulator serves for `workspaceFlags`, sorted. */
export const expectedIds = Effect.flatMap(
  Simulator.make({ workspaces: [{ token: TOKEN, seed: SEED, users: USERS }] }),
  (sim) => sim.ids(TOKEN, "users")
).pipe(Effect.map((ids) => [...ids].sort()))

export const workspaceFlags = ["--token", TOKEN, "--seed", String(SEED), "--users", String(USERS), "--page-size", "50"]

export const env = (baseUrl: string) => ({ INTERCOM_ACCESS_TOKEN: TOKEN, INTERCOM_BASE_URL: baseUrl })

export const ndjsonIds = (text: string) =>
  text.split("\n").filter((line) => line !== "").map((line) => (JSON.parse(line) as { readonly id: string }).id)
