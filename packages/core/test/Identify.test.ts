/**
 * `IntercomClient.identify`: `GET /me`, the app (workspace) an access token belongs to, against the simulator in
 * process (rate limits play out under the TestClock) and against hand-made answers.
 */
import { HttpClient, HttpClientError, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Simulator } from "@intercom-scroll/simulator"
import { Settle } from "@intercom-scroll/testing"
import { NodeHttpClient } from "@effect/platform-node"
import { Cause, type Duration, Effect, Exit, Fiber, Layer, Redacted, TestClock } from "effect"
import { IntercomClient } from "../src/index.js"

const client = (token: string) =>
  Layer.orDie(IntercomClient.layer({ accessToken: Redacted.make(token), baseUrl: "https://api.intercom.io" }))

/** Several tokens' workspaces in one simulator, each token's client at hand. */
const simulated = (workspaces: ReadonlyArray<Simulator.WorkspaceOptions>) =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    return (token: string) =>
      Effect.flatMap(IntercomClient.IntercomClient, (service) => service.identify!).pipe(
        Effect.provide(client(token)),
        Effect.provideService(HttpClient.HttpClient, http)
      )
  }).pipe(Effect.provide(Layer.orDie(Simulator.layerClient({ workspaces }))))

/** A client whose every request is answered by `answer`. */
const answering = (answer: (request: unknown) => Response | HttpClientError.HttpClientError) =>
  Effect.flatMap(IntercomClient.IntercomClient, (service) => service.identify!).pipe(
    Effect.provide(client("tok_fixed_0123456789")),
    Effect.provide(Layer.succeed(
      HttpClient.HttpClient,
      HttpClient.make((request) => {
        const answered = answer(request)
        return answered instanceof Response
          ? Effect.succeed(HttpClientResponse.fromWeb(request, answered))
          : Effect.fail(answered)
      })
    ))
  )

/**
 * Moves the clock by `duration` once the forked identify waits on it: before, the move could pass before its wait
 * began (the client's layer digests its token on libuv's thread pool first), and the wait would never end.
 */
const adjustOnceWaiting = (duration: Duration.DurationInput) =>
  Effect.zipRight(
    Settle.until("identify to wait on the clock", Effect.map(TestClock.sleeps(), (sleeps) => sleeps.length > 0)),
    TestClock.adjust(duration)
  )

describe("IntercomClient.identify", () => {
  it.effect("names the token's app: one id_code for two tokens of one workspace, another for another workspace", () =>
    Effect.gen(function*() {
      const identify = yield* simulated([
        { token: "tok_acme_1", seed: 11 },
        { token: "tok_acme_2", seed: 11 },
        { token: "tok_other", seed: 12 }
      ])
      const [first, rotated, other] = [yield* identify("tok_acme_1"), yield* identify("tok_acme_2"), yield* identify("tok_other")]
      expect(first.id_code).toMatch(/^[0-9a-f]{8}$/)
      expect(rotated.id_code).toBe(first.id_code)
      expect(other.id_code).not.toBe(first.id_code)
      expect(first.name).toContain(first.id_code)
    }))

  it.effect("asks once per client: a second identify is answered from the first, a failure is asked again", () =>
    Effect.gen(function*() {
      let asked = 0
      const answers = [
        () => Response.json({ type: "error.list", errors: [{ code: "parameter_invalid", message: "no" }] }, { status: 400 }),
        () => Response.json({ type: "admin", app: { type: "app", id_code: "abc12345", name: "Acme" } })
      ]
      const client = yield* IntercomClient.make({ accessToken: Redacted.make("tok_fixed_0123456789"), baseUrl: "https://api.intercom.io" }).pipe(
        Effect.provideService(HttpClient.HttpClient, HttpClient.make((request) =>
          Effect.sync(() => HttpClientResponse.fromWeb(request, answers[Math.min(asked++, 1)]()))
        ))
      )
      expect((yield* Effect.flip(client.identify!)).status).toBe(400)
      expect((yield* client.identify!).id_code).toBe("abc12345")
      expect((yield* client.identify!).id_code).toBe("abc12345")
      expect(asked).toBe(2)
    }))

  it.effect("a token whose app may not read admins: IdentifyFailed, refused, with Intercom's code and advice", () =>
    Effect.gen(function*() {
      const identify = yield* simulated([{ token: "tok_no_admins", readAdmins: false }])
      const error = yield* Effect.flip(identify("tok_no_admins"))
      expect(error).toMatchObject({ _tag: "IdentifyFailed", status: 403, code: "token_unauthorized", refused: true })
      expect(error.message).toContain("Read admins")
      // A token refused outright is another matter: not the permission, the token.
      const invalid = yield* Effect.flip(identify("tok_unknown"))
      expect(invalid).toMatchObject({ status: 401, code: "unauthorized", refused: false })
      expect(invalid.message).toContain("accessToken")
    }))

  it.effect("asks again after a 5xx, a second later", () =>
    Effect.gen(function*() {
      let asked = 0
      const fiber = yield* Effect.fork(answering(() =>
        asked++ === 0
          ? Response.json({ type: "error.list", errors: [{ code: "service_unavailable", message: "later" }] }, { status: 503 })
          : Response.json({ type: "admin", app: { type: "app", id_code: "abc12345" } })
      ))
      yield* adjustOnceWaiting("1 second")
      expect((yield* Fiber.join(fiber)).id_code).toBe("abc12345")
      expect(asked).toBe(2)
    }))

  it.effect("waits out a 429 and asks again", () =>
    Effect.gen(function*() {
      const identify = yield* simulated([{ token: "tok_busy", faults: { rateLimit: { limit: 1, windowSeconds: 2 } } }])
      yield* identify("tok_busy") // the window's one request
      const fiber = yield* Effect.fork(identify("tok_busy"))
      yield* adjustOnceWaiting("1 second") // still the same window: 429 again
      yield* adjustOnceWaiting("2 seconds") // the next window
      expect((yield* Fiber.join(fiber)).id_code).toMatch(/^[0-9a-f]{8}$/)
    }))

  it.effect("an answer without an app, an error page, and no answer are IdentifyFailed, never showing the token", () =>
    Effect.gen(function*() {
      const noApp = yield* Effect.flip(answering(() => Response.json({ type: "admin", id: "1" })))
      expect(noApp).toMatchObject({ status: 200, refused: false })
      expect(noApp.detail).toContain("app.id_code")

      const serverError = yield* Effect.flip(answering(() =>
        Response.json({
          type: "error.list",
          request_id: "req_1",
          errors: [{ code: "parameter_invalid", message: "tok_fixed_0123456789 failed" }]
        }, { status: 400 })
      ))
      expect(serverError).toMatchObject({ status: 400, code: "parameter_invalid", requestId: "req_1", refused: false })
      expect(serverError.message).not.toContain("tok_fixed_0123456789")

      // An answer far larger than any /me is refused without being read to its end.
      const endless = new ReadableStream<Uint8Array>({ pull: (controller) => controller.enqueue(new Uint8Array(16_384).fill(32)) })
      const large = yield* Effect.flip(answering(() => new Response(endless, { status: 200 })))
      expect(large.detail).toMatch(/^an answer over \d+ bytes$/)

      const unreachable = yield* Effect.flip(answering((request) =>
        new HttpClientError.RequestError({ request: request as never, reason: "Transport", cause: new Error("connect ECONNREFUSED") })
      ))
      expect(unreachable.status).toBeUndefined()
      expect(unreachable.message).toContain("ECONNREFUSED")

      // On the way to the proxy in between (the CLI's undici layer marks such a failure): the proxy is named, as the
      // scroll's errors name it, since nothing reached Intercom.
      const atProxy = yield* Effect.flip(answering((request) =>
        new HttpClientError.RequestError({
          request: request as never,
          reason: "Transport",
          cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:3128"), { proxy: "http://127.0.0.1:3128" })
        })
      ))
      expect(atProxy.message).toContain("(GET /me: through the proxy http://127.0.0.1:3128: connect ECONNREFUSED 127.0.0.1:3128).")
    }))

  it.effect("a redirect is IdentifyFailed naming where it points, its query left out, not an answer that is no JSON", () =>
    Effect.gen(function*() {
      const redirected = yield* Effect.flip(answering(() =>
        new Response(null, { status: 302, headers: { location: "https://login.example/me?token=tok_fixed_0123456789" } })
      ))
      expect(redirected).toMatchObject({ status: 302, code: "http_302" })
      expect(redirected.detail).toBe("a redirect to https://login.example/me?…, which the client does not follow")
    }))

  it.effect("a redirect's body, left unread, is let go at once: its request is aborted, not left to the GC", () =>
    Effect.gen(function*() {
      const signals: Array<AbortSignal> = []
      const http = HttpClient.make((request, _url, signal) => {
        signals.push(signal)
        return Effect.succeed(HttpClientResponse.fromWeb(
          request,
          new Response("Moved", { status: 302, headers: { location: "https://login.example/me" } })
        ))
      })
      const error = yield* Effect.flip(Effect.flatMap(IntercomClient.IntercomClient, (service) => service.identify!).pipe(
        Effect.provide(client("tok_fixed_0123456789")),
        Effect.provide(Layer.succeed(HttpClient.HttpClient, http))
      ))
      expect(error).toMatchObject({ status: 302 })
      expect(signals.map((signal) => signal.aborted)).toEqual([true])
    }))

  it.effect("an answer that is no JSON is quoted without the token, even where the quote's end cuts the token", () =>
    Effect.gen(function*() {
      // A proxy's page that echoes the request: the token starts 66 characters in, and the quote ends at 80.
      const echo = `${"x".repeat(59)} Bearer tok_fixed_0123456789 sent`
      const error = yield* Effect.flip(answering(() => new Response(echo, { status: 403 })))
      expect(error.detail).toMatch(/^not JSON: x+ Bearer /)
      expect(error.message).not.toContain("tok_fixed_01")
    }))
})

describe("IntercomClient.identify over an HTTP client closed beneath it", () => {
  // The scroll dies on it too (Opening.test.ts): a closed client is the program's wiring, not a network to check.
  it.live("dies at once, naming the closed client, rather than failing as a transport that cannot reach Intercom", () =>
    Effect.gen(function*() {
      const service = yield* IntercomClient.make({ accessToken: Redacted.make("tok_closed_0123456789"), baseUrl: "http://127.0.0.1:4010" }).pipe(
        Effect.provide(NodeHttpClient.layerUndici)
      )
      const exit = yield* Effect.exit(service.identify!)
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      expect(Exit.isFailure(exit) && Cause.pretty(exit.cause)).toContain("The HTTP client the IntercomClient was built on is closed (")
    }))
})
