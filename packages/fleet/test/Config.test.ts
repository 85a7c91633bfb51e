import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Cause, ConfigError, ConfigProvider, ConfigProviderPathPatch as PathPatch, Effect, HashSet, Layer, Logger, Redacted } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { Secrets, WorkspaceConfig } from "../src/index.js"
import { tempDir } from "./support/processes.js"

const problem = (text: string) => Effect.map(Effect.flip(WorkspaceConfig.parse(text, "fleet.json")), (error) => error.message)

describe("WorkspaceConfig", () => {
  it.effect("reads a JSON array of workspaces, baseUrl and region optional", () =>
    Effect.gen(function*() {
      const workspaces = yield* WorkspaceConfig.parse(
        `[{"workspace":"acme","baseUrl":"https://api.intercom.io","tokenEnv":"ACME_TOKEN"},{"workspace":"globex","region":"eu","tokenEnv":"GLOBEX_TOKEN"}]`,
        "fleet.json"
      )
      expect(workspaces.map((w) => ({ ...w }))).toEqual([
        { workspace: "acme", baseUrl: "https://api.intercom.io", tokenEnv: "ACME_TOKEN" },
        { workspace: "globex", region: "eu", tokenEnv: "GLOBEX_TOKEN" }
      ])
    }))

  it.effect("names every problem of a bad file by its place in it", () =>
    Effect.gen(function*() {
      expect(yield* problem(`{`)).toMatch(/^The workspaces file fleet\.json is not JSON \(/)
      expect(yield* problem(`{}`)).toContain("fleet.json must be a JSON array of workspaces")
      expect(yield* problem(`[]`)).toContain("fleet.json lists no workspace")
      const many = yield* problem(
        `[{"workspace":"a","tokenEnv":"1X"},{"tokenEnv":"B","regio":"eu"},{"workspace":"c","tokenEnv":"C","region":"xx","baseUrl":"nope"},{"workspace":"d","tokenEnv":"D","baseUrl":"ftp://127.0.0.1:4711"}]`
      )
      expect(many).toContain("[0].tokenEnv must name an environment variable")
      expect(many).toContain("[1].regio is not a field a workspace has")
      expect(many).toContain("[1].workspace is missing")
      expect(many).toContain(`[2].region must be "us", "eu" or "au"`)
      expect(many).toContain("[2].baseUrl must be an absolute http(s) URL")
      expect(many).toContain("[3].baseUrl must be an absolute http(s) URL")
      expect(yield* problem(`[{"workspace":"a","tokenEnv":"A"},{"workspace":"a","tokenEnv":"B"}]`))
        .toContain(`[1].workspace names "a" a second time`)
      // A repeated name is said beside the file's other mistakes, each repeat once, in the file's order.
      expect(
        yield* problem(
          `[{"workspace":"a","tokenEnv":"A"},{"workspace":"a","tokenEnv":"1B"},{"workspace":"c","tokenEnv":"C"},{"workspace":"a","tokenEnv":"D"}]`
        )
      ).toContain(
        `is not valid: [1].tokenEnv must name an environment variable (letters, digits and _, not starting with a digit); [1].workspace names "a" a second time; [3].workspace names "a" a second time.`
      )
      expect(yield* problem(`[{"workspace":" a","tokenEnv":"A"}]`)).toContain("[0].workspace must be 1 to 200 characters")
    }))

  it.scoped("a file that is not there is named as such", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("fleet-config-")
      const missing = yield* Effect.flip(WorkspaceConfig.readFile(join(dir, "nope.json")))
      expect(missing.message).toContain("nope.json does not exist")
      writeFileSync(join(dir, "ok.json"), `[{"workspace":"acme","tokenEnv":"ACME_TOKEN"}]`)
      expect(yield* WorkspaceConfig.readFile(join(dir, "ok.json"))).toHaveLength(1)
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})

describe("WorkspaceConfig.reader", () => {
  it.scoped("reads the file again each time: what changed is logged, and a read that fails keeps the list read before", () => {
    const logged: Array<string> = []
    const logger = Logger.replace(Logger.defaultLogger, Logger.make(({ logLevel, message }) => void logged.push(`${logLevel.label} ${String(message)}`)))
    return Effect.gen(function*() {
      const dir = yield* tempDir("fleet-reader-")
      const file = join(dir, "workspaces.json")
      const write = (workspaces: ReadonlyArray<Record<string, string>>) => writeFileSync(file, JSON.stringify(workspaces))
      const names = (workspaces: ReadonlyArray<WorkspaceConfig.WorkspaceConfig>) => workspaces.map((w) => `${w.workspace}:${w.tokenEnv}`)

      write([{ workspace: "acme", tokenEnv: "ACME_TOKEN" }, { workspace: "initech", tokenEnv: "INITECH_TOKEN" }])
      const read = yield* WorkspaceConfig.reader(file)
      expect(names(yield* read)).toEqual(["acme:ACME_TOKEN", "initech:INITECH_TOKEN"])
      expect(logged).toEqual([])

      // Added, removed and a token rotated into another variable.
      write([{ workspace: "acme", tokenEnv: "ACME_TOKEN_2" }, { workspace: "globex", region: "eu", tokenEnv: "GLOBEX_TOKEN" }])
      expect(names(yield* read)).toEqual(["acme:ACME_TOKEN_2", "globex:GLOBEX_TOKEN"])
      expect(logged).toEqual(["INFO The workspaces file changed: 1 added (globex), 1 removed (initech), 1 changed (acme)"])
      yield* read
      expect(logged).toHaveLength(1)

      // Caught mid-edit: the round goes on with what was read before, and the warning says what is wrong.
      writeFileSync(file, `[{"workspace":"acme","tokenEnv":"ACME_TOKEN_2"},`)
      expect(names(yield* read)).toEqual(["acme:ACME_TOKEN_2", "globex:GLOBEX_TOKEN"])
      expect(logged[1]).toMatch(/^WARN The workspaces file .*workspaces\.json is not JSON \(.*This round syncs the 2 workspaces it listed when last read\.$/)
      write([{ workspace: "acme", tokenEnv: "ACME_TOKEN_2" }])
      expect(names(yield* read)).toEqual(["acme:ACME_TOKEN_2"])
      expect(logged[2]).toBe("INFO The workspaces file changed: 1 removed (globex)")
    }).pipe(Effect.provide(logger), Effect.provide(NodeFileSystem.layer))
  })

  it.scoped("fails at once, as readFile does, when the file cannot be read at the start", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("fleet-reader-")
      const missing = yield* Effect.flip(WorkspaceConfig.reader(join(dir, "nope.json")))
      expect(missing.message).toContain("nope.json does not exist")
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})

describe("Secrets.layerConfig", () => {
  const token = (env: Record<string, string>, tokenEnv: string) =>
    Effect.flatMap(Secrets.Secrets, (secrets) => secrets.token({ workspace: "acme", tokenEnv })).pipe(
      Effect.provide(Secrets.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromJson(env)))))
    )

  it.effect("resolves a workspace's variable as a Redacted", () =>
    Effect.gen(function*() {
      const resolved = yield* token({ ACME_TOKEN: "s3cret" }, "ACME_TOKEN")
      expect(Redacted.value(resolved)).toBe("s3cret")
      expect(String(resolved)).not.toContain("s3cret")
    }))

  it.effect("resolves a variable with a line break at its end (a secret file, a CRLF .env) without it, as the core reads INTERCOM_ACCESS_TOKEN", () =>
    Effect.gen(function*() {
      // Kept, the line break made the client refuse the token as InvalidOptions, naming no variable.
      expect(Redacted.value(yield* token({ ACME_TOKEN: " s3cret\r\n" }, "ACME_TOKEN"))).toBe("s3cret")
    }))

  it.effect("refuses a variable that is unset or blank, naming it and not its value", () =>
    Effect.gen(function*() {
      expect((yield* Effect.flip(token({}, "ACME_TOKEN"))).message).toContain("ACME_TOKEN is not set")
      const blank = yield* Effect.flip(token({ ACME_TOKEN: "  " }, "ACME_TOKEN"))
      expect(blank._tag).toBe("MissingToken")
    }))

  it.effect("a secret store that fails is said to have failed, not taken for an unset variable", () =>
    Effect.gen(function*() {
      const unavailable = ConfigProvider.fromFlat(ConfigProvider.makeFlat({
        load: (path) => Effect.fail(ConfigError.SourceUnavailable([...path], "the vault did not answer", Cause.empty)),
        enumerateChildren: () => Effect.succeed(HashSet.empty()),
        patch: PathPatch.empty
      }))
      const error = yield* Effect.flip(Effect.flatMap(Secrets.Secrets, (secrets) => secrets.token({ workspace: "acme", tokenEnv: "ACME_TOKEN" })).pipe(
        Effect.provide(Secrets.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(unavailable))))
      ))
      expect(error._tag).toBe("MissingToken")
      expect(error.message).toContain("the config provider failed to read ACME_TOKEN (Source unavailable at ACME_TOKEN")
      expect(error.message).not.toContain("is not set")
      expect(error.message).not.toContain("Set ACME_TOKEN on every runner")
    }))

  it.effect("a Secrets layer of the app's own that has no token says why in its words, without the advice for an environment variable", () =>
    Effect.gen(function*() {
      // Before, its words were followed by "Set ACME_TOKEN on every runner process …, or give the runners a Secrets layer
      // that reads your secret store": that of a runner which already had one, and whose tokens are no variables.
      const fromVault = Secrets.layer((ref) =>
        Effect.fail(new Secrets.MissingToken({ ...ref, detail: `the vault holds no secret at intercom/${ref.workspace}` })))
      const error = yield* Effect.flip(Effect.flatMap(Secrets.Secrets, (secrets) => secrets.token({ workspace: "acme", tokenEnv: "ACME_TOKEN" })).pipe(
        Effect.provide(fromVault)
      ))
      expect(error.message).toBe(
        "No access token for workspace acme (ACME_TOKEN) on the runner that took the sync: the vault holds no secret at intercom/acme."
      )
      // An unset variable (no detail) keeps its advice.
      expect(new Secrets.MissingToken({ workspace: "acme", tokenEnv: "ACME_TOKEN" }).message).toContain(
        "Set ACME_TOKEN on every runner process"
      )
    }))
})
