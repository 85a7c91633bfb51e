/**
 * What a database driver said, under @effect/sql's words for it.
 *
 * @internal
 */

/**
 * An error's message with its cause's, which says what happened ("database is locked", "Client has encountered a
 * connection error and is not queryable") where @effect/sql's `SqlError` says only that a statement failed.
 */
export const explain = (error: { readonly message: string; readonly cause?: unknown }): string =>
  error.cause instanceof Error && error.cause.message !== "" && error.cause.message !== error.message
    ? `${error.message}: ${error.cause.message}`
    : error.message
