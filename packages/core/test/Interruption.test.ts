/**
 * Interrupting a scroll at each point where it can be: with its first request in flight, half-way through a page's
 * body, while it waits on a rate limit, on another scroll, on its restart backoff or for this process's workspace
 * lock, while its consumer works with pages fetched ahead, and when its consumer stops early. Each time:
 *
 * - the workspace lock is given back: another scroll of the same workspace runs to its end at once;
 * - the request in flight is let go: its abort signal fires (what closes a real connection) or its body is
 *   cancelled, and every other exchange was read to its end;
 * - the scope's finalizers ran: every span ended, and every wait that was reported was reported over;
 * - no fiber is left: a supervisor that tracks every fiber the scroll started finds none alive.
 */
import { HttpClient, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Chunk,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Redacted,
  Schedule,
  Stream,
  Supervisor,
  TestClock,
  type Tracer
} from "effect"
import { IntercomClient, Progress, Scroll } from "../src/index.js"
import { errorList, isWorkspaceLocked, user } from "./support/fakeIntercom.js"
import { recordingTracer } from "./support/recordingTracer.js"
import { Settle } from "@intercom-scroll/testing"

const BASE_URL = "https://api.intercom.test"
const PAGE_SIZE = 100
const RECORDS = 250

/** How an exchange with the server ended; undefined while it is still open. */
type Closed = "read to the end" | "body cancelled" | "aborted"

interface Exchange {
  readonly url: URL
  readonly signal: AbortSignal
  closed: Closed | undefined
  /** The request itself was interrupted before any response. */
  interrupted: boolean
  /** The body stopped coming half-way, and the client is waiting for the rest. */
  stalled: boolean
}

/** What the server does with one request: answer it (possibly stalling half-way through the body), or never. */
type Answer =
  | { readonly _tag: "Respond"; readonly response: Response; readonly stallAfter?: number }
  | { readonly _tag: "Hang" }

const hang: Answer = { _tag: "Hang" }
const respond = (response: Response, stallAfter?: number): Answer =>
  stallAfter === undefined ? { _tag: "Respond", response } : { _tag: "Respond", response, stallAfter }

/** Page `page` (0-based) of scroll `scroll`, its scroll_param `s<scroll>-<page + 1>`. */
const pageBody = (scroll: number, page: number, options: { readonly declareLength?: boolean } = {}) => {
  const from = page * PAGE_SIZE
  const users = Array.from({ length: Math.max(0, Math.min(PAGE_SIZE, RECORDS - from)) }, (_, k) => user(from + k))
  const text = JSON.stringify({ type: "user.list", users, scroll_param: `s${scroll}-${page + 1}` })
  const length: Record<string, string> = options.declareLength === true
    ? { "content-length": String(new TextEncoder().encode(text).length) }
    : {}
  return new Response(text, { status: 200, headers: { "content-type": "application/json", ...length } })
}

const tooMany = (resetSeconds: number) =>
  new Response(
    JSON.stringify({
      type: "error.list",
      request_id: "req_429",
      errors: [{ code: "rate_limit_exceeded", message: "Exceeded rate limit" }]
    }),
    {
      status: 429,
      headers: {
        "content-type": "application/json",
        "x-ratelimit-limit": "100",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": String(resetSeconds)
      }
    }
  )

interface Server {
  readonly exchanges: Array<Exchange>
  readonly layer: Layer.Layer<IntercomClient.IntercomClient>
}

/**
 * A stand-in for Intercom that answers the scroll of `RECORDS` users unless `script` says otherwise, and keeps every
 * exchange: each response body is a stream it serves itself, so it knows whether the client read it to the end,
 * cancelled it, or aborted the request (a real transport closes the connection on that signal).
 */
const server = (token: string, script: (n: number, url: URL) => Answer | undefined = () => undefined): Server => {
  const exchanges: Array<Exchange> = []
  let scrolls = 0
  const scripted = (n: number, url: URL): Answer => {
    const answer = script(n, url)
    if (answer !== undefined) return answer
    const param = url.searchParams.get("scroll_param")
    const match = param === null ? undefined : /^s(\d+)-(\d+)$/.exec(param)
    if (match === null) return respond(errorList(404, "not_found", "scroll parameter not found"))
    return match === undefined ? respond(pageBody(++scrolls, 0)) : respond(pageBody(Number(match[1]), Number(match[2])))
  }
  const http = HttpClient.make((request, url, signal) =>
    Effect.suspend(() => {
      const exchange: Exchange = { url, signal, closed: undefined, interrupted: false, stalled: false }
      exchanges.push(exchange)
      let body: ReadableStreamDefaultController<Uint8Array> | undefined
      signal.addEventListener("abort", () => {
        if (exchange.closed !== undefined) return
        exchange.closed = "aborted"
        body?.error(new Error("the connection was closed"))
      })
      const answer = scripted(exchanges.length, url)
      if (answer._tag === "Hang") {
        return Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => (exchange.interrupted = true))))
      }
      return Effect.promise(() => answer.response.arrayBuffer()).pipe(Effect.map((buffer) => {
        const bytes = new Uint8Array(buffer)
        const stallAt = answer.stallAfter ?? bytes.length
        let sent = 0
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            body = controller
          },
          pull(controller) {
            if (sent < stallAt) {
              controller.enqueue(bytes.slice(sent, stallAt))
              sent = stallAt
            }
            if (sent === bytes.length) {
              controller.close()
              exchange.closed ??= "read to the end"
              return
            }
            // The rest of the body never comes.
            exchange.stalled = true
            return new Promise<void>(() => {})
          },
          cancel() {
            exchange.closed ??= "body cancelled"
          }
        })
        return HttpClientResponse.fromWeb(
          request,
          new Response(stream, { status: answer.response.status, headers: answer.response.headers })
        )
      }))
    })
  )
  return {
    exchanges,
    layer: IntercomClient.layer({ accessToken: Redacted.make(token), baseUrl: BASE_URL }).pipe(
      Layer.provide(Layer.succeed(HttpClient.HttpClient, http)),
      Layer.orDie
    )
  }
}

let workspaces = 0
const newToken = () => `tok_interruption_${++workspaces}`

/**
 * The scroll waits on the clock until `millis`, having reported the wait. (The client's timeout watchdog may sleep on
 * the TestClock too, up to a second after the last request, so the wait is found by its wake-up time among the others.)
 */
const waitingUntil = (watch: Watch, reason: Progress.WaitReason, millis: number) =>
  Settle.until(
    `a ${reason} wait until ${millis} ms`,
    Effect.map(TestClock.sleeps(), (sleeps) => waitsReported(watch).includes(reason) && Chunk.some(sleeps, (at) => at === millis))
  )

interface Watch {
  readonly supervisor: Supervisor.Supervisor<Array<Fiber.RuntimeFiber<unknown, unknown>>>
  readonly spans: ReadonlyArray<Tracer.Span>
  readonly events: Array<Progress.ProgressEvent>
}

/**
 * Runs a scroll of `layer`'s workspace in a fiber whose descendants, spans and progress events are all watched; its
 * consumer stops after `take` pages' records, when given.
 */
const watched = (
  layer: Layer.Layer<IntercomClient.IntercomClient>,
  options: Scroll.Options = {},
  consume?: () => Effect.Effect<void>,
  take?: number
) =>
  Effect.gen(function*() {
    const supervisor = yield* Supervisor.track
    const { spans, tracer } = yield* recordingTracer
    const events: Array<Progress.ProgressEvent> = []
    const watch: Watch = { supervisor, spans, events }
    const fiber = yield* Scroll.users(options).pipe(
      (records) => take === undefined ? records : Stream.take(records, take),
      Stream.runForEach(() => consume?.() ?? Effect.void),
      Effect.provide(layer),
      Effect.provideService(Progress.Progress, { report: (event) => Effect.sync(() => events.push(event)) }),
      Effect.withTracer(tracer),
      Effect.fork,
      Effect.supervised(supervisor)
    )
    return { fiber, watch }
  })

const alive = (watch: Watch) => Effect.map(watch.supervisor.value, (fibers) => fibers.length)

const waitsReported = (watch: Watch) => watch.events.filter((e) => e._tag === "Waiting").map((e) => e.reason)

/** Waits reported and not reported over: each Waiting is followed by its Resumed. */
const openWaits = (watch: Watch) =>
  watch.events.reduce((open, event) => open + (event._tag === "Waiting" ? 1 : event._tag === "Resumed" ? -1 : 0), 0)

const isLocked = (layer: Layer.Layer<IntercomClient.IntercomClient>) => Effect.provide(isWorkspaceLocked, layer)

/** Another scroll of the same workspace, over a healthy server: it must run to its end without waiting. */
const scrollsAtOnce = (token: string) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(Stream.runCount(Scroll.users()).pipe(Effect.provide(server(token).layer)))
    yield* Settle.until("a second scroll of the workspace finishes", Effect.map(Fiber.poll(fiber), Option.isSome))
    expect(yield* Fiber.join(fiber)).toBe(RECORDS)
  })

/** Interrupts the scroll and checks it left nothing behind. */
const interruptAndCheck = (
  token: string,
  origin: Server,
  run: { readonly fiber: Fiber.RuntimeFiber<void, unknown>; readonly watch: Watch }
) =>
  Effect.gen(function*() {
    const { fiber, watch } = run
    // The scroll is under way: it holds the workspace and has fibers alive.
    expect(yield* isLocked(origin.layer)).toBe(true)
    expect(yield* alive(watch)).toBeGreaterThan(0)

    const exit = yield* Fiber.interrupt(fiber)
    expect(Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)).toBe(true)

    // No fiber the scroll started is still alive.
    expect(yield* watch.supervisor.value).toEqual([])
    // Every exchange with the server is over: read to the end, or let go of.
    expect(origin.exchanges.filter((e) => e.closed === undefined).map((e) => e.url.search)).toEqual([])
    // Finalizers ran: every span ended, every reported wait was reported over.
    expect(watch.spans.filter((s) => s.status._tag !== "Ended").map((s) => s.name)).toEqual([])
    expect(openWaits(watch)).toBe(0)
    // The workspace is free again, in this process.
    expect(yield* isLocked(origin.layer)).toBe(false)
    yield* scrollsAtOnce(token)
  })

describe("interrupting a scroll", () => {
  it.effect("before the first page, with the first request in flight", () =>
    Effect.gen(function*() {
      const token = newToken()
      const origin = server(token, (n) => (n === 1 ? hang : undefined))
      const run = yield* watched(origin.layer)
      yield* Settle.until("the first request is in flight", () => origin.exchanges.length === 1)
      yield* interruptAndCheck(token, origin, run)
      expect(origin.exchanges).toHaveLength(1)
      expect(origin.exchanges[0].interrupted).toBe(true)
      expect(origin.exchanges[0].signal.aborted).toBe(true)
    }))

  it.effect("mid-page, half-way through a body of unknown length", () =>
    Effect.gen(function*() {
      const token = newToken()
      const origin = server(token, (n) => (n === 2 ? respond(pageBody(1, 1), 700) : undefined))
      const run = yield* watched(origin.layer)
      yield* Settle.until("page 2 is half read", () => origin.exchanges[1]?.stalled === true)
      yield* interruptAndCheck(token, origin, run)
      expect(origin.exchanges.map((e) => e.closed)).toEqual(["read to the end", "body cancelled"])
    }))

  it.effect("mid-page, half-way through a body whose length was declared", () =>
    Effect.gen(function*() {
      const token = newToken()
      const origin = server(token, (n) => (n === 2 ? respond(pageBody(1, 1, { declareLength: true }), 700) : undefined))
      const run = yield* watched(origin.layer)
      yield* Settle.until("page 2 is half read", () => origin.exchanges[1]?.stalled === true)
      yield* interruptAndCheck(token, origin, run)
      expect(origin.exchanges[1].signal.aborted).toBe(true)
      expect(origin.exchanges[1].closed).not.toBe("read to the end")
    }))

  it.effect("while it waits on a rate limit", () =>
    Effect.gen(function*() {
      const token = newToken()
      const origin = server(token, (n) => (n === 2 ? respond(tooMany(45)) : undefined))
      const run = yield* watched(origin.layer)
      yield* waitingUntil(run.watch, "rate-limit", 45_000)
      yield* interruptAndCheck(token, origin, run)
      // The 429's body was read to the end; its resend never went out.
      expect(origin.exchanges).toHaveLength(2)
    }))

  it.effect("while it waits on another scroll of the workspace", () =>
    Effect.gen(function*() {
      const token = newToken()
      const origin = server(
        token,
        (n) => (n === 1 ? respond(errorList(400, "scroll_exists", "scroll already exists for this workspace")) : undefined)
      )
      const run = yield* watched(origin.layer)
      yield* waitingUntil(run.watch, "concurrent-scroll", 10_000)
      yield* interruptAndCheck(token, origin, run)
      expect(origin.exchanges).toHaveLength(1)
    }))

  it.effect("while it waits to start over after a 500", () =>
    Effect.gen(function*() {
      const token = newToken()
      const origin = server(
        token,
        (n) => (n === 2 ? respond(errorList(500, "server_error", "Please restart the scroll operation.")) : undefined)
      )
      const run = yield* watched(origin.layer, { restart: Schedule.spaced("20 seconds") })
      yield* waitingUntil(run.watch, "restart", 20_000)
      yield* interruptAndCheck(token, origin, run)
      expect(origin.exchanges).toHaveLength(2)
    }))

  it.effect("while its consumer works, with pages fetched ahead", () =>
    Effect.gen(function*() {
      const token = newToken()
      const origin = server(token)
      const gate = yield* Deferred.make<void>()
      const run = yield* watched(origin.layer, { prefetch: 1 }, () => Deferred.await(gate))
      // The consumer holds page 1, page 2 waits in the buffer, page 3 waits to enter it.
      yield* Settle.until("pages are fetched ahead", () => origin.exchanges.length === 3)
      // The fiber fetching ahead is alive besides the scroll's own.
      expect(yield* alive(run.watch)).toBeGreaterThan(1)
      yield* interruptAndCheck(token, origin, run)
    }))

  it.effect("stopped early by its consumer, with the next page's request sent ahead and in flight", () =>
    Effect.gen(function*() {
      const token = newToken()
      // Page 2 is read while the request for page 3, sent ahead of its parse, never gets an answer.
      const origin = server(token, (n) => (n === 3 ? hang : undefined))
      const run = yield* watched(origin.layer, {}, undefined, PAGE_SIZE + 1)
      yield* Settle.until("the scroll stops", Effect.map(Fiber.poll(run.fiber), Option.isSome))
      expect(Exit.isSuccess(yield* Fiber.await(run.fiber))).toBe(true)
      // The request sent ahead went with the stream, not after it: by the time the stream is done it was let go of,
      // its span ended with the rest, and no fiber of the scroll is left running it.
      expect(origin.exchanges).toHaveLength(3)
      expect(origin.exchanges[2].interrupted).toBe(true)
      expect(origin.exchanges[2].signal.aborted).toBe(true)
      expect(yield* run.watch.supervisor.value).toEqual([])
      expect(run.watch.spans.filter((s) => s.status._tag !== "Ended").map((s) => s.name)).toEqual([])
      expect(yield* isLocked(origin.layer)).toBe(false)
      yield* scrollsAtOnce(token)
    }))

  it.effect("while it waits for this process's lock on the workspace", () =>
    Effect.gen(function*() {
      const token = newToken()
      const origin = server(token)
      const gate = yield* Deferred.make<void>()
      const holder = yield* watched(origin.layer, {}, () => Deferred.await(gate))
      yield* Settle.until("the first scroll holds the workspace", () => origin.exchanges.length > 0)
      const waiter = yield* watched(origin.layer)
      // Its layer digests the token on libuv's thread pool first, which a loaded machine answers late.
      yield* Settle.until("the second scroll waits for the lock", () => waitsReported(waiter.watch).includes("workspace-lock"))
      const before = origin.exchanges.length
      expect(yield* alive(waiter.watch)).toBeGreaterThan(0)

      const exit = yield* Fiber.interrupt(waiter.fiber)
      expect(Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)).toBe(true)
      expect(yield* waiter.watch.supervisor.value).toEqual([])
      expect(waiter.watch.spans.filter((s) => s.status._tag !== "Ended").map((s) => s.name)).toEqual([])
      expect(openWaits(waiter.watch)).toBe(0)
      // It sent nothing, and the first scroll still holds the workspace.
      expect(origin.exchanges.length).toBe(before)
      expect(yield* isLocked(origin.layer)).toBe(true)

      // The waiter took no permit with it: once the holder goes, the workspace is free.
      yield* interruptAndCheck(token, origin, holder)
    }))
})
