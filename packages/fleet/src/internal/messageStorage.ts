/**
 * A runner's cluster messages over SQL (`SqlMessageStorage`), each storage operation given a deadline.
 *
 * @effect/cluster (0.60) reads and writes its messages with no deadline: `Sharding`'s storage read loop waits for each
 * read before the next, and an entity's answer is stored before its request ends. On a path gone silent (a firewall or
 * a NAT that dropped a pool connection's state, something on the way still acknowledging) the read waited without end:
 * the runner took its shards back and started no `Sync` until it restarted (packages/bench/NOTES.md, "A fleet runner
 * cut off by a silent path"). Each operation is a few short statements, so one that has waited `deadline` for them is
 * a fault, not a server at work: its session is ended (`SilentSession.withDeadline`), the operation fails, and the
 * cluster tries again on another connection (the read loop at its next poll, an answer up to 4 times).
 *
 * @internal
 */
import { MessageStorage, Snowflake, SqlMessageStorage } from "@effect/cluster"
import { PersistenceError } from "@effect/cluster/ClusterError"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Duration, Effect, Layer } from "effect"
import * as SilentSession from "./silentSession.js"

/**
 * How long a storage operation may wait for PostgreSQL. Its statements take milliseconds; twice the cluster's own
 * deadline for a shard lock operation nearby, so that a loaded server trips the shard locks well before this.
 */
export const deadline = Duration.seconds(10)

/** `SqlMessageStorage.layer`, each operation that reaches the database under `deadline` on PostgreSQL. */
export const layer = Layer.scoped(
  MessageStorage.MessageStorage,
  Effect.gen(function*() {
    const storage = yield* SqlMessageStorage.make()
    const sql = yield* SqlClient.SqlClient
    if (!sql.onDialectOrElse({ pg: () => true, orElse: () => false })) return storage
    const scope = yield* Effect.scope
    const watched = (operation: string) =>
      SilentSession.withDeadline(sql, deadline, {
        scope,
        onSilent: (session) =>
          Effect.logWarning(
          `The cluster's message storage (${operation}) has waited ${
            Duration.format(deadline)
          } for PostgreSQL: ending its session (pid ${session.pid}), whose path may have gone silent, so that the cluster tries again on another`
          )
      })
    const within = <A, E>(operation: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E | PersistenceError> =>
      // A connection that could not be had is the storage's failure, as it is to every statement of it.
      Effect.mapError(watched(operation)(effect), (error) => error instanceof SqlError ? new PersistenceError({ cause: error }) : error)
    const service: MessageStorage.MessageStorage["Type"] = {
      ...storage,
      saveRequest: (envelope) => within("saveRequest", storage.saveRequest(envelope)),
      saveEnvelope: (envelope) => within("saveEnvelope", storage.saveEnvelope(envelope)),
      saveReply: (reply) => within("saveReply", storage.saveReply(reply)),
      clearReplies: (requestId) => within("clearReplies", storage.clearReplies(requestId)),
      repliesFor: (requests) => within("repliesFor", storage.repliesFor(requests)),
      repliesForUnfiltered: (requestIds) => within("repliesForUnfiltered", storage.repliesForUnfiltered(requestIds)),
      requestIdForPrimaryKey: (options) => within("requestIdForPrimaryKey", storage.requestIdForPrimaryKey(options)),
      unprocessedMessages: (shardIds) => within("unprocessedMessages", storage.unprocessedMessages(shardIds)),
      unprocessedMessagesById: (messageIds) => within("unprocessedMessagesById", storage.unprocessedMessagesById(messageIds)),
      resetShards: (shardIds) => within("resetShards", storage.resetShards(shardIds)),
      resetAddress: (address) => within("resetAddress", storage.resetAddress(address)),
      clearAddress: (address) => within("clearAddress", storage.clearAddress(address))
    }
    return service
  })
).pipe(Layer.provide(Snowflake.layerGenerator))
