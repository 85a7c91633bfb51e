/**
 * The runner's log through a database outage: the cluster's storage error, repeated at every poll, is said once in
 * full, then counted; the count is said in one line (the cause's message, no stack) before the next other line or a
 * window on; each repeat in full at DEBUG; an error that is not a repetition, and every other line, pass whole.
 * Under the TestClock: the lines' dates are the fiber's clock.
 */
import { PersistenceError } from "@effect/cluster/ClusterError"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Layer, Logger, LogLevel, TestClock } from "effect"
import * as LogRepeats from "../src/internal/logRepeats.js"

interface Said {
  readonly level: string
  readonly message: string
  /** The cause as the CLI's logfmt prints it, stack and all; empty for none. */
  readonly cause: string
}

/** A logger that keeps what it is given, under `LogRepeats.layer` as a runner has it, at `minimum`. */
const logged = <A, E>(self: Effect.Effect<A, E>, minimum: LogLevel.LogLevel = LogLevel.Info) =>
  Effect.suspend(() => {
    const lines: Array<Said> = []
    const keep = Logger.make(({ cause, logLevel, message }) => {
      lines.push({
        level: logLevel.label,
        message: Array.isArray(message) ? message.join(" ") : String(message),
        cause: Cause.isEmpty(cause) ? "" : Cause.pretty(cause, { renderErrorCause: true })
      })
    })
    return self.pipe(
      Effect.provide(LogRepeats.layer),
      Effect.provide(Layer.merge(Logger.replace(Logger.defaultLogger, keep), Logger.minimumLogLevel(minimum))),
      Effect.as(lines)
    )
  })

/** The cluster's line at each storage poll that fails (`Sharding`'s storage read loop). */
const readFailed = (reason: string) =>
  Effect.logWarning("Could not read messages from storage", Cause.fail(new PersistenceError({ cause: new Error(reason) }))).pipe(
    Effect.annotateLogs({ package: "@effect/cluster", module: "Sharding" })
  )

/** `times` storage polls 10 s apart, each failing. */
const polls = (times: number, reason = "Connection terminated unexpectedly") =>
  Effect.repeatN(Effect.zipRight(readFailed(reason), TestClock.adjust("10 seconds")), times - 1)

const hasStack = (said: Said) => /\n\s+at /.test(said.cause)

describe("LogRepeats", () => {
  it.effect("a storage error repeated through an outage: said once in full, counted, the count said in one line when the database answers", () =>
    Effect.gen(function*() {
      const lines = yield* logged(Effect.gen(function*() {
        yield* polls(4)
        yield* polls(1, "timeout exceeded when trying to connect")
        yield* Effect.logInfo("Shard lock storage has recovered").pipe(Effect.annotateLogs({ package: "@effect/cluster" }))
      }))
      expect(lines.map(({ level, message }) => ({ level, message }))).toEqual([
        { level: "WARN", message: "Could not read messages from storage" },
        {
          level: "WARN",
          message:
            "Could not read messages from storage, again 4 times in the last 40s, the last: PersistenceError (cause: Error: timeout exceeded when trying to connect) (each in full at log level debug)"
        },
        { level: "INFO", message: "Shard lock storage has recovered" }
      ])
      // The first occurrence keeps its cause whole; the count's line has none.
      expect(lines[0]!.cause).toContain("Connection terminated unexpectedly")
      expect(hasStack(lines[0]!)).toBe(true)
      expect(lines[1]!.cause).toBe("")
    }))

  it.effect("still failing a window on: said again in one line with the count, no stack; quiet for a window, said in full again", () =>
    Effect.gen(function*() {
      const lines = yield* logged(Effect.gen(function*() {
        yield* polls(7)
        yield* TestClock.adjust("2 minutes")
        yield* polls(1)
      }))
      expect(lines.map(({ message }) => message)).toEqual([
        "Could not read messages from storage",
        // The 7th, at 60 s, a window after the first: the six repeats since it, in the last 50 s (the first at 10 s).
        "Could not read messages from storage, again 6 times in the last 50s, the last: PersistenceError (cause: Error: Connection terminated unexpectedly) (each in full at log level debug)",
        "Could not read messages from storage"
      ])
      expect(lines.map(hasStack)).toEqual([true, false, true])
    }))

  it.effect("every repeat in full at debug, the one a window on that says the count too", () =>
    Effect.gen(function*() {
      const lines = yield* logged(polls(7), LogLevel.Debug)
      // The 7th, at 60 s, says the six before it in one line, and is said in full at debug after it, as each was.
      expect(lines.map(({ level }) => level)).toEqual(["WARN", "DEBUG", "DEBUG", "DEBUG", "DEBUG", "DEBUG", "WARN", "DEBUG"])
      expect(lines.map(hasStack)).toEqual([true, true, true, true, true, true, false, true])
    }))

  it.effect("a different error, and every line not the cluster's, pass whole between the repeats", () =>
    Effect.gen(function*() {
      const lines = yield* logged(Effect.gen(function*() {
        yield* polls(2)
        yield* Effect.logError("Shard lock storage is unhealthy", Cause.fail(new Error("Operation timed out after '5s'"))).pipe(
          Effect.annotateLogs({ package: "@effect/cluster" })
        )
        yield* polls(1)
        // The runner's own warning, with a cause, is never counted.
        yield* Effect.logWarning("The session that held this runner's address did not answer", Cause.fail(new Error("silent")))
        yield* Effect.logWarning("The session that held this runner's address did not answer", Cause.fail(new Error("silent")))
      }))
      expect(lines.map(({ message }) => message)).toEqual([
        "Could not read messages from storage",
        "Could not read messages from storage, again 1 time in the last 10s, the last: PersistenceError (cause: Error: Connection terminated unexpectedly) (each in full at log level debug)",
        "Shard lock storage is unhealthy",
        "Could not read messages from storage, again 1 time in the last 10s, the last: PersistenceError (cause: Error: Connection terminated unexpectedly) (each in full at log level debug)",
        "The session that held this runner's address did not answer",
        "The session that held this runner's address did not answer"
      ])
      expect(lines.map(hasStack)).toEqual([true, false, true, false, true, true])
    }))
  it.effect("a warning of the fleet's own marked counted (a heartbeat that fails at every beat) is said once in full, then counted", () =>
    Effect.gen(function*() {
      const beatFailed = LogRepeats.counted(Effect.logWarning("This runner's heartbeat was not written", Cause.fail(new Error("no such function: NOW"))))
      const lines = yield* logged(Effect.gen(function*() {
        yield* Effect.repeatN(Effect.zipRight(beatFailed, TestClock.adjust("5 seconds")), 2)
        yield* Effect.logInfo("Sync done")
      }))
      expect(lines.map(({ level, message }) => ({ level, message }))).toEqual([
        { level: "WARN", message: "This runner's heartbeat was not written" },
        {
          level: "WARN",
          message:
            "This runner's heartbeat was not written, again 2 times in the last 10s, the last: Error: no such function: NOW (each in full at log level debug)"
        },
        { level: "INFO", message: "Sync done" }
      ])
      expect(lines.map(hasStack)).toEqual([true, false, false])
    }))

  it.effect("keeps track only of what is being repeated: errors said once a window ago are forgotten, however many", () =>
    Effect.gen(function*() {
      const { logger, tracked } = LogRepeats.counting(Logger.make(() => {}), LogRepeats.window)
      // A hundred distinct errors of the cluster's over a long life, each said once, a window apart.
      for (let error = 0; error < 100; error++) {
        yield* Effect.logWarning(`Could not send message ${error}`, Cause.fail(new Error("gone"))).pipe(
          Effect.annotateLogs({ package: "@effect/cluster" }),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger))
        )
        yield* TestClock.adjust(LogRepeats.window)
      }
      expect(tracked()).toBe(1)
    }))
})
