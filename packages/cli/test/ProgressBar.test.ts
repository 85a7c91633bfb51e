import { describe, expect, it } from "@effect/vitest"
import { Progress } from "@intercom-scroll/core"
import { Clock, Effect, TestClock } from "effect"
import * as ProgressBar from "../src/internal/progressBar.js"
import { makeCapture } from "./support/capture.js"

const snapshot = (overrides: Partial<Progress.Snapshot> = {}): Progress.Snapshot => ({ ...Progress.empty, ...overrides })

describe("ProgressBar.render", () => {
  it("shows records, pages, records/s, restarts and elapsed time", () => {
    const line = ProgressBar.render("users", snapshot({ records: 12_300, pages: 123, restarts: 2 }), {
      elapsedMillis: 12_000,
      nowMillis: 0
    })
    expect(line).toBe("users: 12,300 records | 123 pages | 1,025 records/s | 2 restarts | 12.0 s")
  })

  it("speaks in the singular for one, and shows no rate before any time has passed", () => {
    const line = ProgressBar.render("leads", snapshot({ records: 1, pages: 1, restarts: 1 }), { elapsedMillis: 0, nowMillis: 0 })
    expect(line).toBe("leads: 1 record | 1 page | 0 records/s | 1 restart | 0.0 s")
  })

  it("counts down a rate-limit wait whose end is known", () => {
    const waiting = { reason: "rate-limit", untilMillis: 1_000_000 + 3_200 } as const
    const line = ProgressBar.render("users", snapshot({ waiting }), { elapsedMillis: 5_000, nowMillis: 1_000_000 })
    expect(line).toBe("users: 0 records | 0 pages | 0 records/s | 0 restarts | 5.0 s | waiting for the rate limit (4 s left)")
  })

  it("names each wait, without a countdown when its end is unknown", () => {
    const at = 1_000
    const wait = (reason: Progress.WaitReason) => ProgressBar.describeWait({ reason, untilMillis: undefined }, at)
    expect(wait("concurrent-scroll")).toBe("waiting for another scroll of the workspace to close on Intercom's side")
    expect(wait("own-scroll")).toBe(
      "waiting for this tool's own scroll of the workspace, cut short, to close on Intercom's side"
    )
    expect(wait("restart")).toBe("waiting to restart")
    expect(wait("retry")).toBe("waiting to ask for the first page again")
    expect(wait("connect")).toBe("could not connect, waiting to try again")
    expect(wait("workspace-lock")).toBe("waiting for this process's other scroll of the workspace")
    expect(ProgressBar.describeWait({ reason: "restart", untilMillis: at - 5_000 }, at)).toBe("waiting to restart (0 s left)")
  })

  it("shows how long a wait on another scroll can last at most: it ends sooner once that scroll is gone", () => {
    const at = 1_000_000
    expect(ProgressBar.describeWait({ reason: "concurrent-scroll", untilMillis: at + 112_000 }, at)).toBe(
      "waiting for another scroll of the workspace to close on Intercom's side (up to 1 min 52 s)"
    )
    expect(ProgressBar.describeWait({ reason: "own-scroll", untilMillis: at + 41_500 }, at)).toBe(
      "waiting for this tool's own scroll of the workspace, cut short, to close on Intercom's side (up to 42 s)"
    )
  })

  it("formats durations in seconds, minutes and hours", () => {
    expect(ProgressBar.formatDuration(4_249)).toBe("4.2 s")
    expect(ProgressBar.formatDuration(187_000)).toBe("3 min 07 s")
    expect(ProgressBar.formatDuration(3_725_000)).toBe("1 h 02 min")
    // Tenths cut, not rounded, as whole seconds and minutes are: under a minute never reads as 60.0 s.
    expect(ProgressBar.formatDuration(59_960)).toBe("59.9 s")
    expect(ProgressBar.formatDuration(60_000)).toBe("1 min 00 s")
    expect(ProgressBar.formatDuration(4_299)).toBe("4.2 s")
  })

  it("cuts a live line to the terminal's width, and leaves it whole when the width is unknown or zero", () => {
    expect(ProgressBar.fit("abcdefghij", 6)).toBe("abcd…")
    expect(ProgressBar.fit("abcdefghij", 20)).toBe("abcdefghij")
    expect(ProgressBar.fit("abcdefghij", undefined)).toBe("abcdefghij")
    expect(ProgressBar.fit("abcdefghij", 0)).toBe("abcdefghij")
  })

  it("summarizes records, destination, duration, pages, restarts and rate", () => {
    const line = ProgressBar.renderSummary({
      resource: "companies",
      destination: "out/companies.csv",
      records: 1,
      pages: 2,
      restarts: 1,
      rateLimitWaits: 0,
      durationMillis: 2_000
    })
    expect(line).toBe("Exported 1 company to out/companies.csv in 2.0 s: 2 pages, 1 restart, 1 records/s.")
  })

  it("counts rate-limit waits, in the line and the summary, once there are any", () => {
    const line = ProgressBar.render("users", snapshot({ records: 100, pages: 1, rateLimitWaits: 3 }), {
      elapsedMillis: 1_000,
      nowMillis: 0
    })
    expect(line).toBe("users: 100 records | 1 page | 100 records/s | 0 restarts | 3 rate-limit waits | 1.0 s")
    const summary = ProgressBar.renderSummary({
      resource: "users",
      destination: "stdout",
      records: 100,
      pages: 1,
      restarts: 0,
      rateLimitWaits: 1,
      durationMillis: 1_000
    })
    expect(summary).toBe("Exported 100 users to stdout in 1.0 s: 1 page, 0 restarts, 1 rate-limit wait, 100 records/s.")
  })
})

describe("ProgressBar.start", () => {
  const page = Progress.ProgressEvent.Page({ resource: "users", attempt: 1, page: 1, records: 100, received: 100 })

  it.effect("plain: prints a line every 5 seconds, none before", () => {
    const capture = makeCapture()
    return Effect.gen(function*() {
      const tracker = yield* ProgressBar.start("users", "plain")
      yield* tracker.reporter.report(page)
      yield* TestClock.adjust("4 seconds")
      expect(capture.stderr()).toBe("")
      yield* TestClock.adjust("1 second")
      expect(capture.stderr()).toBe("users: 100 records | 1 page | 20 records/s | 0 restarts | 5.0 s\n")
      yield* TestClock.adjust("5 seconds")
      expect(capture.stderr().split("\n")).toHaveLength(3)
    }).pipe(Effect.scoped, Effect.provide(capture.layer))
  })

  it.effect("live: redraws one line in place at once, and erases it when the scope closes", () => {
    const capture = makeCapture({ tty: true, columns: 200 })
    return Effect.gen(function*() {
      yield* Effect.scoped(Effect.gen(function*() {
        yield* ProgressBar.start("users", "live")
        yield* TestClock.adjust("0 millis")
        expect(capture.stderr()).toBe("\r\x1b[2Kusers: 0 records | 0 pages | 0 records/s | 0 restarts | 0.0 s")
      }))
      expect(capture.stderr().endsWith("\r\x1b[2K")).toBe(true)
      const drawn = capture.stderr().length
      yield* TestClock.adjust("1 second")
      expect(capture.stderr()).toHaveLength(drawn)
    }).pipe(Effect.provide(capture.layer))
  })

  it.effect("prints each restart and its cause on a line of its own, and counts it", () => {
    const capture = makeCapture()
    return Effect.gen(function*() {
      const tracker = yield* ProgressBar.start("users", "plain")
      yield* tracker.reporter.report(Progress.ProgressEvent.Restart({ resource: "users", attempt: 2, cause: "HTTP 500" }))
      expect(capture.stderr()).toBe("users: starting over from the first page (attempt 2): HTTP 500\n")
      expect((yield* tracker.snapshot).restarts).toBe(1)
    }).pipe(Effect.scoped, Effect.provide(capture.layer))
  })

  it.effect("prints a retry of the first page on a line of its own, and does not count it as a restart", () => {
    const capture = makeCapture()
    return Effect.gen(function*() {
      const tracker = yield* ProgressBar.start("users", "plain")
      yield* tracker.reporter.report(Progress.ProgressEvent.Retry({ resource: "users", attempt: 2, cause: "HTTP 500" }))
      expect(capture.stderr()).toBe("users: asking again for the first page (attempt 2): HTTP 500\n")
      expect((yield* tracker.snapshot).restarts).toBe(0)
    }).pipe(Effect.scoped, Effect.provide(capture.layer))
  })

  it.effect("explains a wait on another scroll once, whose it may be and how long it can last, above the live line", () => {
    const capture = makeCapture({ tty: true, columns: 400 })
    return Effect.gen(function*() {
      const tracker = yield* ProgressBar.start("users", "live")
      const now = yield* Clock.currentTimeMillis
      const waiting = (reason: Progress.WaitReason, seconds: number) =>
        tracker.reporter.report(Progress.ProgressEvent.Waiting({ resource: "users", reason, untilMillis: now + seconds * 1000 }))
      yield* waiting("concurrent-scroll", 120)
      yield* waiting("concurrent-scroll", 110)
      const explained = capture.stderr().split("\n").filter((line) => line.includes("Intercom drops a scroll"))
      expect(explained).toEqual([
        "\r\x1b[2Kusers: another scroll of this workspace is open on Intercom's side (another app's, or this tool's in another process: an export or a sync cut short, or one on another machine). Intercom drops a scroll about a minute after its last use. Waiting up to 2 min 00 s for it to close (--wait-for-other-scroll)."
      ])
      yield* TestClock.adjust("0 millis")
      expect(capture.stderr().split("\r\x1b[2K").pop()).toContain(
        "| waiting for another scroll of the workspace to close on Intercom's side (up to 1 min 50 s)"
      )
    }).pipe(Effect.scoped, Effect.provide(capture.layer))
  })

  it("says when the scroll waited on is this process's own, and, when an earlier export cut it short, how long it stays", () => {
    const line = ProgressBar.renderOtherScroll({ resource: "leads", reason: "own-scroll", untilMillis: 45_000 }, 0)
    expect(line).toBe(
      "leads: this process's own scroll of the workspace, cut short, is still open on Intercom's side. Intercom drops a scroll about a minute after its last use. Waiting up to 45 s for it to close (--wait-for-other-scroll)."
    )
    const earlier = (leftOpenAt: number) =>
      ProgressBar.renderOtherScroll({ resource: "users", reason: "own-scroll", untilMillis: 200_000, leftOpenAt }, 80_000)
    expect(earlier(68_000)).toBe(
      "users: the scroll is this tool's own: an earlier export or sync of this workspace cut it short 12 s ago (interrupted, stopped by a failure, or its reader closed the pipe), and Intercom keeps it open about a minute after its last use, so about 48 s more. Waiting up to 2 min 00 s for it to close (--wait-for-other-scroll)."
    )
    expect(earlier(5_000)).toContain("cut it short 1 min 15 s ago (interrupted, stopped by a failure, or its reader closed the pipe), and Intercom keeps it open about a minute after its last use, so any moment now.")
    // This process's own, outlived: another's.
    expect(ProgressBar.renderNoLongerOwn({ resource: "leads", untilMillis: undefined }, 0)).toBe(
      "leads: the scroll is still open, longer than Intercom keeps the one this process cut short: it is another's (another app's, or this tool's in another process). Waiting for it to close (--wait-for-other-scroll)."
    )
  })

  it.effect("with a note that an earlier export cut its scroll short, a wait on another scroll is a wait on its own", () => {
    const capture = makeCapture({ tty: true, columns: 400 })
    return Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const tracker = yield* ProgressBar.start("users", "live", ProgressBar.exportWaits, { leftOpenAt: now - 20_000 })
      yield* tracker.reporter.report(
        Progress.ProgressEvent.Waiting({ resource: "users", reason: "concurrent-scroll", untilMillis: now + 120_000 })
      )
      expect(capture.stderr()).toContain("users: the scroll is this tool's own: an earlier export or sync of this workspace cut it short 20 s ago")
      yield* TestClock.adjust("0 millis")
      expect(capture.stderr().split("\r\x1b[2K").pop()).toContain(
        "| waiting for this tool's own scroll of the workspace, cut short, to close on Intercom's side (up to 2 min 00 s)"
      )
    }).pipe(Effect.scoped, Effect.provide(capture.layer))
  })

  /**
   * A progress bar whose export found the note of its own scroll cut short 20 s before, and its first wait on the open
   * scroll (told as its own), then resumed; with the explanations it has printed so far.
   */
  const waitedOnOwn = (capture: ReturnType<typeof makeCapture>) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const tracker = yield* ProgressBar.start("users", "plain", ProgressBar.exportWaits, { leftOpenAt: now - 20_000 })
      const wait = Progress.ProgressEvent.Waiting({ resource: "users", reason: "concurrent-scroll", untilMillis: now + 600_000 })
      yield* tracker.reporter.report(wait)
      expect((yield* tracker.snapshot.get).waiting?.reason).toBe("own-scroll")
      yield* tracker.reporter.report(Progress.ProgressEvent.Resumed({ resource: "users" }))
      const explained = () => capture.stderr().split("\n").filter((line) => line.endsWith("(--wait-for-other-scroll)."))
      return { tracker, wait, explained }
    })

  it.effect("a wait that goes on past the note's two minutes is no longer on its own scroll: Intercom would have dropped that", () => {
    const capture = makeCapture()
    return Effect.gen(function*() {
      const { explained, tracker, wait } = yield* waitedOnOwn(capture)
      // 20 s + 100 s after the cut: the note's memory (2 min) is over, and a scroll still there is another's.
      yield* TestClock.adjust("100 seconds")
      yield* tracker.reporter.report(wait)
      expect((yield* tracker.snapshot.get).waiting?.reason).toBe("concurrent-scroll")
      yield* TestClock.adjust("5 seconds")
      expect(capture.stderr().trimEnd().split("\n").pop()).toContain("| waiting for another scroll of the workspace")
      // Said once more, in words: the first explanation called it this tool's own.
      expect(explained()).toHaveLength(2)
      expect(explained()[1]).toBe(
        "users: the scroll is still open 2 min 00 s after an earlier run of this tool cut its own short, longer than Intercom keeps one: it is another's (another app's, or this tool's in another process). Waiting up to 8 min 20 s for it to close (--wait-for-other-scroll)."
      )
      // And not again at the next retry.
      yield* tracker.reporter.report(wait)
      expect(explained()).toHaveLength(2)
    }).pipe(Effect.scoped, Effect.provide(capture.layer))
  })

  it.effect("a later wait on another's scroll, after the scroll opened, is not said to outlive the note: it is another wait", () => {
    const capture = makeCapture()
    return Effect.gen(function*() {
      const { explained, tracker, wait } = yield* waitedOnOwn(capture)
      // The scroll opened: a page, then a restart that meets another scroll past the note's two minutes.
      yield* tracker.reporter.report(Progress.ProgressEvent.Page({ resource: "users", attempt: 1, page: 1, records: 100, received: 100 }))
      yield* TestClock.adjust("110 seconds")
      yield* tracker.reporter.report(Progress.ProgressEvent.Restart({ resource: "users", attempt: 2, cause: "a 500" }))
      yield* tracker.reporter.report(wait)
      expect((yield* tracker.snapshot.get).waiting?.reason).toBe("concurrent-scroll")
      expect(explained()).toHaveLength(1)
    }).pipe(Effect.scoped, Effect.provide(capture.layer))
  })
})
