import { describe, expect, it } from "vitest"
import { PassThrough } from "node:stream"
import { untilWritten } from "../src/internal/output.js"

const ready = "database system is ready to accept connections"

/** Lets the stream hand over what was written: a few turns of the event loop, no timer. */
const turns = async (count: number) => {
  for (let i = 0; i < count; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

describe("untilWritten", () => {
  it("sees the line cut across two chunks, as a pipe's read may cut it", async () => {
    const stream = new PassThrough()
    const log: Array<string> = []
    let seen = false
    void untilWritten(stream, ready, log).then(() => {
      seen = true
    })
    stream.write(`2026-12-06 17:00:00.000 UTC [1] LOG:  ${ready.slice(0, 20)}`)
    stream.write(`${ready.slice(20)}\n`)
    await turns(5)
    expect(log).toHaveLength(2)
    expect(seen).toBe(true)
  })

  it("sees a character of several bytes cut across two chunks whole, in the log too", async () => {
    const stream = new PassThrough()
    const log: Array<string> = []
    const bytes = Buffer.from("naïve: ready", "utf8")
    // Between the two bytes of ï.
    const cut = bytes.indexOf(0xc3) + 1
    let seen = false
    void untilWritten(stream, "naïve: ready", log).then(() => {
      seen = true
    })
    stream.write(bytes.subarray(0, cut))
    stream.write(bytes.subarray(cut))
    await turns(5)
    expect(log.join("")).toBe("naïve: ready")
    expect(seen).toBe(true)
  })

  it("sees the line in a chunk of many lines, however much follows it", async () => {
    const stream = new PassThrough()
    let seen = false
    void untilWritten(stream, ready, []).then(() => {
      seen = true
    })
    stream.write(`LOG:  ${ready}\n${"LOG:  checkpoint starting\n".repeat(100)}`)
    await turns(5)
    expect(seen).toBe(true)
  })

  it("waits while the text has not come", async () => {
    const stream = new PassThrough()
    let seen = false
    void untilWritten(stream, ready, []).then(() => {
      seen = true
    })
    stream.write("LOG:  database system was shut down\n")
    await turns(5)
    expect(seen).toBe(false)
  })
})
