/**
 * The workspace the CLI tests export: what the standalone simulator is started with, and what it must give back.
 */
import { Simulator } from "@intercom-scroll/simulator"
import { Effect } from "effect"

export const TOKEN = "cli-test-token-5f1c9e"
export const SEED = 7
export const USERS = 1_200

/** The users a workspace of USERS users with `seed` holds, sorted. */
const idsOf = (token: string, seed: number) =>
  Effect.flatMap(
    Simulator.make({ workspaces: [{ token, seed, users: USERS }] }),
    (sim) => sim.ids(token, "users")
  ).pipe(Effect.map((ids) => [...ids].sort()))

/** The users the standalone simulator serves for `workspaceFlags`, sorted. */
export const expectedIds = idsOf(TOKEN, SEED)

const sizeFlags = ["--seed", String(SEED), "--users", String(USERS), "--page-size", "50"]

export const workspaceFlags = ["--token", TOKEN, ...sizeFlags]

export const env = (baseUrl: string, token: string = TOKEN) => ({ INTERCOM_ACCESS_TOKEN: token, INTERCOM_BASE_URL: baseUrl })

/**
 * A workspace of its own for each of `names` on one standalone simulator, so that cases sharing the simulator never
 * wait on each other's scroll: the simulator's flags, and by name the workspace's token, its environment and its
 * users (the simulator gives its Nth workspace the seed SEED + N - 1).
 */
export const workspaces = <const Name extends string>(names: ReadonlyArray<Name>) => {
  const tokens = names.map((name) => `${TOKEN}-${name}`)
  return {
    flags: [...tokens.flatMap((token) => ["--token", token]), ...sizeFlags],
    of: (name: Name) => {
      const index = names.indexOf(name)
      const token = tokens[index]!
      return { token, env: (baseUrl: string) => env(baseUrl, token), expectedIds: idsOf(token, SEED + index) }
    }
  }
}

export const ndjsonIds = (text: string) =>
  text.split("\n").filter((line) => line !== "").map((line) => (JSON.parse(line) as { readonly id: string }).id)
