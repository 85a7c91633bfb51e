/**
 * The processes of a fleet, as layers: runners, which host `WorkspaceSync` entities, and client-only processes,
 * which send `Sync` and wait for the answers. Both share one database (a `SyncDatabase.Database`, as
 * `SyncDatabase.parse` reads it from a URL), which holds the cluster's messages, its runners and shard locks, and the
 * sync tables.
 *
 * - PostgreSQL (`postgres://…`): any number of runners on any number of machines. Shard locks are advisory locks
 *   held on one session per runner; the sessions get TCP keepalives, so a runner that vanishes from the network
 *   loses its locks in about 11 seconds instead of the operating system's two hours. Every process tells time by the
 *   server's clock (`clock_timestamp()`, measured every 30 seconds), not its machine's: the schedules' ticks, the
 *   runs' times, the requests' ids and the log lines' timestamps agree across machines whose clocks do not.
 * - SQLite (`sqlite:PATH`): one runner, and client-only processes on the same machine. The same commands, with
 *   shard locks as rows that expire.
 *
 * @example
 * ```ts
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { Fleet, Secrets } from "@intercom-scroll/fleet"
 * import { SyncDatabase } from "@intercom-scroll/sync"
 * import { Effect, Layer } from "effect"
 *
 * const runner = Effect.map(SyncDatabase.parse("postgres://fleet@db.internal/fleet"), (database) =>
 *   Fleet.layerRunner({ database, host: "10.0.0.7", port: 34431, maxSyncs: 8 }).pipe(
 *     Layer.provide([NodeHttpClient.layerUndici, Secrets.layerConfig])
 *   ))
 * ```
 *
 * @since 0.1.0
 */
import { EntityId, RunnerAddress, Sharding, ShardId, ShardingConfig } from "@effect/cluster"
import type { HttpClient } from "@effect/platform"
import { NodeClusterSocket } from "@effect/platform-node"
import type { SocketServerError } from "@effect/platform/SocketServer"
import type { MigrationError } from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Sync, SyncDatabase, SyncError } from "@intercom-scroll/sync"
import { Cause, Duration, Effect, identity, Layer, Option, Predicate, Redacted, Ref, Schedule, Schema } from "effect"
import type { ConfigError } from "effect/ConfigError"
import * as FleetStatus from "./FleetStatus.js"
import * as AddressLock from "./internal/addressLock.js"
import * as CronName from "./internal/cronName.js"
import * as Heartbeat from "./internal/heartbeat.js"
import * as LogRepeats from "./internal/logRepeats.js"
import * as SessionRoom from "./internal/sessionRoom.js"
import * as ShardLocks from "./internal/shardLocks.js"
import * as ShardLockTiming from "./internal/shardLockTiming.js"
import { maxTimerMillis } from "./internal/timer.js"
import type { Secrets } from "./Secrets.js"
import * as SyncCron from "./SyncCron.js"
import * as WorkspaceSync from "./WorkspaceSync.js"

/**
 * How long a vanished runner's PostgreSQL sessions live: idle 5 s, then 3 probes 2 s apart. Its advisory locks die
 * with them, and only then can another runner take its shards.
 */
const keepalives = [
  ["tcp_keepalives_idle", "5"],
  ["tcp_keepalives_interval", "2"],
  ["tcp_keepalives_count", "3"],
  ["tcp_user_timeout", "11000"]
] as const

/**
 * The URL with server-side keepalives for its sessions, added to the `options` it may carry already (a schema's
 * `-c search_path=…`); a keepalive setting it names itself is left as it says.
 */
const withKeepalives = (url: Redacted.Redacted<string>): Redacted.Redacted<string> => {
  const parsed = new URL(Redacted.value(url))
  const own = parsed.searchParams.get("options") ?? ""
  const added = keepalives.filter(([setting]) => !own.includes(setting)).map(([setting, value]) => `-c ${setting}=${value}`)
  if (added.length === 0) return url
  parsed.searchParams.set("options", [own, ...added].filter((option) => option.trim() !== "").join(" "))
  return Redacted.make(parsed.href)
}

/**
 * The database as a `SqlClient` (`SyncDatabase.layer`), PostgreSQL's sessions with TCP keepalives. `connections`
 * bounds a PostgreSQL pool (SQLite has one connection).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSql = (
  database: SyncDatabase.Database,
  options: {
    readonly connections?: number | undefined
    /** Names the sessions in `pg_stat_activity`. Default `intercom-scroll-fleet`. */
    readonly applicationName?: string | undefined
  } = {}
): Layer.Layer<SqlClient.SqlClient, SyncDatabase.DatabaseUnavailable> =>
  SyncDatabase.layer(
    SyncDatabase.Database.$is("Postgres")(database)
      ? SyncDatabase.Database.Postgres({ url: withKeepalives(database.url) })
      : database,
    {
      maxConnections: options.connections,
      applicationName: options.applicationName ?? "intercom-scroll-fleet",
      connectTimeout: Duration.seconds(10)
    }
  )

/**
 * The database's session layer, after which every layer built (the cluster, the entities, a `SyncCron` given the runner)
 * tells time by the database's clock (`SyncDatabase.layerDatabaseClock`). Skewed runners otherwise disagreed on when a
 * tick is due (one 5 minutes ahead skipped the ticks of the next 5 minutes as "superseded"), and on how long a run has
 * been silent.
 */
const onDatabaseClock = <E>(
  database: SyncDatabase.Database,
  sql: Layer.Layer<SqlClient.SqlClient, E>
): Layer.Layer<SqlClient.SqlClient, E | SqlError> => SyncDatabase.layerDatabaseClock(database).pipe(Layer.provideMerge(sql))

/** The cluster's default group: the `WorkspaceSync` entities', which every runner hosts. */
const workspacesShardGroup = "default"

/**
 * The cluster's timings and shard groups for a fleet. A dead runner's workspaces move within about 10 seconds (the
 * defaults take about 35), because its health is checked every 5 seconds. Shard locks are refreshed every 5 seconds and expire after
 * 15: each lock operation must finish within min(refresh, expiry / 3), and a runner that misses that deadline stops
 * every sync it runs, so it is kept at 5 seconds (3, with a 10-second expiry, tripped many times a minute on a loaded
 * machine); on a PostgreSQL farther away the refresh is longer, as the database's round trip asks (see `layerRunner`).
 * A frozen runner (stopped by SIGSTOP, its VM paused) keeps its workspaces until it wakes or dies: on PostgreSQL its
 * shard locks are its sessions' advisory locks, which neither expire nor end while its kernel keeps the connections
 * open; kill it, or end its sessions (`pg_terminate_backend`), to move them. Woken, it notices at its next refresh. `shardsPerGroup` and
 * `availableShardGroups` (the `WorkspaceSync` entities' "default" and `SyncCron.shardGroup`) must be the same on every
 * process of a fleet.
 *
 * @since 0.1.0
 * @category constants
 */
export const shardingConfig: Partial<ShardingConfig.ShardingConfig["Type"]> = {
  shardsPerGroup: 300,
  // Every process of a fleet knows both groups: the `WorkspaceSync` entities' and the schedules'. Each runner says
  // which it hosts (`RunnerOptions.schedules`).
  availableShardGroups: [workspacesShardGroup, SyncCron.shardGroup],
  runnerHealthCheckInterval: Duration.seconds(5),
  shardLockRefreshInterval: Duration.seconds(5),
  shardLockExpiration: Duration.seconds(15),
  // A message whose runner was not known when it was sent (a client that has just started, a runner going away)
  // waits in storage until its runner next reads it: within 2 seconds, not the default 10.
  entityMessagePollInterval: Duration.seconds(2),
  // The cluster's default, said here: `RunnerOptions.terminationTimeout` sets it.
  entityTerminationTimeout: Duration.seconds(15)
}

/** `RunnerOptions.terminationTimeout`, decoded; a defect of the layer's build unless it can run out. */
const terminationTimeout = (input: Duration.DurationInput): Duration.Duration => {
  const timeout = Duration.decode(input)
  const millis = Duration.toMillis(timeout)
  if (millis > 0 && millis <= maxTimerMillis) return timeout
  throw new Error(
    `Fleet.layerRunner: terminationTimeout must be more than zero and at most ${maxTimerMillis} ms (about 24.8 days), the longest a timer waits; got ${Duration.format(timeout)}`
  )
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RunnerOptions {
  readonly database: SyncDatabase.Database
  /** The address other processes reach this runner at, and that it listens on. Default 127.0.0.1. */
  readonly host?: string | undefined
  /**
   * The port it listens on, 1 to 65535. This and the other numbers here are a program's, not data: a value out of
   * range (a port of 70000 or NaN, an empty host, `maxSyncs` below 1, a `waitForDatabase` that is no duration) is a
   * defect when the layer is built, as `Schedule.spaced("soon")` is. Read from configuration, check it there
   * (`Config.port`, `Config.duration`), as the CLI checks its flags.
   */
  readonly port: number
  /** Syncs this runner runs at once, from 1. Default 4. */
  readonly maxSyncs?: number | undefined
  /** Each sync's `Sync.Options.pagesPerTransaction`, from 1 (the default): see `WorkspaceSync.LayerOptions`. */
  readonly pagesPerTransaction?: number | undefined
  /**
   * Each sync's `Sync.Options.unansweredTimeout` (PostgreSQL), default 2 minutes: see `WorkspaceSync.LayerOptions`.
   */
  readonly unansweredTimeout?: Duration.DurationInput | undefined
  /**
   * Base URLs, besides Intercom's hosts and this machine's, that this runner sends a workspace's token to: see
   * `WorkspaceSync.LayerOptions`.
   */
  readonly allowedBaseUrls?: ReadonlyArray<string> | undefined
  /** Overrides `shardingConfig`, for tests; the runner's address is always `host` and `port`. */
  readonly shardingConfig?: Partial<ShardingConfig.ShardingConfig["Type"]> | undefined
  /**
   * How long a runner started before its database (a host's boot, a compose file) waits for the server to answer,
   * trying every 2 seconds and logging a warning each time; and, likewise, how long it waits when the server has no
   * session to spare part-way through its start (`SyncDatabase.isTransient`). Default 1 minute. A password refused or
   * a database that does not exist fails at once.
   */
  readonly waitForDatabase?: Duration.DurationInput | undefined
  /**
   * Whether this runner hosts the fleet's schedules (`SyncCron`, in their own shard group `SyncCron.shardGroup`) and
   * takes their ticks. Default true: give such a runner every `SyncCron.layer` of the fleet. False for a runner not
   * given `SyncCron.layer`: it then takes no tick (one given it would never run, and its schedule would stop), and
   * hosts only `WorkspaceSync` entities. A schedule runs while at least one runner hosts the schedules.
   */
  readonly schedules?: boolean | undefined
  /**
   * How long a sync under way may run on once its runner is told to stop (SIGTERM) or its workspace is to move to
   * another runner (one joined, and the cluster spreads the shards again): the cluster's `entityTerminationTimeout`,
   * more than zero and at most 2³¹−1 ms. Default 15 seconds. A sync that ends within it is answered from here; one
   * still running then is cut (recorded `interrupted`) and runs again from its first page on the workspace's next
   * runner (the request's resources that had completed are answered with their runs there, not synced again). Until the syncs of a shard that moves have ended, the runner keeps the shard's lock (and refreshes it),
   * so that no other runner starts its workspaces; a sync of the shard waiting for a slot here starts nowhere until
   * this timeout has run out, nor does one sent meanwhile to a workspace of the shard.
   */
  readonly terminationTimeout?: Duration.DurationInput | undefined
}

/**
 * A runner of a newer version than the sync tables, started while runners that use them as they are (an older version)
 * are alive on the database: it did not migrate them, and did not join the fleet. Migrated beneath them, the tables
 * would be refused by every sync those runners run (`SchemaTooNew`, a version knows no migration after its own), each
 * answered as failed, for as long as they run. Stop them all, then start the runners of the new version: the syncs
 * they had not finished wait in the database, and the new runners run them.
 *
 * @since 0.1.0
 * @category errors
 */
export class OlderRunnersAlive extends Schema.TaggedError<OlderRunnersAlive>()("OlderRunnersAlive", {
  /** The addresses (`HOST:PORT`) of the runners alive on the database: a heartbeat in the last 30 s. */
  runners: Schema.Array(Schema.String),
  /** The migrations of this version that the tables lack. */
  migrations: Schema.Array(Schema.Number)
}) {
  override get message(): string {
    return `The sync tables are older than this runner (migration ${
      this.migrations.join(", ")
    } not run yet) and runners that use them as they are, of an older version, are alive on this database: ${
      this.runners.join(", ")
    }. Migrated now, the tables would fail every sync those runners run (SchemaTooNew), so this runner has not migrated them, nor joined the fleet. Stop every runner of the older version (SIGTERM: the syncs they had not finished wait in the database), then start the runners of this version; a runner killed outright counts as alive for 30 s after its last heartbeat.`
  }
}

/**
 * Another process of the fleet runs at this runner's address (`HOST:PORT`) and kept it past `waitForAddress`: two
 * runners at one address are one to the cluster, which gives one of them every shard and leaves the other idle, or
 * has their syncs interrupted. Most often `--host` was left at its default, 127.0.0.1, on several machines.
 *
 * @since 0.1.0
 * @category errors
 */
export class AddressInUse extends Schema.TaggedError<AddressInUse>()("AddressInUse", {
  address: Schema.String
}) {
  override get message(): string {
    return `Another runner of this fleet is alive at ${this.address}, which this runner was given as its own: two runners at one address are one to the cluster, which gives one of them every shard and leaves the other idle. Give each runner the address the others reach it at: --host its machine's IP or name (the default, 127.0.0.1, serves runners on one machine only), and --port.`
  }
}

/** Fails with `AddressInUse` unless this process holds `address` (`AddressLock`), until the scope closes. */
const ownAddress = (address: string) =>
  Effect.flatMap(AddressLock.hold(address), (taken) => taken ? Effect.void : new AddressInUse({ address }))

/**
 * The sync tables brought to this version, unless they are behind it while other runners are alive on the database:
 * those started on the tables as they are, so they are of an older version (a runner of this one migrates the tables
 * before it joins), and would refuse the migrated tables in every sync (`OlderRunnersAlive`). A runner that was at this
 * address before (killed outright, its row not yet expired) is this runner's own past, not another's.
 */
const migrateUnlessOlderRunners = (address: string) =>
  Effect.gen(function*() {
    if ((yield* Sync.pendingMigrations).length > 0) {
      const alive = (yield* FleetStatus.runners).filter((runner) => runner.live && runner.address !== address)
      // Asked again once the runners are read: a runner of this version starting beside this one registers only once it
      // has migrated, so tables still behind after its row was read mean the runners read are older.
      const migrations = alive.length > 0 ? yield* Sync.pendingMigrations : []
      if (migrations.length > 0) {
        return yield* new OlderRunnersAlive({ runners: alive.map((runner) => runner.address), migrations })
      }
    }
    yield* Sync.migrate
  })

/**
 * A runner: hosts the `WorkspaceSync` entities of the shards the cluster gives it (and, unless `schedules` is false, the
 * ticks of the schedules' shards it gives it), and serves until its scope closes. Started before its database, it waits for it (`waitForDatabase`). On PostgreSQL it measures the database's round trip first, and refreshes its shard locks less often than every 5 seconds where the database is far enough away that handing half its shards to a runner that joins would otherwise hold a refresh past its deadline (unless `shardingConfig` sets the refresh). It can send `Sync` itself too
 * (`WorkspaceSync.sync`), with the `Sharding` it provides, and read the sync tables with its `SqlClient`. Closing it (SIGTERM under `NodeRuntime.runMain`) lets running syncs finish, up to `terminationTimeout`
 * (15 s by default), and hands back the ones that have not started; so does a runner whose workspaces move to one that
 * joins, for the syncs of those workspaces.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRunner = (
  options: RunnerOptions
): Layer.Layer<
  Sharding.Sharding | SqlClient.SqlClient,
  | SocketServerError
  | SyncDatabase.DatabaseUnavailable
  | SqlError
  | MigrationError
  | SyncError.SchemaTooNew
  | SyncError.SessionPooled
  | SyncError.TableLocked
  | OlderRunnersAlive
  | AddressInUse
  | SyncError.UnsupportedDialect
  | ConfigError,
  HttpClient.HttpClient | Secrets
> =>
  // Suspended, so that an option that cannot be decoded is a defect of the layer's build, not a throw of this call.
  Layer.suspend(() => {
    const maxSyncs = options.maxSyncs ?? 4
    const address = `${options.host ?? "127.0.0.1"}:${options.port}`
    const waitForDatabase = Duration.decode(options.waitForDatabase ?? Duration.minutes(1))
    const given = {
      ...shardingConfig,
      ...options.shardingConfig,
      ...(options.terminationTimeout === undefined ? {} : { entityTerminationTimeout: terminationTimeout(options.terminationTimeout) })
    }
    // The cluster gives a runner its share of each group it hosts, whatever entities it registered.
    const assignedShardGroups = given.assignedShardGroups ??
      (options.schedules === false ? [workspacesShardGroup] : [workspacesShardGroup, SyncCron.shardGroup])
    const hostsSchedules = assignedShardGroups.includes(SyncCron.shardGroup)
    const shardsPerGroup = given.shardsPerGroup ?? ShardingConfig.defaults.shardsPerGroup
    const onPostgres = SyncDatabase.Database.$is("Postgres")(options.database)
    // Whether the database's session limits were read, once for all the tries of the start below.
    const sessionLimitsRead = Ref.unsafeMake(false)
    const runner = (timings: typeof given) => {
      const cluster: Partial<ShardingConfig.ShardingConfig["Type"]> = {
        ...timings,
        assignedShardGroups,
        // Explicit, so that a stray HOST, PORT or LISTEN_HOST in the environment cannot move the runner.
        runnerAddress: Option.some(RunnerAddress.make(options.host ?? "127.0.0.1", options.port)),
        runnerListenAddress: Option.none()
      }
      const { shardLockRefreshInterval } = { ...ShardingConfig.defaults, ...timings }
      // The cluster's own interval for shard lock operations. A runner notices a lost shard lock at its next refresh,
      // which may take as long again before it gives up: a sync that lost its lock waits that long, and a margin.
      const shardLockInterval = ShardLockTiming.operationInterval({ ...ShardingConfig.defaults, ...timings })
      return WorkspaceSync.layer({
        maxSyncs,
        lockLostGrace: Duration.times(shardLockInterval, 3),
        runner: address,
        pagesPerTransaction: options.pagesPerTransaction,
        unansweredTimeout: options.unansweredTimeout,
        allowedBaseUrls: options.allowedBaseUrls
      }).pipe(
        // A runner that can run them takes over the ticks an older version left where any runner could hold them.
        hostsSchedules ? Layer.merge(Layer.effectDiscard(ticksToTheirGroup(shardsPerGroup))) : identity,
        // On PostgreSQL the session of the address's lock beats (`AddressLock`), on no connection of the pool's.
        !onPostgres && Duration.greaterThan(Duration.decode(shardLockRefreshInterval), ShardLockTiming.nearby)
          ? Layer.merge(heartbeat(address))
          : identity,
        Layer.provideMerge(checkedCluster(
          // The cluster's SQL storage, but for its shards, given away one at a time (`ShardLocks`), and refreshed
          // without the heartbeat that the address's lock session writes on PostgreSQL.
          NodeClusterSocket.layer({ storage: "byo", shardingConfig: cluster }).pipe(
            Layer.provideMerge(ShardLocks.layerStorage(cluster, { heartbeatElsewhere: onPostgres }))
          )
        ))
      )
    }
    return Layer.unwrapEffect(
      // Timings given by the caller stand; otherwise, in PostgreSQL, they follow the database's distance.
      onPostgres && options.shardingConfig?.shardLockRefreshInterval === undefined
        ? Effect.map(distantTimings(given, shardsPerGroup * assignedShardGroups.length), runner)
        : Effect.succeed(runner(given))
    ).pipe(
      // The sync tables exist before the runner takes its first workspace; and a pooler that would break the workspace
      // locks (and the cluster's shard locks, session-level too) is refused before the runner joins the fleet.
      // Not beneath runners of an older version still running: see `OlderRunnersAlive`. Nor beside another process
      // at its address, whose lock it holds until it stops: see `AddressInUse`.
      // And a role or server that leaves it fewer sessions than it needs is said, first, on the pool's one session.
      Layer.provide(Layer.scopedDiscard(Effect.zipRight(
        onPostgres ? SessionRoom.warnIfTooFew(maxSyncs, sessionLimitsRead) : Effect.void,
        Effect.zipRight(Sync.checkSessions, Effect.zipRight(ownAddress(address), migrateUnlessOlderRunners(address)))
      ))),
      // The cluster holds a session for its shard locks and polls storage; the runner, one for its address's lock.
      // Each sync holds one session for its lock, on which it also writes; before that, one (two for the first) while
      // it checks the tables' migrations.
      Layer.provideMerge(onDatabaseClock(
        options.database,
        layerSql(options.database, {
          connections: maxSyncs + 5,
          // So that an operator (or a test) can tell a runner's sessions in pg_stat_activity.
          applicationName: `intercom-scroll-fleet runner ${address}`
        })
      )),
      // Runners started together race to create the cluster's and the sync's tables, and in PostgreSQL `CREATE … IF NOT
      // EXISTS` can still fail for the one that loses; that one starts again (what it built is released first).
      Layer.retry(startAgain),
      // A database that does not answer yet, or has no session to spare, is waited for.
      Layer.retry(whileTheDatabaseIsAway(waitForDatabase, SyncDatabase.isTransient)),
      // Through a database outage the cluster says its storage's failure, with its stack, at every poll: said once,
      // then counted (`LogRepeats`), for every logger the runner's fibers inherit.
      Layer.provide(LogRepeats.layer)
    )
  })

/**
 * The timings with the shard locks' interval for a database as far away as it answers now (`ShardLockTiming`), said
 * in the log when it is over the fleet's 5 seconds.
 */
const distantTimings = (timings: Partial<ShardingConfig.ShardingConfig["Type"]>, shards: number) =>
  Effect.gen(function*() {
    const roundTrip = yield* ShardLockTiming.roundTrip
    const interval = ShardLockTiming.refreshInterval(roundTrip, shards)
    if (Duration.greaterThan(interval, ShardLockTiming.nearby)) {
      yield* Effect.logInfo(
        `The database answers in ${Duration.toMillis(roundTrip).toFixed(1)} ms: this runner refreshes its ${shards} shard locks every ${
          Duration.format(interval)
        } (${Duration.format(ShardLockTiming.nearby)} nearby), so that handing half of them to a runner that joins cannot hold the refresh past its deadline`
      )
    }
    return { ...timings, shardLockRefreshInterval: interval, shardLockExpiration: Duration.times(interval, 3) }
  })

/**
 * The runner's heartbeat every 5 seconds on SQLite, where its shard locks are refreshed less often (a caller's
 * timings): the cluster writes `last_heartbeat` only as it refreshes them, and a runner silent for 30 s counts as
 * stopped or dead (`FleetStatus.runners`, and so `fleet status`, `fleet sync` and `OlderRunnersAlive`), for the other
 * runners' cluster past its expiration (15 s nearby). An update, never an insert: a runner the cluster has let go is
 * not brought back. On PostgreSQL the session of the runner's address lock beats instead (`AddressLock`).
 */
const heartbeat = (address: string) =>
  Layer.scopedDiscard(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // SQLite's time as the cluster writes it there: SQLite has no `NOW()`, whose failure was ignored at every beat.
    yield* sql`UPDATE cluster_runners SET last_heartbeat = CURRENT_TIMESTAMP WHERE address = ${address}`.pipe(
      // Said (`Heartbeat.failed`), not ignored as a database away: a beat that could never be written was, and the next
      // beat tries again.
      Effect.catchAll((error) => Heartbeat.failed(address, Cause.fail(error))),
      Effect.repeat(Schedule.spaced(ShardLockTiming.nearby)),
      // One of the runner's background statements, which send no spans (as the cluster's own).
      Effect.withTracerEnabled(false),
      Effect.forkScoped
    )
  }))

/**
 * Moves each `SyncCron` tick that a version before `SyncCron.shardGroup` stored in a shard of "default" to its shard of
 * the schedules' group. Left there, it could be read by a runner without the schedules (all runners host "default"),
 * which would answer it with a defect, and its schedule would stop for good: a schedule's first tick is sent once, and
 * each later one only by the tick before. Only ticks no runner has read (`last_read`): one being run stays where it
 * runs.
 */
const ticksToTheirGroup = (shardsPerGroup: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const sharding = yield* Sharding.Sharding
    const messages = sql("cluster_messages")
    const unread = sql`NOT processed AND last_read IS NULL`
    // Each shard named, as the cluster reads its messages: its index finds the few unread.
    const defaultShards = Array.from({ length: shardsPerGroup }, (_, i) => ShardId.make(workspacesShardGroup, i + 1).toString())
    // Their ids as text: a Snowflake is beyond a JavaScript number's exact integers.
    const ticks = yield* sql<{ readonly id: string; readonly entity_id: string; readonly shard_id: string }>`
      SELECT CAST(id AS TEXT) AS id, entity_id, shard_id FROM ${messages}
      WHERE shard_id IN ${sql.in(defaultShards)} AND ${unread} AND entity_type LIKE ${CronName.tickEntityTypes}`
    let moved = 0
    for (const tick of ticks) {
      const shard = sharding.getShardId(EntityId.make(tick.entity_id), SyncCron.shardGroup)
      // Unless a runner read it meanwhile.
      const rows = yield* sql`UPDATE ${messages} SET shard_id = ${shard.toString()}
        WHERE id = CAST(${tick.id} AS BIGINT) AND shard_id = ${tick.shard_id} AND ${unread} RETURNING id`
      moved += rows.length
    }
    if (moved > 0) {
      yield* Effect.logInfo(`Moved ${moved} schedule tick(s) stored before the schedules had a shard group of their own`)
    }
  })

const isSqlFailure = (error: unknown): error is SqlError | MigrationError =>
  Predicate.isTagged(error, "SqlError") || Predicate.isTagged(error, "MigrationError")

/**
 * After a race lost to another process creating the same tables: jittered, so that two processes that lost to each
 * other do not meet again. About 8 seconds in all. Not for a database away for a while (`whileTheDatabaseIsAway`).
 */
const startAgain = Schedule.exponential("250 millis").pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(5)),
  Schedule.whileInput((error: unknown) => isSqlFailure(error) && !SyncDatabase.isTransient(error))
)

/**
 * Every 2 seconds for up to `within`, each try said in a warning, while the start fails with what `waitsFor` takes for
 * a database away for a while (`SyncDatabase.isTransient`): a server that does not answer yet (a host's boot), or one
 * whose sessions are all taken part-way through the start (53300, while other processes start beside this one), for
 * which `startAgain`'s 8 seconds were too short.
 */
const whileTheDatabaseIsAway = (within: Duration.Duration, waitsFor: (error: Error) => boolean) =>
  Schedule.spaced("2 seconds").pipe(
    Schedule.upTo(within),
    Schedule.checkEffect((error: unknown) =>
      error instanceof Error && waitsFor(error)
        ? Effect.as(
          Effect.logWarning(`${SyncError.explain(error)}. Trying again in 2 s, for up to ${Duration.format(within)}`),
          true
        )
        : Effect.succeed(false)
    )
  )

/**
 * The cluster over SQL storage, its tables checked. The storage creates them as its layer is built, and processes that
 * start together race:
 * - a statement that loses (PostgreSQL's `CREATE … IF NOT EXISTS` beside another's) ends the cluster's layer with a
 *   defect, not a failure;
 * - its migrator takes any failure to record its migrations for another process running them, and goes on without
 *   its tables. On SQLite a client and a runner starting together lose that way (SQLite refuses a write to a
 *   transaction that read before another process's write), and both may.
 * Either is an `SqlError` or a `MigrationError` here, which the process starts again from (`startAgain`).
 */
const checkedCluster = <A, E, R>(
  cluster: Layer.Layer<A, E, R>
): Layer.Layer<A, E | SqlError | MigrationError, R | SqlClient.SqlClient> =>
  cluster.pipe(
    Layer.catchAllCause((cause) =>
      Option.match(Option.filter(Cause.dieOption(cause), isSqlFailure), {
        onNone: (): Layer.Layer<A, E | SqlError | MigrationError> => Layer.failCause(cause),
        onSome: (error) => Layer.fail(error)
      })
    ),
    Layer.tap(() => clusterTables)
  )

/** Fails (an `SqlError`) unless the tables of the cluster's messages exist. */
const clusterTables = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql`SELECT 1 FROM ${sql("cluster_messages")}, ${sql("cluster_replies")} WHERE 1 = 0`
)

/**
 * A client-only process: sends `Sync` (`WorkspaceSync.sync`) and reads the answers from storage; hosts nothing. Its
 * `SqlClient` is the fleet's database, where it may read the sync tables. Started beside a runner that is creating the
 * cluster's tables, it starts again for about 8 seconds before it fails with the `SqlError` or `MigrationError`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: {
  readonly database: SyncDatabase.Database
  readonly shardingConfig?: Partial<ShardingConfig.ShardingConfig["Type"]> | undefined
}): Layer.Layer<
  Sharding.Sharding | SqlClient.SqlClient,
  SyncDatabase.DatabaseUnavailable | SqlError | MigrationError | ConfigError
> => {
  const cluster = { ...shardingConfig, ...options.shardingConfig, runnerAddress: Option.none() }
  // The runner's storage (`ShardLocks`; a client takes no shard lock), each message storage operation given a deadline:
  // the client's loop that reads the answers waited without end on a connection whose path had gone silent.
  return checkedCluster(
    NodeClusterSocket.layer({ clientOnly: true, storage: "byo", shardingConfig: cluster }).pipe(
      Layer.provideMerge(ShardLocks.layerStorage(cluster))
    )
  ).pipe(
    Layer.provideMerge(
      onDatabaseClock(options.database, layerSql(options.database, { connections: 4, applicationName: "intercom-scroll-fleet client" }))
    ),
    // A client started beside a runner races it to create the cluster's tables, as runners do.
    Layer.retry(startAgain),
    // Unlike a runner, it does not wait for a database that does not answer at first: only for a session (refused its
    // first, or one part-way through its start), a minute at most.
    Layer.retry(whileTheDatabaseIsAway(
      clientsWait,
      (error) => SyncDatabase.isBusy(error) || (isSqlFailure(error) && SyncDatabase.isTransient(error))
    ))
  )
}

/** How long a client waits for a session. */
const clientsWait = Duration.minutes(1)

/**
 * For `Layer.retry` around a layer that opens the fleet's database to read it (`FleetStatus`): every 2 seconds for up
 * to a minute, each try said in a warning, while every session the server allows is taken (53300,
 * `SyncDatabase.isBusy`), as `layerClient` waits. A database that does not answer fails at once.
 *
 * @since 0.1.0
 * @category schedules
 */
export const whileSessionsAreTaken: Schedule.Schedule<unknown, unknown> = whileTheDatabaseIsAway(clientsWait, SyncDatabase.isBusy)
