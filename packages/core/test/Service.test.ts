/**
 * `IntercomClient.Service` is what a user calls or mocks: `baseUrl` and `scrollPage`. `Scroll` runs over any service;
 * over the client `make` builds it also sends requests ahead and takes the workspace's process-wide lock, through
 * internals the service's type does not show.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Fiber, Layer, Option, Redacted, Stream } from "effect"
import { createHash } from "node:crypto"
import { IntercomClient, type Models, type Resource, Scroll } from "../src/index.js"
import { locks } from "../src/internal/workspaceLock.js"
import { Settle } from "@intercom-scroll/testing"
import { isWorkspaceLocked, makeFake, type Seen, TOKEN, user } from "./support/fakeIntercom.js"

const paramOf = (seen: Seen) => seen.url.searchParams.get("scroll_param")

/** A test double in a few lines: the pages of each resource, then the empty page that ends a scroll. */
const doubleOf = (
  pages: { readonly [R in Resource.Resource]: ReadonlyArray<ReadonlyArray<Models.RecordOf<R>>> },
  asked: Array<string> = []
): IntercomClient.Service => ({
  baseUrl: "https://intercom.test",
  scrollPage: (resource, { page, scrollParam }) =>
    Effect.sync(() => {
      asked.push(`${resource} ${page} ${scrollParam ?? "-"}`)
      return { records: pages[resource][page - 1] ?? [], scrollParam: `${resource}-${page + 1}` }
    })
})

const threePages = {
  users: [[user(0), user(1)], [user(2)], [user(3), user(4)]] as ReadonlyArray<ReadonlyArray<Models.User>>,
  leads: [],
  companies: []
}

describe("a hand-written double of the service", () => {
  it.effect("is scrolled to its end, every record once and in order, one page at a time", () => {
    const asked: Array<string> = []
    const double = doubleOf(threePages, asked)
    return Effect.gen(function*() {
      const users = yield* Stream.runCollect(Scroll.users())
      expect(Chunk.toReadonlyArray(users).map((u) => u.id)).toEqual([0, 1, 2, 3, 4].map((i) => user(i).id))
      // Each page asked with the scroll_param the page before gave; nothing after the empty page.
      expect(asked).toEqual(["users 1 -", "users 2 users-2", "users 3 users-3", "users 4 users-4"])
    }).pipe(Effect.provide(Layer.succeed(IntercomClient.IntercomClient, double)))
  })

  it.effect("is locked: two streams over one double run one after the other", () => {
    const asked: Array<string> = []
    const double = doubleOf(threePages, asked)
    return Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const first = yield* Scroll.users().pipe(Stream.tap(() => Deferred.await(gate)), Stream.runCount, Effect.fork)
      const second = yield* Effect.fork(Stream.runCount(Scroll.users()))
      // The first holds the lock on its first record, page 2 waiting and page 3 in the producer's hand (a double gives
      // no scroll_param ahead of its page, so nothing is sent ahead); the second has not asked for anything.
      expect(yield* Settle.untilStill(() => asked.length)).toBe(3)
      expect(asked).toEqual(["users 1 -", "users 2 users-2", "users 3 users-3"])
      expect(yield* isWorkspaceLocked).toBe(true)
      yield* Deferred.succeed(gate, undefined)
      expect([yield* Fiber.join(first), yield* Fiber.join(second)]).toEqual([5, 5])
      expect(asked.slice(4)).toEqual(["users 1 -", "users 2 users-2", "users 3 users-3", "users 4 users-4"])
      expect(yield* isWorkspaceLocked).toBe(false)
    }).pipe(Effect.provide(Layer.succeed(IntercomClient.IntercomClient, double)))
  })

  it.effect("two doubles are two workspaces: they scroll at the same time", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const held = yield* Scroll.users().pipe(
        Stream.tap(() => Deferred.await(gate)),
        Stream.runDrain,
        Effect.provide(Layer.succeed(IntercomClient.IntercomClient, doubleOf(threePages))),
        Effect.fork
      )
      const other = Stream.runCount(Scroll.users()).pipe(
        Effect.provide(Layer.succeed(IntercomClient.IntercomClient, doubleOf(threePages)))
      )
      expect(yield* other).toBe(5)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(held)
    }))
})

describe("the client make builds", () => {
  it.effect("shows a user its base URL, scrollPage and identify, and nothing else", () => {
    const fake = makeFake()
    return Effect.gen(function*() {
      const client = yield* IntercomClient.IntercomClient
      expect(Object.keys(client)).toEqual(["baseUrl", "scrollPage", "identify"])
      expect(Object.getOwnPropertySymbols(client)).toEqual([])
      expect(Object.keys(client.scrollPage)).toEqual([])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a wrapper that replaces scrollPage is called for every page: Scroll goes around it to nothing", () => {
    const fake = makeFake({ records: 250 })
    const wrapped: Array<number> = []
    const wrapper = Layer.effect(
      IntercomClient.IntercomClient,
      Effect.map(IntercomClient.IntercomClient, (client): IntercomClient.Service => ({
        ...client,
        scrollPage: (resource, request) => {
          wrapped.push(request.page)
          return client.scrollPage(resource, request)
        }
      }))
    ).pipe(Layer.provide(fake.layer))
    return Effect.gen(function*() {
      expect(yield* Stream.runCount(Scroll.users())).toBe(250)
      expect(wrapped).toEqual([1, 2, 3, 4])
    }).pipe(Effect.provide(wrapper))
  })

  it.effect("spread into a new service, it still fetches ahead and holds the workspace's lock", () => {
    const fake = makeFake({ records: 1000 })
    const renamed = Layer.effect(
      IntercomClient.IntercomClient,
      Effect.map(IntercomClient.IntercomClient, (client) => ({ ...client, baseUrl: "https://renamed.test" }))
    ).pipe(Layer.provide(fake.layer))
    return Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const fiber = yield* Scroll.pages("users").pipe(
        Stream.mapEffect((page) => page.page === 1 ? Deferred.await(gate) : Effect.void),
        Stream.runDrain,
        Effect.provide(renamed),
        Effect.fork
      )
      yield* Settle.until("4 requests", () => fake.requests.length >= 4)
      // While the consumer holds page 1, page 2 waits in the buffer, page 3 in the producer's hand, and the request for
      // page 4 went out ahead of page 3's parse: as over the client itself (Scroll.test's "fetches the next pages…").
      expect(yield* Settle.untilStill(() => fake.requests.length)).toBe(4)
      expect(fake.requests.map(paramOf)).toEqual([null, "s1-1", "s1-2", "s1-3"])
      // A client made on its own for the same workspace sees the lock held.
      expect(yield* Effect.provide(isWorkspaceLocked, fake.layer)).toBe(true)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(fiber)
      expect(yield* Effect.provide(isWorkspaceLocked, fake.layer)).toBe(false)
    })
  })
})

describe("the workspace lock", () => {
  it.effect("is keyed by the SHA-256 of the base URL and the token: the process-wide map holds no token", () => {
    const token = "tok_lock_key_9f8e7d6c5b4a"
    const fake = makeFake({ records: 10, token })
    return Effect.gen(function*() {
      const expected = createHash("sha256").update(`https://api.intercom.test\n${token}`).digest("hex")
      // Looked at while the scroll holds the lock: an idle workspace's is let go.
      const keys = yield* Scroll.users().pipe(Stream.take(1), Stream.mapEffect(() => Effect.sync(() => [...locks.keys()])), Stream.runHead, Effect.map(Option.getOrThrow))
      expect(keys).toContain(expected)
      expect(keys.filter((key) => key.includes(token) || key.includes(TOKEN))).toEqual([])
      for (const key of keys) expect(key).toMatch(/^[0-9a-f]{64}$/)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("is shared by two clients made separately for one workspace", () => {
    const first = makeFake({ records: 250, token: "tok_shared_workspace" })
    const second = IntercomClient.layer({ accessToken: Redacted.make("tok_shared_workspace"), baseUrl: "https://api.intercom.test" })
      .pipe(Layer.provide(first.httpClient), Layer.orDie)
    return Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const holder = yield* Scroll.users().pipe(
        Stream.tap(() => Deferred.await(gate)),
        Stream.runDrain,
        Effect.provide(first.layer),
        Effect.fork
      )
      yield* Settle.until("the first client's request", () => first.requests.length >= 1)
      expect(yield* Effect.provide(isWorkspaceLocked, second)).toBe(true)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(holder)
      expect(yield* Effect.provide(isWorkspaceLocked, second)).toBe(false)
    })
  })
})
