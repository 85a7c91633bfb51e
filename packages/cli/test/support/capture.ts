/**
 * A `Stdio` that keeps what is written, for assertions, and pretends that stderr (`tty`) or stdout (`stdoutTty`) is a
 * terminal when asked (`stdinTty`, stdin). `stdoutWaits` runs before each write to stdout: a reader that has stopped reading.
 */
import { Effect, Layer, Sink } from "effect"
import { Stdio } from "../../src/internal/stdio.js"

export interface Capture {
  readonly stdout: () => string
  readonly stderr: () => string
  readonly layer: Layer.Layer<Stdio>
}

export const makeCapture = (
  options: {
    readonly tty?: boolean
    readonly stdoutTty?: boolean
    readonly stdinTty?: boolean
    readonly columns?: number
    readonly stdoutWaits?: Effect.Effect<void>
  } = {}
): Capture => {
  const decoder = new TextDecoder()
  let stdout = ""
  let stderr = ""
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    layer: Layer.succeed(Stdio, {
      stdout: Sink.forEach((bytes: Uint8Array) =>
        Effect.zipRight(
          options.stdoutWaits ?? Effect.void,
          Effect.sync(() => {
            stdout += decoder.decode(bytes, { stream: true })
          })
        )
      ),
      writeStderr: (text) =>
        Effect.sync(() => {
          stderr += text
        }),
      stderrIsTTY: options.tty ?? false,
      stdoutIsTTY: options.stdoutTty ?? false,
      stdinIsTTY: options.stdinTty ?? false,
      stderrColumns: Effect.succeed(options.columns)
    })
  }
}
