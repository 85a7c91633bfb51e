/**
 * The rest of a test's world: the simulator in process with a client over it, and readers of the sync's tables.
 */
import { HttpClient, HttpClientResponse } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { IntercomClient, type Progress, type Resource } from "@intercom-scroll/core"
import { Simulator } from "@intercom-scroll/simulator"
import { Chunk, Effect, Fiber, Layer, Option, Redacted, Ref, TestClock } from "effect"
import { Sync } from "../../src/index.js"

let tokens = 0
/** A token, and so a workspace, no other test uses (core's in-process lock is keyed by token). */
export const freshToken = (label = "sync") => `tok_${label}_${++tokens}_${Math.random().toString(36).slice(2)}`

export const intercom = (
  token: string,
  options: Omit<Simulator.SimulatorOptions, "workspaces"> & { readonly workspace?: Omit<Simulator.WorkspaceOptions, "token"> } = {}
): Layer.Layer<IntercomClient.IntercomClient | Simulator.Simulator> =>
  IntercomClient.layer({
    accessToken: Redacted.make(token),
    baseUrl: "https://api.intercom.io",
    // The simulator in process never leaves a request hanging, however far a test moves the clock.
    requestTimeout: "1 hour"
  }).pipe(
    Layer.provideMerge(Simulator.layerClient({ ...options, workspaces: [{ token, ...options.workspace }] })),
    Layer.orDie
  )

/** A reporter that interrupts the run as its `page`th page comes in, as a Ctrl-C or a fleet's workspace moving would. */
export const interruptAtPage = (page: number): Progress.Reporter => {
  let pages = 0
  return { report: (event) => event._tag === "Page" && ++pages === page ? Effect.interrupt : Effect.void }
}

export interface Row {
  readonly id: string
  readonly record: Record<string, unknown>
  readonly email: string | null
  readonly name: string | null
  readonly company_id?: string | null
  readonly created_at: number | null
  readonly updated_at: number | null
  /** Milliseconds, whatever the dialect stores. */
  readonly first_seen_at: number
  readonly last_seen_at: number
  readonly deleted_at: number | null
  readonly first_seen_run: number
  readonly last_seen_run: number
  readonly changed_run: number
}

const millis = (value: unknown): number | null =>
  value === null ? null : value instanceof Date ? value.getTime() : Date.parse(String(value))

/** Every row of a workspace's table, by id. */
export const rows = (workspace: string, resource: Resource.Resource) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const found = yield* sql<Record<string, unknown>>`SELECT * FROM ${sql(Sync.tables[resource])}
      WHERE workspace = ${workspace}`
    return new Map(found.map((row) => {
      const parsed: Row = {
        ...(row as unknown as Row),
        record: typeof row.record === "string" ? JSON.parse(row.record) : row.record as Record<string, unknown>,
        created_at: row.created_at === null ? null : Number(row.created_at),
        updated_at: row.updated_at === null ? null : Number(row.updated_at),
        first_seen_at: millis(row.first_seen_at)!,
        last_seen_at: millis(row.last_seen_at)!,
        deleted_at: millis(row.deleted_at),
        first_seen_run: Number(row.first_seen_run),
        last_seen_run: Number(row.last_seen_run),
        changed_run: Number(row.changed_run)
      }
      return [parsed.id, parsed] as const
    }))
  })

export const live = (table: ReadonlyMap<string, Row>) =>
  new Set([...table.values()].filter((row) => row.deleted_at === null).map((row) => row.id))

export interface RunRow {
  readonly id: number
  readonly resource: string
  readonly status: string
  readonly started_at: number
  readonly finished_at: number | null
  readonly alive_at: number | null
  readonly inserted: number | null
  readonly updated: number | null
  readonly unchanged: number | null
  readonly deleted: number | null
  readonly restarts: number | null
  readonly error: string | null
  readonly label: string | null
  readonly runner: string | null
}

const count = (value: unknown) => (value === null ? null : Number(value))

/** The workspace's runs, oldest first. */
export const runs = (workspace: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const found = yield* sql<Record<string, unknown>>`SELECT * FROM ${sql(Sync.runsTable)}
      WHERE workspace = ${workspace} ORDER BY id`
    return found.map((row): RunRow => ({
      id: Number(row.id),
      resource: String(row.resource),
      status: String(row.status),
      started_at: millis(row.started_at)!,
      finished_at: millis(row.finished_at),
      alive_at: millis(row.alive_at),
      inserted: count(row.inserted),
      updated: count(row.updated),
      unchanged: count(row.unchanged),
      deleted: count(row.deleted),
      restarts: count(row.restarts),
      error: row.error === null ? null : String(row.error),
      label: row.label === null ? null : String(row.label),
      runner: row.runner === null ? null : String(row.runner)
    }))
  })

/**
 * Runs `effect` under the TestClock, moving the clock only while the scroll reports a wait (a restart's backoff,
 * another scroll, the workspace lock): straight to the earliest pending wake-up. Outside a wait the clock stands still,
 * so a database round trip, which takes real time, never lets a scroll_param expire.
 */
export const driveClock = <A, E, R>(effect: (progress: Progress.Reporter) => Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const waits = yield* Ref.make(0)
    const reporter: Progress.Reporter = {
      report: (event) =>
        event._tag === "Waiting" ? Ref.update(waits, (n) => n + 1) : event._tag === "Resumed"
        ? Ref.update(waits, (n) => Math.max(0, n - 1))
        : Effect.void
    }
    const fiber = yield* Effect.fork(effect(reporter))
    for (;;) {
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return done.value
      const sleeps = yield* TestClock.sleeps()
      if ((yield* Ref.get(waits)) > 0 && !Chunk.isEmpty(sleeps)) {
        yield* TestClock.setTime(Math.min(...sleeps))
      } else {
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 0)))
      }
    }
  })

/**
 * A hand-made Intercom over `HttpClient.make`, for records a test spells out (quotes, `'; DROP TABLE`, unicode,
 * changed fields): a scroll serves the users `current()` holds when it opens, `pageSize` a page.
 */
export const scripted = (
  token: string,
  current: () => ReadonlyArray<Record<string, unknown>>,
  pageSize = 2
): Layer.Layer<IntercomClient.IntercomClient> => {
  const scrolls = new Map<string, ReadonlyArray<Record<string, unknown>>>()
  const httpClient = HttpClient.make((request, url) =>
    Effect.sync(() => {
      const param = url.searchParams.get("scroll_param")
      let snapshot: ReadonlyArray<Record<string, unknown>>
      let page: number
      let scroll: string
      if (param === null) {
        scroll = String(scrolls.size + 1)
        snapshot = [...current()]
        scrolls.set(scroll, snapshot)
        page = 0
      } else {
        const [id, next] = param.split("-")
        scroll = id
        snapshot = scrolls.get(id) ?? []
        page = Number(next)
      }
      const users = snapshot.slice(page * pageSize, (page + 1) * pageSize)
      const body = { type: "user.list", users, scroll_param: `${scroll}-${page + 1}` }
      return HttpClientResponse.fromWeb(
        request,
        new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } })
      )
    })
  )
  return IntercomClient.layer({ accessToken: Redacted.make(token), baseUrl: "https://api.intercom.io" }).pipe(
    Layer.provide(Layer.succeed(HttpClient.HttpClient, httpClient)),
    Layer.orDie
  )
}
