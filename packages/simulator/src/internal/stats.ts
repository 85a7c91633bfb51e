/**
 * Mutable counters behind `Simulator.stats`.
 *
 * @internal
 */
import type * as Simulator from "../Simulator.js"
import type { ApiError } from "./apiError.js"

const increment = <K extends string | number>(record: Record<K, number>, key: K, by = 1) => {
  record[key] = (record[key] ?? 0) + by
}

/** The plain counts of `Simulator.Counters`, added up field by field. */
type Counts = { -readonly [K in keyof Simulator.Counters as Simulator.Counters[K] extends number ? K : never]: number }
/** Not `requests`: every request asks for compression or does not, so it is their sum (`withRequests`). */
type Counted = Omit<Counts, "requests">

const zero = (): Counted => ({
  requestsAskingCompression: 0,
  requestsNotAskingCompression: 0,
  scrollsOpened: 0,
  pagesServed: 0,
  pagesCompressed: 0,
  recordsServed: 0,
  bytesSent: 0,
  bodiesCut: 0,
  connectionsOpened: 0,
  connectionsDropped: 0,
  scrollExistsWhileLive: 0
})

const countNames = Object.keys(zero()) as ReadonlyArray<keyof Counted>

const withRequests = (counts: Counted): Counts => ({
  requests: counts.requestsAskingCompression + counts.requestsNotAskingCompression,
  ...counts
})

export class Counters {
  readonly counts: Counted = zero()
  private readonly errorsByCode: Record<string, number> = {}
  private readonly errorsByStatus: Record<number, number> = {}

  /** One request, asking for a coding the simulator has or not. */
  recordRequest(askedForCompression: boolean): void {
    if (askedForCompression) this.counts.requestsAskingCompression++
    else this.counts.requestsNotAskingCompression++
  }

  recordError(error: ApiError): void {
    increment(this.errorsByCode, error.code)
    increment(this.errorsByStatus, error.status)
  }

  snapshot(): Simulator.Counters {
    return { ...withRequests(this.counts), errorsByCode: { ...this.errorsByCode }, errorsByStatus: { ...this.errorsByStatus } }
  }
}

/** Adds up snapshots: the totals over every workspace (and the requests no workspace accepted). */
export const sum = (all: ReadonlyArray<Simulator.Counters>): Simulator.Counters => {
  const counts = zero()
  const errorsByCode: Record<string, number> = {}
  const errorsByStatus: Record<number, number> = {}
  for (const counters of all) {
    for (const name of countNames) counts[name] += counters[name]
    for (const [code, n] of Object.entries(counters.errorsByCode)) increment(errorsByCode, code, n)
    for (const [status, n] of Object.entries(counters.errorsByStatus)) increment(errorsByStatus, Number(status), n)
  }
  return { ...withRequests(counts), errorsByCode, errorsByStatus }
}
