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

export class Counters {
  requests = 0
  scrollsOpened = 0
  pagesServed = 0
  recordsServed = 0
  bodiesCut = 0
  connectionsDropped = 0
  private readonly errorsByCode: Record<string, number> = {}
  private readonly errorsByStatus: Record<number, number> = {}

  recordError(error: ApiError): void {
    increment(this.errorsByCode, error.code)
    increment(this.errorsByStatus, error.status)
  }

  snapshot(): Simulator.Counters {
    return {
      requests: this.requests,
      scrollsOpened: this.scrollsOpened,
      pagesServed: this.pagesServed,
      recordsServed: this.recordsServed,
      bodiesCut: this.bodiesCut,
      connectionsDropped: this.connectionsDropped,
      errorsByCode: { ...this.errorsByCode },
      errorsByStatus: { ...this.errorsByStatus }
    }
  }
}

/** Adds up snapshots: the totals over every workspace (and the requests no workspace accepted). */
export const sum = (all: ReadonlyArray<Simulator.Counters>): Simulator.Counters => {
  const errorsByCode: Record<string, number> = {}
  const errorsByStatus: Record<number, number> = {}
  let requests = 0, scrollsOpened = 0, pagesServed = 0, recordsServed = 0, bodiesCut = 0, connectionsDropped = 0
  for (const counters of all) {
    requests += counters.requests
    scrollsOpened += counters.scrollsOpened
    pagesServed += counters.pagesServed
    recordsServed += counters.recordsServed
    bodiesCut += counters.bodiesCut
    connectionsDropped += counters.connectionsDropped
    for (const [code, n] of Object.entries(counters.errorsByCode)) increment(errorsByCode, code, n)
    for (const [status, n] of Object.entries(counters.errorsByStatus)) increment(errorsByStatus, Number(status), n)
  }
  return { requests, scrollsOpened, pagesServed, recordsServed, bodiesCut, connectionsDropped, errorsByCode, errorsByStatus }
}
