/**
 * One round of a `SyncCron` tick.
 *
 * @internal
 */
import type { Sharding } from "@effect/cluster"
import { SqlClient } from "@effect/sql"
import type { Resource } from "@intercom-scroll/core"
import { Cause, Clock, Cron, DateTime, Effect, Fiber, Option } from "effect"
import type { WorkspaceConfig } from "../WorkspaceConfig.js"
import * as WorkspaceSync from "../WorkspaceSync.js"
import * as StoredTicks from "./storedTicks.js"

/**
 * Awaits `effect` from a fiber of its own, which an interruption of the caller leaves running.
 *
 * A round is interrupted when its tick's entity moves to another runner (a runner joined or left). A `Sync` awaited in
 * the round's own fiber would then be interrupted as a client call, and the cluster would send the workspace an
 * Interrupt: its sync cut mid-scroll (the scroll left open at Intercom), and "interrupted" stored as the request's
 * answer, which the tick run again on the other runner would receive instead of a sync (workspaces silently dropped
 * from the round). Left alone, the request goes on, and the tick run again is answered with its result. On the
 * runner's own shutdown the cluster sends no Interrupt for a persisted request, so nothing is cut then either.
 */
const detached = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.forkDaemon(effect), Fiber.join)

/**
 * How many of `workspaces` an earlier round of `run` had sent its `Sync` (its tick run again after its runner stopped,
 * or a schedule's first tick beside a changed cron's tick of its time), read where the cluster's SQL storage keeps
 * them (the `SqlClient` beside `Sharding`); 0 over a storage elsewhere, or when the database cannot say: advice for the
 * log, not the work.
 */
const sentBefore = (workspaces: ReadonlyArray<WorkspaceConfig>, run: string) =>
  StoredTicks.inClusterStorage(0, (sql) =>
    WorkspaceSync.sentBefore(workspaces.map(({ workspace }) => workspace), run).pipe(
      Effect.provideService(SqlClient.SqlClient, sql)
    )).pipe(Effect.orElseSucceed(() => 0))

/**
 * Sends `Sync` under `run` to every workspace, at most `maxInFlight` unanswered at once, and waits for all of them;
 * logs the round's start and end, and each workspace that failed. A round of a run whose syncs an earlier round sent
 * says how many, at its start and its end: those answer with that sync's result (stored, or awaited), not syncing
 * again, and the round's two lines would otherwise read like a round that synced them.
 */
export const run = (options: {
  readonly run: string
  readonly workspaces: ReadonlyArray<WorkspaceConfig>
  readonly resources: readonly [Resource.Resource, ...Array<Resource.Resource>]
  readonly maxInFlight: number
}): Effect.Effect<void, never, Sharding.Sharding> =>
  Effect.gen(function*() {
    const startedAt = yield* Clock.currentTimeMillis
    const sent = yield* sentBefore(options.workspaces, options.run)
    yield* Effect.logInfo(
      sent === 0
        ? "Round started"
        : `Round started: ${sent} of its ${options.workspaces.length} workspaces were sent this run's sync by an earlier round of it, and answer with that sync's result`
    ).pipe(Effect.annotateLogs("workspaces", options.workspaces.length))
    let failed = 0
    yield* Effect.forEach(
      options.workspaces,
      (workspace) =>
        detached(WorkspaceSync.sync(workspace, { resources: options.resources, run: options.run })).pipe(
          // A defect too (an answer that would not decode, say): the round goes on with the other workspaces.
          Effect.catchAllCause((cause) => {
            if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
            failed++
            const failure = Cause.failureOption(cause)
            return Effect.logWarning(
              `Scheduled sync failed: ${Option.isSome(failure) ? failure.value.message : Cause.pretty(cause)}`
            ).pipe(Effect.annotateLogs("workspace", workspace.workspace))
          })
        ),
      { concurrency: options.maxInFlight, discard: true }
    )
    const seconds = ((yield* Clock.currentTimeMillis) - startedAt) / 1000
    const counts = `${options.workspaces.length - failed} complete, ${failed} failed`
    yield* Effect.logInfo(
      sent === 0 ? `Round done: ${counts}` : `Round done: ${counts} (${sent} answered by this run's syncs sent before)`
    ).pipe(Effect.annotateLogs("seconds", seconds))
  }).pipe(Effect.annotateLogs("run", options.run))

/** Whether a later tick of `cron` than `tick` is already due at `now`. */
export const superseded = (cron: Cron.Cron, tick: DateTime.Utc, now: DateTime.Utc): boolean =>
  Cron.next(cron, DateTime.toDate(tick)).getTime() <= DateTime.toEpochMillis(now)
