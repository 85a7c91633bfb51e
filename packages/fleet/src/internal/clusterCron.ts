/**
 * `ClusterCron.make` of @effect/cluster 0.60.2 (`src/ClusterCron.ts`), with `calculateNextRunFromPrevious` always on
 * and two changes: a tick whose successor is already due schedules the latest due tick instead, so that a schedule back
 * after an absence runs one round at once rather than stepping through every tick it missed, a stored message each;
 * and a runner starting with a cron that ticks before every stored tick sends its next tick (`isSooner`), so that a
 * changed cron takes effect at once. `ClusterCron` offers no hook for either. What the cluster stores and `FleetStatus`
 * reads is the same as upstream's: the entity type `ClusterCron/<name>`, its `run` request (`Persisted`,
 * `Uninterruptible`) with the payload `@effect/cluster/ClusterCron/CronPayload`, the first tick sent to the entity
 * "initial", every later one to its ISO time, so ticks stored by either carry on with the other.
 *
 * @internal
 */
import { ClusterSchema, DeliverAt, Entity, type Sharding, Singleton } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { Cron, DateTime, Effect, Exit, Layer, PrimaryKey, Schedule, Schema, type Scope } from "effect"

/** Upstream's payload, under upstream's name: the tick's time, delivered then, one request per tick entity. */
class CronPayload extends Schema.Class<CronPayload>("@effect/cluster/ClusterCron/CronPayload")({
  dateTime: Schema.DateTimeUtc
}) {
  [PrimaryKey.symbol]() {
    return ""
  }
  [DeliverAt.symbol]() {
    return this.dateTime
  }
}

/** Upstream's retry of sending the next tick: it must not be lost, or the schedule stops. */
const retryPolicy = Schedule.exponential(200, 1.5).pipe(Schedule.union(Schedule.spaced("1 minute")))

/**
 * How many ticks `nextTick` steps through one at a time when `Cron.prev` cannot give the latest due one: `Cron.next`
 * costs 15–35 µs here, so some 30 ms at most. A schedule further behind goes on from where the steps got, a tick whose
 * successor is due, which steps again: one stored message per this many ticks missed.
 */
export const maxSteps = 1_000

/**
 * The tick to schedule after `tick`: `Cron.next` of it, or, when that is already due at `now`, the latest tick due
 * (the last at or before `now`), which then runs at once, the ticks between it and `tick` never sent.
 */
export const nextTick = (cron: Cron.Cron, tick: DateTime.Utc, now: DateTime.Utc): DateTime.Utc => {
  const nowMillis = DateTime.toEpochMillis(now)
  const next = Cron.next(cron, DateTime.toDate(tick))
  if (next.getTime() > nowMillis) return DateTime.unsafeFromDate(next)
  const isLatestDue = (at: Date) =>
    at.getTime() >= next.getTime() && at.getTime() <= nowMillis && Cron.next(cron, at).getTime() > nowMillis
  // `Cron.prev` looks strictly before its start, to the whole second: from the second after `now`'s, it finds a tick
  // at `now` too. It can throw (a time zone's spring-forward hour, a rare date), and is checked against `Cron.next`.
  const latest = latestBefore(cron, new Date(Math.floor(nowMillis / 1000) * 1000 + 1000))
  if (latest !== undefined && isLatestDue(latest)) return DateTime.unsafeFromDate(latest)
  let at = next
  for (let step = 0; step < maxSteps; step++) {
    const following = Cron.next(cron, at)
    if (following.getTime() > nowMillis) break
    at = following
  }
  return DateTime.unsafeFromDate(at)
}

const latestBefore = (cron: Cron.Cron, before: Date): Date | undefined => {
  try {
    return Cron.prev(cron, before)
  } catch {
    return undefined
  }
}

/**
 * The schedule's layer: the first tick sent once for its lifetime (to "initial"), each later one by the handler of the
 * one before, once `execute` has ended, at `nextTick`. Upstream's default, the next tick from "now" sent by the
 * singleton too, made two chains of rounds when the singleton started again on another runner while a round ran (a
 * runner stopped or joined): here the singleton only ever sends "initial", which the storage keeps once, and a tick's
 * successor comes from that tick and the clock alone: one chain. The one other tick sent, as a runner starts, is the
 * cron's next when every stored tick comes later (`isSooner`): never beside a tick due or under way.
 *
 * Upstream's `skipIfOlderThan` (a day by default) is left out: of a backlog only the latest due tick is sent, so no
 * pile of stale ticks needs it, and the round a user expects of a runner back after a week (or of a weekly schedule
 * back two days after its tick) runs at once instead of never.
 */
export const make = <E, R>(options: {
  readonly name: string
  readonly cron: Cron.Cron
  /** A tick's work, given its time: the first tick's, sent to "initial", as every other's. */
  readonly execute: (tick: DateTime.Utc) => Effect.Effect<void, E, R>
  readonly shardGroup: string
  /**
   * When the schedule's ticks stored and not yet run to their end come due, earliest first (none where the storage
   * cannot say).
   */
  readonly storedTicks: Effect.Effect<ReadonlyArray<DateTime.Utc>, unknown>
}): Layer.Layer<never, never, Sharding.Sharding | Exclude<R, Scope.Scope>> => {
  const CronEntity = Entity.make(`ClusterCron/${options.name}`, [
    Rpc.make("run", { payload: CronPayload })
      .annotate(ClusterSchema.Persisted, true)
      .annotate(ClusterSchema.Uninterruptible, true)
  ])
    .annotate(ClusterSchema.ShardGroup, () => options.shardGroup)
    .annotate(ClusterSchema.ClientTracingEnabled, false)

  const InitialRun = Singleton.make(
    `ClusterCron/${options.name}`,
    Effect.gen(function*() {
      const next = DateTime.unsafeFromDate(Cron.next(options.cron, DateTime.toDate(yield* DateTime.now)))
      const client = (yield* CronEntity.client)("initial")
      yield* client.run({ dateTime: next }, { discard: true })
    }),
    { shardGroup: options.shardGroup }
  )

  const EntityLayer = CronEntity.toLayer(Effect.gen(function*() {
    const makeClient = yield* CronEntity.client
    return {
      run: (request) =>
        options.execute(request.payload.dateTime).pipe(
          Effect.orDie,
          Effect.exit,
          Effect.flatMap(Effect.fnUntraced(function*(exit) {
            if (Exit.isFailure(exit)) {
              yield* Effect.logWarning(exit.cause)
            }
            const next = nextTick(options.cron, request.payload.dateTime, yield* DateTime.now)
            const client = makeClient(DateTime.formatIso(next))
            return yield* client.run({ dateTime: next }, { discard: true }).pipe(
              Effect.tapErrorCause((cause) => Effect.logWarning("Failed to schedule next run, retrying", cause)),
              Effect.sandbox,
              Effect.retry(retryPolicy),
              Effect.orDie
            )
          })),
          // Upstream's, which the CLI's log format knows (`dateTime` written as an ISO time).
          Effect.annotateLogs({ module: "ClusterCron", name: options.name, dateTime: request.payload.dateTime })
        )
    }
  }))

  // On every runner as it starts, not in a `Singleton`: that one runs again only when its shard moves, so in a rolling
  // restart the last runner given the new cron may not run it, while the new tick it had sent was held by a runner
  // still on the old cron, whose next tick (the stored one) it then sent.
  const SoonerOnStart = Layer.scopedDiscard(Effect.forkScoped(
    Effect.gen(function*() {
      // Read before the clock: a tick that comes due between the two, run and followed by its successor, is then still
      // among those read, and the same cron never sends.
      const stored = yield* options.storedTicks
      const next = DateTime.unsafeFromDate(Cron.next(options.cron, DateTime.toDate(yield* DateTime.now)))
      if (!isSooner(next, stored)) return
      yield* Effect.logInfo(
        `The schedule's stored tick, ${DateTime.formatIso(stored[0]!)}, comes after this runner's cron's next, ${
          DateTime.formatIso(next)
        }: that one sent, from which the cron applies`
      )
      yield* (yield* CronEntity.client)(DateTime.formatIso(next)).run({ dateTime: next }, { discard: true })
    }).pipe(
      // The schedule goes on from its stored tick: a word for the operator, not a reason to stop the runner.
      Effect.catchAllCause((cause) => Effect.logWarning("Could not compare the schedule's stored tick with its cron", cause)),
      Effect.annotateLogs({ module: "ClusterCron", name: options.name })
    )
  ))

  return Layer.mergeAll(InitialRun, EntityLayer, SoonerOnStart)
}

/**
 * Whether `next`, the cron's next tick from now, is to be sent as the schedule starts on a runner: only when some tick
 * is stored and every one comes later, so that a cron changed to tick sooner takes effect at once instead of from the
 * tick the old one set. Otherwise nothing: with the same cron the stored tick is `next` or earlier (a tick's successor
 * is never later than the cron's next from any time after it); a tick due or under way (a runner joined mid-round, a
 * schedule back after an absence) is earlier, and a second tick beside it would make a second chain of rounds; none
 * stored is a schedule whose first tick ("initial") is not sent yet, which the singleton sends. Sent at its ISO time
 * like every later tick, so that the stored one, when it comes, either has the same id (a tick of the new cron too: the
 * two chains are one from there) or runs once more and sends the same next tick as this chain (see `SyncCron`).
 */
export const isSooner = (next: DateTime.Utc, stored: ReadonlyArray<DateTime.Utc>): boolean =>
  stored.length > 0 && stored.every((at) => DateTime.lessThan(next, at))
