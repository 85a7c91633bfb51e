import { describe, expect, it } from "@effect/vitest"
import { Progress } from "@intercom-scroll/core"

const { End, Page, Restart, Resumed, Waiting } = Progress.ProgressEvent

describe("Progress.update", () => {
  it("adds pages and records, counts restarts and rate-limit waits, and clears a wait when pages flow again", () => {
    const events: ReadonlyArray<Progress.ProgressEvent> = [
      Page({ resource: "users", attempt: 1, page: 1, records: 100, received: 100 }),
      Waiting({ resource: "users", reason: "rate-limit", untilMillis: 5_000 }),
      Resumed({ resource: "users" }),
      Waiting({ resource: "users", reason: "restart", untilMillis: undefined }),
      Restart({ resource: "users", attempt: 2, cause: "500" }),
      Waiting({ resource: "users", reason: "rate-limit", untilMillis: undefined }),
      Page({ resource: "users", attempt: 2, page: 1, records: 20, received: 100 })
    ]
    const waitingSnapshot = events.slice(0, 2).reduce(Progress.update, Progress.empty)
    expect(waitingSnapshot.waiting).toEqual({ reason: "rate-limit", untilMillis: 5_000 })
    expect(events.reduce(Progress.update, Progress.empty)).toEqual({
      records: 120,
      pages: 2,
      restarts: 1,
      rateLimitWaits: 2,
      waiting: undefined
    })
  })

  it("leaves the snapshot as it was at a scroll's end: its counts are whole already", () => {
    const before = Progress.update(Progress.empty, Page({ resource: "users", attempt: 1, page: 1, records: 100, received: 100 }))
    expect(Progress.update(before, End({ resource: "users" }))).toEqual(before)
  })
})
