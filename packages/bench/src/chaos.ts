/**
 * `pnpm --filter @intercom-scroll/bench chaos`: the copy under chaos. A database copy of a simulated workspace is synced
 * again and again by the built CLI (`intercom-scroll sync`) while its records are changed, added, removed and restored
 * at random, the syncs killed (SIGKILL, SIGTERM, SIGINT) at random moments, faulted (500s, expiries, cut bodies,
 * dropped connections, rate limits, another client's scroll, a stable scroll_param, a restart in the same order) and run
 * two at once into one database; then a clean sync, and the copy compared with the truth.
 *
 * How: this process runs the simulator (`Simulator.layerServer`, a new one for each phase, with the phase's faults)
 * on 127.0.0.1:47101 and, in front of it on 47100, a proxy that the CLI is pointed at. The simulator's data set is
 * fixed; the proxy holds the workspace's state: which ids are present (a record not yet added, or removed, is
 * filtered out of the pages; one restored comes back), how many times each record was changed (a changed record is
 * served with `updated_at` moved on and a `chaos_version` custom attribute) and reshaped (`reshape`: a field that
 * appears or goes, or changes type, within Intercom's documented models; half of them with `updated_at` as it was).
 * The truth of a record is the simulator's own (scrolled once, fault-free, at the start) with the same changes:
 * `Simulator.ids` filtered by what is present. The proxy passes compressed pages on too (`Compression`: the CLI's own
 * `Accept-Encoding`, one coding of it, raw deflate, or none, a phase's choice), and cuts some itself.
 *
 * A surge (the first iteration of each database, then one in four): the workspace holds the simulator's large data
 * set, 20,000 more users, for one complete `sync users`, and they go again. The copy then holds more than 10,000 rows
 * that no later scroll sees, so that every SQLite deletion pass of users is of two chunks or more (SQLite marks a
 * run's deletions a chunk of 10,000 a transaction, `DeletionChunk`, which the CLI does not set), the first after a
 * surge marking 20,000; a SQLite sync is killed too 0–150 ms after its pass has committed a chunk (the run's `deleted`,
 * polled): SIGKILL in a chunk's transaction, or any signal in the 100 ms pause between two, cuts the pass; SIGTERM or
 * SIGINT in the last chunk lets it commit, the run complete (and the process exits 130 or 143 all the same).
 *
 * Checked (a violation fails the run, naming the seed that reproduces it):
 * - after every round of syncs: each deletion mark as the design allows (`checkDeletions`): by a run that completed,
 *   or in SQLite one whose pass was cut short (`interrupted`, `abandoned`); true, the record absent at some moment
 *   between the run's start and the mark; no more marks than the run counted;
 * - after a round in which a sync completed and no record changed while it ran: the copy of what it synced true, as
 *   below, whatever faults it met;
 * - after each clean sync: its live ids are the truth's, every record whole and equal to the truth's (its shape too: a
 *   field gone is absent, one null is null) and its copied columns (email, name, company_id, created_at, updated_at)
 *   what the record holds, every other
 *   row marked deleted (removed ones deleted, restored ones live again), no id twice, the clean run's counts equal to
 *   the truth, no run left `running`, no lock row (SQLite) or advisory lock (PostgreSQL) left, no seen-log row left;
 * - no two scrolls of the workspace at once: the simulator's `scrollExistsWhileLive` counter, save for the second
 *   after the end of the sync process whose scroll it was (killed or not: the simulator still holds it as used in the
 *   last 500 ms), or a process meeting its own; the proxy tells a connection's process from the kernel's tables.
 *
 * Flags: --iterations N (default 20), --dialect sqlite | pg | both (default both: the iterations alternate between a
 * SQLite file and a PostgreSQL database, each kept for the whole run), --seed S (default random), --ports BASE (default
 * 47100: the proxy on BASE, the simulator on BASE + 1, PostgreSQL on BASE + 2). Needs the built bins: `pnpm -s build`
 * at the root.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import * as Reactivity from "@effect/experimental/Reactivity"
import { type FaultPlan, Simulator } from "@intercom-scroll/simulator"
import * as PostgresServer from "@intercom-scroll/testing/PostgresServer"
import Sqlite from "better-sqlite3"
import { Context, Duration, Effect, Exit, Layer, ManagedRuntime, Redacted, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Zlib from "node:zlib"
import * as NodePath from "node:path"
import { argv, flag } from "./lib/args.js"
import { cliBin, root } from "./lib/simulator.js"

// ---------------------------------------------------------------------------------------------------------------------
// The command line

const usage = "usage: chaos [--iterations N] [--dialect sqlite|pg|both] [--seed S] [--ports BASE]"
const known = new Set(["--iterations", "--dialect", "--seed", "--ports"])
for (let i = 0; i < argv.length; i += 2) {
  if (!known.has(argv[i] ?? "")) throw new Error(`unknown argument ${argv[i]}; ${usage}`)
}
const iterations = Number(flag("--iterations") ?? "20")
const dialectFlag = flag("--dialect") ?? "both"
const seed = Number(flag("--seed") ?? String(Math.floor(Math.random() * 2 ** 31)))
if (!Number.isSafeInteger(iterations) || iterations < 1) throw new Error(`--iterations takes a whole number; ${usage}`)
if (!["sqlite", "pg", "both"].includes(dialectFlag)) throw new Error(`--dialect takes sqlite, pg or both; ${usage}`)
if (!Number.isSafeInteger(seed)) throw new Error(`--seed takes a whole number; ${usage}`)
type Dialect = "sqlite" | "pg"
const dialects: ReadonlyArray<Dialect> = dialectFlag === "both" ? ["sqlite", "pg"] : [dialectFlag as Dialect]

const portBase = Number(flag("--ports") ?? "47100")
if (!Number.isSafeInteger(portBase) || portBase < 1024 || portBase > 65533) throw new Error(`--ports takes a port; ${usage}`)
const PROXY_PORT = portBase
const SIMULATOR_PORT = portBase + 1
const PG_PORT = portBase + 2
const TOKEN = "chaos-token"
const DATA_SEED = 7
const WORKSPACE = "default"
const baseUrl = `http://127.0.0.1:${PROXY_PORT}`

// ---------------------------------------------------------------------------------------------------------------------
// A seeded random source (mulberry32): one for the run, so that a seed names the run's choices

const rngOf = (start: number) => {
  let state = start >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (below: number) => Math.floor(next() * below),
    between: (least: number, most: number) => least + Math.floor(next() * (most - least + 1)),
    chance: (p: number) => next() < p,
    pick: <A>(items: ReadonlyArray<A>): A => items[Math.floor(next() * items.length)] as A
  }
}
const rng = rngOf(seed)
/** The proxy's own draws (its cuts), apart: they come as requests do, and would shift the run's other choices. */
const proxyRng = rngOf(seed ^ 0x5bd1e995)

// ---------------------------------------------------------------------------------------------------------------------
// The workspace's truth

type Resource = "users" | "leads" | "companies"
const resources: ReadonlyArray<Resource> = ["users", "leads", "companies"]
/** Multiples of every page size drawn, so that a page filtered by the proxy is the only short one. */
const counts: Record<Resource, number> = { users: 1000, leads: 200, companies: 200 }
/**
 * The users of the large data set a surge serves (pages of 100): 20,000 more than the small one's. A copy that once
 * held them has more than twice `DeletionChunk` (10,000) rows that no later scroll sees, so that every SQLite deletion
 * pass of users after a surge is of three chunks or more, the first one after a surge marking all 20,000.
 */
const LARGE_USERS = 21_000
const pageSizes = [20, 25, 50, 100] as const
const scrollPaths: Record<Resource, { readonly path: string; readonly version: string }> = {
  users: { path: "/users/scroll", version: "1.4" },
  leads: { path: "/contacts/scroll", version: "1.4" },
  companies: { path: "/companies/scroll", version: "2.14" }
}
const resourceOfPath = (path: string): Resource | undefined =>
  path === "/users/scroll" ? "users" : path === "/contacts/scroll" ? "leads" : path === "/companies/scroll" ? "companies" : undefined
/** The list's key in a page of each envelope. */
const listKeys = ["users", "contacts", "companies", "data"] as const

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }
type JsonRecord = { readonly [key: string]: Json }

interface State {
  /** The simulator's records, by id, as it serves them (the large data set's users too). */
  readonly base: Map<string, JsonRecord>
  readonly present: Set<string>
  readonly everPresent: Set<string>
  readonly version: Map<string, number>
  /** How many times each record's shape changed (`reshape`): a field that appears or goes, a type the model allows. */
  readonly shape: Map<string, number>
  /** When each id came and went (ms): what a deletion mark is checked against. */
  readonly history: Map<string, Array<{ readonly at: number; readonly present: boolean }>>
  /** Users only in the large data set: present during a surge, gone again after it. */
  readonly dormant: Set<string>
}
const newState = (): State => ({
  base: new Map(), present: new Set(), everPresent: new Set(), version: new Map(), shape: new Map(), history: new Map(),
  dormant: new Set()
})
const state: Record<Resource, State> = { users: newState(), leads: newState(), companies: newState() }

/** An id added to or removed from the workspace now, with the time, so that a later mark can be judged. */
const setPresent = (resource: Resource, id: string, present: boolean): void => {
  const s = state[resource]
  if (present) {
    s.present.add(id)
    s.everPresent.add(id)
  } else s.present.delete(id)
  const events = s.history.get(id)
  if (events === undefined) s.history.set(id, [{ at: Date.now(), present }])
  else events.push({ at: Date.now(), present })
}

/**
 * Whether `id` was absent from the workspace at some moment between `from` and `to` (ms): only then may a run that
 * started at `from` and marked at `to` have missed it in a complete scroll. Present throughout, every page of any
 * scroll of that run served it.
 */
const absentWithin = (resource: Resource, id: string, from: number, to: number): boolean => {
  let presentAtFrom = false
  for (const event of state[resource].history.get(id) ?? []) {
    if (event.at <= from) presentAtFrom = event.present
    else if (event.at <= to && !event.present) return true
  }
  return !presentAtFrom
}

/**
 * The documented fields of each resource that may be absent or null (packages/core/src/Models.ts: every field but
 * `type` and `id`), less `updated_at`, which a change moves on. `app_id`, which the sync checks a workspace's rows
 * against, is no documented field and is left alone.
 */
const optionalFields: Record<Resource, ReadonlyArray<string>> = {
  users: [
    "user_id", "email", "phone", "name", "created_at", "last_request_at", "unsubscribed_from_emails", "avatar",
    "location_data", "companies", "social_profiles", "segments", "tags", "custom_attributes", "signed_up_at",
    "remote_created_at", "last_seen_ip", "session_count", "pseudonym", "anonymous", "referrer", "owner_id",
    "utm_campaign", "utm_content", "utm_medium", "utm_source", "utm_term"
  ],
  leads: [
    "user_id", "email", "phone", "name", "created_at", "last_request_at", "unsubscribed_from_emails", "avatar",
    "location_data", "companies", "social_profiles", "segments", "tags", "custom_attributes"
  ],
  companies: [
    "company_id", "name", "created_at", "remote_created_at", "last_request_at", "session_count", "monthly_spend",
    "user_count", "plan", "size", "website", "industry", "tags", "segments", "custom_attributes"
  ]
}
/** The nested lists of each resource: `{"type":"tag.list","tags":[…]}`, whose list may be absent (never null). */
const nestedLists: Record<Resource, ReadonlyArray<readonly [string, string]>> = {
  users: [["companies", "companies"], ["social_profiles", "social_profiles"], ["segments", "segments"], ["tags", "tags"]],
  leads: [["companies", "companies"], ["social_profiles", "social_profiles"], ["segments", "segments"], ["tags", "tags"]],
  companies: [["segments", "segments"], ["tags", "tags"]]
}

const isObject = (value: Json | undefined): value is { readonly [key: string]: Json } =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** FNV-1a of a string: a reshape's draws from its record and its number alone, whatever the run's seed. */
const hashOf = (text: string): number => {
  let hash = 2166136261
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619)
  return hash >>> 0
}

/** A custom attribute's value, of any JSON type a workspace may give one. */
const anyValue = (draw: ReturnType<typeof rngOf>): Json =>
  draw.pick<Json>([
    "ünïcödé ☕ 𝄞", "", draw.int(1_000_000), Math.round(draw.next() * 1e6) / 100, draw.chance(0.5), null,
    Number.MAX_SAFE_INTEGER, { nested: { list: [1, "two", null, { three: 3 }] } }, ["a", 2, false]
  ])

/**
 * The `step`-th change of a record's shape, drawn from (resource, id, step) alone, within what Intercom's documented
 * models allow: a custom attribute goes or comes (of any type), `custom_attributes` null or absent, a documented
 * optional field absent or null, a field no schema names comes or goes, a type the model allows changes (a user's
 * `owner_id` a number or a string, a company's `plan` an object or its name), a nested list's entries absent. Half of
 * the steps move `updated_at` on (`moved`); the others change the record as Intercom adding a field would, its
 * `updated_at` as it was.
 */
const reshape = (resource: Resource, id: string, record: JsonRecord, step: number): { readonly record: JsonRecord; readonly moved: boolean } => {
  const draw = rngOf(hashOf(`${resource}:${id}:${step}`))
  const moved = draw.chance(0.5)
  const out: Record<string, Json> = { ...record }
  const attributes = out.custom_attributes
  const present = optionalFields[resource].filter((field) => field in out)
  switch (draw.int(8)) {
    case 0: {
      const keys = isObject(attributes) ? Object.keys(attributes) : []
      const key = keys.length > 0 ? draw.pick(keys) : undefined
      if (isObject(attributes) && key !== undefined) {
        const { [key]: _gone, ...rest } = attributes
        out.custom_attributes = rest
      } else out.custom_attributes = { [`chaos_added_${step}`]: anyValue(draw) }
      break
    }
    case 1:
      out.custom_attributes = { ...(isObject(attributes) ? attributes : {}), [`chaos_added_${step}`]: anyValue(draw) }
      break
    case 2:
      if (draw.chance(0.5)) out.custom_attributes = null
      else delete out.custom_attributes
      break
    case 3:
      if (present.length > 0) delete out[draw.pick(present)]
      break
    case 4:
      if (present.length > 0) out[draw.pick(present)] = null
      break
    case 5:
      if ("x_internal_flag" in out) delete out.x_internal_flag
      else out[`x_chaos_${step}`] = anyValue(draw)
      break
    case 6:
      if (resource === "users" && out.owner_id !== undefined && out.owner_id !== null) {
        out.owner_id = typeof out.owner_id === "number" ? String(out.owner_id) : draw.int(1_000_000)
      } else if (resource === "companies" && isObject(out.plan) && typeof out.plan.name === "string") out.plan = out.plan.name
      else if (resource === "companies") out.plan = { type: "plan", id: String(draw.int(1_000_000)), name: "Chaos" }
      else out.unsubscribed_from_emails = null
      break
    default: {
      const [field, key] = draw.pick(nestedLists[resource])
      const list = out[field]
      if (isObject(list)) {
        const { [key]: _entries, ...rest } = list
        out[field] = rest
      }
    }
  }
  return { record: out, moved }
}

/** A record as the workspace holds it now: the simulator's, reshaped `shape` times and changed `version` times. */
const truthOf = (resource: Resource, id: string): JsonRecord => {
  const base = state[resource].base.get(id)
  if (base === undefined) throw new Error(`no base record ${resource} ${id}`)
  const version = state[resource].version.get(id) ?? 0
  const shape = state[resource].shape.get(id) ?? 0
  if (version === 0 && shape === 0) return base
  let record = base
  let moves = 0
  for (let step = 1; step <= shape; step++) {
    const next = reshape(resource, id, record, step)
    record = next.record
    if (next.moved) moves++
  }
  const updated = (typeof base.updated_at === "number" ? base.updated_at : 0) + version + moves
  if (version === 0) return { ...record, updated_at: updated }
  const attributes = record.custom_attributes
  return isObject(attributes)
    ? { ...record, updated_at: updated, custom_attributes: { ...attributes, chaos_version: version } }
    : { ...record, updated_at: updated, chaos_version: version }
}

/** The same JSON whatever the order of its keys (PostgreSQL's jsonb orders them its own way). */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, inner: unknown) =>
    typeof inner === "object" && inner !== null && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
      : inner)

/** The simulator's whole data set, scrolled once in process, without faults: the records every later one serves. */
const loadBase = Effect.gen(function*() {
  const simulator = yield* Simulator.Simulator
  const client = yield* HttpClient.HttpClient
  for (const resource of resources) {
    const { path, version } = scrollPaths[resource]
    let param: string | undefined
    for (;;) {
      const url = param === undefined ? path : `${path}?scroll_param=${encodeURIComponent(param)}`
      const response = yield* client.execute(
        HttpClientRequest.get(url).pipe(HttpClientRequest.setHeaders({ authorization: `Bearer ${TOKEN}`, "intercom-version": version }))
      )
      const page = (yield* response.json) as { readonly scroll_param?: string } & Record<string, unknown>
      const list = listKeys.map((key) => page[key]).find(Array.isArray) as ReadonlyArray<JsonRecord> | undefined
      if (list === undefined || list.length === 0) break
      for (const record of list) state[resource].base.set(String(record.id), record)
      param = page.scroll_param
    }
    const ids = yield* simulator.ids(TOKEN, resource)
    if (ids.length !== state[resource].base.size || ids.some((id) => !state[resource].base.has(id))) {
      return yield* Effect.dieMessage(`the scroll of ${resource} did not give Simulator.ids`)
    }
    // About 85 % present at the start; the rest waits to be added.
    for (const id of ids) if (rng.chance(0.85)) setPresent(resource, id, true)
  }
}).pipe(
  Effect.scoped,
  Effect.provide(Simulator.layerClient({ workspaces: [{ token: TOKEN, seed: DATA_SEED, ...counts }] }))
)

/**
 * The large data set's users (the same seed: record i is computed from the seed and i alone, so its first 1,000 are
 * the small one's, and its ids interleave with theirs in key order): the others are the dormant users, present only
 * during a surge.
 */
const loadLarge = Effect.gen(function*() {
  const client = yield* HttpClient.HttpClient
  const { path, version } = scrollPaths.users
  const s = state.users
  let param: string | undefined
  for (;;) {
    const url = param === undefined ? path : `${path}?scroll_param=${encodeURIComponent(param)}`
    const response = yield* client.execute(
      HttpClientRequest.get(url).pipe(HttpClientRequest.setHeaders({ authorization: `Bearer ${TOKEN}`, "intercom-version": version }))
    )
    const page = (yield* response.json) as { readonly scroll_param?: string; readonly users?: ReadonlyArray<JsonRecord> }
    if (page.users === undefined || page.users.length === 0) break
    for (const record of page.users) {
      const id = String(record.id)
      const known = s.base.get(id)
      if (known === undefined) {
        s.base.set(id, record)
        s.dormant.add(id)
      } else if (canonical(known) !== canonical(record)) return yield* Effect.dieMessage(`user ${id} differs in the large data set`)
    }
    param = page.scroll_param
  }
  if (s.base.size !== LARGE_USERS) return yield* Effect.dieMessage(`the large data set gave ${s.base.size} users, not ${LARGE_USERS}`)
}).pipe(
  Effect.scoped,
  Effect.provide(Simulator.layerClient({ workspaces: [{ token: TOKEN, seed: DATA_SEED, ...counts, users: LARGE_USERS }] }))
)

interface Mutations {
  added: number
  removed: number
  restored: number
  changed: number
  /** Changed back to the version before. */
  reverted: number
  /** A field appeared or went, or changed type (`reshape`). */
  reshaped: number
  /** The last reshape undone: a field that went comes back, one that came goes. */
  unshaped: number
}
const noMutations = (): Mutations => ({ added: 0, removed: 0, restored: 0, changed: 0, reverted: 0, reshaped: 0, unshaped: 0 })

/** A few records of each resource added, removed, restored (a removed one back), changed, changed back, reshaped, unshaped. */
const mutate = (into: Mutations): void => {
  for (const resource of resources) {
    const s = state[resource]
    const take = (from: ReadonlyArray<string>, most: number) => {
      const chosen = new Set<string>()
      const wanted = Math.min(from.length, rng.between(0, most))
      while (chosen.size < wanted) chosen.add(rng.pick(from))
      return [...chosen]
    }
    const ids = [...s.base.keys()].filter((id) => !s.dormant.has(id))
    for (const id of take(ids.filter((id) => !s.everPresent.has(id)), 3)) {
      setPresent(resource, id, true)
      into.added++
    }
    for (const id of take([...s.present], 3)) {
      setPresent(resource, id, false)
      into.removed++
    }
    for (const id of take(ids.filter((id) => s.everPresent.has(id) && !s.present.has(id)), 2)) {
      setPresent(resource, id, true)
      into.restored++
    }
    for (const id of take([...s.present], 4)) {
      s.version.set(id, (s.version.get(id) ?? 0) + 1)
      into.changed++
    }
    for (const id of take([...s.version].filter(([, version]) => version > 0).map(([id]) => id), 1)) {
      s.version.set(id, (s.version.get(id) ?? 1) - 1)
      into.reverted++
    }
    for (const id of take([...s.present], 3)) {
      s.shape.set(id, (s.shape.get(id) ?? 0) + 1)
      into.reshaped++
    }
    for (const id of take([...s.shape].filter(([, shape]) => shape > 0).map(([id]) => id), 1)) {
      s.shape.set(id, (s.shape.get(id) ?? 1) - 1)
      into.unshaped++
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// The simulator of a phase, and the proxy in front of it

let current: Simulator.Simulator["Type"] | undefined
let liveCounter = 0
/**
 * When `scrollExistsWhileLive` went up, and, where the proxy could tell, which sync process met it (`pid`) and whose
 * the scroll in use was (`owner`: the process last served a page of a scroll not yet at its end).
 */
interface LiveEvent {
  readonly at: number
  readonly pid?: number | undefined
  readonly owner?: number | undefined
}
const liveEvents: Array<LiveEvent> = []
/** When sync processes ended, and which: the end of a scroll's owner excuses the next second. */
const processEnds: Array<{ readonly at: number; readonly pid: number | undefined }> = []
/** The process whose scroll the simulator holds open, as far as the proxy saw. */
let scrollOwner: number | undefined

const noteLiveCounter = (met?: { readonly pid: number | undefined; readonly owner: number | undefined }) => {
  if (current === undefined) return
  const stats = Effect.runSync(current.stats)
  const now = stats.total.scrollExistsWhileLive
  for (; liveCounter < now; liveCounter++) liveEvents.push({ at: Date.now(), pid: met?.pid, owner: met?.owner })
}

// ---------------------------------------------------------------------------------------------------------------------
// Which sync process a connection is: the CLI sends nothing that tells two apart, so the proxy asks the kernel. The
// client's end of a connection to the proxy is a line of /proc/net/tcp (its address, 127.0.0.1 and its port, and the
// socket's inode), and the process whose /proc/<pid>/fd holds `socket:[inode]` is the one; only the loop's own running
// children are looked through. Linux only: elsewhere no connection is told, and the checks fall back to the time alone.

/** The pids of the sync processes running now. */
const liveChildren = new Set<number>()
const pidOfSocket = new WeakMap<object, number>()
const hexPort = (port: number) => port.toString(16).toUpperCase().padStart(4, "0")

const pidOfClientPort = (port: number): number | undefined => {
  try {
    const local = `0100007F:${hexPort(port)}`
    const remote = `0100007F:${hexPort(PROXY_PORT)}`
    const line = Fs.readFileSync("/proc/net/tcp", "utf8").split("\n").find((text) => {
      const fields = text.trim().split(/\s+/)
      return fields[1] === local && fields[2] === remote
    })
    const inode = line?.trim().split(/\s+/)[9]
    if (inode === undefined || inode === "0") return undefined
    const target = `socket:[${inode}]`
    for (const pid of liveChildren) {
      const directory = `/proc/${pid}/fd`
      let fds: ReadonlyArray<string>
      try {
        fds = Fs.readdirSync(directory)
      } catch {
        continue // a child gone as it was read: the others may still be the one
      }
      for (const fd of fds) {
        try {
          if (Fs.readlinkSync(`${directory}/${fd}`) === target) return pid
        } catch {
          // an fd closed as it was read
        }
      }
    }
  } catch {
    // no /proc/net/tcp
  }
  return undefined
}

/** Starts the phase's simulator on SIMULATOR_PORT; its scope closes it. */
const startSimulator = (
  options: Omit<Simulator.ServerOptions, "workspaces" | "port">,
  faults: FaultPlan.FaultPlan,
  users: number = counts.users
) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      Simulator.layerServer({
        ...options,
        port: SIMULATOR_PORT,
        workspaces: [{ token: TOKEN, seed: DATA_SEED, ...counts, users, faults }]
      }),
      scope
    ).pipe(Effect.orDie)
    current = Context.get(context, Simulator.Simulator)
    liveCounter = 0
    scrollOwner = undefined
    return scope
  })

const stopSimulator = (scope: Scope.CloseableScope) =>
  Effect.suspend(() => {
    noteLiveCounter()
    current = undefined
    return Scope.close(scope, Exit.void)
  })

interface Upstream {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: Buffer
  /** The body was cut or the connection dropped: what arrived, and whether any headers did. */
  readonly broken: boolean
}

/**
 * What the proxy asks the simulator for (a phase's choice), always among what the CLI's own `Accept-Encoding` names:
 * - `identity`: nothing compressed;
 * - `asked`: the CLI's header as it came (the simulator picks br, its first choice);
 * - `gzip`, `deflate`, `br`: that coding alone, if the CLI named it;
 * - `raw-deflate`: deflate from the simulator, sent on as raw deflate (no zlib header), as some servers send it.
 * Whole pages are decoded, filtered and encoded again in the coding the simulator chose (and named in
 * `Content-Encoding`): the simulator's negotiation stays what the CLI meets, and the proxy judges the records, which
 * it can only do decoded. A body the simulator cut is sent on as it came, its compressed bytes cut where the simulator
 * cut them; the proxy's own cuts (`proxyCut`) fall anywhere in an encoded body, its last bytes too.
 */
type Compression = "identity" | "asked" | "gzip" | "deflate" | "br" | "raw-deflate"
const compressions: ReadonlyArray<Compression> = ["identity", "asked", "gzip", "deflate", "br", "raw-deflate"]
let compression: Compression = "identity"
/** The chance that the proxy cuts a whole page itself (a phase's choice): 0, or a few in a hundred. */
let proxyCut = 0

type Coding = "gzip" | "deflate" | "br"
const codingOf = (header: string | ReadonlyArray<string> | undefined): Coding | undefined => {
  const value = (Array.isArray(header) ? header.join(",") : String(header ?? "")).trim().toLowerCase()
  return value === "gzip" || value === "deflate" || value === "br" ? value : undefined
}

/** The `Accept-Encoding` sent to the simulator for a request whose own header is `asked`. */
const upstreamEncoding = (asked: string | undefined): string => {
  if (asked === undefined || compression === "identity") return "identity"
  if (compression === "asked") return asked
  const wanted = compression === "raw-deflate" ? "deflate" : compression
  const named = asked.split(",").map((part) => part.split(";")[0]?.trim().toLowerCase())
  return named.includes(wanted) ? wanted : "identity"
}

const decode = (coding: Coding, body: Buffer): Buffer =>
  coding === "gzip" ? Zlib.gunzipSync(body) : coding === "deflate" ? Zlib.inflateSync(body) : Zlib.brotliDecompressSync(body)

const encode = (coding: Coding, body: Buffer): Buffer =>
  coding === "gzip"
    ? Zlib.gzipSync(body)
    : coding === "deflate"
    ? compression === "raw-deflate" ? Zlib.deflateRawSync(body) : Zlib.deflateSync(body)
    : Zlib.brotliCompressSync(body, {
      // At quality 4, as the simulator (and CDNs on the fly) compress: the default, 11, takes ~0.2 s a page.
      params: { [Zlib.constants.BROTLI_PARAM_QUALITY]: 4, [Zlib.constants.BROTLI_PARAM_MODE]: Zlib.constants.BROTLI_MODE_TEXT }
    })

const forward = (method: string, path: string, headers: Http.IncomingHttpHeaders): Promise<Upstream> =>
  new Promise((resolve) => {
    const { "accept-encoding": asked, host: _host, connection: _connection, ...rest } = headers
    const request = Http.request({
      host: "127.0.0.1",
      port: SIMULATOR_PORT,
      method,
      path,
      headers: { ...rest, "accept-encoding": upstreamEncoding(asked), connection: "close" }
    }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks), broken: !response.complete }))
      response.on("error", () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks), broken: true }))
      response.on("aborted", () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks), broken: true }))
    })
    request.on("error", () => resolve({ status: 0, headers: {}, body: Buffer.alloc(0), broken: true }))
    request.end()
  })

/** The headers passed on with a body of the proxy's own: the simulator's, less those of its body. */
const passedHeaders = (headers: Http.IncomingHttpHeaders): Http.OutgoingHttpHeaders => {
  const { "content-length": _length, "content-encoding": _encoding, "transfer-encoding": _transfer, connection: _c, ...rest } = headers
  return rest
}

/** The headers passed on with the simulator's own body, as it came: its coding kept. */
const keptHeaders = (headers: Http.IncomingHttpHeaders): Http.OutgoingHttpHeaders => {
  const { "content-length": _length, "transfer-encoding": _transfer, connection: _c, ...rest } = headers
  return rest
}

/** A page as the workspace holds it: records not present left out, changed ones changed. */
const rewrite = (resource: Resource, body: Buffer): { readonly json: Record<string, unknown>; readonly served: number; readonly kept: number } => {
  const page = JSON.parse(body.toString("utf8")) as Record<string, unknown>
  const key = listKeys.find((name) => Array.isArray(page[name]))
  if (key === undefined) return { json: page, served: 0, kept: 0 }
  const list = page[key] as ReadonlyArray<JsonRecord>
  const kept = list.filter((record) => state[resource].present.has(String(record.id))).map((record) =>
    truthOf(resource, String(record.id))
  )
  return { json: { ...page, [key]: kept }, served: list.length, kept: kept.length }
}

const proxyStats = {
  requests: 0,
  /** Requests whose connection was told to be a sync process's. */
  requestsTold: 0,
  pagesRewritten: 0,
  pagesFollowed: 0,
  broken: 0,
  /** Of the broken answers, bodies the simulator cut in their compressed bytes. */
  brokenCompressed: 0,
  /** Pages the proxy cut itself, and of them in their compressed bytes. */
  cutByProxy: 0,
  cutByProxyCompressed: 0,
  /** Whole pages by the coding they went out in. */
  coded: {} as Record<string, number>
}
/** What the proxy found wrong with the simulator's answers (a whole body that would not decode): violations. */
const proxyFaults: Array<string> = []

/** Sends `body` with `headers` and breaks the connection part way: in its first bytes, anywhere, or in its last 8. */
const cutShort = (request: Http.IncomingMessage, response: Http.ServerResponse, status: number, headers: Http.OutgoingHttpHeaders, body: Buffer) => {
  const where = proxyRng.int(3)
  const sent = where === 0
    ? proxyRng.between(0, Math.min(10, body.length - 1))
    : where === 1
    ? proxyRng.int(body.length)
    : Math.max(0, body.length - proxyRng.between(1, 8))
  response.writeHead(status, { ...headers, "content-length": String(body.length) })
  response.write(body.subarray(0, sent))
  request.socket.destroy()
}

const handle = async (request: Http.IncomingMessage, response: Http.ServerResponse): Promise<void> => {
  proxyStats.requests++
  const method = request.method ?? "GET"
  let path = request.url ?? "/"
  const resource = resourceOfPath(path.split("?")[0] ?? "")
  const pid = pidOfSocket.get(request.socket)
  if (pid !== undefined) proxyStats.requestsTold++
  for (;;) {
    const upstream = await forward(method, path, request.headers)
    const metScrollExists = upstream.status === 400 && upstream.headers["content-encoding"] === undefined &&
      upstream.body.toString("utf8").includes("\"scroll_exists\"")
    noteLiveCounter(metScrollExists ? { pid, owner: scrollOwner } : undefined)
    // A page of a scroll served (whole or cut): the scroll is this process's now.
    if (resource !== undefined && upstream.status === 200) scrollOwner = pid
    if (upstream.broken) {
      proxyStats.broken++
      if (upstream.status === 0 || upstream.body.length === 0) {
        request.socket.destroy()
        return
      }
      // A body cut short: the headers promise what never comes. A compressed one breaks off in its compressed bytes.
      if (codingOf(upstream.headers["content-encoding"]) !== undefined) proxyStats.brokenCompressed++
      response.writeHead(upstream.status, { ...keptHeaders(upstream.headers), "content-length": String(upstream.body.length * 2 + 10) })
      response.write(upstream.body)
      request.socket.destroy()
      return
    }
    if (resource === undefined || upstream.status !== 200) {
      response.writeHead(upstream.status, keptHeaders(upstream.headers))
      response.end(upstream.body)
      return
    }
    const coding = codingOf(upstream.headers["content-encoding"])
    let plain: Buffer
    try {
      plain = coding === undefined ? upstream.body : decode(coding, upstream.body)
    } catch (error) {
      proxyFaults.push(`the simulator's whole ${coding} page of ${path} did not decode: ${String(error)}`)
      request.socket.destroy()
      return
    }
    const { json, kept, served } = rewrite(resource, plain)
    proxyStats.pagesRewritten++
    const param = json.scroll_param
    // A page emptied by the filter would end the scroll early: the next one is fetched in its place.
    if (served > 0 && kept === 0 && typeof param === "string") {
      proxyStats.pagesFollowed++
      path = `${path.split("?")[0]}?scroll_param=${encodeURIComponent(param)}`
      continue
    }
    const text = Buffer.from(JSON.stringify(json), "utf8")
    const body = coding === undefined ? text : encode(coding, text)
    const name = coding === undefined ? "identity" : coding === "deflate" && compression === "raw-deflate" ? "raw deflate" : coding
    const headers: Http.OutgoingHttpHeaders = {
      ...passedHeaders(upstream.headers),
      "content-type": "application/json",
      ...(coding === undefined ? {} : { "content-encoding": coding })
    }
    if (proxyCut > 0 && proxyRng.chance(proxyCut)) {
      proxyStats.cutByProxy++
      if (coding !== undefined) proxyStats.cutByProxyCompressed++
      cutShort(request, response, 200, headers, body)
      return
    }
    proxyStats.coded[name] = (proxyStats.coded[name] ?? 0) + 1
    response.writeHead(200, headers)
    response.end(body)
    if (served === 0) {
      scrollOwner = undefined
      for (const listener of [...endListeners]) listener(pid)
    }
    return
  }
}

const startProxy = Effect.acquireRelease(
  Effect.async<Http.Server>((resume) => {
    const server = Http.createServer((request, response) => {
      handle(request, response).catch((error: unknown) => {
        console.error(`proxy: ${String(error)}`)
        request.socket.destroy()
      })
    })
    server.on("connection", (socket) => {
      const pid = socket.remotePort === undefined ? undefined : pidOfClientPort(socket.remotePort)
      if (pid !== undefined) pidOfSocket.set(socket, pid)
    })
    server.listen(PROXY_PORT, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
      server.closeAllConnections()
    })
)

// ---------------------------------------------------------------------------------------------------------------------
// The sync processes

/** The machine's environment without Intercom's variables, pnpm's, or a proxy's, as test/support/processes.ts gives. */
const environment = (tmpdir: string): Record<string, string> => ({
  ...Object.fromEntries(
    Object.entries(process.env).filter((entry): entry is [string, string] =>
      entry[1] !== undefined && !entry[0].startsWith("INTERCOM_") && entry[0] !== "INIT_CWD" &&
      !entry[0].toLowerCase().startsWith("npm_") && !/^(?:https?|no)_proxy$/i.test(entry[0])
    )
  ),
  TMPDIR: tmpdir,
  INTERCOM_ACCESS_TOKEN: TOKEN
})

/**
 * When a sync is killed: a while after its start, or a while after the proxy served the end of a scroll (the empty
 * page), the `atEnd`-th of its own since it started (any process's where the proxy could not tell the connection's
 * process, `pidOfClientPort`): then the sync is
 * writing its last pages, marking deletions, recording its end.
 */
type Kill =
  | { readonly signal: NodeJS.Signals; readonly afterMillis: number }
  | { readonly signal: NodeJS.Signals; readonly atEnd: number; readonly delayMillis: number }
  | { readonly signal: NodeJS.Signals; readonly inPass: PassHolder; readonly delayMillis: number }

/**
 * SQLite: the pid of the process whose run is in its deletion pass with a chunk committed (the run's `deleted`, which
 * each chunk that marks records, above 0, under a lock taken before the run started), if one is: a kill then cuts a
 * pass of several chunks part way.
 */
type PassHolder = () => Promise<number | undefined>

/** Told each time the proxy serves a scroll's last, empty page, and to which process if it could tell. */
const endListeners = new Set<(pid: number | undefined) => void>()

interface Finished {
  readonly label: string
  readonly code: number | null
  readonly signal: string | null
  /** The signal this loop sent, and when (ms after the start), if it sent one. */
  readonly sent: string | undefined
  readonly stderr: string
  readonly millis: number
}

const runSync = (
  label: string,
  args: ReadonlyArray<string>,
  databaseUrl: string,
  tmpdir: string,
  kill: Kill | undefined,
  limitMillis: number
): Promise<Finished> =>
  new Promise((resolve) => {
    const started = Date.now()
    const child: ChildProcess = spawn("node", [cliBin, "sync", ...args, "--base-url", baseUrl, "--log-level", "warning"], {
      cwd: root,
      env: { ...environment(tmpdir), INTERCOM_SCROLL_DATABASE: databaseUrl },
      stdio: ["ignore", "ignore", "pipe"]
    })
    if (child.pid !== undefined) liveChildren.add(child.pid)
    let stderr = ""
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString("utf8")).slice(-6000)
    })
    let sent: string | undefined
    let killer: ReturnType<typeof setTimeout> | undefined
    const send = (signal: NodeJS.Signals, words: string) => {
      if (child.exitCode !== null || child.signalCode !== null) return
      sent = `${signal}@${(Date.now() - started) / 1000}s${words}`
      child.kill(signal)
    }
    if (kill !== undefined && "afterMillis" in kill) killer = setTimeout(() => send(kill.signal, ""), kill.afterMillis)
    // Polled every 20 ms while the sync runs: a reader of the file beside it, as a user of the copy is.
    let polling: ReturnType<typeof setInterval> | undefined
    if (kill !== undefined && "inPass" in kill) {
      let asking = false
      polling = setInterval(() => {
        if (asking || killer !== undefined) return
        asking = true
        kill.inPass().then((pid) => {
          asking = false
          if (pid === child.pid && killer === undefined) {
            killer = setTimeout(() => send(kill.signal, ` (${kill.delayMillis} ms after a chunk of its deletion pass)`), kill.delayMillis)
          }
        }, () => {
          asking = false
        })
      }, 20)
    }
    let ends = 0
    // The ends of this process's own scrolls, where the proxy told the connection; any process's where it did not.
    const atEnd = kill !== undefined && "atEnd" in kill
      ? (pid: number | undefined) => {
        if (pid !== undefined && pid !== child.pid) return
        if (++ends === kill.atEnd) killer = setTimeout(() => send(kill.signal, ` (${kill.delayMillis} ms after scroll end ${ends})`), kill.delayMillis)
      }
      : undefined
    if (atEnd !== undefined) endListeners.add(atEnd)
    const limit = setTimeout(() => {
      sent = `SIGKILL@limit`
      child.kill("SIGKILL")
    }, limitMillis)
    child.on("exit", (code, signal) => {
      if (killer !== undefined) clearTimeout(killer)
      if (polling !== undefined) clearInterval(polling)
      if (atEnd !== undefined) endListeners.delete(atEnd)
      clearTimeout(limit)
      processEnds.push({ at: Date.now(), pid: child.pid })
      if (child.pid !== undefined) liveChildren.delete(child.pid)
      resolve({ label, code, signal, sent, stderr, millis: Date.now() - started })
    })
  })

// ---------------------------------------------------------------------------------------------------------------------
// The databases

interface Database {
  readonly dialect: Dialect
  readonly url: string
  readonly query: (text: string) => Promise<ReadonlyArray<Record<string, unknown>>>
  readonly close: () => Promise<void>
}

const sqliteDatabase = (directory: string): Database => {
  const file = NodePath.join(directory, "chaos.sqlite")
  return {
    dialect: "sqlite",
    url: `sqlite:${file}`,
    query: async (text) => {
      if (!Fs.existsSync(file)) return []
      const db = new Sqlite(file, { fileMustExist: true })
      try {
        return db.prepare(text).all() as ReadonlyArray<Record<string, unknown>>
      } finally {
        db.close()
      }
    },
    close: async () => undefined
  }
}

const pgDatabase = async (server: PostgresServer.Server): Promise<Database> => {
  const name = `chaos_${seed}`
  const admin = ManagedRuntime.make(
    PgClient.layer({ url: Redacted.make(server.url), maxConnections: 1 }).pipe(Layer.provide(Reactivity.layer))
  )
  await admin.runPromise(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`CREATE DATABASE ${name}`)))
  await admin.dispose()
  const url = new URL(server.url)
  url.pathname = `/${name}`
  const runtime = ManagedRuntime.make(
    PgClient.layer({ url: Redacted.make(url.href), maxConnections: 1, applicationName: "chaos-check" }).pipe(
      Layer.provide(Reactivity.layer)
    )
  )
  return {
    dialect: "pg",
    url: url.href,
    query: (text) =>
      runtime.runPromise(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<Record<string, unknown>>(text))
      ),
    close: () => runtime.dispose()
  }
}

const isMissingTable = (error: unknown) => /no such table|does not exist/i.test(String(error))

/** Rows of a table the first run may not have made yet: none then. */
const rowsOf = async (db: Database, text: string) => {
  try {
    return await db.query(text)
  } catch (error) {
    if (isMissingTable(error)) return []
    throw error
  }
}

/** The text columns the sync copies out of each resource's records, beside `created_at` and `updated_at`. */
const typedColumns: Record<Resource, ReadonlyArray<string>> = {
  users: ["email", "name"],
  leads: ["email", "name"],
  companies: ["company_id", "name"]
}

const recordTables: Record<Resource, string> = { users: "intercom_users", leads: "intercom_leads", companies: "intercom_companies" }

interface RunRow {
  readonly id: number
  readonly resource: string
  readonly status: string
  readonly startedAt: number
  readonly inserted: number | null
  readonly updated: number | null
  readonly unchanged: number | null
  readonly deleted: number | null
}

/** A time as either dialect gives it back: an ISO string (SQLite), a Date (PostgreSQL). */
const millisOf = (value: unknown): number => value instanceof Date ? value.getTime() : new Date(String(value)).getTime()

const runs = async (db: Database): Promise<ReadonlyArray<RunRow>> =>
  (await rowsOf(db, `SELECT id, resource, status, started_at, inserted, updated, unchanged, deleted FROM intercom_sync_runs
    WHERE workspace = '${WORKSPACE}' ORDER BY id`)).map((row) => ({
      id: Number(row.id),
      resource: String(row.resource),
      status: String(row.status),
      startedAt: millisOf(row.started_at),
      inserted: row.inserted === null ? null : Number(row.inserted),
      updated: row.updated === null ? null : Number(row.updated),
      unchanged: row.unchanged === null ? null : Number(row.unchanged),
      deleted: row.deleted === null ? null : Number(row.deleted)
    }))

/** Slack on a run's window, either side (ms): a mark is excused if the record was absent this near to the window. */
const windowSlack = 100

/** The runs of each database seen to have left a SQLite deletion pass cut short after a chunk: run id → its marks. */
const cutPasses: Record<Dialect, Map<number, number>> = { sqlite: new Map(), pg: new Map() }

/**
 * Every deletion mark as the design allows it, and no other:
 * - it names a run (`changed_run`) of the resource; a run that did not complete may have left marks only in SQLite,
 *   whose pass goes a chunk a transaction, and only if it was cut short (`interrupted`, or `abandoned`, or still
 *   `running` with its process gone until the next run marks it so);
 * - it is true: the record was absent from the workspace at some moment between the run's start and the mark, as it
 *   must have been for a complete scroll of that run to miss it (present throughout, every scroll saw it);
 * - a run holds no more marks than it counted (`deleted`, which each chunk's transaction writes with its marks).
 * Run when every sync process has ended: a run `running` then was left by a dead one.
 */
const checkDeletions = async (db: Database): Promise<ReadonlyArray<string>> => {
  const byId = new Map((await runs(db)).map((run) => [run.id, run]))
  const violations: Array<string> = []
  const say = (text: string) => violations.length < 40 && violations.push(text)
  const cutShort = new Set(["interrupted", "abandoned", "running"])
  for (const resource of resources) {
    const rows = await rowsOf(db, `SELECT id, changed_run, deleted_at FROM ${recordTables[resource]}_records
      WHERE workspace = '${WORKSPACE}' AND deleted_at IS NOT NULL`)
    const marksOf = new Map<number, number>()
    for (const row of rows) {
      const id = String(row.id)
      const runId = Number(row.changed_run)
      marksOf.set(runId, (marksOf.get(runId) ?? 0) + 1)
      const run = byId.get(runId)
      if (run === undefined) {
        say(`${resource} ${id} marked deleted by run ${runId}, not in intercom_sync_runs`)
        continue
      }
      if (run.resource !== resource) say(`${resource} ${id} marked deleted by run ${runId}, a run of ${run.resource}`)
      if (run.status !== "complete" && !(db.dialect === "sqlite" && cutShort.has(run.status))) {
        say(`${resource} ${id} marked deleted by run ${runId}, ${run.status}`)
      }
      const markedAt = millisOf(row.deleted_at)
      if (!absentWithin(resource, id, run.startedAt - windowSlack, markedAt + windowSlack)) {
        say(`${resource} ${id} marked deleted by run ${runId} (${run.status}) at ${new Date(markedAt).toISOString()}, present in the workspace from its start (${new Date(run.startedAt).toISOString()}) to then`)
      }
    }
    for (const [runId, marks] of marksOf) {
      const run = byId.get(runId)
      if (run === undefined) continue
      if (run.deleted === null || marks > run.deleted) {
        say(`run ${runId} (${resource}, ${run.status}) holds ${marks} deletion marks, counted ${run.deleted ?? "none"}`)
      }
      if (run.status !== "complete" && db.dialect === "sqlite") cutPasses.sqlite.set(runId, Math.max(marks, cutPasses.sqlite.get(runId) ?? 0))
    }
  }
  return violations
}

const parseRecord = (value: unknown): unknown => typeof value === "string" ? JSON.parse(value) : value

/**
 * The copy of `which` against the truth: after a clean sync of everything (its runs given, to check their counts), or
 * after a round of chaos in which a sync of them completed and nothing changed meanwhile.
 */
const checkCopy = async (
  db: Database,
  which: ReadonlyArray<Resource>,
  clean: ReadonlyArray<RunRow> | undefined
): Promise<ReadonlyArray<string>> => {
  const violations: Array<string> = []
  const say = (text: string) => violations.length < 40 && violations.push(text)
  for (const resource of which) {
    const s = state[resource]
    // The records of live rows only: a copy that held a surge has 20,000 deleted ones.
    const columns = [...typedColumns[resource], "created_at", "updated_at"]
    const rows = await rowsOf(db, `SELECT id, CASE WHEN deleted_at IS NULL THEN record END AS record, deleted_at,
      ${columns.join(", ")} FROM ${recordTables[resource]}_records WHERE workspace = '${WORKSPACE}'`)
    const seen = new Set<string>()
    let live = 0
    for (const row of rows) {
      const id = String(row.id)
      if (seen.has(id)) say(`${resource} ${id} twice`)
      seen.add(id)
      if (!s.everPresent.has(id)) say(`${resource} ${id} stored but never in the workspace`)
      const isLive = row.deleted_at === null
      if (isLive) {
        live++
        if (!s.present.has(id)) say(`${resource} ${id} live in the copy, removed from the workspace`)
        else {
          const truth = truthOf(resource, id)
          if (canonical(parseRecord(row.record)) !== canonical(truth)) {
            say(`${resource} ${id}: the stored record differs from the workspace's (version ${s.version.get(id) ?? 0}, shape ${s.shape.get(id) ?? 0})`)
          }
          // The columns copied out of the record hold its shape too: a field gone or null, a column null.
          for (const column of columns) {
            const value = truth[column]
            const expected = column === "created_at" || column === "updated_at"
              ? Number.isSafeInteger(value) ? value : null
              : typeof value === "string" ? value : null
            const stored = row[column] === null || row[column] === undefined ? null : typeof expected === "number" ? Number(row[column]) : row[column]
            if (stored !== expected) {
              say(`${resource} ${id}: column ${column} holds ${JSON.stringify(stored)}, the record ${JSON.stringify(value ?? "absent")} (shape ${s.shape.get(id) ?? 0})`)
            }
          }
        }
      } else if (s.present.has(id)) say(`${resource} ${id} marked deleted, present in the workspace`)
    }
    for (const id of s.present) if (!seen.has(id)) say(`${resource} ${id} present in the workspace, missing from the copy`)
    if (live !== s.present.size) say(`${resource}: ${live} live rows, ${s.present.size} in the workspace`)
    const seenRows = await rowsOf(db, `SELECT count(*) AS n, count(DISTINCT id) AS d FROM ${recordTables[resource]}_seen
      WHERE workspace = '${WORKSPACE}'`)
    if (seenRows.length > 0 && Number(seenRows[0]?.n) !== Number(seenRows[0]?.d)) say(`${resource}: an id twice in the seen table`)
    const run = clean?.find((r) => r.resource === resource)
    if (clean === undefined) continue
    if (run === undefined) say(`${resource}: no complete clean run`)
    else if ((run.inserted ?? 0) + (run.updated ?? 0) + (run.unchanged ?? 0) !== s.present.size) {
      say(`${resource}: the clean run ${run.id} counted ${run.inserted}+${run.updated}+${run.unchanged}, the workspace holds ${s.present.size}`)
    }
    if (db.dialect === "sqlite") {
      const log = await rowsOf(db, `SELECT count(*) AS n FROM ${recordTables[resource]}_seen_log`)
      if (Number(log[0]?.n ?? 0) !== 0) say(`${resource}: ${String(log[0]?.n)} seen-log rows left`)
    }
  }
  return violations
}

/** What is left once every process has ended: runs `running`, lock rows, advisory locks, sessions. */
const checkLeftovers = async (db: Database): Promise<ReadonlyArray<string>> => {
  const violations: Array<string> = []
  const running = (await runs(db)).filter((run) => run.status === "running")
  if (running.length > 0) violations.push(`runs left running: ${running.map((run) => run.id).join(", ")}`)
  if (db.dialect === "sqlite") {
    const locks = await rowsOf(db, "SELECT count(*) AS n FROM intercom_sync_locks")
    if (Number(locks[0]?.n ?? 0) !== 0) violations.push(`${String(locks[0]?.n)} rows left in intercom_sync_locks`)
  } else {
    const locks = await db.query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'")
    if (Number(locks[0]?.n ?? 0) !== 0) violations.push(`${String(locks[0]?.n)} advisory locks left held`)
    // Said with what each one is doing: a leftover is a question of which process's, and where it stopped.
    const sessions = await db.query(
      `SELECT pid, backend_type, application_name, state, backend_start, query_start, wait_event_type, wait_event, left(query, 160) AS query
        FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`
    )
    if (sessions.length > 0) {
      violations.push(`${sessions.length} sessions left on the database: ${sessions.map((row) => JSON.stringify(row)).join("; ")}`)
    }
  }
  return violations
}

// ---------------------------------------------------------------------------------------------------------------------
// An iteration

interface Tally {
  iterations: number
  syncs: number
  killed: Record<string, number>
  /** Of them, killed within 150 ms of a scroll's end (1,500 ms after a surge). */
  killedAtEnd: number
  /** Of them, killed in a SQLite deletion pass once a chunk had committed. */
  killedInPass: number
  surges: number
  completed: number
  failed: number
  pairs: number
  clean: number
  cleanMillis: number
  /** Rounds without mutations during them whose complete sync was checked too. */
  roundsChecked: number
  mutations: Mutations
  scrollsOpened: number
  liveCounted: number
  /** Of them, met by a process the proxy told, in a scroll it told the owner of. */
  liveTold: number
  liveExcused: number
  violations: Array<string>
}
const newTally = (): Tally => ({
  iterations: 0, syncs: 0, killed: {}, killedAtEnd: 0, killedInPass: 0, surges: 0, completed: 0, failed: 0, pairs: 0, clean: 0, cleanMillis: 0, roundsChecked: 0,
  mutations: noMutations(), scrollsOpened: 0, liveCounted: 0, liveTold: 0, liveExcused: 0, violations: []
})
const tallies: Record<Dialect, Tally> = { sqlite: newTally(), pg: newTally() }
const failureLines: Array<string> = []

const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

/** Which dialects have had a surge. */
const surged = new Set<Dialect>()

/** SQLite: the lock holder's pid while a run that started under its lock is in its pass with a chunk committed. */
const passHolder = (db: Database): PassHolder => async () => {
  const rows = await rowsOf(db, `SELECT l.pid AS pid FROM intercom_sync_runs r
    JOIN intercom_sync_locks l ON l.workspace = r.workspace
    WHERE r.workspace = '${WORKSPACE}' AND r.status = 'running' AND r.deleted > 0 AND r.started_at >= l.acquired_at`)
  return rows.length > 0 ? Number(rows[0]?.pid) : undefined
}

const chaosFaults = (): { readonly faults: FaultPlan.FaultPlan; readonly words: Array<string> } => {
  const pages = () => Array.from({ length: rng.between(1, 2) }, () => rng.between(2, 40))
  const faults: Record<string, unknown> = {}
  const words: Array<string> = []
  if (rng.chance(0.5)) faults.restartAt = pages()
  if (rng.chance(0.4)) faults.expireAt = pages()
  if (rng.chance(0.4)) faults.cutBodyAt = pages()
  if (rng.chance(0.3)) faults.dropConnectionAt = pages()
  if (rng.chance(0.25)) faults.rateLimit = { limit: rng.between(8, 30), windowSeconds: 1 }
  if (rng.chance(0.2)) faults.foreignScroll = rng.between(1, 3)
  if (rng.chance(0.2)) faults.latency = Duration.millis(rng.between(5, 40))
  for (const [key, value] of Object.entries(faults)) {
    words.push(`${key}=${Duration.isDuration(value) ? Duration.format(value) : JSON.stringify(value)}`)
  }
  return { faults: faults as FaultPlan.FaultPlan, words }
}

const iteration = (n: number, db: Database, tmpdir: string) =>
  Effect.gen(function*() {
    const tally = tallies[db.dialect]
    tally.iterations++
    const mutations = noMutations()
    const violations: Array<string> = []
    const lines: Array<string> = []
    mutate(mutations)

    // A surge, in the first iteration of each database and then one in four: the workspace holds the large data set's
    // 20,000 more users for one complete sync of users, and they go again before the chaos phase. Its first complete
    // sync of users then marks 20,000 deleted, in SQLite a pass of two chunks or more, which its kills cut.
    const surge = !surged.has(db.dialect) || rng.chance(0.25)
    if (surge) {
      surged.add(db.dialect)
      tally.surges++
      for (const id of state.users.dormant) setPresent("users", id, true)
      compression = rng.pick(compressions)
      proxyCut = 0
      const surgeScope = yield* startSimulator({ pageSize: 100 }, {}, LARGE_USERS)
      const result = yield* Effect.promise(() =>
        runSync("surge", ["users", "--workspace", WORKSPACE, "--lock-timeout", "30s"], db.url, tmpdir, undefined, 240_000)
      )
      tally.scrollsOpened += Effect.runSync(current?.stats ?? Effect.die("no simulator")).total.scrollsOpened
      yield* stopSimulator(surgeScope)
      lines.push(`  surge (${compression}): sync users of ${state.users.present.size}: exit ${result.code} in ${(result.millis / 1000).toFixed(1)}s`)
      if (result.code !== 0) violations.push(`the surge's sync failed (exit ${result.code} ${result.signal ?? ""}): ${result.stderr.trim().slice(-600)}`)
      else violations.push(...(yield* Effect.promise(() => checkCopy(db, ["users"], undefined))).map((text) => `after the surge: ${text}`))
      for (const id of state.users.dormant) setPresent("users", id, false)
    }

    // The chaos phase: one simulator with this iteration's faults, 1–3 rounds of syncs.
    const { faults, words } = chaosFaults()
    const pageSize = rng.pick(pageSizes)
    const scrollParam = rng.chance(0.25) ? "stable" as const : "rotating" as const
    const restartOrder = rng.chance(0.25) ? "same" as const : "varied" as const
    const expirySeconds = rng.between(2, 4)
    compression = rng.pick(compressions)
    proxyCut = rng.chance(0.3) ? rng.between(1, 4) / 100 : 0
    if (proxyCut > 0) words.push(`proxyCut=${proxyCut}`)
    const scope = yield* startSimulator({ pageSize, scrollParam, restartOrder, expiry: Duration.seconds(expirySeconds) }, faults)
    lines.push(`  faults: ${compression}, pages of ${pageSize}, expiry ${expirySeconds}s, ${scrollParam}, ${restartOrder}${words.length > 0 ? `, ${words.join(", ")}` : ""}`)
    const rounds = rng.between(1, 3)
    for (let round = 0; round < rounds; round++) {
      const pair = rng.chance(0.3)
      if (pair) tally.pairs++
      const what = rng.chance(0.6) ? "all" : rng.pick(resources)
      const started = Array.from({ length: pair ? 2 : 1 }, (_, k) => {
        const signal = rng.pick(["SIGKILL", "SIGTERM", "SIGINT"] as const)
        // SQLite: killed part way through a deletion pass of several chunks, more often after a surge.
        const inPass = db.dialect === "sqlite" && what !== "leads" && what !== "companies" && rng.chance(surge ? 0.5 : 0.15)
        const kill: Kill | undefined = inPass
          ? { signal, inPass: passHolder(db), delayMillis: rng.between(0, 150) }
          : rng.chance(0.4)
          ? { signal, afterMillis: rng.between(50, 3000) }
          : rng.chance(0.45)
          ? { signal, atEnd: what === "all" ? rng.between(1, 3) : 1, delayMillis: rng.between(0, surge ? 1500 : 150) }
          : undefined
        const args = [
          what,
          "--workspace", WORKSPACE,
          "--max-restarts", String(rng.between(0, 5)),
          "--prefetch", String(rng.between(0, 2)),
          "--pages-per-transaction", String(rng.between(1, 3)),
          "--wait-for-other-scroll", "30s",
          "--request-timeout", "5s",
          "--lock-timeout", "90s"
        ]
        const label = `r${round + 1}${pair ? "abc"[k] : ""} (max-restarts ${args[4]})`
        return Effect.promise(() => sleep(k * rng.between(0, 300)).then(() => runSync(label, args, db.url, tmpdir, kill, 120_000)))
      })
      // Records change while the syncs run (or, in some rounds, not: then a sync that completed left the copy true).
      const during = Array.from({ length: rng.between(0, 2) }, () =>
        Effect.promise(() => sleep(rng.between(0, 3000)).then(() => mutate(mutations)))
      )
      const finished = (yield* Effect.all([...started, ...during], { concurrency: "unbounded" })).filter(
        (result): result is Finished => result !== undefined
      )
      for (const result of finished) {
        tally.syncs++
        const ended = result.code === 0 ? "complete" : result.signal !== null ? `killed by ${result.signal}` : `exit ${result.code}`
        if (result.code === 0) tally.completed++
        else if (result.sent !== undefined && (result.signal !== null || result.code === 130 || result.code === 143)) {
          const signal = result.sent.split("@")[0] ?? "?"
          if (result.sent.includes("after scroll end")) tally.killedAtEnd++
          if (result.sent.includes("deletion pass")) tally.killedInPass++
          tally.killed[signal] = (tally.killed[signal] ?? 0) + 1
        } else tally.failed++
        const last = result.stderr.trim().split("\n").filter((line) => line.trim() !== "").slice(-1)[0] ?? ""
        lines.push(`  ${result.label} sync ${what}: ${result.sent ?? "not signalled"}, ${ended} in ${(result.millis / 1000).toFixed(1)}s${result.code === 0 ? "" : ` — ${last.slice(0, 160)}`}`)
        if (result.sent === "SIGKILL@limit") violations.push(`${result.label}: the sync ran past 120 s and was killed`)
      }
      // The scroll a killed sync left is held as used for 500 ms: the next round starts past that.
      yield* Effect.promise(() => sleep(1100))
      violations.push(...(yield* Effect.promise(() => checkDeletions(db))))
      if (during.length === 0 && finished.some((result) => result.code === 0)) {
        const synced = what === "all" ? resources : [what]
        const wrong = yield* Effect.promise(() => checkCopy(db, synced, undefined))
        tally.roundsChecked++
        violations.push(...wrong.map((text) => `after round ${round + 1}'s complete sync: ${text}`))
      }
    }
    const stats = Effect.runSync(current?.stats ?? Effect.die("no simulator"))
    tally.scrollsOpened += stats.total.scrollsOpened
    yield* stopSimulator(scope)

    // The clean phase: a simulator without faults, one sync of everything, nothing changing.
    compression = rng.pick(compressions)
    proxyCut = 0
    const cleanScope = yield* startSimulator({ pageSize: rng.pick(pageSizes) }, {})
    const before = new Set((yield* Effect.promise(() => runs(db))).map((run) => run.id))
    const clean = yield* Effect.promise(() =>
      runSync("clean", ["all", "--workspace", WORKSPACE, "--lock-timeout", "30s"], db.url, tmpdir, undefined, 120_000)
    )
    tally.clean++
    tally.cleanMillis += clean.millis
    const cleanStats = Effect.runSync(current?.stats ?? Effect.die("no simulator"))
    tally.scrollsOpened += cleanStats.total.scrollsOpened
    yield* stopSimulator(cleanScope)
    if (clean.code !== 0) violations.push(`the clean sync failed (exit ${clean.code} ${clean.signal ?? ""}): ${clean.stderr.trim().slice(-600)}`)
    lines.push(`  clean sync all (${compression}): exit ${clean.code} in ${(clean.millis / 1000).toFixed(1)}s`)
    const cleanRuns = (yield* Effect.promise(() => runs(db))).filter((run) => !before.has(run.id) && run.status === "complete")
    violations.push(...(yield* Effect.promise(() => checkCopy(db, resources, cleanRuns))))
    violations.push(...(yield* Effect.promise(() => checkDeletions(db))))
    violations.push(...(yield* Effect.promise(() => checkLeftovers(db))))

    violations.push(...proxyFaults.splice(0))

    // Two scrolls at once: `scrollExistsWhileLive` counted away from the end of the process whose scroll was in use.
    // Where the proxy told both processes, only that owner's end excuses it (or the owner is the one that met it: its
    // own scroll, cut short, still live); where it could not, any process's end does, as before.
    const endedNear = (at: number, pid?: number) =>
      processEnds.some((end) => (pid === undefined || end.pid === pid) && at >= end.at - 50 && at - end.at <= 1100)
    for (const event of liveEvents.splice(0)) {
      tally.liveCounted++
      const told = event.pid !== undefined && event.owner !== undefined
      if (told) tally.liveTold++
      const excused = told ? event.owner === event.pid || endedNear(event.at, event.owner) : endedNear(event.at)
      if (excused) tally.liveExcused++
      else {
        violations.push(
          `scroll_exists answered while another scroll was in use, ${new Date(event.at).toISOString()}, ` +
            (told ? `met by pid ${event.pid}, the scroll pid ${event.owner}'s, which did not end near` : "no sync ending near")
        )
      }
    }
    processEnds.splice(0)

    for (const key of Object.keys(mutations) as Array<keyof Mutations>) tally.mutations[key] += mutations[key]
    const truth = resources.map((r) => `${r} ${state[r].present.size}`).join(", ")
    const head = `#${n} ${db.dialect}: ${rounds} round(s), mutations +${mutations.added} -${mutations.removed} ↺${mutations.restored} ~${mutations.changed} ^${mutations.reverted} ≈${mutations.reshaped} ≉${mutations.unshaped}; workspace ${truth}: ${violations.length === 0 ? "ok" : `${violations.length} VIOLATION(S)`}`
    console.log([head, ...lines, ...violations.map((v) => `  ✗ ${v}`)].join("\n"))
    if (violations.length > 0) {
      tally.violations.push(...violations.map((v) => `#${n}: ${v}`))
      failureLines.push(`iteration ${n} (${db.dialect}): ${violations[0]}`)
    }
  })

// ---------------------------------------------------------------------------------------------------------------------
// The run

const program = Effect.gen(function*() {
  const started = Date.now()
  console.log(`Chaos: ${iterations} iteration(s), ${dialects.join(" and ")}, seed ${seed}; the CLI at ${NodePath.relative(root, cliBin)}`)
  if (!Fs.existsSync(cliBin)) return yield* Effect.dieMessage(`no ${cliBin}: run \`pnpm -s build\` at the root first`)
  yield* loadBase
  yield* loadLarge
  yield* startProxy
  const tmpdir = yield* Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "intercom-chaos-"))),
    (directory) => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true }))
  )
  const databases: Array<Database> = []
  for (const dialect of dialects) {
    if (dialect === "sqlite") databases.push(sqliteDatabase(tmpdir))
    else {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => PostgresServer.startWith({ port: PG_PORT })),
        (server) => Effect.promise(() => server.stop())
      )
      const db = yield* Effect.acquireRelease(Effect.promise(() => pgDatabase(server)), (db) => Effect.promise(() => db.close()))
      databases.push(db)
    }
  }
  for (let n = 1; n <= iterations; n++) {
    yield* iteration(n, databases[(n - 1) % databases.length] as Database, tmpdir)
  }

  const minutes = ((Date.now() - started) / 60000).toFixed(1)
  const rows = dialects.map((dialect) => {
    const t = tallies[dialect]
    const killed = Object.entries(t.killed).map(([signal, count]) => `${signal} ${count}`).join(", ") || "none"
    const cut = [...cutPasses[dialect].values()]
    return `| ${dialect} | ${t.iterations} | ${t.surges} | ${t.syncs} (${t.pairs} pairs) | ${killed} (${t.killedAtEnd} at a scroll's end, ${t.killedInPass} in a deletion pass) | ` +
      `${cut.length} (${cut.reduce((sum, marks) => sum + marks, 0)} marks) | ${t.completed} | ${t.failed} | ` +
      `+${t.mutations.added} -${t.mutations.removed} ↺${t.mutations.restored} ~${t.mutations.changed} ^${t.mutations.reverted} ≈${t.mutations.reshaped} ≉${t.mutations.unshaped} | ` +
      `${t.roundsChecked} | ${t.scrollsOpened} | ` +
      `${t.liveCounted} (${t.liveTold} told, ${t.liveExcused} after an end) | ${t.clean > 0 ? (t.cleanMillis / t.clean / 1000).toFixed(1) : "-"} s | ${t.violations.length} |`
  })
  console.log(`\n| dialect | iterations | surges | chaos syncs | killed | passes cut after a chunk | completed | failed | mutations (+ - ↺ ~ ^ ≈ ≉) | rounds checked | scrolls opened | scroll_exists while live | clean sync (mean) | violations |`)
  console.log(`| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`)
  console.log(rows.join("\n"))
  const coded = Object.entries(proxyStats.coded).map(([name, count]) => `${name} ${count}`).join(", ")
  console.log(`\n${minutes} min; proxy: ${proxyStats.requests} requests, ${proxyStats.pagesRewritten} pages rewritten, ${proxyStats.pagesFollowed} emptied pages followed, ` +
    `${proxyStats.requestsTold} told to a process, ${proxyStats.broken} broken answers passed on (${proxyStats.brokenCompressed} compressed bodies cut), ${proxyStats.cutByProxy} pages cut by the proxy ` +
    `(${proxyStats.cutByProxyCompressed} compressed); whole pages sent: ${coded}`)
  if (failureLines.length > 0) {
    console.log(`\n❌ ${failureLines.length} iteration(s) with violations; first: ${failureLines[0]}`)
    console.log(`Reproduce: pnpm --filter @intercom-scroll/bench chaos --seed ${seed} --dialect ${dialectFlag} --iterations ${iterations}`)
    process.exitCode = 1
  } else console.log(`\n✅ the copy stayed true (seed ${seed})`)
}).pipe(Effect.scoped)

Effect.runPromise(program).catch((error: unknown) => {
  console.error(error)
  console.error(`seed ${seed}`)
  process.exit(1)
})
