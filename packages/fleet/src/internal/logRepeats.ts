/**
 * The cluster's repeated errors, said once and then counted. Through a database outage @effect/cluster logs `Could not
 * read messages from storage` with its cause's whole stack at every storage poll (every 10 s here): an operator tailing
 * a runner through a 5-minute outage read some 30 stack traces of the library's internals beside the runner's own
 * plain line that the database went silent (packages/bench/NOTES.md, "A runner's log through a database outage").
 *
 * An error of the cluster's (its lines carry `package=@effect/cluster`) repeated with the same message and a cause of
 * the same errors (by name) within `window` of when it was last said is counted instead, its full line kept at DEBUG. The count
 * is said, in one line with the last cause's messages and no stack, before the next line of any other kind (the cluster's
 * `Shard lock storage has recovered`, the runner's `… again: its database answers again …`), and by the repeat that
 * comes a window after the error was last said. The first occurrence passes whole, cause and stack; so does every
 * line that is not such a repetition. A warning of the fleet's own that a fault which stays repeats at every try (a
 * heartbeat that fails, every 5 s) is counted alike, marked so (`counted`).
 *
 * @internal
 */
import { Cause, Duration, Effect, FiberRef, FiberRefs, HashMap, HashSet, Layer, Logger, LogLevel, Option } from "effect"

/** How long a repeated error stays counted before a repeat is said again (as one line, with its count). */
export const window: Duration.Duration = Duration.minutes(1)

/** A line's arguments to a logger. */
type Line = Logger.Logger.Options<unknown>

/** An error being repeated: what it says, and the repeats not said yet. */
interface Repeating {
  readonly line: Line
  /** The last repeat's cause, by its errors' names and messages. */
  summary: string
  /** When the error was last said (in full, or in a line with its count). */
  saidAt: number
  /** When the first repeat not said yet came. */
  countedSince: number
  count: number
}

/** Set for a line of the fleet's own to be counted as the cluster's are (`counted`): nothing of it shows in the line. */
const countedHere = FiberRef.unsafeMake(false)

/**
 * `self`, whose warnings and errors with a cause are counted when repeated, as the cluster's are: for a line of the
 * fleet's own that a fault which stays says at every try, a heartbeat's failure every 5 s.
 */
export const counted = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => Effect.locally(self, countedHere, true)

const isCounted = (line: Line) =>
  LogLevel.greaterThanEqual(line.logLevel, LogLevel.Warning) && !Cause.isEmpty(line.cause) &&
  (Option.contains(HashMap.get(line.annotations, "package"), "@effect/cluster") ||
    FiberRefs.getOrDefault(line.context, countedHere))

const text = (message: unknown) => Array.isArray(message) ? message.map(String).join(" ") : String(message)

/**
 * An error by its name and message, and its own cause's after it, without their stacks. A tagged error without a
 * message of its own (the cluster's `PersistenceError`) says its fields as its message: only its cause is said.
 */
const describe = (error: unknown, depth = 0): string => {
  if (!(error instanceof Error)) return String(error)
  const own = error.message === "" || error.message.startsWith("{") ? error.name : `${error.name}: ${error.message}`
  return error.cause === undefined || depth > 4 ? own : `${own} (cause: ${describe(error.cause, depth + 1)})`
}

/** The cause's errors, without their stacks. */
const causeSummary = (cause: Cause.Cause<unknown>) =>
  [...new Set([...Cause.failures(cause), ...Cause.defects(cause)].map((error) => describe(error)))].join("; ") ||
  Cause.pretty(cause).split("\n")[0]!

/**
 * What makes a line a repeat of another: its level, its message and its cause's errors' names. Not their messages: the
 * storage's error through one outage says first that the connection was terminated, then that none could be had.
 */
const keyOf = (line: Line) =>
  [line.logLevel.label, text(line.message), ...new Set(Cause.prettyErrors(line.cause).map(({ name }) => name))].join("\u0000")

const seconds = (millis: number) => Duration.format(Duration.seconds(Math.max(1, Math.round(millis / 1000))))

/**
 * `logger`, with the cluster's repeated errors counted (see the module's comment). `window` is measured on the lines'
 * own dates: the fiber's clock, so the TestClock in tests.
 */
export const countRepeats = <Output>(logger: Logger.Logger<unknown, Output>, within: Duration.Duration = window): Logger.Logger<unknown, void> =>
  counting(logger, within).logger

/** `countRepeats`, with how many errors it keeps track of at the moment (for a test that they do not pile up). */
export const counting = <Output>(
  logger: Logger.Logger<unknown, Output>,
  within: Duration.Duration
): { readonly logger: Logger.Logger<unknown, void>; readonly tracked: () => number } => {
  const windowMillis = Duration.toMillis(within)
  const repeating = new Map<string, Repeating>()

  const sayCount = (repeat: Repeating, at: Line) => {
    logger.log({
      ...at,
      // The line is the repeats', said now: their fiber, level and annotations.
      fiberId: repeat.line.fiberId,
      logLevel: repeat.line.logLevel,
      annotations: repeat.line.annotations,
      cause: Cause.empty,
      message: `${text(repeat.line.message)}, again ${repeat.count} ${repeat.count === 1 ? "time" : "times"} in the last ${
        seconds(at.date.getTime() - repeat.countedSince)
      }, the last: ${repeat.summary} (each in full at log level debug)`
    })
    repeat.saidAt = at.date.getTime()
    repeat.count = 0
  }

  // A repeat in full, at DEBUG, where the fiber logs that level: every one, the one that says the count too.
  const inDetail = (line: Line) => {
    const minimum = FiberRefs.getOrDefault(line.context, FiberRef.currentMinimumLogLevel)
    if (LogLevel.greaterThanEqual(LogLevel.Debug, minimum)) logger.log({ ...line, logLevel: LogLevel.Debug })
  }

  const counted = Logger.make((line) => {
    const now = line.date.getTime()
    // An error said a window ago and not repeated since would be said whole again anyway: forgotten, so that the map
    // holds only what is being repeated, however many distinct errors a runner meets over its life.
    for (const [key, repeat] of repeating) if (repeat.count === 0 && now - repeat.saidAt >= windowMillis) repeating.delete(key)
    if (isCounted(line)) {
      const summary = causeSummary(line.cause)
      const key = keyOf(line)
      const repeat = repeating.get(key)
      if (repeat !== undefined) repeat.summary = summary
      if (repeat !== undefined && now - repeat.saidAt < windowMillis) {
        if (repeat.count === 0) repeat.countedSince = now
        repeat.count++
        inDetail(line)
        return
      }
      if (repeat !== undefined && repeat.count > 0) {
        // Still failing a window on: said again, in one line with all the repeats since it was last said.
        repeat.count++
        sayCount(repeat, line)
        inDetail(line)
        return
      }
      sayCounts(line)
      repeating.set(key, { line, summary, saidAt: now, countedSince: now, count: 0 })
      logger.log(line)
      return
    }
    sayCounts(line)
    logger.log(line)
  })

  function sayCounts(before: Line) {
    for (const repeat of repeating.values()) if (repeat.count > 0) sayCount(repeat, before)
  }

  return { logger: counted, tracked: () => repeating.size }
}

/**
 * Every logger of the layer's scope with the cluster's repeated errors counted (`countRepeats`): the CLI's logfmt or
 * JSON on stderr, or an application's own.
 */
export const layer: Layer.Layer<never> = Layer.scopedDiscard(
  Effect.locallyScopedWith(FiberRef.currentLoggers, HashSet.map((logger) => countRepeats(logger)))
)
