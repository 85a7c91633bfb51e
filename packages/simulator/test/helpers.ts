import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Effect } from "effect"
import type { Resource } from "../src/Resource.js"
import * as Resources from "../src/Resource.js"

export interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test assertions walk arbitrary JSON
  readonly body: any
}

export interface Call {
  readonly token?: string
  readonly authorization?: string
  readonly version?: string
  readonly param?: string
  readonly acceptEncoding?: string
}

/** One GET, as the raw response (its body not yet read). */
export const send = (path: string, call: Call = {}) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    let request = HttpClientRequest.get(path)
    if (call.param !== undefined) request = HttpClientRequest.setUrlParam(request, "scroll_param", call.param)
    const authorization = call.authorization ?? (call.token === undefined ? undefined : `Bearer ${call.token}`)
    if (authorization !== undefined) request = HttpClientRequest.setHeader(request, "authorization", authorization)
    if (call.version !== undefined) request = HttpClientRequest.setHeader(request, "intercom-version", call.version)
    if (call.acceptEncoding !== undefined) {
      request = HttpClientRequest.setHeader(request, "accept-encoding", call.acceptEncoding)
    }
    return yield* client.execute(request)
  })

/** One GET, answered as status, headers and parsed body. */
export const get = (path: string, call: Call = {}) =>
  Effect.gen(function*() {
    const response = yield* send(path, call)
    const text = yield* response.text
    return { status: response.status, headers: response.headers, body: JSON.parse(text) } satisfies Answer
  }).pipe(Effect.scoped)

/** One GET, answered as status, headers and the body's bytes as they came (compressed when compressed). */
export const getBytes = (path: string, call: Call = {}) =>
  Effect.gen(function*() {
    const response = yield* send(path, call)
    const bytes = new Uint8Array(yield* response.arrayBuffer)
    return { status: response.status, headers: response.headers, bytes }
  }).pipe(Effect.scoped)

/** One scroll request. */
export const scroll = (resource: Resource, call: Call = {}) => get(Resources.path[resource], call)

/** The key of a resource's records in its envelope. */
export const listKey = (resource: Resource, version: string): string =>
  resource === "users" ? "users" : resource === "leads" ? "contacts" : version.startsWith("1") ? "companies" : "data"

/** Scrolls to the end, returning every record and every page's status. */
export const scrollAll = (resource: Resource, call: Omit<Call, "param"> = {}) =>
  Effect.gen(function*() {
    const version = call.version ?? (resource === "companies" ? "2.14" : "1.4")
    const records: Array<{ readonly id: string }> = []
    let param: string | undefined = undefined
    let pages = 0
    for (;;) {
      const answer: Answer = yield* scroll(resource, { ...call, version, ...(param === undefined ? {} : { param }) })
      if (answer.status !== 200) return yield* Effect.dieMessage(`page ${pages + 1}: ${answer.status} ${JSON.stringify(answer.body)}`)
      pages++
      const list = answer.body[listKey(resource, version)] as Array<{ readonly id: string }>
      if (list.length === 0) return { records, pages, lastParam: answer.body.scroll_param as string }
      records.push(...list)
      param = answer.body.scroll_param
    }
  })
