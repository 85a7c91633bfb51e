/**
 * The three things Intercom's Scroll API walks, and what each needs on the wire.
 *
 * @example
 * import { Resource } from "@intercom-scroll/core"
 * import { Schema } from "effect"
 *
 * const resource = Schema.decodeUnknownSync(Resource.Resource)("leads")
 * console.log(Resource.paths[resource], Resource.defaultVersions[resource]) // /contacts/scroll 1.4
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
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
 * The scroll endpoint of each resource, relative to the workspace's base URL.
 *
 * @since 0.1.0
 * @category constants
 */
export const paths: { readonly [R in Resource]: string } = {
  users: "/users/scroll",
  leads: "/contacts/scroll",
  companies: "/companies/scroll"
}

/**
 * Users and leads scroll exist only in API 1.x; companies scroll answers in both, and 2.x is current.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultVersions: { readonly [R in Resource]: string } = {
  users: "1.4",
  leads: "1.4",
  companies: "2.14"
}
