/**
 * 2³¹−1 ms (about 24.8 days), the longest a timer waits: Effect's clock never fires a longer one, so a bound set past it
 * would never run out.
 *
 * @internal
 */
export const maxTimerMillis = 2 ** 31 - 1
