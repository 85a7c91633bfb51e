/**
 * A vitest setup file (vitest.config.ts): an attempt of a test given retries that fails says why, on stderr. A retry
 * that passes prints nothing of the attempts before it, and two of the fleet's process cases passed CI on their retry
 * run after run, their first failures never seen (bench NOTES, "Taking this stop's work in: tests that passed CI only
 * on their retry").
 */
import { beforeEach } from "vitest"

beforeEach(({ task, onTestFailed }) => {
  const retries = task.retry ?? 0
  if (retries === 0) return
  onTestFailed(({ task: failed }) => {
    const attempt = (failed.result?.retryCount ?? 0) + 1
    const why = (failed.result?.errors ?? []).map((error) => error.message).join("\n").slice(0, 8_000)
    process.stderr.write(`Attempt ${attempt} of ${retries + 1} failed: ${failed.file.name} > ${failed.name}\n${why}\n`)
  })
})
