/**
 * 2³¹−1 ms (about 24.8 days), the longest a timer waits: Node fires a longer one after 1 ms, so a longer bound would end
 * at once or never. PostgreSQL's `lock_timeout`, an `int` of milliseconds, has the same ceiling.
 */
export const maxTimerMillis = 2 ** 31 - 1
