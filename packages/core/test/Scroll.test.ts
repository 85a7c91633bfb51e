import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Chunk,
  Deferred,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Logger,
  Metric,
  Option,
  Schedule,
  Stream,
  Supervisor,
  TestClock,
  type Tracer
} from "effect"
import { IntercomClient, Progress, Scroll, ScrollMetrics } from "../src/index.js"
import { attach, internalsOf } from "../src/internal/client.js"
import * as WorkspaceLock from "../src/internal/workspaceLock.js"
import {
  asked,
  type Coding,
  compressedJson,
  errorList,
  type Fake,
  isWorkspaceLocked,
  json,
  makeFake,
  scrollParamModes,
  type Seen,
  user
} from "./support/fakeIntercom.js"
import { recordingTracer } from "./support/recordingTracer.js"
import { ClockSteps, Settle } from "@intercom-scroll/testing"
import { settle } from "./support/settle.js"

const RESTART_500 = () =>
  errorList(500, "server_error", "Request failed due to an internal network error. Please restart the scroll operation.")

const paramOf = (seen: Seen) => seen.url.searchParams.get("scroll_param")

/** A fault that answers the first request matching `when`, once. */
const once = (when: (seen: Seen) => boolean, answer: () => Response) => {
  let fired = false
  return (seen: Seen) => {
    if (fired || !when(seen)) return undefined
    fired = true
    return answer()
  }
}

const ids = (records: Chunk.Chunk<{ readonly id: string }>) => Chunk.toReadonlyArray(records).map((r) => r.id)

const failureOf = <A, E>(exit: Exit.Exit<A, E>) => Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()

/** The request for page `page` (0-based) of scroll `scroll`, whatever its scroll_param looks like. */
const at = (scroll: number, page: number) => (seen: Seen) => seen.scroll === scroll && seen.page === page

for (const scrollParam of scrollParamModes) {
  describe(`Scroll.users, ${scrollParam} scroll_param`, () => {
    it.effect("emits every record of every page and asks nothing after the empty page", () => {
      const fake = makeFake({ records: 250, scrollParam })
      return Effect.gen(function*() {
        const users = yield* Stream.runCollect(Scroll.users())
        expect(ids(users)).toEqual(Array.from({ length: 250 }, (_, i) => user(i).id))
        // 3 pages of records and the empty page.
        expect(fake.requests.map(asked)).toEqual(["1:0", "1:1", "1:2", "1:3"])
      }).pipe(Effect.provide(fake.layer))
    })

    it.effect("Schedule.recurs(3) opens exactly 4 scrolls when every attempt fails after its first page", () => {
      const fake = makeFake({ records: 500, scrollParam, fault: (seen) => seen.page === 1 ? RESTART_500() : undefined })
      return Effect.gen(function*() {
        const exit = yield* Effect.exit(Stream.runCollect(Scroll.users({ restart: Schedule.recurs(3) })))
        expect(Option.map(failureOf(exit), (e) => e._tag)).toEqual(Option.some("RestartRequired"))
        expect(fake.opened()).toBe(4)
      }).pipe(Effect.provide(fake.layer))
    })

    it.effect("the default restart budget is 5 restarts, held across attempts that each emit records", () => {
      const fake = makeFake({ records: 500, scrollParam, fault: (seen) => seen.page === 1 ? RESTART_500() : undefined })
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.exit(Stream.runCount(Scroll.users())))
        yield* TestClock.adjust("10 minutes")
        const exit = yield* Fiber.join(fiber)
        expect(Option.map(failureOf(exit), (e) => e._tag)).toEqual(Option.some("RestartRequired"))
        expect(fake.opened()).toBe(6)
      }).pipe(Effect.provide(fake.layer))
    })

    it.effect("the default restart waits with exponential backoff before starting over", () => {
      const fake = makeFake({ records: 250, scrollParam, fault: once(at(1, 2), RESTART_500) })
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(Stream.runCount(Scroll.users()))
        yield* settle(() => fake.requests.length >= 3)
        yield* TestClock.adjust("500 millis")
        expect(fake.opened()).toBe(1)
        yield* TestClock.adjust("2 seconds")
        expect(yield* Fiber.join(fiber)).toBe(250)
        expect(fake.opened()).toBe(2)
      }).pipe(Effect.provide(fake.layer))
    })

    it.effect("with Schedule.stop, the error reaches the consumer after the records already emitted", () => {
      const fake = makeFake({ records: 250, scrollParam, fault: once(at(1, 2), RESTART_500) })
      return Effect.gen(function*() {
        const out = Chunk.toReadonlyArray(yield* Stream.runCollect(Stream.either(Scroll.users({ restart: Schedule.stop }))))
        expect(out.length).toBe(201)
        expect(out.slice(0, 200).every(Either.isRight)).toBe(true)
        const last = out[200]
        expect(Either.isLeft(last) && last.left._tag).toBe("RestartRequired")
        expect(fake.opened()).toBe(1)
      }).pipe(Effect.provide(fake.layer))
    })

    it.effect("dedupe (the default) emits each record once across a restart", () => {
      const fake = makeFake({ records: 250, scrollParam, fault: once(at(1, 2), RESTART_500) })
      return Effect.gen(function*() {
        const users = yield* Stream.runCollect(Scroll.users({ restart: Schedule.recurs(1) }))
        expect(users.length).toBe(250)
        expect(new Set(ids(users)).size).toBe(250)
        expect(fake.opened()).toBe(2)
        // The second scroll from its first page.
        expect(fake.requests.map(asked)).toEqual(["1:0", "1:1", "1:2", "2:0", "2:1", "2:2", "2:3"])
      }).pipe(Effect.provide(fake.layer))
    })

    it.effect("without dedupe a restart re-emits from the first record", () => {
      const fake = makeFake({ records: 250, scrollParam, fault: once(at(1, 2), RESTART_500) })
      return Effect.gen(function*() {
        const users = yield* Stream.runCollect(Scroll.users({ restart: Schedule.recurs(1), dedupe: false }))
        expect(users.length).toBe(450)
        expect(ids(users).slice(200, 300)).toEqual(ids(users).slice(0, 100))
      }).pipe(Effect.provide(fake.layer))
    })

    it.effect("an expired scroll_param starts the scroll over", () => {
      const fake = makeFake({
        records: 250,
        scrollParam,
        fault: once(at(1, 2), () => errorList(404, "not_found", "scroll parameter not found"))
      })
      return Effect.gen(function*() {
        const users = yield* Stream.runCollect(Scroll.users({ restart: Schedule.recurs(1) }))
        expect(new Set(ids(users)).size).toBe(250)
        expect(fake.opened()).toBe(2)
      }).pipe(Effect.provide(fake.layer))
    })

    it.effect("a page whose connection could not be made is sent again with its scroll_param, without starting over", () => {
      let refused = 0
      const fake = makeFake({ records: 250, scrollParam, refuseConnection: (seen) => at(1, 1)(seen) && refused++ < 2 })
      return Effect.gen(function*() {
        const events: Array<Progress.ProgressEvent> = []
        const fiber = yield* Stream.runCollect(Scroll.users({ restart: Schedule.stop, prefetch: 0 })).pipe(
          Effect.provideService(Progress.Progress, { report: (event) => Effect.sync(() => events.push(event)) }),
          Effect.fork
        )
        // Refused twice: sent again half a second on, then a second on (each a `connect` wait).
        yield* settle(() => refused === 1)
        yield* TestClock.adjust("500 millis")
        yield* settle(() => refused === 2)
        yield* TestClock.adjust("1 second")
        const users = yield* Fiber.join(fiber)
        expect(ids(users)).toEqual(Array.from({ length: 250 }, (_, i) => user(i).id))
        expect(fake.opened()).toBe(1)
        // The same request three times: the scroll_param it carried was never used.
        const second = fake.requests.filter(at(1, 1)).map(paramOf)
        expect(second).toHaveLength(3)
        expect(new Set(second).size).toBe(1)
        expect(events.filter((event) => event._tag === "Waiting").map((event) => event._tag === "Waiting" && event.reason)).toEqual([
          "connect",
          "connect"
        ])
      }).pipe(Effect.provide(fake.layer))
    })

    it.effect("an error that a restart cannot fix is not retried", () => {
      const fake = makeFake({
        scrollParam,
        fault: (seen) => at(1, 1)(seen) ? errorList(401, "unauthorized", "Access Token Invalid") : undefined
      })
      return Effect.gen(function*() {
        const exit = yield* Effect.exit(Stream.runCollect(Scroll.users({ restart: Schedule.recurs(5) })))
        expect(Option.map(failureOf(exit), (e) => e._tag)).toEqual(Option.some("Unauthorized"))
        expect(fake.opened()).toBe(1)
      }).pipe(Effect.provide(fake.layer))
    })

    it.effect("a server that serves the second page again and again under its scroll_param gets InvalidResponse", () =>
      Effect.gen(function*() {
        // Page 1 (0-based) as served, with its own scroll_param: `s1-2` rotating, `s1` stable.
        const second = { type: "user.list", users: Array.from({ length: 100 }, (_, k) => user(100 + k)) }
        const scrollParamOfSecond = scrollParam === "stable" ? "s1" : "s1-2"
        for (const prefetch of [0, 1]) {
          const fake = makeFake({
            records: 500,
            scrollParam,
            fault: (seen) => (seen.page ?? 0) >= 2 ? json({ ...second, scroll_param: scrollParamOfSecond }) : undefined
          })
          const out = yield* Stream.runCollect(Stream.either(Scroll.users({ prefetch }))).pipe(Effect.provide(fake.layer))
          // The two pages before the loop came through, then the loop's sign: the same page under the same scroll_param.
          expect(out.length).toBe(201)
          const last = Chunk.unsafeLast(out)
          expect(Either.isLeft(last) && last.left._tag).toBe("InvalidResponse")
          // Fetching ahead, one more request may have gone out while the repeated page was parsed, let go with it.
          expect(fake.requests.length).toBeGreaterThanOrEqual(3)
          expect(fake.requests.length).toBeLessThanOrEqual(prefetch === 0 ? 3 : 4)
        }
      }))
  })
}

describe("another scroll open in the workspace", () => {
  const twice = () => {
    let answered = 0
    return (seen: Seen) =>
      paramOf(seen) === null && answered++ < 2 ? errorList(400, "scroll_exists", "scroll already exists for this workspace") : undefined
  }

  it.effect("by default waits every 10 seconds until it is gone", () => {
    const fake = makeFake({ records: 250, fault: twice() })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(Stream.runCount(Scroll.users()))
      yield* settle(() => fake.requests.length >= 1)
      yield* TestClock.adjust("10 seconds")
      expect(fake.requests.length).toBe(2)
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("10 seconds")
      expect(yield* Fiber.join(fiber)).toBe(250)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("with Schedule.stop fails with ConcurrentScroll", () => {
    const fake = makeFake({ fault: twice() })
    return Effect.gen(function*() {
      const exit = yield* Effect.exit(Stream.runCollect(Scroll.users({ concurrentScroll: Schedule.stop })))
      expect(Option.map(failureOf(exit), (e) => e._tag)).toEqual(Option.some("ConcurrentScroll"))
      // Nothing says whose scroll it is: the advice is for another app's.
      expect(Option.map(failureOf(exit), (e) => e.message)).toEqual(Option.some(expect.stringMatching(/^Another scroll .* Another app may be scrolling/)))
    }).pipe(Effect.provide(fake.layer))
  })
})

describe("a misbehaving server", () => {
  it.effect("that hands back the same scroll_param and page forever gets InvalidResponse, not an endless loop", () =>
    Effect.gen(function*() {
      for (const prefetch of [0, 1]) {
        const page = json({ type: "user.list", users: [user(1), user(2)], scroll_param: "same" })
        const fake = makeFake({ fault: () => page.clone() })
        const exit = yield* Effect.exit(Stream.runCollect(Scroll.users({ prefetch }))).pipe(Effect.provide(fake.layer))
        expect(Option.map(failureOf(exit), (e) => e._tag)).toEqual(Option.some("InvalidResponse"))
        // The second page is the loop's sign. Fetching ahead, a third request went out while it was parsed (the
        // caller resumes only once the request sent ahead is written), and was let go with the failure.
        expect(fake.requests.length).toBe(prefetch === 0 ? 2 : 3)
      }
    }))

  it.effect("that keeps one scroll_param but moves on through the records is followed to the end", () => {
    let request = 0
    const fake = makeFake({
      fault: () => {
        const from = request++ * 10
        const users = from < 30 ? Array.from({ length: 10 }, (_, k) => user(from + k)) : []
        return json({ type: "user.list", users, scroll_param: "same" })
      }
    })
    return Effect.gen(function*() {
      expect(yield* Stream.runCount(Scroll.users())).toBe(30)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("that sends the same records again under a new scroll_param is followed too: only both together are a loop", () => {
    let request = 0
    const fake = makeFake({
      fault: () => {
        const n = request++
        const users = n < 3 ? [user(1), user(2)] : []
        return json({ type: "user.list", users, scroll_param: `p${n}` })
      }
    })
    return Effect.gen(function*() {
      expect(ids(yield* Stream.runCollect(Scroll.users()))).toEqual([user(1).id, user(2).id])
      expect(fake.requests.length).toBe(4)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("that sends records without a scroll_param gets InvalidResponse", () => {
    const fake = makeFake({ fault: () => json({ type: "user.list", users: [user(1)] }) })
    return Effect.gen(function*() {
      const exit = yield* Effect.exit(Stream.runCollect(Scroll.users()))
      const error = failureOf(exit)
      expect(Option.map(error, (e) => e._tag)).toEqual(Option.some("InvalidResponse"))
      expect(Option.map(error, (e) => e.message.includes("scroll_param"))).toEqual(Option.some(true))
    }).pipe(Effect.provide(fake.layer))
  })
})

for (const scrollParam of scrollParamModes) {
  describe(`fetching ahead, ${scrollParam} scroll_param`, () => {
    /** The requests sent while the consumer holds page 1: once there are `expected`, and then no more come. */
    const stallOnFirstPage = (prefetch: number, expected: number) => {
      const fake = makeFake({ records: 1000, scrollParam })
      return Effect.gen(function*() {
        const gate = yield* Deferred.make<void>()
        const fiber = yield* Scroll.pages("users", { prefetch }).pipe(
          Stream.mapEffect((page) => page.page === 1 ? Deferred.await(gate) : Effect.void),
          Stream.runDrain,
          Effect.fork
        )
        yield* Settle.until(`${expected} requests`, () => fake.requests.length >= expected)
        const whileStalled = yield* Settle.untilStill(() => fake.requests.length)
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(fiber)
        return whileStalled
      }).pipe(Effect.provide(fake.layer))
    }

    it.effect("fetches the next pages while the consumer works on one", () =>
      Effect.gen(function*() {
        // The consumer holds page 1; page 2 waits in the buffer, page 3 in the producer's hand to enter it, and the
        // request for page 4 went out as soon as page 3's body was in, ahead of its parse.
        expect(yield* stallOnFirstPage(1, 4)).toBe(4)
      }))

    it.effect("with prefetch 0 fetches only when the consumer asks", () =>
      Effect.gen(function*() {
        expect(yield* stallOnFirstPage(0, 1)).toBe(1)
      }))

    /**
     * Page 2 holds a record that fails validation, behind a scroll_param that is plain to read; the pages come
     * compressed in `contentCoding`, when given.
     */
    const withInvalidSecondPage = (contentCoding?: Coding) =>
      makeFake({
        records: 1000,
        scrollParam,
        contentCoding,
        fault: (seen) => {
          if (!at(1, 1)(seen)) return undefined
          const body = {
            type: "user.list",
            users: [user(100), { ...user(101), id: 101 }],
            scroll_param: scrollParam === "stable" ? "s1" : "s1-2"
          }
          return contentCoding === undefined ? json(body) : compressedJson(body, contentCoding)
        }
      })

    /**
     * The client over `fake`, except that a request `hangs` picks never answers and counts its interruption;
     * `readAhead` replaces what is read from a body ahead of its parse.
     */
    const withHangingRequest = (
      fake: Fake,
      hangs: (request: IntercomClient.PageRequest) => boolean,
      readAhead?: () => string | undefined
    ) => {
      let dropped = 0
      const layer = Layer.effect(
        IntercomClient.IntercomClient,
        Effect.map(IntercomClient.IntercomClient, (client): IntercomClient.Service => {
          const internals = internalsOf(client)
          const scrollPage: IntercomClient.Service["scrollPage"] = (resource, request) => client.scrollPage(resource, request)
          attach(scrollPage, {
            ...internals,
            receivePage: (resource, request) =>
              hangs(request)
                ? Effect.onInterrupt(Effect.never, () => Effect.sync(() => dropped++))
                : readAhead === undefined
                ? internals.receivePage(resource, request)
                : Effect.map(internals.receivePage(resource, request), (received) => ({ ...received, scrollParamAhead: readAhead }))
          })
          return { baseUrl: client.baseUrl, scrollPage }
        })
      ).pipe(Layer.provide(fake.layer))
      return { layer, dropped: () => dropped }
    }

    const invalidSecondPage = (prefetch: number, contentCoding?: Coding) => {
      const fake = withInvalidSecondPage(contentCoding)
      return Effect.gen(function*() {
        const supervisor = yield* Supervisor.track
        const exit = yield* Effect.exit(Stream.runDrain(Scroll.users({ prefetch })).pipe(Effect.supervised(supervisor)))
        expect(Option.map(failureOf(exit), (e) => e._tag)).toEqual(Option.some("InvalidResponse"))
        // Whatever went out ahead was let go of with the scroll.
        expect(yield* supervisor.value).toEqual([])
        return fake.requests.map(asked)
      }).pipe(Effect.provide(fake.layer))
    }

    it.effect("sends the next request as soon as a page's body is in, while the page is parsed and validated", () =>
      Effect.gen(function*() {
        // Page 3 was asked for before page 2 turned out invalid.
        expect(yield* invalidSecondPage(1)).toEqual(["1:0", "1:1", "1:2"])
        expect(yield* invalidSecondPage(0)).toEqual(["1:0", "1:1"])
      }))

    for (const coding of ["gzip", "deflate", "br"] as const) {
      it.effect(`reads the scroll_param ahead from the decoded bytes of a page compressed in ${coding}`, () =>
        Effect.gen(function*() {
          expect(yield* invalidSecondPage(1, coding)).toEqual(["1:0", "1:1", "1:2"])
        }))
    }

    it.effect("reads ahead only a successful response: an error whose body looks like a page sends nothing ahead", () => {
      const fake = makeFake({
        records: 250,
        scrollParam,
        fault: once(at(1, 1), () => json({ type: "user.list", users: [user(100)], scroll_param: "from-an-error" }, 503))
      })
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(Stream.runCount(Scroll.users()))
        yield* TestClock.adjust("1 minute")
        expect(yield* Fiber.join(fiber)).toBe(250)
        // The 503 restarted the scroll, and no request went out with the scroll_param in its body.
        expect(fake.opened()).toBe(2)
        expect(fake.requests.map(paramOf)).not.toContain("from-an-error")
      }).pipe(Effect.provide(fake.layer))
    })

    it.effect("fetches ahead where there is no setImmediate (a browser), waiting on setTimeout instead", () => {
      const fake = makeFake({ records: 250, scrollParam })
      const original = globalThis.setImmediate
      return Effect.gen(function*() {
        Object.assign(globalThis, { setImmediate: undefined })
        const users = yield* Stream.runCollect(Scroll.users())
        expect(ids(users)).toEqual(Array.from({ length: 250 }, (_, i) => user(i).id))
        expect(fake.requests.map(asked)).toEqual(["1:0", "1:1", "1:2", "1:3"])
      }).pipe(Effect.ensuring(Effect.sync(() => Object.assign(globalThis, { setImmediate: original }))), Effect.provide(fake.layer))
    })

    it.effect("drops a request sent ahead with a scroll_param the parsed page does not confirm, before the page goes on", () => {
      const fake = makeFake({ records: 250, scrollParam })
      // A client that misreads every body ahead of the parse; a request sent with the misread param never answers.
      const misreading = withHangingRequest(fake, (request) => request.scrollParam === "misread", () => "misread")
      return Effect.gen(function*() {
        const droppedWhenEmitted: Array<number> = []
        const pages = yield* Stream.runCollect(
          Scroll.pages("users").pipe(Stream.tap(() => Effect.sync(() => droppedWhenEmitted.push(misreading.dropped()))))
        )
        expect(Chunk.toReadonlyArray(pages).flatMap((page) => page.records.map((r) => r.id)))
          .toEqual(Array.from({ length: 250 }, (_, i) => user(i).id))
        // The page's own scroll_param was followed, and each misread request was dropped before its page went on.
        expect(fake.requests.map(asked)).toEqual(["1:0", "1:1", "1:2", "1:3"])
        const [, second = 0, third = 0] = droppedWhenEmitted
        expect(second).toBeGreaterThanOrEqual(1)
        expect(third).toBeGreaterThanOrEqual(2)
        expect(misreading.dropped()).toBe(3)
      }).pipe(Effect.provide(misreading.layer))
    })

    it.effect("lets go of a request sent ahead when its page fails, before the failure goes on", () => {
      // Page 2 fails validation; the request sent ahead for page 3 never answers.
      const hangingThirdPage = withHangingRequest(withInvalidSecondPage(), (request) => request.page === 3)
      return Effect.gen(function*() {
        const seenByTheHandler = yield* Scroll.pages("users").pipe(
          Stream.map(() => Option.none<string>()),
          Stream.catchAll((error) => Stream.succeed(Option.some(`${error._tag} with ${hangingThirdPage.dropped()} dropped`))),
          Stream.runCollect
        )
        expect(Chunk.toReadonlyArray(seenByTheHandler)).toEqual([Option.none(), Option.some("InvalidResponse with 1 dropped")])
      }).pipe(Effect.provide(hangingThirdPage.layer))
    })
  })
}

it.effect("refuses a prefetch that is not a whole number", () =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(Stream.runDrain(Scroll.users({ prefetch: -1 })))
    expect(Exit.isFailure(exit) && Cause.pretty(exit.cause)).toContain("prefetch")
  }).pipe(Effect.provide(makeFake().layer)))

describe("one scroll per workspace in process", () => {
  it.effect("two streams over the same workspace run one after the other", () => {
    const fake = makeFake({ records: 250 })
    return Effect.gen(function*() {
      const counts = yield* Effect.all([Stream.runCount(Scroll.users()), Stream.runCount(Scroll.users())], {
        concurrency: "unbounded"
      })
      expect(counts).toEqual([250, 250])
      // The second scroll opened only after the first reached its empty page.
      expect(fake.requests.map(asked)).toEqual(["1:0", "1:1", "1:2", "1:3", "2:0", "2:1", "2:2", "2:3"])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("merged (Stream.merge), two streams over the same workspace run one after the other too", () => {
    // A merge closes its sides' scopes only when it ends: the first gives the workspace back at its end, not then.
    const fake = makeFake({ records: 250 })
    return Effect.gen(function*() {
      const merged = yield* Stream.merge(Scroll.users(), Scroll.users()).pipe(Stream.runCount)
      expect(merged).toBe(500)
      expect(fake.requests.map(asked)).toEqual(["1:0", "1:1", "1:2", "1:3", "2:0", "2:1", "2:2", "2:3"])
      expect(yield* isWorkspaceLocked).toBe(false)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("two workspaces scroll at the same time", () => {
    const first = makeFake({ records: 250, token: "tok_workspace_a" })
    const second = makeFake({ records: 250, token: "tok_workspace_b" })
    return Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const stalled = Scroll.users().pipe(Stream.tap(() => Deferred.await(gate)), Stream.runDrain, Effect.provide(first.layer))
      const fiber = yield* Effect.fork(stalled)
      yield* settle(() => first.requests.length >= 1)
      expect(yield* Stream.runCount(Scroll.users()).pipe(Effect.provide(second.layer))).toBe(250)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(fiber)
    })
  })

  it.effect("an early stop releases the workspace", () => {
    const fake = makeFake({ records: 250 })
    return Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const fiber = yield* Scroll.users().pipe(Stream.tap(() => Deferred.await(gate)), Stream.take(5), Stream.runDrain, Effect.fork)
      yield* settle(() => fake.requests.length >= 1)
      expect(yield* isWorkspaceLocked).toBe(true)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(fiber)
      expect(yield* isWorkspaceLocked).toBe(false)
      expect(yield* Stream.runCount(Scroll.users())).toBe(250)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("one started from within another (its flatMap, its mapEffect, a fiber forked there) is ConcurrentScroll at once", () => {
    // Waiting would be forever: the open scroll goes on only once the one started within it has.
    const fake = makeFake({ records: 250 })
    const nested = [
      Scroll.users().pipe(Stream.take(1), Stream.flatMap(() => Scroll.users()), Stream.runDrain),
      Scroll.users().pipe(Stream.mapEffect(() => Stream.runCount(Scroll.users())), Stream.runDrain),
      Scroll.users().pipe(
        Stream.mapEffect(() => Effect.flatMap(Effect.fork(Stream.runCount(Scroll.users())), Fiber.join), { concurrency: 2 }),
        Stream.runDrain
      )
    ]
    return Effect.gen(function*() {
      for (const program of nested) {
        const fiber = yield* Effect.fork(Effect.flip(program))
        yield* settle(() => false)
        const error = yield* Fiber.join(fiber).pipe(Effect.timeoutFail({ duration: 0, onTimeout: () => "still waiting" }))
        expect(error).toMatchObject({ _tag: "ConcurrentScroll", resource: "users", nested: true })
        expect(error instanceof Error && error.message).toContain("started from within another scroll of this workspace")
        expect(yield* isWorkspaceLocked).toBe(false)
      }
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("one after another in a stream (Stream.concat), or forked (a daemon) within one to run after it, is not nested", () => {
    const fake = makeFake({ records: 250 })
    return Effect.gen(function*() {
      expect(yield* Stream.runCount(Stream.concat(Scroll.users(), Scroll.users()))).toBe(500)
      const gate = yield* Deferred.make<void>()
      const later = yield* Scroll.users().pipe(
        Stream.take(1),
        Stream.mapEffect(() => Effect.forkDaemon(Effect.zipRight(Deferred.await(gate), Stream.runCount(Scroll.users())))),
        Stream.runHead,
        Effect.map(Option.getOrThrow)
      )
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(later)).toBe(250)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("interrupting a scroll, or one waiting for the workspace, releases it", () => {
    const fake = makeFake({ records: 250 })
    return Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const holder = yield* Scroll.users().pipe(Stream.tap(() => Deferred.await(gate)), Stream.runDrain, Effect.fork)
      yield* settle(() => fake.requests.length >= 1)
      const waiter = yield* Effect.fork(Stream.runDrain(Scroll.users()))
      yield* settle(() => false)
      expect(fake.opened()).toBe(1)
      yield* Fiber.interrupt(waiter)
      yield* Fiber.interrupt(holder)
      expect(yield* isWorkspaceLocked).toBe(false)
      expect(yield* Stream.runCount(Scroll.users())).toBe(250)
    }).pipe(Effect.provide(fake.layer))
  })
})

describe("a long wait for a scroll of the workspace in this process", () => {
  it.effect("is said in a warning after a minute, once: two scrolls of one workspace in Stream.zip wait for each other", () => {
    const fake = makeFake({ records: 250 })
    const warnings: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning") warnings.push(String(message))
    })
    return Effect.gen(function*() {
      const zipped = yield* Effect.fork(Stream.runDrain(Stream.zip(Scroll.users(), Scroll.users())))
      yield* settle(() => fake.requests.length >= 1)
      yield* TestClock.adjust("59 seconds")
      expect(warnings).toEqual([])
      yield* TestClock.adjust("2 seconds")
      yield* settle(() => warnings.length > 0)
      yield* TestClock.adjust("5 minutes")
      expect(warnings).toEqual([
        "The users scroll has waited 1m for another scroll of its workspace in this process to end (one open scroll per workspace). If that scroll goes on only once this one does, as two scrolls of one workspace in Stream.zip do, they wait for each other for ever: run them one after the other."
      ])
      // Still waiting, the first scroll stuck at its first page: only the warning moved.
      expect(fake.opened()).toBe(1)
      yield* Fiber.interrupt(zipped)
    }).pipe(Effect.provide(fake.layer), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  })

  it.effect("is not said of a wait that ended within the minute, however long the scroll then takes", () => {
    const fake = makeFake({ records: 250 })
    const warnings: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning" && String(message).includes("has waited")) warnings.push(String(message))
    })
    return Effect.gen(function*() {
      const holder = yield* Effect.fork(Stream.runCount(Scroll.users()))
      yield* settle(() => fake.requests.length >= 1)
      // The second waits for the first, then holds its first record for as long as the clock goes.
      const gate = yield* Deferred.make<void>()
      const waiter = yield* Scroll.users().pipe(Stream.tap(() => Deferred.await(gate)), Stream.runDrain, Effect.fork)
      expect(yield* Fiber.join(holder)).toBe(250)
      yield* settle(() => fake.opened() === 2)
      yield* TestClock.adjust("5 minutes")
      expect(warnings).toEqual([])
      yield* Fiber.interrupt(waiter)
    }).pipe(Effect.provide(fake.layer), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  })
})

describe("the workspace locks of a long-running process", () => {
  // A service that makes a client per request, with the token the request carries, meets many tokens over its life.
  it.effect("keeps no lock for a workspace once its scrolls are over, whether they ended, failed or were refused", () =>
    Effect.gen(function*() {
      const before = WorkspaceLock.locks.size
      for (let i = 0; i < 20; i++) {
        const refused = makeFake({ token: `tok_refused_${i}`, fault: () => errorList(401, "unauthorized", "Access Token Invalid") })
        const failure = yield* Stream.runDrain(Scroll.users()).pipe(Effect.flip, Effect.provide(refused.layer))
        expect(failure._tag).toBe("Unauthorized")
        const served = makeFake({ token: `tok_served_${i}`, records: 150 })
        expect(yield* Stream.runCount(Scroll.users()).pipe(Effect.provide(served.layer))).toBe(150)
      }
      expect(WorkspaceLock.locks.size).toBe(before)
    }))

  it.effect("remembers a scroll it left open as long as it can matter, then lets the workspace's lock go", () =>
    Effect.gen(function*() {
      const left = makeFake({ token: "tok_left_open", records: 250 })
      const before = WorkspaceLock.locks.size
      expect(yield* Stream.runCount(Scroll.users().pipe(Stream.take(1))).pipe(Effect.provide(left.layer))).toBe(1)
      // The next scroll of the workspace must know the one open at Intercom for its own.
      expect(WorkspaceLock.locks.size).toBe(before + 1)
      yield* TestClock.adjust("2 minutes")
      const other = makeFake({ token: "tok_other_workspace", records: 10 })
      expect(yield* Stream.runCount(Scroll.users()).pipe(Effect.provide(other.layer))).toBe(10)
      expect(WorkspaceLock.locks.size).toBe(before)
    }))

  it.effect("two clients of one workspace take turns even when its lock was let go between them", () => {
    const first = makeFake({ token: "tok_turns", records: 250 })
    const second = makeFake({ token: "tok_turns", records: 250 })
    return Effect.gen(function*() {
      const [a, b] = yield* Effect.all([Layer.build(first.layer), Layer.build(second.layer)])
      expect(yield* Stream.runCount(Scroll.users()).pipe(Effect.provide(a))).toBe(250)
      const gate = yield* Deferred.make<void>()
      const holder = yield* Scroll.users().pipe(Stream.tap(() => Deferred.await(gate)), Stream.runDrain, Effect.provide(a), Effect.fork)
      yield* settle(() => first.requests.length >= 5)
      const waiter = yield* Stream.runCount(Scroll.users()).pipe(Effect.provide(b), Effect.fork)
      yield* settle(() => false)
      expect(second.requests.length).toBe(0)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(holder)
      expect(yield* Fiber.join(waiter)).toBe(250)
    }).pipe(Effect.scoped)
  })
})

describe("observability", () => {
  it.effect("a span per scroll and per page, with resource, page, attempt and records", () => {
    const fake = makeFake({ records: 150, fault: once(at(1, 1), RESTART_500) })
    return Effect.gen(function*() {
      const { spans, tracer } = yield* recordingTracer
      yield* Stream.runDrain(Scroll.users({ restart: Schedule.recurs(1) })).pipe(Effect.withTracer(tracer))
      expect(spans.map((s) => s.name)).toContain("Scroll.users")
      expect(spans.find((s) => s.name === "Scroll.pages")?.attributes.get("resource")).toBe("users")
      const pages = spans.filter((s) => s.name === "Scroll.page").map((s) => Object.fromEntries(s.attributes))
      expect(pages).toContainEqual({ resource: "users", page: 1, attempt: 1, records: 100 })
      expect(pages).toContainEqual({ resource: "users", page: 2, attempt: 2, records: 50 })
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a request sent ahead is traced under the scroll's span, not under the page parsed when it went out", () => {
    const fake = makeFake({ records: 250 })
    return Effect.gen(function*() {
      const { spans, tracer } = yield* recordingTracer
      yield* Stream.runDrain(Scroll.users()).pipe(Effect.withTracer(tracer))
      const parentOf = (span: Tracer.Span) =>
        Option.match(span.parent, {
          onNone: () => undefined,
          onSome: (parent) => {
            const found = spans.find((candidate) => candidate.spanId === parent.spanId)
            return found && [found.name, found.attributes.get("page")]
          }
        })
      const requests = spans.filter((span) => span.name.startsWith("IntercomClient."))
        .map((span) => [span.name, span.attributes.get("page"), parentOf(span)])
      // The first page opens the scroll, and the second is asked for once the first is parsed: each in its page's span.
      // The third and the empty fourth went out while the page before them was parsed.
      expect(requests).toEqual([
        ["IntercomClient.scrollPage", 1, ["Scroll.page", 1]],
        ["IntercomClient.receivePage", 2, ["Scroll.page", 2]],
        ["IntercomClient.receivePage", 3, ["Scroll.pages", undefined]],
        ["IntercomClient.receivePage", 4, ["Scroll.pages", undefined]]
      ])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a wait is a span of its own: a 429's under the request it holds back, a restart's under the scroll", () => {
    const tooMany = () =>
      new Response(JSON.stringify({ type: "error.list", errors: [{ code: "rate_limit_exceeded", message: "Exceeded" }] }), {
        status: 429,
        // The window resets 10 s after the epoch, where the TestClock starts.
        headers: { "content-type": "application/json", "x-ratelimit-limit": "100", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "10" }
      })
    const rateLimited = once(at(1, 1), tooMany)
    const restart = once(at(1, 2), RESTART_500)
    const fake = makeFake({ records: 250, fault: (seen) => rateLimited(seen) ?? restart(seen) })
    return Effect.gen(function*() {
      const { spans, tracer } = yield* recordingTracer
      const run = yield* Stream.runDrain(Scroll.users({ restart: Schedule.addDelay(Schedule.recurs(1), () => "5 seconds") })).pipe(
        Effect.withTracer(tracer),
        Effect.fork
      )
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(run)
      const waits = spans.filter((span) => span.name === "Scroll.wait").map((span) => ({
        reason: span.attributes.get("reason"),
        under: Option.match(span.parent, {
          onNone: () => undefined,
          onSome: (parent) => spans.find((candidate) => candidate.spanId === parent.spanId)?.name
        }),
        ended: span.status._tag === "Ended"
      }))
      expect(waits).toEqual([
        { reason: "rate-limit", under: "IntercomClient.receivePage", ended: true },
        { reason: "restart", under: "Scroll.pages", ended: true }
      ])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("metrics count records, pages and restarts", () => {
    const fake = makeFake({ records: 150, fault: once(at(1, 1), RESTART_500) })
    const value = (metric: Metric.Metric.Counter<number>) => Metric.value(ScrollMetrics.forResource(metric, "users"))
    return Effect.gen(function*() {
      const before = yield* Effect.all([value(ScrollMetrics.records), value(ScrollMetrics.pages), value(ScrollMetrics.restarts)])
      yield* Stream.runDrain(Scroll.users({ restart: Schedule.recurs(1) }))
      const after = yield* Effect.all([value(ScrollMetrics.records), value(ScrollMetrics.pages), value(ScrollMetrics.restarts)])
      expect(after.map((state, i) => state.count - before[i].count)).toEqual([150, 3, 1])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("logs each restart with its cause", () => {
    const fake = makeFake({ records: 150, fault: once(at(1, 1), RESTART_500) })
    const logs: Array<{ message: unknown; annotations: Record<string, unknown> }> = []
    const capture = Logger.make(({ annotations, message }) => {
      logs.push({ message, annotations: Object.fromEntries(annotations) })
    })
    return Effect.gen(function*() {
      yield* Stream.runDrain(Scroll.users({ restart: Schedule.recurs(1) }))
      expect(logs).toHaveLength(1)
      expect(String(logs[0].message)).toContain("Restarting the users scroll")
      expect(String(logs[0].annotations.cause)).toContain("HTTP 500")
      expect(logs[0].annotations.attempt).toBe(2)
    }).pipe(Effect.provide(Layer.merge(fake.layer, Logger.replace(Logger.defaultLogger, capture))))
  })

  it.effect("reports progress a tracker can show: records, pages, restarts, waits", () => {
    const fake = makeFake({ records: 150, fault: once(at(1, 1), RESTART_500) })
    return Effect.gen(function*() {
      const tracker = yield* Progress.makeTracker
      const waits: Array<string> = []
      yield* Scroll.users({ restart: Schedule.spaced("3 seconds").pipe(Schedule.intersect(Schedule.recurs(1))) }).pipe(
        Stream.runDrain,
        Effect.provideService(Progress.Progress, {
          report: (event) =>
            Effect.zipRight(
              event._tag === "Waiting" ? Effect.sync(() => waits.push(event.reason)) : Effect.void,
              tracker.reporter.report(event)
            )
        }),
        Effect.fork,
        Effect.tap(() => TestClock.adjust("3 seconds")),
        Effect.flatMap(Fiber.join)
      )
      const snapshot = yield* tracker.snapshot
      expect(snapshot).toEqual({ records: 150, pages: 3, restarts: 1, rateLimitWaits: 0, waiting: undefined })
      expect(waits).toContain("restart")
    }).pipe(Effect.provide(fake.layer))
  })
})

describe("the scroll's end, said to Progress", () => {
  /** Runs `effect` with every event it reports kept, in order. */
  const reported = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.gen(function*() {
      const events: Array<Progress.ProgressEvent> = []
      const exit = yield* effect.pipe(
        Effect.provideService(Progress.Progress, { report: (event) => Effect.sync(() => events.push(event)) }),
        Effect.exit
      )
      return { exit, events, ends: events.filter((event) => event._tag === "End") }
    })

  it.effect("once, at the empty page, after the last page went out", () => {
    const fake = makeFake({ records: 250 })
    return Effect.gen(function*() {
      const { events, ends, exit } = yield* reported(Stream.runDrain(Scroll.users()))
      expect(exit).toEqual(Exit.void)
      expect(ends).toEqual([Progress.ProgressEvent.End({ resource: "users" })])
      expect(events.at(-1)?._tag).toBe("End")
      expect(events.filter((event) => event._tag === "Page")).toHaveLength(3)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("not when the consumer stops early (Stream.take): the scroll did not reach its end", () => {
    const fake = makeFake({ records: 250 })
    return Effect.gen(function*() {
      const { ends, exit } = yield* reported(Stream.runDrain(Scroll.users().pipe(Stream.take(10))))
      expect(exit).toEqual(Exit.void)
      expect(ends).toEqual([])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("not on a failure, even one at the empty page after every record went out", () => {
    // Pages 0–2 hold the 250 users; the request for the empty page (3) fails, and nothing starts over.
    const fake = makeFake({ records: 250, fault: once(at(1, 3), RESTART_500) })
    return Effect.gen(function*() {
      const { ends, events, exit } = yield* reported(Stream.runDrain(Scroll.users({ restart: Schedule.stop })))
      expect(Option.map(failureOf(exit), (error) => error._tag)).toEqual(Option.some("RestartRequired"))
      expect(events.filter((event) => event._tag === "Page")).toHaveLength(3)
      expect(ends).toEqual([])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("not on an interruption", () => {
    const fake = makeFake({ records: 250 })
    return Effect.gen(function*() {
      const events: Array<Progress.ProgressEvent> = []
      const exit = yield* Stream.runDrain(Scroll.users()).pipe(
        Effect.provideService(Progress.Progress, {
          // Interrupted as its second page goes out, the scroll's fiber runs no further.
          report: (event) =>
            Effect.zipRight(
              Effect.sync(() => events.push(event)),
              event._tag === "Page" && event.page === 2 ? Effect.interrupt : Effect.void
            )
        }),
        Effect.exit
      )
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(events.filter((event) => event._tag === "End")).toEqual([])
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("after a restart, once, when the restarted scroll ends", () => {
    const fake = makeFake({ records: 250, fault: once(at(1, 2), RESTART_500) })
    return Effect.gen(function*() {
      const events: Array<Progress.ProgressEvent> = []
      const restart = Schedule.spaced("3 seconds").pipe(Schedule.intersect(Schedule.recurs(1)))
      const fiber = yield* Stream.runDrain(Scroll.users({ restart })).pipe(
        Effect.provideService(Progress.Progress, { report: (event) => Effect.sync(() => events.push(event)) }),
        Effect.fork
      )
      // The clock moves on a second at a time, through the restart's back-off, until the scroll is done.
      yield* ClockSteps.runToEnd({ step: "1 second", maxSteps: 10 })(fiber)
      expect(fake.opened()).toBe(2)
      expect(events.filter((event) => event._tag === "End")).toEqual([Progress.ProgressEvent.End({ resource: "users" })])
      // After the restart and every page of the second try.
      expect(events.map((event) => event._tag).filter((tag) => tag === "Restart" || tag === "End")).toEqual(["Restart", "End"])
      expect(events.at(-1)?._tag).toBe("End")
    }).pipe(Effect.provide(fake.layer))
  })
})
