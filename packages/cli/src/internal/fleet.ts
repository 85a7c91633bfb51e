/**
 * The `fleet` subcommands, over @intercom-scroll/fleet: `fleet runner` serves a runner of the fleet until SIGTERM, and
 * `fleet sync` sends `Sync` to every workspace of a file from a client-only process, shows one combined progress
 * line, prints one line per workspace as it answers, and fails unless every workspace completed.
 *
 * @since 0.1.0
 */
import { FileSystem } from "@effect/platform"
import type { Resource } from "@intercom-scroll/core"
import { Fleet, FleetStatus, Health, Secrets, type Summary, SyncCron, WorkspaceConfig, WorkspaceSync } from "@intercom-scroll/fleet"
import { SyncActivity, SyncDatabase } from "@intercom-scroll/sync"
import { Cause, Clock, type Cron, DateTime, Duration, Effect, Exit, Layer, Option, ParseResult, Ref, Schema } from "effect"
import type { OutputError, StdoutClosed } from "../ExportError.js"
import * as Failure from "./failure.js"
import * as FleetFlags from "./fleetFlags.js"
import * as ProgressBar from "./progressBar.js"
import * as Stdio from "./stdio.js"
import * as StopDeadline from "./stopDeadline.js"

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 })

/**
 * `fleet sync` ended with workspaces that did not complete: each has its line above, with the reason.
 *
 * @since 0.1.0
 * @category errors
 */
export class FleetSyncIncomplete extends Schema.TaggedError<FleetSyncIncomplete>()("FleetSyncIncomplete", {
  failed: Schema.Array(Schema.String),
  workspaces: Schema.Number
}) {
  override get message(): string {
    const names = this.failed.length <= 5 ? this.failed.join(", ") : `${this.failed.slice(0, 5).join(", ")}, …`
    const others = this.failed.length < this.workspaces ? " The others are synced." : ""
    // Not "run it again" alone: a token refused or a table dropped fails the same until it is mended.
    return `${this.failed.length} of ${this.workspaces} workspaces did not complete (${names}).${others} Each line above says why, and what to change first where something must; then run fleet sync again (a new run) to sync the failed ones.`
  }
}

/**
 * `fleet status --database sqlite:PATH` where there is no file: SQLite would make an empty one, whose status would say
 * that nothing ever ran.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoSuchDatabase extends Schema.TaggedError<NoSuchDatabase>()("NoSuchDatabase", {
  database: Schema.String,
  command: Schema.Literal("status", "prune")
}) {
  override get message(): string {
    return `There is no database at ${this.database}: fleet ${this.command} ${
      this.command === "status" ? "reads" : "prunes"
    } a fleet's database and makes none. Check --database (the path the runners were given).`
  }
}

/** Fails with `NoSuchDatabase` for a `sqlite:` path with no file, which SQLite would otherwise create empty. */
const existing = (database: SyncDatabase.Database, command: NoSuchDatabase["command"]) =>
  Effect.gen(function*() {
    if (database._tag !== "Sqlite") return
    const exists = yield* Effect.orElseSucceed((yield* FileSystem.FileSystem).exists(database.filename), () => false)
    if (!exists) return yield* new NoSuchDatabase({ database: SyncDatabase.display(database), command })
  })

/**
 * Everything a `fleet` command can fail with, besides a usage error.
 *
 * @since 0.1.0
 * @category models
 */
export type CommandError =
  | Layer.Layer.Error<ReturnType<typeof Fleet.layerRunner>>
  | Layer.Layer.Error<ReturnType<typeof Fleet.layerClient>>
  | Layer.Layer.Error<ReturnType<typeof Health.layerServer>>
  | SyncDatabase.InvalidDatabaseUrl
  | WorkspaceConfig.WorkspacesFileError
  | FleetStatus.DatabaseSilent
  | FleetSyncIncomplete
  | NoSuchDatabase
  | OutputError
  | StdoutClosed

/**
 * What the combined progress line counts.
 *
 * @since 0.1.0
 * @category models
 */
export interface Counts {
  readonly workspaces: number
  readonly complete: number
  readonly failed: number
  /** Not answered yet, and seen with a run open in the sync tables (at this look or an earlier one). */
  readonly syncing: number
  /** Records seen: all of them by the completed workspaces' syncs, so far by those under way. */
  readonly records: number
  /** Runners alive on the database (a heartbeat in the last 30 s); undefined when the database did not say. */
  readonly runners?: number | undefined
  /** The database did not answer the last look: the other counts are those of the look before. */
  readonly databaseDown?: boolean | undefined
}

/**
 * The combined progress line: `fleet: 2 of 6 workspaces complete, 3 syncing, 1 waiting | 8,000 records | 12.3 s`.
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderProgress = (counts: Counts, elapsedMillis: number): string => {
  const waiting = counts.workspaces - counts.complete - counts.failed - counts.syncing
  const states = [
    `${integer.format(counts.complete)} of ${integer.format(counts.workspaces)} workspaces complete`,
    ...(counts.failed === 0 ? [] : [`${integer.format(counts.failed)} failed`]),
    `${integer.format(counts.syncing)} syncing`,
    `${integer.format(Math.max(0, waiting))} waiting`
  ]
  const line = `fleet: ${states.join(", ")} | ${integer.format(counts.records)} records | ${ProgressBar.formatDuration(elapsedMillis)}`
  // The requests wait in the database for a runner: without one they wait for ever, so the line says why.
  if (counts.databaseDown === true) return `${line} | the database does not answer: the syncs wait for it`
  if (counts.runners !== 0 || counts.complete + counts.failed >= counts.workspaces) return line
  // Syncs under way with no runner alive: a stopping runner finishes them (it left the live ones as its stop began),
  // or a dead one's runs wait to be marked abandoned; either way none takes the rest.
  return counts.syncing > 0
    ? `${line} | no live runner takes new syncs: start intercom-scroll fleet runner on this database`
    : `${line} | no runner serves this database: start intercom-scroll fleet runner on it`
}

const seen = (summary: Summary.Summary) => summary.inserted + summary.updated + summary.unchanged

/**
 * What a resource's part of the line adds when runs of it were cut before the one summed up (its workspace moved, its
 * runner stopped or died): its counts are that last run's alone, the cut runs' writes in their own rows.
 */
const cut = ({ cutBefore, duration }: Summary.Summary): string =>
  cutBefore === undefined || cutBefore === 0 ? "" : `, ${integer.format(cutBefore)} ${
    cutBefore === 1 ? "run" : "runs"
  } cut before this one, which synced again from the first page in ${ProgressBar.formatDuration(Duration.toMillis(duration))}`

/**
 * A workspace's line, as it answers: `acme: complete in 3.2 s: users 4,000 seen (4,000 inserted, 0 updated,
 * 0 unchanged, 0 deleted)`, one part per resource, its time `waitedMillis`, as long as its sender waited for the answer
 * (the runs' own durations leave out a run cut before, and the wait for a runner); or `acme: failed: MissingToken: …`.
 * `tokenEnv`, the variable the workspaces file names, is said where the token turned out to be another workspace's.
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderResult = (
  workspace: string,
  exit: Exit.Exit<ReadonlyArray<Summary.Summary>, { readonly _tag: string; readonly message: string }>,
  waitedMillis: number,
  tokenEnv?: string
): string => {
  if (Exit.isSuccess(exit)) {
    const parts = exit.value.map((summary) =>
      `${summary.resource} ${integer.format(seen(summary))} seen (${integer.format(summary.inserted)} inserted, ${
        integer.format(summary.updated)
      } updated, ${integer.format(summary.unchanged)} unchanged, ${integer.format(summary.deleted)} deleted${cut(summary)})`
    )
    // A run that could not check the token's workspace (`Summary.app` null) is said to be unguarded, where the operator
    // looks: the runner's warning says why.
    const unchecked = exit.value.some((summary) => summary.app === null)
      ? " (not checked: Intercom did not say which workspace the token belongs to; the runner's log says why)"
      : ""
    return `${workspace}: complete in ${ProgressBar.formatDuration(waitedMillis)}: ${parts.join("; ")}${unchecked}`
  }
  if (Cause.isInterruptedOnly(exit.cause)) {
    // The answer kept for the run: one sent again under the same name (a cron's fixed --run) gets it again.
    return `${workspace}: interrupted: this run was stopped before it ended, and a run sent again under its name is answered the same; sync again under a new --run name`
  }
  // An answer this version cannot read (an error it does not know, a field it requires and the runner did not send):
  // a runner of another version answered. Its schema's whole tree in the line said nothing an operator could use.
  const unreadable = Option.filter(
    Option.orElse(Cause.failureOption(exit.cause), () => Cause.dieOption(exit.cause)),
    ParseResult.isParseError
  )
  if (Option.isSome(unreadable)) {
    const [issue] = ParseResult.ArrayFormatter.formatErrorSync(unreadable.value)
    const where = issue === undefined ? "" : ` (${[...issue.path.map(String), issue.message].join(" ")})`
    return `${workspace}: failed: its answer could not be read${where}: a runner of another version of intercom-scroll answered, and its sync may have completed there (fleet status shows its runs). Use the fleet sync of the runners' version.`
  }
  const reason = Option.match(Cause.failureOption(exit.cause), {
    onSome: (error) =>
      Failure.describeInFleet(error) ??
        `${error._tag}: ${error.message}${
          error._tag === "WorkspaceMismatch" && tokenEnv !== undefined ? ` (The token was read from ${tokenEnv} on the runner.)` : ""
        }`,
    // A defect in a line, without its stack.
    onNone: () => {
      const defect = Cause.squash(exit.cause)
      return defect instanceof Error ? `${defect.name}: ${defect.message}` : String(defect)
    }
  })
  return `${workspace}: failed: ${reason.replace(/\s*[\r\n]+\s*/g, " ")}`
}

/**
 * Serves a runner until interrupted (SIGTERM, Ctrl-C): it then lets its running syncs finish, up to the cluster's
 * termination timeout, and hands the others back. Its log (logfmt, on stderr) says what it receives, starts and ends.
 * With `--cron`, it also holds the fleet's schedule (`SyncCron`) with every other runner given the same: the cluster
 * runs each tick on one of them. Without it, the runner takes no tick.
 *
 * @since 0.1.0
 * @category running
 */
export const runRunner = (flags: {
  readonly database: string
  readonly port: number
  readonly host: string
  readonly maxSyncs: number
  readonly pagesPerTransaction: number
  readonly healthPort: Option.Option<number>
  readonly allowBaseUrls: ReadonlyArray<string>
  readonly terminationTimeout: Duration.Duration
  readonly unansweredTimeout: Option.Option<Duration.Duration>
  readonly schedule: Option.Option<{
    readonly cron: Cron.Cron
    readonly workspaces: string
    readonly resources: readonly [Resource.Resource, ...Array<Resource.Resource>]
    readonly maxInFlight: Option.Option<number>
  }>
}) =>
  Effect.gen(function*() {
    const database = yield* SyncDatabase.parse(flags.database)
    const fleetRunner = Fleet.layerRunner({
      database,
      host: flags.host,
      port: flags.port,
      maxSyncs: flags.maxSyncs,
      pagesPerTransaction: flags.pagesPerTransaction,
      allowedBaseUrls: flags.allowBaseUrls,
      terminationTimeout: flags.terminationTimeout,
      unansweredTimeout: Option.getOrUndefined(flags.unansweredTimeout),
      // Without --cron it registers no schedule: it must take none of their ticks, which would never run here.
      schedules: Option.isSome(flags.schedule)
    }).pipe(
      Layer.provide(Secrets.layerConfig)
    )
    const runner = Option.match(flags.healthPort, {
      onNone: () => fleetRunner,
      onSome: (port) => Health.layerServer({ host: flags.host, port }).pipe(Layer.provideMerge(fleetRunner))
    })
    if (Option.isNone(flags.schedule)) return yield* serve(runner, flags.terminationTimeout)
    const { cron, maxInFlight, resources } = flags.schedule.value
    // Read before the runner starts: a file with a mistake stops it at once, not at its first tick. Read again at each
    // round, so that a workspace added or removed takes effect without restarting the runners.
    const workspaces = yield* WorkspaceConfig.reader(flags.schedule.value.workspaces)
    const schedule = SyncCron.layer({
      name: cronName,
      cron,
      workspaces,
      resources,
      maxInFlight: Option.getOrUndefined(maxInFlight)
    })
    // A --cron that ticks before the schedule's stored tick (changed since) applies at once: the runner sends its next
    // tick as it starts, and says so (`SyncCron`).
    return yield* serve(schedule.pipe(Layer.provideMerge(runner)), flags.terminationTimeout)
  })

/**
 * `Layer.launch`, saying so in the log as the stop begins: the cluster's own lines come only as its syncs end, up to its
 * termination timeout later, and an operator reading the log of a pod being stopped saw nothing for those 15 s. The
 * stop's deadline (`StopDeadline`) leaves the syncs that long, however long it is.
 */
const serve = <ROut, E, R>(runner: Layer.Layer<ROut, E, R>, terminationTimeout: Duration.Duration) =>
  Effect.scoped(Effect.gen(function*() {
    yield* StopDeadline.allowing(terminationTimeout)
    yield* Layer.build(runner)
    // Added last, so run first as the scope closes, before the runner's own finalizers.
    yield* Effect.addFinalizer((exit) =>
      Exit.isInterrupted(exit)
        ? Effect.logInfo(
          `Stopping: the syncs running may finish for up to ${
            Duration.format(terminationTimeout)
          }; those not started go back to the fleet (a second Ctrl-C or SIGTERM, ${
            StopDeadline.againAfterMillis / 1000
          } s or more after the first, stops at once)`
        )
        : Effect.void
    )
    return yield* Effect.never
  }))

/** The name of `fleet runner --cron`'s schedule in the cluster, and of its rounds' runs (`cron@<tick>`). */
const cronName = "cron"

/**
 * The note for a run whose name was sent before to `sent` of `workspaces` workspaces.
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderSentBefore = (run: string, sent: number, workspaces: number): string => {
  const [they, answer, sync] = sent === 1 ? ["it", "answers", "syncs"] : ["they", "answer", "sync"]
  return `fleet: run ${JSON.stringify(run)} was sent before to ${sent.toLocaleString("en-US")} of ${
    workspaces.toLocaleString("en-US")
  } ${workspaces === 1 ? "workspace" : "workspaces"}: ${they} ${answer} with what that send did, and ${sync} nothing again; name a new --run to sync again`
}

/**
 * What the database says of a run's syncs: how many runners are alive on it (a heartbeat in the last 30 s; a dead
 * runner's row stays until another removes it), and the workspaces under way with the records seen so far (none
 * before the first runner has made the sync tables). None when the database does not answer.
 */
const lookAt = (run: string, database: SyncDatabase.Database) =>
  Effect.all({
    runners: Effect.map(FleetStatus.runners, (runners) => runners.filter((runner) => runner.live).length),
    underWay: SyncActivity.underWay(run).pipe(Effect.orElseSucceed((): ReadonlyMap<string, number> => new Map()))
  }).pipe(
    // A look on a connection whose path went silent waited without end, and the line with it.
    FleetStatus.answeredWithin(database, lookDeadline),
    Effect.option
  )

/** How long a look at the syncs under way may wait for the database, as a runner's storage operation does. */
const lookDeadline = Duration.seconds(10)

/**
 * Sends `Sync` to every workspace, up to `--max-in-flight` unanswered at once, and waits for them all, whichever
 * runners run them and however many die meanwhile (the requests sent are persisted).
 *
 * @since 0.1.0
 * @category running
 */
export const runSync = (flags: {
  readonly database: string
  readonly workspaces: string
  readonly resources: readonly [Resource.Resource, ...Array<Resource.Resource>]
  readonly run: Option.Option<string>
  readonly maxInFlight: Option.Option<number>
}) =>
  Effect.gen(function*() {
    const database = yield* SyncDatabase.parse(flags.database)
    const workspaces = yield* WorkspaceConfig.readFile(flags.workspaces)
    const run = yield* Option.match(flags.run, {
      onSome: Effect.succeed,
      onNone: () => Effect.map(DateTime.now, (now) => `fleet-sync-${DateTime.formatIso(now)}`)
    })
    const stdio = yield* Stdio.Stdio
    const startedAt = yield* Clock.currentTimeMillis
    const counts = yield* Ref.make<Counts>({ workspaces: workspaces.length, complete: 0, failed: 0, syncing: 0, records: 0 })
    const answered = new Set<string>()

    return yield* Effect.gen(function*() {
      // A run's name sent again is answered from storage: say so before those answers read as a sync just done.
      if (Option.isSome(flags.run)) {
        // Advice, not the work: a database that cannot tell does not stop the run.
        const sent = yield* WorkspaceSync.sentBefore(workspaces.map(({ workspace }) => workspace), run).pipe(
          Effect.orElseSucceed(() => 0)
        )
        if (sent > 0) yield* stdio.writeStderr(`${renderSentBefore(run, sent, workspaces.length)}\n`)
      }
      let lastLook: { readonly runners: number | undefined; readonly underWay: ReadonlyMap<string, number> } = {
        runners: undefined,
        underWay: new Map()
      }
      // What each workspace's runs had written at the last look that saw them under way. A workspace is not under way
      // between two resources, nor once its runs have ended and before its answer has come (a runner ends its runs,
      // then answers, which this process reads from storage a moment later): the line read it as waiting, its records
      // gone, and said `0 of 2 workspaces complete, 0 syncing, 2 waiting | 0 records` as both lines saying complete came.
      const seenUnderWay = new Map<string, number>()
      const progress = Effect.gen(function*() {
        const look = yield* lookAt(run, database)
        if (Option.isSome(look)) lastLook = look.value
        const { runners, underWay } = lastLook
        for (const [workspace, records] of underWay) seenUnderWay.set(workspace, records)
        const unanswered = workspaces.filter(({ workspace }) => !answered.has(workspace) && seenUnderWay.has(workspace))
        const current = yield* Ref.updateAndGet(counts, (counts) => ({
          ...counts,
          syncing: unanswered.length,
          runners,
          databaseDown: Option.isNone(look)
        }))
        const seenSoFar = unanswered.reduce((total, { workspace }) => total + (seenUnderWay.get(workspace) ?? 0), 0)
        return renderProgress({ ...current, records: current.records + seenSoFar }, (yield* Clock.currentTimeMillis) - startedAt)
      })
      const display = yield* ProgressBar.display(progress, { live: stdio.stderrIsTTY, redrawEvery: "1 second" })

      const exits = yield* Effect.forEach(workspaces, (workspace) =>
        WorkspaceSync.sync(workspace, { resources: flags.resources, run }).pipe(
          Effect.exit,
          // From the request's send to its answer, a turn among --max-in-flight not included.
          Effect.timed,
          Effect.tap(([waited, exit]) =>
            Effect.gen(function*() {
              answered.add(workspace.workspace)
              yield* Ref.update(counts, (counts) =>
                Exit.isSuccess(exit)
                  ? {
                    ...counts,
                    complete: counts.complete + 1,
                    records: counts.records + exit.value.reduce((total, summary) => total + seen(summary), 0)
                  }
                  : { ...counts, failed: counts.failed + 1 })
              yield* display.clear
              yield* Stdio.print(`${renderResult(workspace.workspace, exit, Duration.toMillis(waited), workspace.tokenEnv)}\n`)
            })
          ),
          Effect.map(([, exit]) => ({ workspace: workspace.workspace, exit }))
        ), { concurrency: Option.getOrElse(flags.maxInFlight, () => WorkspaceSync.defaultMaxInFlight) })

      // The totals once every workspace has answered: a terminal's live line is erased as the command ends, and a log's
      // last plain line came up to 5 s before the end, so neither said them.
      const { complete, failed: failedCount, records } = yield* Ref.get(counts)
      yield* display.printLine(renderProgress(
        { workspaces: workspaces.length, complete, failed: failedCount, syncing: 0, records },
        (yield* Clock.currentTimeMillis) - startedAt
      ))
      const failed = exits.filter(({ exit }) => Exit.isFailure(exit)).map(({ workspace }) => workspace)
      if (failed.length > 0) return yield* new FleetSyncIncomplete({ failed, workspaces: workspaces.length })
    }).pipe(Effect.scoped, Effect.provide(Fleet.layerClient({ database })))
  })

/** How long one of `fleet prune`'s statements (a batch of 500 rows) may wait for the database, as `fleet status`'s reads do. */
const pruneStatementDeadline = Duration.seconds(30)

/**
 * Deletes what syncs answered longer ago than `--older-than` left in the fleet's database (`WorkspaceSync.prune`), and says
 * how much on stdout.
 *
 * @since 0.1.0
 * @category running
 */
export const runPrune = (flags: { readonly database: string; readonly olderThan: Duration.Duration }) =>
  Effect.gen(function*() {
    const database = yield* SyncDatabase.parse(flags.database)
    yield* existing(database, "prune")
    // The cutoff on the database's clock, which the senders' request ids and the runs' ends are stamped with: on this
    // machine's, an hour ahead, `--older-than 1h` deleted answers their senders had not read yet.
    const [before, pruned] = yield* Effect.flatMap(DateTime.now, (now) => {
      const before = DateTime.subtractDuration(now, flags.olderThan)
      // Each statement (a batch of 500) given a deadline, not the whole, which a long healthy prune may outlast: on a
      // path gone silent once connected, its deletes waited without end.
      return Effect.map(WorkspaceSync.prune(before).pipe(FleetStatus.eachAnsweredWithin(database, pruneStatementDeadline)), (pruned) => [before, pruned] as const)
    }).pipe(Effect.provide(Fleet.layerClient({ database })))
    yield* Stdio.print(
      `Pruned ${integer.format(pruned.requests)} requests answered, ${integer.format(pruned.ticks)} schedule ticks and ${
        integer.format(pruned.runs)
      } runs ended before ${
        DateTime.formatIso(before)
      } from ${SyncDatabase.display(database)}\n`
    )
  })

const iso = (time: DateTime.Utc) => DateTime.formatIso(time).replace(/\.\d{3}Z$/, "Z")

/** Seconds without a sign of life after which a run under way is said silent: three of its 10-second renewals. */
const silentAfter = 30

/**
 * Sooner where its runner has gone quiet too: a run 15 s silent (a renewal 5 s late) whose runner's heartbeat, every
 * 5 s, is 10 s old. A runner killed outright so shows its runs 5–15 s after, where 30 s came after the workspace's next
 * run had marked them abandoned (7–20 s); a live run late behind a slow page, its runner beating, is not said silent.
 */
const silentWithRunnerAfter = { run: 15, runner: 10 }

/** What is listed of a long list before "and N more". */
const listed = 10

/** The first `listed` of `names`, and how many more. */
const some = (names: ReadonlyArray<string>) =>
  names.length <= listed
    ? names.join(", ")
    : `${names.slice(0, listed).join(", ")} and ${integer.format(names.length - listed)} more`

const runName = (run: SyncActivity.Run) =>
  `${run.label === undefined ? "" : ` (run ${run.label})`}${run.runner === undefined ? "" : ` on ${run.runner}`}`

/**
 * `fleet status` as text: a line for the runners, one for the syncs not answered, the runs under way (ten at most), the
 * runs recorded running whose lock is free (ten at most, if any), one for what ended since the cutoff, then the latest
 * failures, one a line.
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderStatus = (status: FleetStatus.Status, database: string): string => {
  const { activity, pending, runners } = status
  const live = runners.filter((runner) => runner.live)
  const silent = runners.filter((runner) => !runner.live)
  const lines = [`Fleet database: ${database}`]
  lines.push(
    runners.length === 0
      ? "Runners: none registered"
      : `Runners: ${integer.format(live.length)} live${live.length === 0 ? "" : `: ${some(live.map((runner) => runner.address))}`}${
        silent.length === 0
          ? ""
          : `; ${integer.format(silent.length)} silent (stopped, dead or frozen): ${
            some(silent.map((runner) => `${runner.address} for ${ProgressBar.formatDuration(runner.silentFor * 1000)}`))
          }`
      }`
  )
  lines.push(
    `Syncs sent and not answered: ${integer.format(pending.requests)}${
      pending.oldestSentAt === undefined ? "" : `, the oldest sent ${iso(pending.oldestSentAt)}`
    }`
  )
  // The next round of each schedule.
  // A schedule whose every --cron runner stopped waits, its tick in the past, for one: say so, or it reads as running.
  const unhosted = live.every((runner) => runner.schedules === false)
    ? ": no runner alive hosts the schedules (started with --cron), so no round runs until one does"
    : ""
  // A later tick of the same schedule was left by the --cron before, which a runner's changed --cron went ahead of: it
  // stays stored until its time (then one of the new expression's ticks too, or one more round).
  const ticksBySchedule = new Map<string, Array<DateTime.Utc>>()
  for (const tick of status.schedules) ticksBySchedule.set(tick.schedule, [...ticksBySchedule.get(tick.schedule) ?? [], tick.at])
  for (const [schedule, [next, ...later]] of ticksBySchedule) {
    // One at the next tick's time (the schedule's first tick, which the changed --cron's chain has a tick of too) is
    // the same run, its round answered with the next tick's results: said so, or the time listed twice reads as two syncs.
    const sameRun = later.some((tick) => iso(tick) === iso(next!))
      ? "; at the next tick's time, the same run: each workspace synced once"
      : ""
    const left = later.length === 0 ? "" : ` (also stored: ${later.map(iso).join(", ")}, left by the --cron before${sameRun})`
    lines.push(`Schedule ${schedule}: next tick ${iso(next!)}${left}${unhosted}`)
  }
  lines.push(`Runs under way: ${integer.format(activity.running.length)}`)
  const runnerSilence = new Map(runners.map((runner) => [runner.address, runner.silentFor]))
  const silence = (run: SyncActivity.Running) => {
    const runnerFor = run.runner === undefined ? undefined : runnerSilence.get(run.runner)
    const withRunner = runnerFor !== undefined && run.silentFor >= silentWithRunnerAfter.run && runnerFor >= silentWithRunnerAfter.runner
    if (!withRunner && run.silentFor < silentAfter) return ""
    return `; silent for ${ProgressBar.formatDuration(run.silentFor * 1000)}${
      withRunner ? `, and its runner for ${ProgressBar.formatDuration(runnerFor * 1000)}` : ""
    }: its process may have died (the next run of the workspace marks it abandoned) or be frozen`
  }
  for (const run of activity.running.slice(0, listed)) {
    lines.push(`  ${run.workspace} ${run.resource} since ${iso(run.startedAt)}${runName(run)}: ${integer.format(run.seen)} seen${silence(run)}`)
  }
  if (activity.running.length > listed) lines.push(`  and ${integer.format(activity.running.length - listed)} more`)
  // Recorded `running`, their workspace's lock free: not under way, and unable to record their end.
  const cutOff = activity.lockFree
  if (cutOff.length > 0) {
    lines.push(`Runs cut off, their lock free (their runner died or lost its database; the next run of each workspace marks it abandoned): ${
      integer.format(cutOff.length)
    }`)
    for (const run of cutOff.slice(0, listed)) {
      lines.push(`  ${run.workspace} ${run.resource} since ${iso(run.startedAt)}${runName(run)}: ${integer.format(run.seen)} seen; last heard of ${iso(run.aliveAt)}`)
    }
    if (cutOff.length > listed) lines.push(`  and ${integer.format(cutOff.length - listed)} more`)
  }
  const { ended, rows } = activity
  lines.push(
    `Since ${iso(activity.since)}: runs complete ${integer.format(ended.complete)}, failed ${integer.format(ended.failed)}, abandoned ${
      integer.format(ended.abandoned)
    }, interrupted ${integer.format(ended.interrupted)}; rows inserted ${integer.format(rows.inserted)}, updated ${integer.format(rows.updated)}, unchanged ${
      integer.format(rows.unchanged)
    }, deleted ${integer.format(rows.deleted)}`
  )
  if (activity.failures.length > 0) {
    lines.push("Latest failed or abandoned runs:")
    for (const run of activity.failures) {
      lines.push(`  ${iso(run.finishedAt)} ${run.workspace} ${run.resource} ${run.status}${runName(run)}${
        run.error === undefined ? "" : `: ${run.error}`
      }`)
    }
  }
  return `${lines.join("\n")}\n`
}

/**
 * What `fleet status` was asked to look at per workspace: the file's workspaces (none: those the database holds) and
 * the resources.
 *
 * @since 0.1.0
 * @category models
 */
export interface AttentionView {
  readonly attention: FleetStatus.Attention
  readonly file: string | undefined
  readonly workspaces: number | undefined
  readonly resources: ReadonlyArray<Resource.Resource>
  /** The runs under way, read with it: a failing workspace's next run may be one of them. */
  readonly running?: ReadonlyArray<SyncActivity.Running> | undefined
}

/**
 * One line per workspace where its resources say the same (a token missing fails each of them alike): `acme users,
 * leads: …`. The lists come sorted by time, then workspace, then resource, so those lines' resources are adjacent.
 */
const byWorkspace = <A extends FleetStatus.WorkspaceResource>(pairs: ReadonlyArray<A>, detail: (pair: A) => string) => {
  const lines: Array<{ workspace: string; resources: Array<string>; detail: string }> = []
  for (const pair of pairs) {
    const said = detail(pair)
    const last = lines.at(-1)
    if (last !== undefined && last.workspace === pair.workspace && last.detail === said) last.resources.push(pair.resource)
    else lines.push({ workspace: pair.workspace, resources: [pair.resource], detail: said })
  }
  return lines
}

/**
 * A failing workspace's next run, where one is under way (a killed runner's workspace, taken up by another): said
 * beside its failures, or it reads as failing still with nothing being done. A run silent for long is likely dead
 * itself: not counted.
 */
const nextRuns = (running: ReadonlyArray<SyncActivity.Running> | undefined) => {
  const key = (pair: FleetStatus.WorkspaceResource) => `${pair.resource}\u0000${pair.workspace}`
  const underWay = new Map((running ?? []).filter((run) => run.silentFor < silentAfter).map((run) => [key(run), run]))
  return (pair: FleetStatus.WorkspaceResource): SyncActivity.Running | undefined => underWay.get(key(pair))
}

/**
 * A failing workspace's runs since its last complete one, by how they ended: `failed`, `abandoned` (its runner died
 * before recording their end: the runners are what to look at, not the workspace) or both.
 */
const failures = ({ abandoned, failedInARow }: FleetStatus.Failing) => {
  const ended = abandoned === 0 ? "failed" : abandoned === failedInARow ? "abandoned" : "failed or abandoned"
  return failedInARow === 1 ? ended : `${integer.format(failedInARow)} ${ended} in a row`
}

/**
 * `fleet status --workspaces` as text: one line of counts, then the workspaces that need attention by kind, the longest
 * in trouble first, ten of each listed (the JSON has them all), and nothing of those that are fine.
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderAttention = ({ attention, file, resources, running, workspaces }: AttentionView): string => {
  const { failing, neverSynced, removed, stale } = attention
  const nextRunOf = nextRuns(running)
  const nextRun = (pair: FleetStatus.WorkspaceResource) => {
    const run = nextRunOf(pair)
    return run === undefined ? "" : `; its next run under way since ${iso(run.startedAt)}, ${integer.format(run.seen)} seen`
  }
  const staleBefore = iso(attention.staleBefore)
  const counts = [
    `${integer.format(attention.fine)} fine`,
    `${integer.format(failing.length)} failing`,
    `${integer.format(stale.length)} stale (no complete run since ${staleBefore})`,
    ...(file === undefined && neverSynced.length === 0 ? [] : [`${integer.format(neverSynced.length)} never synced`])
  ].join(", ")
  const lines = [
    `${
      file === undefined
        ? "Workspaces in the database"
        : `Workspaces of ${file} (${integer.format(workspaces ?? 0)})`
    }, by resource (${resources.join(", ")}): ${counts}${
      file === undefined ? "" : `; ${integer.format(removed.length)} removed from the file`
    }`
  ]
  const list = <A extends FleetStatus.WorkspaceResource>(title: string, pairs: ReadonlyArray<A>, detail: (pair: A) => string) => {
    if (pairs.length === 0) return
    const merged = byWorkspace(pairs, detail)
    lines.push(title)
    for (const line of merged.slice(0, listed)) lines.push(`  ${line.workspace} ${line.resources.join(", ")}: ${line.detail}`)
    if (merged.length > listed) lines.push(`  and ${integer.format(merged.length - listed)} more (--format json lists every one)`)
  }
  list("Failing (the last run failed or was abandoned), the longest first:", failing, (pair) =>
    `${failures(pair)} since ${iso(pair.since)}, ${
      pair.lastCompleteAt === undefined ? "never complete" : `last complete ${iso(pair.lastCompleteAt)}`
    }${nextRun(pair)}${pair.lastError === undefined ? "" : `: ${pair.lastError}`}`)
  list(`Stale (no complete run since ${staleBefore}), the longest first:`, stale, (pair) =>
    pair.lastCompleteAt === undefined ? "its records kept, no complete run left (pruned)" : `last complete ${iso(pair.lastCompleteAt)}`)
  if (neverSynced.length > 0) {
    // A workspace just added is never synced in every resource: its name says it.
    const names = byWorkspace(neverSynced, () => "").map((line) =>
      line.resources.length === resources.length ? line.workspace : `${line.workspace} (${line.resources.join(", ")})`
    )
    lines.push(`Never synced: ${some(names)}`)
  }
  if (removed.length > 0) {
    lines.push(`Removed from the file, their copies kept (the fleet's README, "Remove a workspace", says how to drop one): ${some(removed)}`)
  }
  return `${lines.join("\n")}\n`
}

const time = (value: DateTime.Utc | undefined) => value === undefined ? null : DateTime.formatIso(value)

/** `fleet status --workspaces --format json`: every workspace that needs attention, its times in ISO 8601. */
const attentionJson = ({ attention, file, resources, running }: AttentionView) => {
  const nextRunOf = nextRuns(running)
  return {
    workspacesFile: file ?? null,
    resources,
    staleBefore: time(attention.staleBefore),
    fine: attention.fine,
    failing: attention.failing.map((pair) => {
      const next = nextRunOf(pair)
      return {
        ...pair,
        since: time(pair.since),
        lastError: pair.lastError ?? null,
        lastCompleteAt: time(pair.lastCompleteAt),
        nextRun: next === undefined ? null : { id: next.id, startedAt: time(next.startedAt), seen: next.seen }
      }
    }),
    stale: attention.stale.map((pair) => ({ ...pair, lastCompleteAt: time(pair.lastCompleteAt) })),
    neverSynced: attention.neverSynced,
    removed: attention.removed
  }
}

/** `fleet status --format json`: the status as one object, its times in ISO 8601. */
const statusJson = (status: FleetStatus.Status, database: string, attention: AttentionView | undefined) => {
  const run = (value: SyncActivity.Run) => ({
    ...value,
    startedAt: time(value.startedAt),
    label: value.label ?? null,
    runner: value.runner ?? null
  })
  const running = (value: SyncActivity.Running) => ({ ...run(value), aliveAt: time(value.aliveAt) })
  return `${JSON.stringify({
    database,
    runners: status.runners,
    pending: { requests: status.pending.requests, oldestSentAt: time(status.pending.oldestSentAt) },
    schedules: status.schedules.map((tick) => ({ schedule: tick.schedule, at: time(tick.at) })),
    since: time(status.activity.since),
    running: status.activity.running.map(running),
    lockFree: status.activity.lockFree.map(running),
    ended: status.activity.ended,
    rows: status.activity.rows,
    failures: status.activity.failures.map((failure) => ({
      ...run(failure),
      finishedAt: time(failure.finishedAt),
      error: failure.error ?? null
    })),
    ...(attention === undefined ? {} : { attention: attentionJson(attention) })
  })}\n`
}

/**
 * How long `fleet status` waits for its reads in all (~0.3 s for 2,000 workspaces): a database that has not answered
 * by then is `DatabaseSilent`.
 */
const statusDeadline = Duration.seconds(30)

/**
 * Prints the fleet's state from its database (`FleetStatus.read`) on stdout; writes nothing to the database.
 *
 * @since 0.1.0
 * @category running
 */
export const runStatus = (flags: {
  readonly database: string
  readonly since: Duration.Duration
  readonly format: "text" | "json"
  readonly workspaces: Option.Option<string>
  readonly resources: ReadonlyArray<Resource.Resource>
  readonly staleAfter: Option.Option<Duration.Duration>
}) =>
  Effect.gen(function*() {
    const database = yield* SyncDatabase.parse(flags.database)
    const display = SyncDatabase.display(database)
    const file = Option.getOrUndefined(flags.workspaces)
    const workspaces = file === undefined ? undefined : (yield* WorkspaceConfig.readFile(file)).map(({ workspace }) => workspace)
    yield* existing(database, "status")
    // `--since` and `--stale-after` on the database's clock, which the runs' times are stamped with.
    const [status, attention] = yield* SyncDatabase.withDatabaseClock(
      Effect.flatMap(DateTime.now, (now) =>
        Effect.all([
          FleetStatus.read({ since: DateTime.subtractDuration(now, flags.since) }),
          file === undefined && Option.isNone(flags.staleAfter) ? Effect.succeed(undefined) : FleetStatus.attention({
            staleBefore: DateTime.subtractDuration(now, Option.getOrElse(flags.staleAfter, () => FleetFlags.defaultStaleAfter)),
            resources: flags.resources,
            workspaces
          })
        ]))
    ).pipe(
      // On a path gone silent once connected, the reads waited without end: a monitor's probe with them.
      FleetStatus.answeredWithin(database, statusDeadline),
      Effect.scoped,
      // As `fleet sync` waits: a session, when every one the server allows is taken.
      Effect.provide(Layer.retry(SyncDatabase.layer(database), Fleet.whileSessionsAreTaken))
    )
    const view = attention === undefined
      ? undefined
      : { attention, file, workspaces: workspaces?.length, resources: flags.resources, running: status.activity.running }
    yield* Stdio.print(
      flags.format === "json"
        ? statusJson(status, display, view)
        : `${renderStatus(status, display)}${view === undefined ? "" : renderAttention(view)}`
    )
  })
