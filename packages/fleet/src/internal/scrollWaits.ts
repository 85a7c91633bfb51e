/**
 * A sync held by a scroll of its workspace still open on Intercom's side (`scroll_exists`), said in the runner's log.
 * After a move (a runner that stopped, died or gave the workspace away) the new owner waits up to about two minutes for
 * the old owner's scroll to expire, and the runner said nothing meanwhile: `fleet sync` showed the workspace syncing
 * with no records, and the log nothing between `Sync started` and `Sync done`.
 */
import { Progress } from "@intercom-scroll/core"
import { DateTime, Effect } from "effect"

type ScrollWait = Extract<Progress.ProgressEvent, { readonly _tag: "Waiting" }> & {
  readonly reason: "concurrent-scroll" | "own-scroll"
}

const isScrollWait = (event: Progress.ProgressEvent): event is ScrollWait =>
  event._tag === "Waiting" && (event.reason === "concurrent-scroll" || event.reason === "own-scroll")

/** The line for a wait's start: whose scroll, and until when the sync waits for it at most. */
const line = ({ reason, resource, untilMillis }: ScrollWait) => {
  const whose = reason === "own-scroll"
    ? `a ${resource} scroll of the workspace that this runner cut short`
    : `another ${resource} scroll of the workspace (one a runner left open as it stopped, died or gave the workspace away, or another app's)`
  const until = untilMillis === undefined ? "" : `, until ${DateTime.formatIso(DateTime.unsafeMake(untilMillis))} at most`
  return `Waiting for ${whose} to close on Intercom's side (scroll_exists): Intercom drops it about a minute after its last page${until}`
}

/**
 * `effect` with a `Progress` reporter that logs the start of each wait for an open scroll, once however many times the
 * scroll asks again, and hands every event on to the reporter in place (the default reports nowhere).
 */
export const said = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Progress.Progress, (outer) => {
    // Each try of the wait is a `Waiting` and a `Resumed`; the wait is over once the scroll moves on.
    let saying = true
    const reporter: Progress.Reporter = {
      report: (event) => {
        const say = isScrollWait(event) && saying ? Effect.logInfo(line(event)) : Effect.void
        if (isScrollWait(event)) saying = false
        else if (event._tag === "Page" || event._tag === "Restart" || event._tag === "End") saying = true
        return Effect.zipRight(say, outer.report(event))
      }
    }
    return Effect.provideService(effect, Progress.Progress, reporter)
  })
