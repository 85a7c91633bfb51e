/**
 * PostgreSQL: a statement on a connection of its own, outside the pool, made as the pool makes its connections: for a
 * look of the silence watch that no connection of the pool came free for (`Pending`), which says nothing of the
 * server. A pool full of waits on a server that answers nothing (a fleet runner's: the cluster's storage polls and
 * statement cancels queue on it, each new connection holding its place for the connect timeout) left every look
 * without evidence, and the run waiting without end; on a server that answers, this connection is answered, and a full
 * pool cuts nothing. One connection a look, closed after it: one session more than the pool's bound, only while the
 * pool stays full (a server or role at its limit refuses it, which is an answer too).
 */
import type { SqlClient, SqlConnection } from "@effect/sql"
import type { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Exit, Predicate, Redacted } from "effect"
import { silenceCheckEvery } from "./aside.js"
import { clientOf } from "./connection.js"
import { Unanswered } from "./kind.js"

/** A statement's rows on a connection of its own; its failure the driver's error, or `Unanswered`. */
export type Outside = (statement: string, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<unknown>, unknown>

/** What this uses of node-postgres's `Client`, read structurally as `connection.ts` reads it. */
interface PgConnectionClient {
  connect(): Promise<unknown>
  query(text: string, values: ReadonlyArray<unknown>): Promise<{ readonly rows: ReadonlyArray<unknown> }>
  end(): Promise<unknown>
  on(event: "error", listener: (error: Error) => void): unknown
  readonly connection?: { readonly stream?: { readonly destroy?: () => void } }
}

type PgConnectionClientClass = new (config: object) => PgConnectionClient

/** @effect/sql-pg's `PgClient.config`, where the SqlClient is its. */
const configOf = (sql: SqlClient.SqlClient): PgClient.PgClientConfig | undefined =>
  Predicate.hasProperty(sql, "~@effect/sql-pg/PgClient") && Predicate.hasProperty(sql, "config")
    ? (sql as unknown as PgClient.PgClient).config
    : undefined

/** node-postgres's `Client`, the class of the client under a connection of the pool (pg-pool makes them with it). */
const clientClassOf = (connection: SqlConnection.Connection): PgConnectionClientClass | undefined => {
  const made = (clientOf(connection) as { readonly constructor?: unknown } | undefined)?.constructor
  return typeof made === "function" ? made as PgConnectionClientClass : undefined
}

/**
 * Statements on a connection of their own, with the options @effect/sql-pg gives its pool (its sockets too, where it
 * was given a maker of them), given `silenceCheckEvery` to connect and answer; undefined for another driver's client.
 */
export const outsideOf = (sql: SqlClient.SqlClient, connection: SqlConnection.Connection): Outside | undefined => {
  const config = configOf(sql)
  const Client = clientClassOf(connection)
  if (config === undefined || Client === undefined) return undefined
  const options = {
    connectionString: config.url === undefined ? undefined : Redacted.value(config.url),
    host: config.host,
    port: config.port,
    database: config.database,
    user: config.username,
    password: config.password === undefined ? undefined : Redacted.value(config.password),
    ssl: config.ssl,
    ...(config.stream === undefined ? {} : { stream: config.stream }),
    // node-postgres's own bound as well: without one it waits for the kernel's connect (minutes).
    connectionTimeoutMillis: Duration.toMillis(config.connectTimeout ?? silenceCheckEvery),
    application_name: config.applicationName ?? "@effect/sql-pg"
  }
  const destroy = (client: PgConnectionClient) => client.connection?.stream?.destroy?.()
  return (statement, params) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        const client = new Client(options)
        // A socket's error after the answer (the server gone meanwhile) would otherwise be thrown.
        client.on("error", () => undefined)
        return client
      }),
      (client) =>
        Effect.tryPromise({ try: () => client.connect().then(() => client.query(statement, params)), catch: (error) => error }).pipe(
          Effect.map(({ rows }) => rows),
          Effect.timeoutFail({
            duration: silenceCheckEvery,
            onTimeout: () =>
              new Unanswered({
                message: `the server did not answer within ${Duration.format(silenceCheckEvery)} on a connection of its own either`
              })
          })
        ),
      // Answered, ended with a word to the server (bounded: it may go silent meanwhile); else closed without one.
      (client, exit) =>
        Exit.isSuccess(exit)
          ? Effect.asVoid(Effect.forkDaemon(
            Effect.promise(() => client.end().catch(() => undefined)).pipe(
              Effect.timeoutOption(silenceCheckEvery),
              Effect.ensuring(Effect.sync(() => destroy(client)))
            )
          ))
          : Effect.sync(() => destroy(client))
    )
}
