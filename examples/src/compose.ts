/**
 * Streams compose: users then leads (one scroll per workspace, so one after the other), joined with the
 * companies they belong to, counted per company with a fold, and the largest shown.
 *
 * The client is the one for production (INTERCOM_ACCESS_TOKEN, INTERCOM_REGION, INTERCOM_BASE_URL). Without a token, an
 * Intercom simulator started in this process stands in.
 */
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { IntercomClient, type Models, Scroll } from "@intercom-scroll/core"
import { Embedded } from "@intercom-scroll/simulator"
import { Array as Arr, Console, Effect, Layer, Order, pipe, Stream } from "effect"

const membershipsOf = (person: Models.User | Models.Lead): ReadonlyArray<string> =>
  (person.companies?.companies ?? []).flatMap((company) => (company.id ? [company.id] : []))

const program = Effect.gen(function*() {
  const companyNames = yield* Scroll.companies().pipe(
    Stream.runFold(new Map<string, string>(), (names, company) => names.set(company.id, company.name ?? company.id))
  )

  // Users then leads: Stream.concat starts the second scroll when the first has ended.
  const people = Stream.concat(Scroll.users(), Scroll.leads())

  const perCompany = yield* people.pipe(
    Stream.mapConcat(membershipsOf),
    Stream.runFold(new Map<string, number>(), (counts, companyId) =>
      counts.set(companyId, (counts.get(companyId) ?? 0) + 1))
  )

  const byCount = Order.reverse(Order.mapInput(Order.number, ([, count]: readonly [string, number]) => count))
  const top = pipe(Arr.fromIterable(perCompany), Arr.sort(byCount), Arr.take(5))
  yield* Console.log(`companies: ${companyNames.size}, with people: ${perCompany.size}`)
  for (const [companyId, count] of top) {
    yield* Console.log(`${String(count).padStart(5)}  ${companyNames.get(companyId) ?? companyId}`)
  }
})

const Intercom = IntercomClient.layerConfig().pipe(
  Layer.provide(NodeHttpClient.layerUndici),
  Layer.provideMerge(Embedded.layer({
    workspaces: [{ token: "dG9rOmV4YW1wbGU6MTIzNA==", users: 2_000, leads: 500, companies: 40 }]
  }))
)

program.pipe(Effect.provide(Intercom), NodeRuntime.runMain)
