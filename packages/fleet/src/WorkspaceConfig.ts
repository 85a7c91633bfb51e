/**
 * The workspaces a fleet syncs: for each, the name its rows carry, where its API lives, and the environment
 * variable that holds its access token on the runners. Nothing here is secret: the token itself never leaves the
 * runner that reads it.
 *
 * The file `fleet sync --workspaces FILE` reads is a JSON array of these.
 *
 * @example
 * ```ts
 * import { WorkspaceConfig } from "@intercom-scroll/fleet"
 *
 * const workspaces = WorkspaceConfig.parse(
 *   `[{ "workspace": "acme", "baseUrl": "https://api.intercom.io", "tokenEnv": "ACME_TOKEN" },
 *     { "workspace": "globex", "region": "eu", "tokenEnv": "GLOBEX_TOKEN" }]`,
 *   "fleet.json"
 * ) // Effect<ReadonlyArray<WorkspaceConfig>, WorkspacesFileError>
 * ```
 *
 * @since 0.1.0
 */
import { FileSystem } from "@effect/platform"
import { Sync } from "@intercom-scroll/sync"
import { Effect, Equal, ParseResult, Predicate, Ref, Schema } from "effect"
import * as IssuePath from "./internal/issuePath.js"

/**
 * Intercom's regional API hosts, as `IntercomClient` names them.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Region = Schema.Literal("us", "eu", "au").annotations({
  message: () => ({ message: `must be "us", "eu" or "au"`, override: true })
})

/**
 * The name of an environment variable, such as `ACME_TOKEN`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TokenEnv = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*$/, {
    message: () => "must name an environment variable (letters, digits and _, not starting with a digit)"
  })
)

/**
 * A workspace's name: the entity id of its `WorkspaceSync` and the `workspace` column of its rows, as the sync takes
 * it (`Sync.WorkspaceName`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const WorkspaceName: Schema.Schema<string> = Sync.WorkspaceName

/** What the file can tell of a base URL; the client refuses the rest (plain http to another machine) on the runner. */
const isHttpUrl = (url: string) => URL.canParse(url) && /^https?:$/.test(new URL(url).protocol)

const BaseUrl = Schema.String.pipe(
  Schema.filter(isHttpUrl, { message: () => "must be an absolute http(s) URL, such as https://api.intercom.io" })
)

/**
 * One workspace of the fleet. `baseUrl` overrides `region`; with neither, the US host.
 *
 * @since 0.1.0
 * @category schemas
 */
export class WorkspaceConfig extends Schema.Class<WorkspaceConfig>("@intercom-scroll/fleet/WorkspaceConfig")({
  workspace: WorkspaceName,
  baseUrl: Schema.optionalWith(BaseUrl, { exact: true }),
  region: Schema.optionalWith(Region, { exact: true }),
  tokenEnv: TokenEnv
}) {}

/**
 * The file's content: at least one workspace, each name once.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WorkspaceConfigs = Schema.Array(WorkspaceConfig).annotations({
  message: () => "must be a JSON array of workspaces"
}).pipe(
  Schema.filter((workspaces) => workspaces.length === 0 ? "lists no workspace" : namedAgain(workspaces))
)

/**
 * Each entry that names a workspace an entry before it named. It reads entries as they are in the file too, so that a
 * file with a mistake elsewhere says its repeated names with it, not once the mistake is mended.
 */
const namedAgain = (entries: ReadonlyArray<unknown>): Array<Schema.FilterIssue> => {
  const seen = new Set<string>()
  const issues: Array<Schema.FilterIssue> = []
  for (const [index, entry] of entries.entries()) {
    if (!Predicate.hasProperty(entry, "workspace") || typeof entry.workspace !== "string") continue
    if (seen.has(entry.workspace)) {
      issues.push({ path: [index, "workspace"], message: `names ${JSON.stringify(entry.workspace)} a second time` })
    }
    seen.add(entry.workspace)
  }
  return issues
}

/**
 * The workspaces file could not be read or does not hold a valid list of workspaces.
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkspacesFileError extends Schema.TaggedError<WorkspacesFileError>()("WorkspacesFileError", {
  path: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `The workspaces file ${this.path} ${this.detail}. It must be a JSON array of objects such as {"workspace":"acme","tokenEnv":"ACME_TOKEN"}, with "baseUrl" or "region" (us, eu, au) where the workspace is not in the US.`
  }
}

const decodeText = Schema.decodeUnknown(Schema.parseJson(WorkspaceConfigs), { errors: "all", onExcessProperty: "error" })

/**
 * Parses a workspaces file's text. The error names each problem by its place in the file, such as
 * `[2].tokenEnv is missing`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const parse = (
  text: string,
  path: string
): Effect.Effect<ReadonlyArray<WorkspaceConfig>, WorkspacesFileError> =>
  decodeText(text).pipe(
    Effect.mapError((error) => new WorkspacesFileError({ path, detail: describe(error, text) }))
  )

/**
 * Reads and parses a workspaces file.
 *
 * @since 0.1.0
 * @category decoding
 */
export const readFile = Effect.fn("WorkspaceConfig.readFile")(function*(path: string) {
  const fs = yield* FileSystem.FileSystem
  const text = yield* fs.readFileString(path).pipe(
    Effect.mapError((error) =>
      new WorkspacesFileError({
        path,
        detail: error._tag === "SystemError" && error.reason === "NotFound"
          ? "does not exist"
          : `could not be read (${error.message})`
      })
    )
  )
  return yield* parse(text, path)
})

/**
 * Reads a workspaces file now, failing as `readFile` does, and returns an effect that reads it again each time it runs:
 * give it to `SyncCron.layer` as its `workspaces`, and each round syncs the file as it is then, so that a workspace
 * added, removed, or given another `tokenEnv`, `baseUrl` or `region` takes effect at the next round, without restarting
 * the runners. Each read that finds the file changed logs what changed (`The workspaces file changed: 1 added (globex),
 * 1 removed (initech)`); a read that fails (a file being edited, one with a mistake) logs a warning with the problem
 * and yields the workspaces read before, so that a mistake does not stop the schedule.
 *
 * @example
 * ```ts
 * import { SyncCron, WorkspaceConfig } from "@intercom-scroll/fleet"
 * import { NodeFileSystem } from "@effect/platform-node"
 * import { Cron, Effect, Layer } from "effect"
 *
 * const schedule = Layer.unwrapEffect(Effect.map(WorkspaceConfig.reader("workspaces.json"), (workspaces) =>
 *   SyncCron.layer({ name: "refresh", cron: Cron.unsafeParse("0 *\/6 * * *", "UTC"), resources: ["users"], workspaces })
 * )).pipe(Layer.provide(NodeFileSystem.layer))
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const reader = Effect.fn("WorkspaceConfig.reader")(function*(path: string) {
  const fs = yield* FileSystem.FileSystem
  const last = yield* Ref.make(yield* readFile(path))
  return Effect.flatMap(Ref.get(last), (before) =>
    readFile(path).pipe(
      Effect.provideService(FileSystem.FileSystem, fs),
      Effect.matchEffect({
        onFailure: (error) =>
          Effect.as(
            Effect.logWarning(
              `${error.message} This round syncs the ${before.length} ${before.length === 1 ? "workspace" : "workspaces"} it listed when last read.`
            ),
            before
          ),
        onSuccess: (now) => {
          const changes = describeChanges(before, now)
          return Ref.set(last, now).pipe(
            Effect.zipRight(changes === undefined ? Effect.void : Effect.logInfo(`The workspaces file changed: ${changes}`)),
            Effect.as(now)
          )
        }
      })
    ))
})

/** `1 added (globex), 1 removed (initech), 1 changed (acme)`, or undefined when the lists hold the same workspaces. */
const describeChanges = (
  before: ReadonlyArray<WorkspaceConfig>,
  now: ReadonlyArray<WorkspaceConfig>
): string | undefined => {
  const old = new Map(before.map((config) => [config.workspace, config]))
  const current = new Set(now.map(({ workspace }) => workspace))
  const added = now.filter(({ workspace }) => !old.has(workspace)).map(({ workspace }) => workspace)
  const removed = before.filter(({ workspace }) => !current.has(workspace)).map(({ workspace }) => workspace)
  const changed = now.filter((config) => {
    const was = old.get(config.workspace)
    return was !== undefined && !Equal.equals(was, config)
  }).map(({ workspace }) => workspace)
  const parts = [["added", added], ["removed", removed], ["changed", changed]] as const
  const said = parts.filter(([, names]) => names.length > 0).map(([what, names]) => `${names.length} ${what} (${names.join(", ")})`)
  return said.length > 0 ? said.join(", ") : undefined
}

/** Each problem with its place in the file: `[0].tokenEnv is missing; [3].region must be "us", "eu" or "au"`. */
const describe = (error: ParseResult.ParseError, text: string): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const [first] = issues
  if (issues.length === 1 && first.path.length === 0) {
    return first._tag === "Transformation" ? `is not JSON (${first.message})` : first.message
  }
  const problems = issues.map(({ _tag, message, path }) => ({
    path,
    message: _tag === "Unexpected" ? "is not a field a workspace has (workspace, baseUrl, region, tokenEnv)" : message
  }))
  // The schema checks the names only once every entry decodes, so an entry in error held that check back: made here
  // on the file as written, each repeat said once, in the file's order.
  const entries: unknown = JSON.parse(text)
  const repeated = Array.isArray(entries) ? namedAgain(entries) : []
  const entry = ({ path }: Schema.FilterIssue) => typeof path[0] === "number" ? path[0] : -1
  const lines = [...problems, ...repeated].sort((a, b) => entry(a) - entry(b))
  const all = new Set(lines.map(({ message, path }) => `${IssuePath.format(path)} ${message}`))
  return `is not valid: ${Array.from(all).join("; ")}`
}
