import { HttpClient, type HttpClientResponse } from "@effect/platform"
import { Effect } from "effect"

/**
 * `inner` with another app of the same workspace beside the client: before the client's `n`-th request (1-based)
 * where `spendsBefore(n)`, it spends what is left of the shared rate-limit window, so that the request meets a 429.
 * `received` sees each response the client gets.
 */
export const withNeighbour = (
  inner: HttpClient.HttpClient,
  spendsBefore: (request: number) => boolean,
  received: (response: HttpClientResponse.HttpClientResponse) => void = () => {}
): HttpClient.HttpClient => {
  let requests = 0
  return HttpClient.make((request) =>
    Effect.gen(function*() {
      if (spendsBefore(++requests)) {
        for (let spent = 0; spent < 100; spent++) {
          const response: HttpClientResponse.HttpClientResponse = yield* inner.get(new URL("/admins", request.url).href, {
            headers: { authorization: request.headers["authorization"] ?? "" }
          }).pipe(Effect.orDie)
          if (response.status === 429 || response.headers["x-ratelimit-remaining"] === "0") break
        }
      }
      const response = yield* inner.execute(request)
      received(response)
      return response
    })
  )
}
