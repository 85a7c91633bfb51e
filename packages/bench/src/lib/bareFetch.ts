/**
 * The baseline of the loopback and link measures: a bare fetch loop, with nothing else loaded (a fresh process
 * importing it starts as fast as a script with no dependencies).
 */

/** Work a consumer does per page: asynchronous, as writing a page to a database is. */
export type PageWork = (records: number) => Promise<void>

export const sleep = (millis: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, millis))

interface Page {
  readonly scroll_param?: string | null
}

/**
 * A bare fetch loop over one scroll: fetch, JSON.parse, follow scroll_param, validate nothing, restart nothing. With
 * `work`, the consumer works on each page before the next is fetched (serial).
 */
const bareScroll = async (
  scroll: { readonly path: string; readonly version: string; readonly records: (page: Page) => ReadonlyArray<unknown> },
  baseUrl: string,
  token: string,
  work?: PageWork
): Promise<number> => {
  const headers = { authorization: `Bearer ${token}`, accept: "application/json", "intercom-version": scroll.version }
  let count = 0
  let param: string | null | undefined = undefined
  for (;;) {
    const url: string = param === undefined || param === null
      ? `${baseUrl}${scroll.path}`
      : `${baseUrl}${scroll.path}?scroll_param=${encodeURIComponent(param)}`
    const response = await fetch(url, { headers })
    const text = await response.text()
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${text.slice(0, 200)}`)
    const page = JSON.parse(text) as Page
    const records = scroll.records(page).length
    if (records === 0) return count
    count += records
    if (work !== undefined) await work(records)
    param = page.scroll_param
  }
}

/** The bare loop over users (API 1.4): the baseline of the loopback and link measures. */
export const bareUsers = (baseUrl: string, token: string, work?: PageWork): Promise<number> =>
  bareScroll({ path: "/users/scroll", version: "1.4", records: (page) => (page as { users: ReadonlyArray<unknown> }).users }, baseUrl, token, work)

/** The bare loop over companies (API 2.14): the floor of Scroll.companies and the SDK on a link (`probeLink.ts`). */
export const bareCompanies = (baseUrl: string, token: string): Promise<number> =>
  bareScroll({ path: "/companies/scroll", version: "2.14", records: (page) => (page as { data: ReadonlyArray<unknown> }).data }, baseUrl, token)
