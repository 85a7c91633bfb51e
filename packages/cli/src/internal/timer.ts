/**
 * The longest a timer waits, for the flags and variables that set one.
 *
 * @since 0.1.0
 */

/**
 * 2³¹−1 ms (about 24.8 days): Node fires a longer timer after 1 ms, so Effect's clock never waits longer, and a wait set
 * past it would end at once or never. PostgreSQL's `lock_timeout`, an `int` of milliseconds, has the same ceiling.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxTimerMillis = 2 ** 31 - 1
