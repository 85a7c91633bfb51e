/**
 * One `WorkspaceSync` entity per workspace: the cluster runs each on exactly one runner at a time and hands it its
 * messages one after the other, so a workspace has one scroll open across the whole fleet, as Intercom requires.
 *
 * A `Sync` runs `Sync.run` from `@intercom-scroll/sync` for each resource, into the sync tables of the fleet's
 * database, with the workspace's name as their `workspace`. It is persisted: a runner that dies mid-sync leaves the
 * message in storage, and the runner that takes the workspace over runs it again: the resources it completed are
 * answered with their runs, the one cut is synced again from the first page (a scroll cannot resume), and the rest.
 * The sync's own database lock is the fence for the rare case where two runners believe they own a
 * workspace at once (a frozen runner whose database sessions were dropped): the stale one cannot write.
 *
 * @example
 * ```ts
 * import { WorkspaceConfig, WorkspaceSync } from "@intercom-scroll/fleet"
 * import { Effect } from "effect"
 *
 * const acme = new WorkspaceConfig.WorkspaceConfig({ workspace: "acme", tokenEnv: "ACME_TOKEN" })
 *
 * // On any process of the fleet (a runner, or a client-only process):
 * const summaries = WorkspaceSync.sync(acme, { resources: ["users", "companies"], run: "manual-2026-12-01" })
 * //    ^? Effect<ReadonlyArray<Summary>, WorkspaceSyncError | …, Sharding>
 * ```
 *
 * @since 0.1.0
 */
import { ClusterSchema, Entity, EntityAddress, EntityId, Envelope, MachineId, MessageStorage, Sharding, type ShardId, Snowflake } from "@effect/cluster"
import type { HttpClient } from "@effect/platform"
import { Rpc } from "@effect/rpc"
import type { MigrationError } from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import { IntercomClient, Resource, ScrollError } from "@intercom-scroll/core"
import { Sync as IntercomSync, SyncDatabase, SyncError } from "@intercom-scroll/sync"
import { Array as Arr, Cause, Context, DateTime, Duration, Effect, identity, Layer, Option, ParseResult, type Redacted, Schedule, Schema } from "effect"
import * as CompletedRuns from "./internal/completedRuns.js"
import * as CronName from "./internal/cronName.js"
import * as CutBefore from "./internal/cutBefore.js"
import * as IssuePath from "./internal/issuePath.js"
import * as ScrollWaits from "./internal/scrollWaits.js"
import * as SilentSession from "./internal/silentSession.js"
import * as Slots from "./internal/slots.js"
import * as TokenDestination from "./internal/tokenDestination.js"
import { MissingToken, Secrets } from "./Secrets.js"
import { Summary } from "./Summary.js"
import { WorkspaceConfig } from "./WorkspaceConfig.js"
import { createHash } from "node:crypto"

/**
 * A sync failed in the database (a statement or a migration failed), or refused its options. `SqlError` and
 * `MigrationError` carry causes that cannot cross processes, so this carries their tag and message: never a token
 * (the sync never holds one) nor the database's password (the runner's database errors do not name it).
 *
 * @since 0.1.0
 * @category errors
 */
export class SyncFailed extends Schema.TaggedError<SyncFailed>()("SyncFailed", {
  workspace: Schema.String,
  resource: Resource.Resource,
  /** The sync's error; `Defect` for a throw where an error was expected (a bug, a secret store's client). */
  failure: Schema.Literal("SqlError", "MigrationError", "InvalidOptions", "Defect"),
  /** Its message, and its cause's. */
  detail: Schema.String
}) {
  override get message(): string {
    const then = this.failure === "Defect" ? "once the runner is mended" : "once the database is reachable"
    return `The sync of the ${this.resource} of workspace ${
      JSON.stringify(this.workspace)
    } failed: ${this.failure}: ${this.detail}. Nothing was marked deleted; the runner's log has the details. Send the Sync again (with another run name) ${then}.`
  }
}

/**
 * Why a workspace's sync failed: an error Intercom or the scroll gave (`ScrollError`), a base URL
 * the client refuses (`InvalidOptions`), no token on the runner (`MissingToken`), the sync's own errors (`LockLost`,
 * `LockTimeout`, `TableLocked`: another session's lock held a statement too long, `SessionPooled`: a pooler shares the database session, `SchemaTooNew`, `UnsupportedDialect`, `WorkspaceMismatch`: the token is another workspace's; `WorkspaceUnchecked`:
 * Intercom did not say whose it is; `TablesAltered`: a table of the sync's dropped or changed by hand), or a database failure (`SyncFailed`). Each crosses processes as it was
 * raised, except the database's, which `SyncFailed` carries.
 *
 * @since 0.1.0
 * @category errors
 */
export const WorkspaceSyncError = Schema.Union(
  ScrollError.ScrollError,
  ScrollError.InvalidOptions,
  MissingToken,
  SyncError.LockLost,
  SyncError.LockTimeout,
  SyncError.TableLocked,
  SyncError.SessionPooled,
  SyncError.SchemaTooNew,
  SyncError.UnsupportedDialect,
  SyncError.WorkspaceMismatch,
  SyncError.WorkspaceUnchecked,
  SyncError.TablesAltered,
  SyncFailed
)

/**
 * @since 0.1.0
 * @category errors
 */
export type WorkspaceSyncError = typeof WorkspaceSyncError.Type

/**
 * A `Sync` that `sync` did not send, its request breaking the request's schema: an empty `run`, a resource named twice,
 * or a `WorkspaceConfig` made without its checks (a `tokenEnv` that names no variable, say). Raised by the sender,
 * before anything is stored or sent: it never crosses processes, and nothing was synced.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSyncRequest extends Schema.TaggedError<InvalidSyncRequest>()("InvalidSyncRequest", {
  workspace: Schema.String,
  /** Each problem by its field: `run must not be empty; resources must not name a resource twice`. */
  detail: Schema.String
}) {
  override get message(): string {
    return `The Sync of workspace ${JSON.stringify(this.workspace)} was not sent: ${this.detail}. Nothing was synced.`
  }
}

const Resources = Schema.NonEmptyArray(Resource.Resource).pipe(
  Schema.filter((resources) => new Set(resources).size === resources.length || "must not name a resource twice")
)

/**
 * Syncs the given resources of the workspace the entity stands for, one after the other, and answers with a
 * summary per resource. The payload says where the workspace's API is and which variable holds its token on the
 * runners; never the token.
 *
 * `run` names the request: a second `Sync` with the same `run` to the same workspace is the same request, and is
 * answered with the first one's result (or waits for it) instead of syncing again. Give each run of `fleet sync`,
 * and each tick of a schedule, a name of its own.
 *
 * @since 0.1.0
 * @category rpcs
 */
export const Sync = Rpc.make("Sync", {
  payload: {
    // The message a sender's `InvalidSyncRequest` says; what crosses is the same.
    run: Schema.NonEmptyString.annotations({ message: () => "must not be empty" }),
    resources: Resources,
    baseUrl: WorkspaceConfig.fields.baseUrl,
    region: WorkspaceConfig.fields.region,
    tokenEnv: WorkspaceConfig.fields.tokenEnv
  },
  success: Schema.Array(Summary),
  error: WorkspaceSyncError,
  primaryKey: ({ run }) => requestKey(run)
})

/**
 * A run's name as its request's key. The cluster keys a request `WorkspaceSync/<workspace>/Sync/<key>`: with a `/` left
 * in it, workspace `a` with run `b/Sync/c` and workspace `a/Sync/b` with run `c` would be one request, the second
 * answered with the first's summaries. Escaped, the key has no `/`, so the key's last segment is the run's.
 */
const requestKey = (run: string): string => run.replaceAll("%", "%25").replaceAll("/", "%2F")

/**
 * The entity: its id is the workspace's name.
 *
 * @since 0.1.0
 * @category entities
 */
export const WorkspaceSync = Entity.make("WorkspaceSync", [Sync]).annotateRpcs(ClusterSchema.Persisted, true)

/** `SqlError` and `MigrationError` (and the sync's own `InvalidOptions`) as `SyncFailed`; the rest as they are. */
const crossable = (workspace: string, resource: Resource.Resource) =>
(
  error: SyncError.SyncError
): Exclude<SyncError.SyncError, SqlError | MigrationError | SyncError.InvalidOptions> | SyncFailed => {
  if (error._tag !== "SqlError" && error._tag !== "MigrationError" && !(error instanceof SyncError.InvalidOptions)) {
    return error
  }
  const failed = new SyncFailed({ workspace, resource, failure: error._tag, detail: SyncError.explain(error) })
  if (error._tag === "SqlError" && SyncDatabase.isTransient(error)) sessionLost.add(failed)
  return failed
}

/**
 * The `SyncFailed`s of an `SqlError` that the database did not refuse: the sync's session ended under it (ended by
 * the server, reset, timed out), which a `SELECT 1` on another session cannot tell from nothing having happened. Looked
 * up by the error as made (`Cause.originalError`): a span it fails through hands it on wrapped.
 */
const sessionLost = new WeakSet<SyncFailed>()

/**
 * One resource of a workspace, into the sync tables, its runs row labelled with the request's `run`. A sync that lost
 * its workspace lock (`LockLost`), or its database, is not tried again here: see `afterLockLost` and
 * `afterDatabaseFailure`.
 */
const syncResource = (
  workspace: string,
  resource: Resource.Resource,
  run: string,
  options: Pick<IntercomSync.Options, "runner" | "pagesPerTransaction" | "unansweredTimeout">
) =>
  IntercomSync.run(resource, { ...options, workspace, label: run }).pipe(
    ScrollWaits.said,
    Effect.mapError(crossable(workspace, resource)),
    Effect.flatMap((summary) => withCutBefore(summary, run))
  )

/**
 * `summary` with its `cutBefore`. A count the database does not answer leaves the summary without it: the sync is done,
 * and its answer is due.
 */
const withCutBefore = (summary: Summary, run: string) =>
  Effect.map(Effect.option(cutBefore(summary, run)), (cut): Summary => Option.isSome(cut) ? { ...summary, cutBefore: cut.value } : summary)

/**
 * How many runs of the request `run` (their label) cut before `summary`'s, of its workspace and resource, that did not
 * complete: a workspace moved or its runner stopped, died or lost its lock, and the request ran again from the first
 * page. Those after the latest run of that name that completed (a name sent again once pruned). Counted here, so that
 * the answer says it and its sender asks nothing per workspace.
 */
const cutBefore = (summary: CutBefore.Answering, run: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(CutBefore.statement(sql, summary, run), ([row]) => Number(row?.cut ?? 0)))

/**
 * How many times a request syncs again, after `LockLost` or a database that went away, while its runner still holds
 * the workspace. One budget for both: they are one event (the database restarted, failed over or was cut off) met at two
 * points of a run (with the lock held, its session ended; before, a statement failed), and a database that keeps going
 * away has the request answered after four runs, not seven.
 */
const syncAgainRetries = 3

/** A database failure that a database gone away may explain (a statement cut off, a connection refused). */
const isDatabaseFailure = (error: WorkspaceSyncError): error is SyncFailed =>
  error._tag === "SyncFailed" && (error.failure === "SqlError" || error.failure === "MigrationError")

/** How long a `SELECT 1` may take before the database counts as away: as long as `Health.check` waits for it. */
const pingTimeout = Duration.seconds(5)

/**
 * @since 0.1.0
 * @category models
 */
export interface LayerOptions {
  /**
   * Syncs this runner runs at once, across workspaces; more wait for a turn. Bounds the runner's CPU, sockets and
   * database connections. Each workspace runs one sync at a time whatever this says.
   */
  readonly maxSyncs: number
  /**
   * How long a sync that lost its workspace lock waits for the cluster to take the workspace from this runner before
   * it answers `LockLost` itself: at least the time a runner takes to notice a lost shard lock (a shard lock refresh
   * interval, then the refresh's own deadline, as long again). Default 30 seconds, for the cluster's default timings;
   * `Fleet.layerRunner` sets it from the fleet's.
   */
  readonly lockLostGrace?: Duration.DurationInput | undefined
  /** The runner's name on each run's row (`intercom_sync_runs.runner`); `Fleet.layerRunner` gives its `HOST:PORT`. */
  readonly runner?: string | undefined
  /**
   * Each sync's `Sync.Options.pagesPerTransaction`, from 1 (the default): above 1, the pages that came in while a
   * transaction ran go in the next one together, which keeps syncs at Intercom's pace with a database 30 ms away or more.
   */
  readonly pagesPerTransaction?: number | undefined
  /**
   * Each sync's `Sync.Options.unansweredTimeout` (PostgreSQL): how long the database may answer nothing at all, on any
   * connection, while a statement of the sync waits, before the sync fails with `LockLost`. Default 2 minutes; above
   * zero and at most 2³¹−1 ms (about 24.8 days).
   */
  readonly unansweredTimeout?: Duration.DurationInput | undefined
  /**
   * Base URLs, besides Intercom's hosts and this machine's (`localhost`, `127.x.x.x`, `[::1]`), that this runner sends a
   * workspace's token to: a gateway or a proxy in front of Intercom, a simulator on another machine. A `Sync` names its
   * base URL and the variable that holds its token, and whoever can write the fleet's database (or reach a runner's
   * port) can send one: a runner sends the secrets of its environment nowhere else. A `Sync` naming another base URL
   * is answered `InvalidOptions`, and nothing is sent. Compared by origin (scheme, host and port).
   */
  readonly allowedBaseUrls?: ReadonlyArray<string> | undefined
}

/**
 * The entity's behaviour, registered on the runner it is provided to. Tokens come from `Secrets`, HTTP from the
 * runner's `HttpClient`, and the sync tables live behind its `SqlClient`. A sync waiting for a slot starts only if its
 * request has no answer in the runner's `MessageStorage` yet: a runner cut off or frozen a while may still believe it
 * holds workspaces whose new owner has synced them.
 *
 * When the runner is stopping, a sync already running goes on until it ends or the cluster's termination timeout
 * interrupts it; a sync that has not started yet does not start, and goes back to storage for the next owner.
 *
 * A request that runs again (its workspace moved, its runner stopped or died) answers each resource whose run under
 * this request completed with that run's summary, read from its row of `intercom_sync_runs` (`app` absent: the row does
 * not keep it), and syncs the others. Its runs are the complete ones of its name (their label) that began once it was
 * sent, its id's time: those of an earlier request of the name, pruned before this one was sent, began before it. The
 * answer's log line names them (`completedBefore`). Where the database does not answer that read, the request syncs
 * every resource, as before.
 *
 * A sync that lost its workspace lock (`LockLost`: its database session ended, or its SQLite lease was taken over)
 * stops there, its run marked failed (or, when the database cannot record it then, abandoned by the next run). If the
 * cluster has moved the workspace meanwhile (this runner was frozen or cut off, and its shard locks went with its
 * sessions), the new owner runs the request and answers it, and this one waits, answering nothing, until the cluster
 * stops it. If this runner still holds the workspace after `lockLostGrace` (the database restarted or failed over
 * between two of the cluster's shard lock refreshes, which took the locks again), it syncs again from the resource it
 * lost, up to 3 times; then it answers `LockLost`.
 *
 * A sync that fails in the database (`SyncFailed` of a `SqlError` or a `MigrationError`) while the database does not
 * answer a `SELECT 1` within 5 seconds (it went away: restarting, failing over, cut off) waits for it, saying so in the
 * log, and syncs again from the resource that failed, if this runner still holds the workspace and is not stopping;
 * such a sync starts while the database is away (waiting for a slot, or moving to its next resource), since one that
 * loses it with its lock held ends with `LockLost`. These syncs again and those after `LockLost` share the 3. A failure
 * while the database answers (a statement it refuses: a table changed by hand, a full disk) is answered at once.
 * Whatever the answer, it is sent once the database answers: the cluster stores it there.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: LayerOptions
): Layer.Layer<never, never, Sharding.Sharding | MessageStorage.MessageStorage | Secrets | HttpClient.HttpClient | SqlClient.SqlClient> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    if (!Number.isInteger(options.maxSyncs) || options.maxSyncs < 1) {
      return yield* Effect.dieMessage(`WorkspaceSync.layer: maxSyncs must be a whole number ≥ 1, got ${options.maxSyncs}`)
    }
    const pagesPerTransaction = options.pagesPerTransaction ?? 1
    if (!Number.isInteger(pagesPerTransaction) || pagesPerTransaction < 1) {
      return yield* Effect.dieMessage(`WorkspaceSync.layer: pagesPerTransaction must be a whole number ≥ 1, got ${pagesPerTransaction}`)
    }
    // By the sync's own check, here: refused there, each of the runner's syncs would fail with InvalidOptions.
    const unansweredTimeout = options.unansweredTimeout === undefined
      ? undefined
      : yield* Effect.catchTag(
        IntercomSync.checkUnansweredTimeout(options.unansweredTimeout),
        "InvalidOptions",
        (refused) => Effect.dieMessage(`WorkspaceSync.layer: ${refused.detail}`)
      )
    // One per runner: the layer is built once, the handlers once per workspace the runner takes.
    const slots = yield* Slots.make(options.maxSyncs)
    const destinations = yield* TokenDestination.make(options.allowedBaseUrls ?? [])
    const lockLostGrace = Duration.decode(options.lockLostGrace ?? Duration.seconds(30))
    return WorkspaceSync.toLayer(Effect.gen(function*() {
      const secrets = yield* Secrets
      const sharding = yield* Sharding.Sharding
      const storage = yield* MessageStorage.MessageStorage
      const services = yield* Effect.context<HttpClient.HttpClient | SqlClient.SqlClient>()
      const sql = Context.get(services, SqlClient.SqlClient)
      // Given up after a few seconds, the wait for a connection counted: a server that takes connections and never
      // answers them (stalled, half cut off) is away too, and a try that hangs would keep the wait below from trying
      // again. Never by interrupting the statement, which @effect/sql-pg would cancel by pid alone (as `Health.check`).
      // No answer by then (None) fails as NoSuchElementException.
      const ping = Effect.flatten(SilentSession.answeredWithin(sql, pingTimeout)(sql`SELECT 1`))
      const untilDatabaseAnswers = Effect.ignore(Effect.retry(ping, { schedule: Schedule.spaced(Duration.seconds(1)) }))
      const databaseAnswers = ping.pipe(
        Effect.catchAll(() =>
          Effect.logWarning("The database does not answer: the Sync's answer waits for it").pipe(
            Effect.zipRight(untilDatabaseAnswers)
          )),
        Effect.ignore
      )

      /**
       * The resources the request completed before it ran again here (its workspace moved, its runner stopped or died),
       * each as its run's summary. None where the database fails or does not answer within `pingTimeout`: those sync
       * again, as a request run again did before; one on a database away fails at its first statement anyway.
       */
      const completedBefore = (request: CompletedRuns.Request) =>
        SilentSession.answeredWithin(sql, pingTimeout)(CompletedRuns.read(sql, request)).pipe(
          Effect.matchEffect({
            onFailure: (error) => unread(error.message),
            onSuccess: Option.match({ onNone: () => unread(`no answer within ${Duration.format(pingTimeout)}`), onSome: Effect.succeed })
          })
        )
      const unread = (why: string): Effect.Effect<ReadonlyMap<Resource.Resource, Summary>> =>
        Effect.as(
          Effect.logWarning(
            "Could not read which of its resources this Sync completed before, if it ran before: it syncs each"
          ).pipe(
            Effect.annotateLogs("error", why)
          ),
          new Map()
        )

      /**
       * Syncs the resources of the request that `done` has no summary of yet, adding theirs to it as each ends. A resource
       * whose run under this request completed before (`completedBefore`) is answered with that run's summary instead,
       * and added to `fromRuns`.
       */
      const syncAll = (
        workspace: string,
        request: typeof Sync.payloadSchema.Type,
        sentAt: number,
        accessToken: Redacted.Redacted<string>,
        state: { readonly done: Array<Summary>; readonly fromRuns: Array<Resource.Resource> }
      ) =>
        Effect.gen(function*() {
          const left = request.resources.slice(state.done.length)
          const completed = yield* completedBefore({ workspace, run: request.run, sentAt })
          const toSync = left.filter((resource) => !completed.has(resource))
          if (toSync.length < left.length) {
            yield* Effect.logInfo("Sync run again: it answers the resources it completed before with their runs").pipe(
              Effect.annotateLogs("completedBefore", left.filter((resource) => completed.has(resource)))
            )
          }
          if (toSync.length > 0) yield* Effect.logInfo("Sync started")
          const intercom = IntercomClient.layer({ accessToken, baseUrl: request.baseUrl, region: request.region })
          // One resource after the other: Intercom allows one open scroll per workspace, whatever the resource.
          yield* Effect.forEach(left, (resource) => {
            const earlier = completed.get(resource)
            return earlier === undefined
              ? Effect.map(syncResource(workspace, resource, request.run, {
                runner: options.runner,
                pagesPerTransaction,
                unansweredTimeout
              }), (summary) => void state.done.push(summary))
              : Effect.map(withCutBefore(earlier, request.run), (summary) => {
                state.done.push(summary)
                state.fromRuns.push(resource)
              })
          }).pipe(
            Effect.provide(intercom)
          )
          return [...state.done]
        }).pipe(Effect.provide(services))

      /**
       * Whether the cluster has stored an answer to the request: another runner's, since this one has not answered
       * it. A storage that does not answer says no: the sync then meets the database's failure itself.
       */
      const answered = (requestId: Snowflake.Snowflake) =>
        Effect.suspend(() => storage.repliesForUnfiltered([requestId])).pipe(
          Effect.map((replies) => replies.some((reply) => reply._tag === "WithExit")),
          Effect.orElseSucceed(() => false)
        )

      /**
       * After `LockLost`, nothing runs here until the runner knows it still holds the workspace: a stale owner must
       * not start the workspace again once the new owner releases the lock (retrying at once did, in the partition
       * test: a second run of one request). Whether the workspace moved shows in the cluster's ownership of its shard,
       * which a woken runner corrects at its next shard lock refresh; until then it may still believe it owns it,
       * hence the grace. Once it knows it does not, it waits for the cluster to interrupt the entity: an interrupted
       * persisted request is left for its owner to answer, whereas any answer from here would be stored as the
       * request's and end the client's wait. Still the owner after the grace (the database came back before a refresh
       * noticed, and the refresh took the shard locks again), it succeeds, for the request to sync again, `retries`
       * more times at most; then it fails with the error, for the request to answer it.
       */
      const afterLockLost = (shardId: ShardId.ShardId, retries: number) => <E extends WorkspaceSyncError>(error: E, said: string = error.message) =>
        Effect.logWarning(
          `${said} ${
            retries > 0
              ? `This runner syncs it again if it still holds the workspace ${Duration.format(lockLostGrace)} from now.`
              : "This runner syncs it no more."
          }`
        ).pipe(
          Effect.zipRight(Effect.timeoutOption(
            Effect.repeat(Effect.sync(() => sharding.hasShardId(shardId)), {
              while: (owned) => owned,
              schedule: Schedule.spaced(Duration.seconds(1))
            }),
            lockLostGrace
          )),
          Effect.flatMap(Option.match({
            onNone: () =>
              retries > 0
                ? Effect.logInfo("This runner still holds the workspace: it syncs it again")
                : Effect.fail(error),
            onSome: () =>
              Effect.logInfo("This runner no longer holds the workspace: its owner answers the Sync").pipe(
                Effect.zipRight(Effect.never)
              )
          }))
        )

      /**
       * After a database failure, a `SELECT 1` tells a database that went away (restarting, failing over, cut off:
       * refused or unanswered) from one that refused a statement (a schema changed by hand, a full disk). Refused, the
       * statement was at fault, and the request answers the failure at once. Away, the runner waits for it to answer
       * again and succeeds, for the request to sync again from the resource that failed, `retries` more times at most:
       * a sync that starts while the database is away (queued for a slot, or at its next resource) fails at its first
       * statement, and would otherwise be answered failed once the database is back though nothing was wrong with the
       * workspace. Whether this runner still holds the workspace and is not stopping is checked as the sync starts
       * again, as for any sync (`syncUnlessStopping`): the database being away a while, the cluster may have moved it.
       * (A database that goes away once the run holds its lock ends the lock's session: that is `LockLost`.) A session
       * that ended while the database answers (its server ended it, or this runner was frozen or cut off a while) is
       * not a statement refused: it is taken as `LockLost` is, since the cluster may have moved the workspace
       * meanwhile, and an answer from here would be stored as the request's while its new owner syncs it.
       */
      const afterDatabaseFailure = (shardId: ShardId.ShardId, retries: number) => (error: WorkspaceSyncError): Effect.Effect<void, WorkspaceSyncError> =>
        !isDatabaseFailure(error) || retries <= 0 ? Effect.fail(error) : ping.pipe(
          Effect.matchEffect({
            onSuccess: () =>
              sessionLost.has(Cause.originalError(error))
                ? afterLockLost(shardId, retries)(
                  error,
                  `The sync of the ${error.resource} lost its session to the database (${error.failure}: ${error.detail}), which answers.`
                )
                : Effect.fail(error),
            onFailure: () =>
              Effect.logWarning(
                `The sync of the ${error.resource} failed (${error.failure}: ${error.detail}) and the database does not answer: this runner syncs the workspace again from the ${error.resource} once it does, if it still holds the workspace.`
              ).pipe(
                Effect.zipRight(untilDatabaseAnswers),
                Effect.zipRight(Effect.logInfo("The database answers again: this runner syncs the workspace again"))
              )
          })
        )

      return WorkspaceSync.of({
        Sync: (envelope) => {
          const workspace = envelope.address.entityId
          const request = envelope.payload
          let started = false
          // The summaries of the resources synced so far: a sync that runs again (after `LockLost`, or its database
          // away) goes on from the resource it lost.
          const done: Array<Summary> = []
          // Those of them answered with the runs this request completed before it ran again here (moved, its runner
          // stopped or died). Its id's time is when it was first sent, on the database's clock as the runs' times are.
          const fromRuns: Array<Resource.Resource> = []
          const sentAt = Snowflake.timestamp(envelope.requestId)
          // Checked once a slot is free: a runner that began to stop meanwhile, or that no longer holds the workspace
          // (a runner joined, and the workspace's shard moves to it), starts nothing new; the workspace's owner will.
          // Nor one whose request is answered already: a runner cut off or frozen a while believes it holds its
          // workspaces until its next shard lock refresh, while their new owner may have synced and answered them
          // (a second scroll, cut short at that refresh, that leaves a scroll open at Intercom for the next sync).
          const syncUnlessStopping = (accessToken: Redacted.Redacted<string>) =>
            Effect.flatMap(Effect.zip(sharding.isShutdown, answered(envelope.requestId)), ([stopping, isAnswered]) => {
              if (stopping || isAnswered || !sharding.hasShardId(envelope.address.shardId)) return Effect.succeedNone
              started = true
              return Effect.asSome(syncAll(workspace, request, sentAt, accessToken, { done, fromRuns }))
            })
          const attempt = (
            accessToken: Redacted.Redacted<string>,
            retries: number
          ): Effect.Effect<Option.Option<ReadonlyArray<Summary>>, WorkspaceSyncError> =>
            slots.withSlot(syncUnlessStopping(accessToken)).pipe(
              // Out of the slot: waiting for the cluster or the database takes no turn from another workspace. One
              // handler for both: a second would also catch what the first's sync again failed with, on this budget.
              Effect.catchAll((error) =>
                (error._tag === "LockLost"
                  ? afterLockLost(envelope.address.shardId, retries)(error)
                  : afterDatabaseFailure(envelope.address.shardId, retries)(error)).pipe(
                    Effect.zipRight(Effect.suspend(() => attempt(accessToken, retries - 1)))
                  )
              )
            )
          // A sync refused before its run began is recorded as a failed run of each resource, as a run that began
          // and failed is: else it left nothing in the database, and `fleet status` and an alert on failed runs never
          // saw the workspace fail. Not recorded (the database away), the answer says it all the same.
          const recordRefused = (error: MissingToken | ScrollError.InvalidOptions) =>
            Effect.forEach(request.resources, (resource) =>
              IntercomSync.recordRefused(resource, { workspace, label: request.run, runner: options.runner, error }), { discard: true }).pipe(
                Effect.catchAll((cause) =>
                  Effect.logWarning("Could not record the refused sync").pipe(Effect.annotateLogs("error", cause.message))
                ),
                Effect.provideService(SqlClient.SqlClient, sql)
              )
          return Effect.logInfo("Sync received").pipe(
            // The message names where the token goes; the runner, which holds it, decides whether it may.
            Effect.zipRight(destinations.check(request.baseUrl)),
            // The token before a slot: a workspace whose variable is missing says so at once, not once one is free.
            Effect.zipRight(secrets.token({ workspace, tokenEnv: request.tokenEnv })),
            Effect.tapError(recordRefused),
            Effect.flatMap((accessToken) => attempt(accessToken, syncAgainRetries)),
            // Parked until the termination timeout interrupts it: a persisted request interrupted by the shutdown
            // is left unanswered in storage, and the next owner of the workspace runs it.
            Effect.flatMap(Option.match({ onNone: () => Effect.never, onSome: Effect.succeed })),
            // A defect would have the cluster restart the entity and run the request again, every few seconds, for
            // ever: it is answered as a failure, its cause in the log.
            Effect.catchAllDefect((defect) =>
              Effect.logError("Sync died", Cause.die(defect)).pipe(
                Effect.zipRight(
                  new SyncFailed({
                    workspace,
                    resource: request.resources[done.length] ?? request.resources[0],
                    failure: "Defect",
                    detail: String(defect)
                  })
                )
              )
            ),
            Effect.tapError((error) =>
              // `detail`, not `message`: logfmt would print a second `message=` beside the line's own.
              Effect.logWarning("Sync failed").pipe(Effect.annotateLogs({ error: error._tag, detail: error.message }))
            ),
            // The cluster saves the answer in the database, trying for about a second, and then drops it: the request
            // would stay unanswered for as long as this runner holds the workspace. An answer reached while the
            // database is away (the very failure, often) waits for it.
            Effect.exit,
            Effect.flatMap((exit) => Effect.zipRight(databaseAnswers, exit)),
            Effect.tap((summaries) =>
              Effect.logInfo("Sync done").pipe(
                Effect.annotateLogs("summaries", summaries.map(loggable)),
                // Said where some were not synced again: answered with the runs this request completed before it moved.
                fromRuns.length > 0 ? Effect.annotateLogs("completedBefore", fromRuns) : identity
              )
            ),
            // The cluster stops an entity when its runner stops or loses the workspace's shard: the request stays in
            // storage, and the workspace's owner runs it.
            Effect.onInterrupt(() =>
              Effect.logInfo(started ? "Sync interrupted" : "Sync handed back: it had not started")
            ),
            Effect.annotateLogs({ workspace, run: request.run }),
            Effect.withSpan("WorkspaceSync.Sync", { attributes: { workspace, run: request.run, resources: request.resources } })
          )
        }
      })
    }))
  }))

/**
 * How often a request the cluster's storage failed to save or read is sent again: SQLite answers "database is locked"
 * at once, without waiting, to a transaction that reads and then writes while another process writes (the cluster's
 * storage saves a request that way, and a runner on the same file writes every few seconds). Sending it again is safe:
 * its `run` is its primary key, so a request saved before the failure is the one answered.
 */
const storageBusy = Schedule.exponential("50 millis").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(7)))

/** A summary as a log line shows it: its counts, and its duration in milliseconds (not a `Duration`'s JSON). */
const loggable = ({ duration, ...counts }: Summary) => ({ ...counts, millis: Duration.toMillis(duration) })

/**
 * The `message_id` under which the cluster's SQL storage keeps a request's primary key: the key, or past 255 characters
 * (its column's width) the key's SHA-256 in hex. A workspace's name and its run's together may pass it.
 */
const storedMessageId = (primaryKey: string): string =>
  primaryKey.length <= 255 ? primaryKey : createHash("sha256").update(primaryKey).digest("hex")

/**
 * How many of `workspaces` were already sent a `Sync` of `run`, which they answer with what they answered then and
 * sync nothing again: the cluster stores a persisted request under its primary key (the workspace, the RPC and the
 * `run`). A sender reusing a run's name learns it from this before it waits on answers that are only stored ones.
 *
 * @since 0.1.0
 * @category clients
 */
export const sentBefore = Effect.fn("WorkspaceSync.sentBefore")(function*(workspaces: ReadonlyArray<string>, run: string) {
  const sharding = yield* Sharding.Sharding
  const sql = yield* SqlClient.SqlClient
  const messageIds = workspaces.map((workspace) => {
    const entityId = EntityId.make(workspace)
    const shardId = sharding.getShardId(entityId, WorkspaceSync.getShardGroup(entityId))
    const address = EntityAddress.make({ shardId, entityType: WorkspaceSync.type, entityId })
    return storedMessageId(Envelope.primaryKeyByAddress({ address, tag: Sync._tag, id: requestKey(run) }))
  })
  let sent = 0
  // A few hundred at a time: SQLite's statements take a bounded number of parameters.
  for (const chunk of Arr.chunksOf(messageIds, 500)) {
    const [row] = yield* sql<{ readonly sent: number }>`SELECT CAST(count(*) AS INTEGER) AS sent
      FROM ${sql("cluster_messages")} WHERE message_id IN ${sql.in(chunk)}`
    sent += Number(row?.sent ?? 0)
  }
  return sent
})

/**
 * What `prune` deleted.
 *
 * @since 0.1.0
 * @category models
 */
export interface Pruned {
  /** Rows of `intercom_sync_runs`: runs that ended before the cutoff. */
  readonly runs: number
  /** `Sync` requests answered before the cutoff, each with its replies, from the cluster's tables. */
  readonly requests: number
  /** `SyncCron` ticks whose rounds ended before the cutoff, each with its reply, from the cluster's tables. */
  readonly ticks: number
}

/**
 * Deletes what syncs answered before `before` left in the fleet's database, which nothing reads again: the `Sync`
 * requests the cluster answered before it (their `cluster_messages` rows and their `cluster_replies`), the `SyncCron`
 * ticks whose rounds ended before it, and the runs that ended before it (`Sync.pruneRuns`). Each sync leaves ~2 KB
 * there, which nothing else removes: 1,000 workspaces synced four times a day add ~3 GB a year. A request not yet
 * answered stays, and so does a run still `running`. A run's name pruned can be sent again, and syncs again
 * (`sentBefore` no longer finds it). A schedule's first tick stays: its runner sends it again at every start, and it
 * would run again if it were gone.
 *
 * A sender reads its answer within seconds of it (`fleet sync`, a `SyncCron` round): a cutoff of a few seconds ago
 * could delete an answer before its sender has read it, which would then wait for it forever. Keep `before` minutes in
 * the past at least; days, in practice.
 *
 * @since 0.1.0
 * @category maintenance
 */
export const prune = Effect.fn("WorkspaceSync.prune")(function*(before: DateTime.Utc) {
  const sql = yield* SqlClient.SqlClient
  // The cluster's ids are Snowflakes, their time in the high bits: every id made before `before` is below this one
  // (a time before the Snowflakes' epoch: below every id).
  const millis = Math.max(Snowflake.constEpochMillis, Math.floor(DateTime.toEpochMillis(before)))
  const cutoff = sql`CAST(${String(Snowflake.make({ timestamp: millis, machineId: MachineId.make(0), sequence: 0 }))} AS BIGINT)`
  const messages = sql("cluster_messages")
  const replies = sql("cluster_replies")
  const answeredBefore = Effect.fnUntraced(function*(entities: Statement.Fragment) {
    let deleted = 0
    let after = "0"
    while (true) {
      // Requests answered before the cutoff: a request sent before it whose answer came after stays, for its sender to
      // read. Their ids as text: a Snowflake is beyond a JavaScript number's exact integers. Read outside the
      // transaction: in SQLite a transaction that reads and then writes fails at once when another process wrote in
      // between.
      const batch = (yield* sql<{ readonly id: string }>`SELECT CAST(id AS TEXT) AS id FROM ${messages}
        WHERE ${entities} AND id = request_id AND processed AND id < ${cutoff}
        AND id > CAST(${after} AS BIGINT) AND id IN (SELECT request_id FROM ${replies} WHERE id < ${cutoff})
        ORDER BY id LIMIT 500`).map((row) => String(row.id))
      if (batch.length === 0) return deleted
      // Each request with its replies and whatever else came for it (an interruption its sender sent after the answer,
      // which the cluster skips only while the answer is there).
      yield* sql`DELETE FROM ${replies} WHERE request_id IN ${sql.in(batch)}`.pipe(
        Effect.zipRight(sql`DELETE FROM ${messages} WHERE request_id IN ${sql.in(batch)}`),
        sql.withTransaction
      )
      deleted += batch.length
      after = batch[batch.length - 1]
    }
  })
  const requests = yield* answeredBefore(sql`entity_type = ${WorkspaceSync.type}`)
  // Not the first tick ("initial"): a schedule's singleton sends it at every start, and the cluster runs it only while
  // it finds it already there. Pruned, it would run again, beside the ticks scheduled from it.
  const ticks = yield* answeredBefore(sql`entity_type LIKE ${CronName.tickEntityTypes} AND entity_id <> 'initial'`)
  const runs = yield* IntercomSync.pruneRuns(before)
  return { runs, requests, ticks } satisfies Pruned
})

/**
 * How many `Sync` requests a sender of many (`SyncCron`, `fleet sync`) keeps sent and unanswered at once, by default: the
 * next is sent as one is answered. A waiting request costs its sender ~66 KB (the cluster client's fibers, not data),
 * so 10,000 at once held 660 MB; 1,000 keep more queued than 100 runners of 8 syncs each can take.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxInFlight = 1_000

/**
 * The checks the client makes as it builds the request (the payload's class, made from these fields): there, one that
 * fails throws its `ParseError`, a defect.
 */
const validatePayload = Schema.validate(Schema.Struct(Sync.payloadSchema.fields), { errors: "all" })

/** Each problem by its place in the request: `run must not be empty; resources must not name a resource twice`. */
const problems = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map(({ message, path }) => `${IssuePath.format(path)} ${message}`.trim())
    .join("; ")

/**
 * Sends `Sync` to a workspace's entity and waits for its summaries, wherever the cluster runs it; the request is in
 * storage before this returns its first wait, so it survives the runner (and this process) dying. A failure of the
 * storage itself (`PersistenceError`) is tried again a few times, over about 6 seconds, before it is returned.
 *
 * `run` must not be empty and `resources` must name each resource once: a request that breaks the request's schema
 * (those two, or a `WorkspaceConfig` made without its checks) fails with `InvalidSyncRequest`, naming each problem, and
 * is neither stored nor sent.
 *
 * @since 0.1.0
 * @category clients
 */
export const sync = Effect.fn("WorkspaceSync.sync")(function*(
  workspace: WorkspaceConfig,
  options: { readonly resources: typeof Resources.Type; readonly run: string }
) {
  yield* Effect.annotateCurrentSpan({ workspace: workspace.workspace, run: options.run })
  const payload: typeof Sync.payloadSchema.Type = {
    run: options.run,
    resources: options.resources,
    tokenEnv: workspace.tokenEnv,
    ...(workspace.baseUrl === undefined ? {} : { baseUrl: workspace.baseUrl }),
    ...(workspace.region === undefined ? {} : { region: workspace.region })
  }
  // Before the client, which would die of it, and before anything is stored.
  yield* validatePayload(payload).pipe(
    Effect.mapError((error) => new InvalidSyncRequest({ workspace: workspace.workspace, detail: problems(error) }))
  )
  const client = (yield* WorkspaceSync.client)(workspace.workspace)
  return yield* client.Sync(payload).pipe(
    Effect.retry({ schedule: storageBusy, while: (error) => error._tag === "PersistenceError" })
  )
})
