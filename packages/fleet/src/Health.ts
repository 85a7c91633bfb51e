/**
 * A runner's health, for a container's probe or a monitor: whether its database answers, and how many of the fleet's
 * shards it holds. A runner's own port speaks the cluster's protocol, which a TCP probe can reach but an HTTP one
 * cannot; `layerServer` answers `GET /health` on a port of its own.
 *
 * @example
 * ```ts
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { Fleet, Health, Secrets } from "@intercom-scroll/fleet"
 * import { SyncDatabase } from "@intercom-scroll/sync"
 * import { Layer } from "effect"
 *
 * // GET http://10.0.0.7:8080/health: 200 and {"healthy":true,"database":"ok","shards":300}, or 503 naming the fault.
 * const runner = (database: SyncDatabase.Database) =>
 *   Health.layerServer({ host: "10.0.0.7", port: 8080 }).pipe(
 *     Layer.provideMerge(Fleet.layerRunner({ database, host: "10.0.0.7", port: 34431 })),
 *     Layer.provide([NodeHttpClient.layerUndici, Secrets.layerConfig])
 *   )
 * ```
 *
 * @since 0.1.0
 */
import { ShardId, Sharding } from "@effect/cluster"
import { HttpMiddleware, HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import type { ServeError } from "@effect/platform/HttpServerError"
import { NodeHttpServer } from "@effect/platform-node"
import * as SqlClient from "@effect/sql/SqlClient"
import { SyncError } from "@intercom-scroll/sync"
import { Duration, Effect, Layer, Option } from "effect"
import { createServer } from "node:http"
import { shardingConfig } from "./Fleet.js"
import * as SilentSession from "./internal/silentSession.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Report {
  /** The database answered within the check's timeout: the runner can take, run and record syncs. */
  readonly healthy: boolean
  /** `ok`, or why the database did not answer. */
  readonly database: string
  /**
   * The fleet's shards this runner holds, of `Fleet.shardingConfig.shardsPerGroup` (300). Zero for a few seconds
   * after it starts (or while another runner still holds them): a readiness probe may wait for one.
   */
  readonly shards: number
}

const shardIds = Array.from({ length: shardingConfig.shardsPerGroup ?? 300 }, (_, i) => ShardId.make("default", i + 1))

/**
 * The runner's health now: a `SELECT 1` on its database (given up `timeout` after the check began, default 5 seconds,
 * the wait for a free pool connection included) and the shards it holds. Never fails: a database that does not answer
 * is a report that says why. The `SELECT 1` given up on is not cancelled (a cancel by pid may reach another server's
 * session after a failover): its session is ended, and the pool does not hand its connection out again; one whose
 * connection came only after the timeout is not sent.
 *
 * @since 0.1.0
 * @category health
 */
export const check = (
  options: { readonly timeout?: Duration.DurationInput | undefined } = {}
): Effect.Effect<Report, never, Sharding.Sharding | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const sharding = yield* Sharding.Sharding
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(5))
    // One bound from the check's start, the wait for a pool connection in it. The statement is never interrupted
    // (`SilentSession.answeredWithin`): its session is ended once unanswered then, so that a silent connection is not
    // handed out again.
    const database = yield* SilentSession.answeredWithin(sql, timeout)(sql`SELECT 1`).pipe(
      Effect.map(Option.match({ onNone: () => `no answer within ${Duration.format(timeout)}`, onSome: () => "ok" })),
      Effect.catchAll((error) => Effect.succeed(SyncError.explain(error)))
    )
    const shards = shardIds.filter((id) => sharding.hasShardId(id)).length
    return { healthy: database === "ok", database, shards }
  }).pipe(Effect.withSpan("Health.check"))

/**
 * Whether a runner of this report can take syncs: its database answers and it holds shards.
 *
 * @since 0.1.0
 * @category health
 */
export const isReady = (report: Report): boolean => report.healthy && report.shards > 0

/**
 * Serves, on `host:port` (default host 127.0.0.1) beside a runner:
 *
 * - `GET /health`: 200 and the `Report` as JSON when healthy, 503 and the report when not.
 * - `GET /ready`, for a readiness probe: the same report, 200 only when healthy and holding shards (not in the seconds
 *   after it starts, nor while another runner still holds them).
 * - `GET /live`, for a liveness probe: 200 and `{"live":true}` while the process answers at all. It asks nothing of the
 *   database: a probe that did would restart every runner while the database is away (a failover, a restart), and a
 *   runner started meanwhile only waits for it again, where the running one resumes once it is back.
 *
 * 404 for any other path. Neither its requests nor their checks are traced (a probe every few seconds would fill a
 * trace store).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerServer = (options: {
  readonly port: number
  readonly host?: string | undefined
  readonly timeout?: Duration.DurationInput | undefined
}): Layer.Layer<never, ServeError, Sharding.Sharding | SqlClient.SqlClient> =>
  HttpRouter.empty.pipe(
    HttpRouter.get(
      "/health",
      Effect.flatMap(check(options), (report) => HttpServerResponse.json(report, { status: report.healthy ? 200 : 503 })).pipe(
        Effect.withTracerEnabled(false)
      )
    ),
    HttpRouter.get(
      "/ready",
      Effect.flatMap(check(options), (report) => HttpServerResponse.json(report, { status: isReady(report) ? 200 : 503 })).pipe(
        Effect.withTracerEnabled(false)
      )
    ),
    HttpRouter.get("/live", HttpServerResponse.json({ live: true })),
    HttpServer.serve(),
    HttpMiddleware.withTracerDisabledWhen(() => true),
    Layer.provide(NodeHttpServer.layer(createServer, { port: options.port, host: options.host ?? "127.0.0.1" }))
  )
