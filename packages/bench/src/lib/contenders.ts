/**
 * What the benchmarks race: the core's streams, a bare fetch loop, a plain HTTP client that measures only the
 * server, and the official SDK.
 */
import { NodeHttpClient } from "@effect/platform-node"
import type * as Core from "@intercom-scroll/core"
import { IntercomClient, Scroll } from "@intercom-scroll/core"
import { Effect, Layer, ManagedRuntime, Redacted, Stream } from "effect"
import { IntercomClient as Sdk } from "intercom-client"
import * as Http from "node:http"
import type { PageWork } from "./bareFetch.js"

export { bareCompanies, bareUsers, type PageWork, sleep } from "./bareFetch.js"

/** The core's public modules: the package itself, or a patched copy of it (`measures/speedups.ts`). */
export type CoreModules = Pick<typeof Core, "IntercomClient" | "Scroll">

/** The core, with the client built once (connections kept alive across runs, as in a long-lived program). */
export const core = (baseUrl: string, token: string) => coreFrom({ IntercomClient, Scroll }, baseUrl, token)

/** `core`, with the core's modules given. */
export const coreFrom = ({ IntercomClient, Scroll }: CoreModules, baseUrl: string, token: string) => {
  const runtime = ManagedRuntime.make(
    IntercomClient.layer({ accessToken: Redacted.make(token), baseUrl }).pipe(Layer.provide(NodeHttpClient.layerUndici))
  )
  const count = <A, E>(stream: Stream.Stream<A, E, IntercomClient.IntercomClient>, work: PageWork | undefined) =>
    runtime.runPromise(
      work === undefined
        ? Stream.runCount(stream)
        : stream.pipe(
          // Scroll.users emits one chunk a page (30,000 users come as 300 chunks), so this is work a page.
          Stream.mapChunksEffect((chunk) => Effect.as(Effect.promise(() => work(chunk.length)), chunk)),
          Stream.runCount
        )
    )
  return {
    users: (options?: Scroll.Options, work?: PageWork): Promise<number> => count(Scroll.users(options), work),
    companies: (options?: Scroll.Options, work?: PageWork): Promise<number> => count(Scroll.companies(options), work),
    dispose: () => runtime.dispose()
  }
}

/**
 * A plain client (node:http, keep-alive) that measures the server rather than itself: it counts a page's records
 * and finds its scroll_param without parsing the body. Users in API 1.4, companies in 2.14.
 */
export const plainScroll = async (baseUrl: string, token: string, resource: "users" | "companies" = "users"): Promise<number> => {
  const agent = new Http.Agent({ keepAlive: true })
  const headers = { authorization: `Bearer ${token}`, "intercom-version": resource === "users" ? "1.4" : "2.14" }
  const record = resource === "users" ? '{"type":"user"' : '{"type":"company"'
  const get = (path: string) =>
    new Promise<{ records: number; scrollParam: string }>((resolve, reject) =>
      Http.get(`${baseUrl}${path}`, { agent, headers }, (response) => {
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("end", () => {
          const body = Buffer.concat(chunks).toString("latin1")
          let records = 0
          for (let at = body.indexOf(record); at !== -1; at = body.indexOf(record, at + 1)) records++
          const scrollParam = /"scroll_param":"([^"]+)"}$/.exec(body.slice(-100))?.[1]
          if (scrollParam === undefined) reject(new Error(`no scroll_param in ${body.slice(0, 200)}`))
          else resolve({ records, scrollParam })
        })
      }).on("error", reject)
    )
  let records = 0
  for (let page = await get(`/${resource}/scroll`); page.records > 0;) {
    records += page.records
    page = await get(`/${resource}/scroll?scroll_param=${page.scrollParam}`)
  }
  agent.destroy()
  return records
}

/**
 * intercom-client 7's `companies.scroll()`, page by page as its docs show (`hasNextPage`, `getNextPage`), with the
 * consumer's work on each page. It stops at the empty page: left alone, the SDK asks once more with that page's
 * dead scroll_param and fails with a 404, a round trip (and an error) it is spared here.
 */
export const sdkCompanies = async (baseUrl: string, token: string, work?: PageWork): Promise<number> => {
  const client = new Sdk({ token, baseUrl })
  let count = 0
  for (let page = await client.companies.scroll();; page = await page.getNextPage()) {
    if (page.data.length === 0) return count
    count += page.data.length
    if (work !== undefined) await work(page.data.length)
    if (!page.hasNextPage()) return count
  }
}
