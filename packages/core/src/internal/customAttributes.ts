import { Either, ParseResult, type Schema } from "effect"
import type { RecordOf } from "../Models.js"
import type { Resource } from "../Resource.js"
import { InvalidCustomAttributes } from "../ScrollError.js"
import { bounded, firstIssue } from "./issue.js"
import { printable } from "./redaction.js"

/**
 * Types a page's records by a schema of the user's for their custom attributes. Decoded, not only validated, so that
 * a transformation (`Schema.NumberFromString`) gives what its type says; attributes the schema does not name are kept
 * (`onExcessProperty: "preserve"`), as a record keeps its unnamed fields. Each record is copied, shallowly, with the
 * decoded attributes: the received one is left as it was, for a double or a restart that hands it out again.
 */
export const decoder = <R extends Resource, A, I>(resource: R, schema: Schema.Schema<A, I>) => {
  const decode = ParseResult.decodeUnknownEither(schema, { errors: "first", onExcessProperty: "preserve" })
  return (records: ReadonlyArray<RecordOf<R>>): Either.Either<ReadonlyArray<RecordOf<R, A>>, InvalidCustomAttributes> => {
    const typed: Array<RecordOf<R, A>> = []
    for (const record of records) {
      // Intercom's way of saying "none" is `{}`; null and absent say the same.
      const decoded = decode(record.custom_attributes ?? {})
      if (Either.isLeft(decoded)) {
        const { message, path } = firstIssue(decoded.left)
        // The id and the attribute's name are the server's words, printed on a terminal as the client's others are.
        return Either.left(
          new InvalidCustomAttributes({
            resource,
            id: printable(record.id),
            path: bounded(printable(["custom_attributes", ...path].map(String).join("."))),
            issue: message
          })
        )
      }
      typed.push({ ...record, custom_attributes: decoded.right } as RecordOf<R, A>)
    }
    return Either.right(typed)
  }
}
