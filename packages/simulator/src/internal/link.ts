/**
 * The link between the simulator and a client: with a bandwidth, bytes cost time. A response of B bytes (as sent,
 * compressed when compressed) takes B × 8 / (bandwidth × 10⁶) seconds at `bandwidth` megabits per second, each
 * response over a link of its own.
 *
 * @internal
 */
import { type Clock, Duration, Effect, Stream } from "effect"

/**
 * The longest wait a timer holds (2^31 − 1 ms, about 24.8 days): Effect's sleep for longer never ends, and a page
 * behind it would never come. A latency or handshake is refused above it.
 */
export const longestWaitMillis = 2 ** 31 - 1

export interface Link {
  readonly bytesPerMilli: number
  /** The simulator's clock: a TestClock drives the pacing in tests. */
  readonly clock: Clock.Clock
}

export const make = (megabitsPerSecond: number, clock: Clock.Clock): Link => ({
  bytesPerMilli: megabitsPerSecond * 1_000_000 / 8 / 1000,
  clock
})

/** How long `bytes` take to send. */
export const transmissionTime = (link: Link, bytes: number): Duration.Duration =>
  Duration.millis(bytes / link.bytesPerMilli)

/** A write every 10 ms of the link's time: fine enough to see the rate, coarse enough to cost nothing. */
const chunkMillis = 10

/**
 * `bytes` in chunks, each handed over once the link has had the time to send it and everything before it (a due
 * time from the start, so that timer delays do not add up): the last byte leaves at exactly the body's time.
 */
export const paced = (link: Link, bytes: Uint8Array): Stream.Stream<Uint8Array> =>
  Stream.suspend(() => {
    const start = link.clock.unsafeCurrentTimeMillis()
    const chunk = Math.max(1, Math.round(link.bytesPerMilli * chunkMillis))
    const chunks = Math.ceil(bytes.length / chunk)
    if (chunks === 0) return Stream.empty
    return Stream.range(0, chunks - 1).pipe(
      Stream.mapEffect((index) => {
        const end = Math.min(bytes.length, (index + 1) * chunk)
        const wait = start + end / link.bytesPerMilli - link.clock.unsafeCurrentTimeMillis()
        const piece = bytes.subarray(index * chunk, end)
        return wait > 0 ? Effect.as(link.clock.sleep(Duration.millis(wait)), piece) : Effect.succeed(piece)
      })
    )
  })
