/**
 * The process's standard output and error as a service, so an export can be pointed at stdout and its progress at
 * stderr, and tests can capture both.
 *
 * @since 0.1.0
 */
import { type Chunk, Config, Context, Effect, Layer, Sink, Stream } from "effect"
import { OutputError, StdoutClosed } from "../ExportError.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Where an export without `--out` goes; waits when the reader is slow (backpressure). */
  readonly stdout: Sink.Sink<void, Uint8Array, never, OutputError | StdoutClosed>
  readonly writeStderr: (text: string) => Effect.Effect<void>
  /** Whether stderr is a terminal, where a progress line can be redrawn in place. */
  readonly stderrIsTTY: boolean
  /** Whether stdout is a terminal: records written there would tear a line redrawn on the same screen. */
  readonly stdoutIsTTY: boolean
  /** Whether stdin is a terminal, where `--wizard` asks its questions and reads the answers. */
  readonly stdinIsTTY: boolean
  /** The terminal's width now, when stderr is one: a live line longer than that would wrap and not redraw. */
  readonly stderrColumns: Effect.Effect<number | undefined>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Stdio extends Context.Tag("@intercom-scroll/cli/Stdio")<Stdio, Service>() {}

/**
 * Whether text for a stream may be styled (bold, colour): only on a terminal, and not when NO_COLOR is set to anything
 * but the empty string (https://no-color.org).
 *
 * @since 0.1.0
 * @category color
 */
export const styled = (isTTY: boolean): Effect.Effect<boolean> =>
  isTTY
    ? Config.string("NO_COLOR").pipe(
      Config.withDefault(""),
      Effect.map((noColor) => noColor === ""),
      Effect.orElseSucceed(() => true)
    )
    : Effect.succeed(false)

/**
 * Writes `text` to stdout, with its backpressure and errors (`StdoutClosed` when the reader has gone).
 *
 * @since 0.1.0
 * @category writing
 */
export const print = (text: string): Effect.Effect<void, OutputError | StdoutClosed, Stdio> =>
  Effect.flatMap(Stdio, (stdio) => Stream.run(Stream.succeed(text).pipe(Stream.encodeText), stdio.stdout))

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** EPIPE: the reading end of the pipe is gone (`| head` has what it wanted), which is not the export's failure. */
const isBrokenPipe = (cause: unknown) =>
  typeof cause === "object" && cause !== null && (cause as { readonly code?: unknown }).code === "EPIPE"

/** What a writable reported wrong, kept from its first error on, and who waits on it meanwhile. */
interface Watch {
  failed: boolean
  error: unknown
  readonly waiters: Set<() => void>
}

const watches = new WeakMap<NodeJS.WritableStream, Watch>()

/**
 * The writable's errors, listened to for the process's life (see `watchStderr`): a failed write is reported a tick
 * later, often after the sink that wrote has ended (`fleet sync | head -1` prints a line a workspace), and an 'error'
 * with no listener kills the process with a stack trace.
 */
const watch = (writable: NodeJS.WritableStream): Watch => {
  const known = watches.get(writable)
  if (known !== undefined) return known
  const watched: Watch = { failed: false, error: undefined, waiters: new Set() }
  writable.on("error", (error: unknown) => {
    if (!watched.failed) {
      watched.failed = true
      watched.error = error
    }
    for (const wake of watched.waiters) wake()
  })
  watches.set(writable, watched)
  return watched
}

/**
 * A sink into `writable` that waits for 'drain' whenever a write finds its buffer full, a chunk's last write too, and
 * fails with `onError` of the first error the writable reported. `NodeSink.fromWritable` resumes after a chunk's last
 * write without looking, and an export writes a page a chunk: to a reader that stalled, it scrolled on and held the
 * whole workspace in memory (~1.6 KB a user).
 *
 * @since 0.1.0
 * @category writing
 */
export const sinkOf = <E>(
  writable: NodeJS.WritableStream,
  onError: (cause: unknown) => E
): Sink.Sink<void, Uint8Array, never, E> =>
  // The drain-waiting write, as in @effect/platform-node's NodeSink.fromWritable, but after the last write as well.
  Sink.forEachChunk((chunk: Chunk.Chunk<Uint8Array>) =>
    Effect.async<void, E>((resume) => {
      const watched = watch(writable)
      const settle = () => {
        writable.off("drain", settle)
        watched.waiters.delete(settle)
        resume(watched.failed ? Effect.fail(onError(watched.error)) : Effect.void)
      }
      if (watched.failed) return settle()
      let full = false
      for (const bytes of chunk) full = !writable.write(bytes)
      if (!full) return settle()
      watched.waiters.add(settle)
      writable.on("drain", settle)
      return Effect.sync(() => {
        writable.off("drain", settle)
        watched.waiters.delete(settle)
      })
    })
  )

/**
 * Whether stderr still takes writes. Progress, logs and the summary are for whoever watches; a reader of stderr that
 * went away (`2>&1 >/dev/null | true`) must not end the export. Node reports a failed write as an 'error' event, a
 * tick later, which with no listener kills the process on the spot, its temporary file left behind and no finalizer
 * run. The listener stays for the process's life: the last write (the summary) fails after the export's layers are gone.
 */
const stderr = { open: true, watched: false }

const watchStderr = () => {
  if (stderr.watched) return
  stderr.watched = true
  process.stderr.on("error", () => {
    stderr.open = false
  })
}

/**
 * The process's own streams.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Stdio> = Layer.sync(Stdio, () => {
  watchStderr()
  return {
    // stdout belongs to the process: ending it after one export would break whatever writes next.
    stdout: sinkOf(
      process.stdout,
      (cause) => isBrokenPipe(cause) ? new StdoutClosed() : new OutputError({ target: "stdout", detail: describe(cause) })
    ),
    writeStderr: (text) =>
      Effect.sync(() => {
        if (stderr.open) process.stderr.write(text)
      }),
    stderrIsTTY: process.stderr.isTTY === true,
    stdoutIsTTY: process.stdout.isTTY === true,
    stdinIsTTY: process.stdin.isTTY === true,
    stderrColumns: Effect.sync(() => process.stderr.isTTY === true ? process.stderr.columns : undefined)
  }
})
