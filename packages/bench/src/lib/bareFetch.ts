/**
 * The baseline of the loopback and link measures: a bare fetch loop, with nothing else loaded (a fresh process
 * importing it starts as fast as a script with no dependencies).
 */

/** Work a consumer does per page: asynchronous, as writing a page to a database is. */
export type PageWork = (records: number) => Promise<void>

export const sleep = (millis: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, millis))

interface UserPage {
  readonly users: ReadonlyArray<unknown>
  readonly scroll_param?: string | null
}

/**
 * A bare fetch loop: fetch, JSON.parse, follow scroll_param, validate nothing, restart nothing. With `work`, the
 * consumer works on each page before the next is fetched (serial).
 */
export const bareUsers = async (baseUrl: string, token: string, work?: PageWork): Promise<number> => {
  const headers = { authorization: `Bearer ${token}`, accept: "application/json", "intercom-version": "1.4" }
  let count = 0
  let param: string | null | undefined = undefined
  for (;;) {
    const url: string = param === undefined || param === null
      ? `${baseUrl}/users/scroll`
      : `${baseUrl}/users/scroll?scroll_param=${encodeURIComponent(param)}`
    const response = await fetch(url, { headers })
    const text = await response.text()
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${text.slice(0, 200)}`)
    const page = JSON.parse(text) as UserPage
    if (page.users.length === 0) return count
    count += page.users.length
    if (work !== undefined) await work(page.users.length)
    param = page.scroll_param
  }
}


interface CompanyPage {
  readonly data: ReadonlyArray<unknown>
  readonly scroll_param?: string | null
}

/** `bareUsers` for companies (API 2.14): the floor of Scroll.companies and the SDK on a link (`probeLink.ts`). */
export const bareCompanies = async (baseUrl: string, token: string): Promise<number> => {
  const headers = { authorization: `Bearer ${token}`, accept: "application/json", "intercom-version": "2.14" }
  let count = 0
  let param: string | null | undefined = undefined
  for (;;) {
    const url: string = param === undefined || param === null
      ? `${baseUrl}/companies/scroll`
      : `${baseUrl}/companies/scroll?scroll_param=${encodeURIComponent(param)}`
    const response = await fetch(url, { headers })
    const text = await response.text()
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${text.slice(0, 200)}`)
    const page = JSON.parse(text) as CompanyPage
    if (page.data.length === 0) return count
    count += page.data.length
    param = page.scroll_param
  }
}
