/**
 * The three record kinds a workspace can scroll over.
 *
 * @example
 * ```ts
 * import { Resource } from "@intercom-scroll/simulator"
 *
 * const paths = Resource.all.map((resource) => Resource.path[resource])
 * assert.deepStrictEqual(paths, ["/users/scroll", "/contacts/scroll", "/companies/scroll"])
 * ```
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * `users` are served at `/users/scroll`, `leads` at `/contacts/scroll`, `companies` at `/companies/scroll`.
 *
 * @since 0.1.0
 * @category models
 */
export const Resource = Schema.Literal("users", "leads", "companies")

/**
 * @since 0.1.0
 * @category models
 */
export type Resource = typeof Resource.Type

/**
 * Every resource, in a fixed order.
 *
 * @since 0.1.0
 * @category constants
 */
export const all: ReadonlyArray<Resource> = Resource.literals

/**
 * The URL path of a resource's scroll endpoint.
 *
 * @since 0.1.0
 * @category constants
 */
export const path: Readonly<Record<Resource, `/${string}`>> = {
  users: "/users/scroll",
  leads: "/contacts/scroll",
  companies: "/companies/scroll"
}
