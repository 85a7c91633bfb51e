import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as StopDeadline from "../src/internal/stopDeadline.js"

/** A process whose one timer the test fires by hand, and whose clock it moves. */
const fakeProcess = () => {
  const seen = { millis: undefined as number | undefined, unref: false, stderr: "", exited: undefined as number | undefined }
  let fire = () => {}
  const clock = { now: 1_000 }
  const process: StopDeadline.Process = {
    setTimeout: (run, millis) => {
      seen.millis = millis
      fire = run
      return { unref: () => (seen.unref = true) }
    },
    writeStderr: (text) => void (seen.stderr += text),
    exit: (code) => void (seen.exited = code),
    now: () => clock.now
  }
  return { process, seen, fire: () => fire(), clock }
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

  it("a second Ctrl-C or SIGTERM a while after the first exits at once with the first's code; a copy of the first changes nothing", () => {
    const { clock, process, seen } = fakeProcess()
    const again = StopDeadline.arm("SIGINT", 130, process)
    // A terminal's Ctrl-C passed on by pnpm, on top of the terminal's own: the cleanup goes on.
    clock.now += 50
    again("SIGINT")
    clock.now += StopDeadline.againAfterMillis - 51
    again("SIGTERM")
    expect(seen).toMatchObject({ stderr: "", exited: undefined })
    // Pressed again: a runner given --termination-timeout 10m would otherwise wait up to 10m 45s, deaf to it.
    clock.now += 1_200
    again("SIGTERM")
    expect(seen.exited).toBe(130)
    expect(seen.stderr).toBe("Stopped at once: SIGTERM 3.2 s after SIGINT; exiting without the rest of its cleanup.\n")
  })
})
