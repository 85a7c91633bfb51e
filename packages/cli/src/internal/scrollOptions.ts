/**
 * The scroll options `ScrollFlags` ask for, in a module of its own: it needs the core's schedules, which the CLI loads
 * only with the subcommand that runs (the flags are parsed before any is loaded).
 *
 * @since 0.1.0
 */
import { Scroll, type ScrollError } from "@intercom-scroll/core"
import { Option, Schedule } from "effect"
import type { Parsed } from "./scrollFlags.js"

/**
 * Restarts at most `maxRestarts` times (0: never), each after an exponential backoff from 1 second with jitter,
 * as the core's default does, but never more than about a minute: uncapped, `--max-restarts 20` would wait hours
 * before its last attempts (the 12th alone ~34 minutes), and a minute is as long as Intercom keeps a scroll.
 *
 * @since 0.1.0
 * @category schedules
 */
export const restartAtMost = (
  maxRestarts: number
): Schedule.Schedule<unknown, ScrollError.RestartRequired | ScrollError.Expired> =>
  Schedule.exponential("1 second").pipe(
    Schedule.either(Schedule.spaced("1 minute")), // the shorter of the two delays
    Schedule.jittered,
    Schedule.intersect(Schedule.recurs(maxRestarts))
  )

/**
 * The scroll options the flags ask for; unset ones keep the core's defaults.
 *
 * @since 0.1.0
 * @category flags
 */
export const scrollOptions = (flags: Parsed): Scroll.Options => ({
  restart: Option.getOrUndefined(Option.map(flags.maxRestarts, restartAtMost)),
  concurrentScroll: Option.getOrUndefined(Option.map(flags.waitForOtherScroll, Scroll.waitForOtherScroll)),
  prefetch: Option.getOrUndefined(flags.prefetch)
})
