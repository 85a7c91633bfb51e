import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as StopDeadline from "../src/internal/stopDeadline.js"

/** A process whose one timer the test fires by hand. */
const fakeProcess = () => {
  const seen = { millis: undefined as number | undefined, unref: false, stderr: "", exited: undefined as number | undefined }
  let fire = () => {}
  const process: StopDeadline.Process = {
    setTimeout: (run, millis) => {
      seen.millis = millis
      fire = run
      return { unref: () => (seen.unref = true) }
    },
    writeStderr: (text) => void (seen.stderr += text),
    exit: (code) => void (seen.exited = code)
  }
  return { process, seen, fire: () => fire() }
}

describe("the stop's deadline", () => {
  it("exits with the signal's code once the grace is over, saying why, on a timer that keeps nothing alive", () => {
    const { fire, process, seen } = fakeProcess()
    StopDeadline.arm("SIGTERM", 143, process)
    expect(seen).toEqual({ millis: StopDeadline.graceMillis, unref: true, stderr: "", exited: undefined })
    fire()
    expect(seen.exited).toBe(143)
    expect(seen.stderr).toBe("Stopped: still stopping 60 s after SIGTERM; exiting without the rest of its cleanup.\n")
  })

  it.scoped("a runner's longest termination timeout gives a deadline a timer can wait, not one Node fires at once", () =>
    Effect.gen(function*() {
      // Node runs a timer longer than 2³¹−1 ms after 1 ms: the runner was exited as the stop began, its syncs cut.
      yield* StopDeadline.allowing(Duration.millis(2 ** 31 - 1))
      const { process, seen } = fakeProcess()
      StopDeadline.arm("SIGTERM", 143, process)
      expect(seen.millis).toBe(2 ** 31 - 1)
    }))

})
