/**
 * Another application's statement at work on the server a failover moves the address to (`Standby`), in a session
 * given the pid of a session of the code under test: a cancel or a termination by that pid alone, sent after the
 * failover, reaches it there. It waits for a lock the test holds, until `finish` lets it go and says how it ended.
 */
import { SqlClient } from "@effect/sql"
import { expect } from "@effect/vitest"
import { PostgresDatabase, type Standby } from "@intercom-scroll/testing"
import { Cause, Context, Effect, Exit, Fiber, Layer, Option } from "effect"

export const atWork = (standby: Standby.Standby, pid: number) =>
  Effect.gen(function*() {
    const onStandby = Context.get(yield* Layer.build(Layer.orDie(PostgresDatabase.layerAt(standby.url))), SqlClient.SqlClient)
    const gate = yield* Effect.orDie(onStandby.reserve)
    yield* Effect.orDie(gate.execute("SELECT pg_advisory_lock(1)", [], undefined))
    const bystander = yield* standby.bystander(pid)
    const working = yield* Effect.fork(Effect.exit(bystander.execute("SELECT pg_advisory_lock(1)")))
    return {
      onStandby,
      /**
       * Checks that the statement is still at work (not cancelled), lets it go, and that it was answered and its session
       * is alive: "canceling statement due to user request" where a cancel by its pid reached it.
       */
      finish: Effect.gen(function*() {
        expect(yield* Fiber.poll(working)).toEqual(Option.none())
        yield* Effect.orDie(gate.execute("SELECT pg_advisory_unlock(1)", [], undefined))
        const done = yield* Fiber.join(working)
        expect(Exit.isSuccess(done) ? "answered" : Cause.pretty(done.cause)).toEqual("answered")
        expect(yield* bystander.alive).toBe(true)
      })
    }
  })
