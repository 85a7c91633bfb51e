/**
 * Streams compose: users then leads (one scroll per workspace, so one after the other), joined with the
 * companies they belong to, grouped and counted with Stream operators.
 */
import { NodeRuntime } from "@effect/platform-node"
import { type Models, Scroll } from "@intercom-scroll/core"
import { Embedded } from "@intercom-scroll/cli"
import { Array as Arr, Console, Effect, GroupBy, Order, pipe, Stream } from "effect"

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
    Stream.groupByKey((companyId) => companyId),
    GroupBy.evaluate((companyId, members) =>
      Stream.fromEffect(Effect.map(Stream.runCount(members), (count) => [companyId, count] as const))
    ),
    Stream.runCollect
  )

  const byCount = Order.reverse(Order.mapInput(Order.number, ([, count]: readonly [string, number]) => count))
  const top = pipe(Arr.fromIterable(perCompany), Arr.sort(byCount), Arr.take(5))
  yield* Console.log(`companies: ${companyNames.size}, with people: ${perCompany.length}`)
  for (const [companyId, count] of top) {
    yield* Console.log(`${String(count).padStart(5)}  ${companyNames.get(companyId) ?? companyId}`)
  }
})

const Intercom = Embedded.layerFromEnv({
  simulator: { workspaces: [{ token: "example", users: 2_000, leads: 500, companies: 40 }] }
})

program.pipe(Effect.provide(Intercom), NodeRuntime.runMain)
