/**
 * The errors Intercom answers with, and their `error.list` rendering.
 *
 * @internal
 */
import { HttpServerResponse } from "@effect/platform"
import { Schema } from "effect"

/** An Intercom API error: an HTTP status and one `error.list` entry. */
export class ApiError extends Schema.TaggedError<ApiError>()("ApiError", {
  status: Schema.Int,
  code: Schema.String,
  message: Schema.String
}) {
  /** The response Intercom sends for this error. */
  toResponse(requestId: string): HttpServerResponse.HttpServerResponse {
    return HttpServerResponse.unsafeJson({
      type: "error.list",
      request_id: requestId,
      errors: [{ code: this.code, message: this.message }]
    }, { status: this.status })
  }
}

export const unauthorized = () => new ApiError({ status: 401, code: "unauthorized", message: "Access Token Invalid" })

/** What Intercom answers a token whose app may not read what it asks for (here, admins: `GET /me`). */
export const tokenUnauthorized = () =>
  new ApiError({ status: 403, code: "token_unauthorized", message: "Not authorized to access resource" })

export const versionInvalid = () =>
  new ApiError({
    status: 400,
    code: "intercom_version_invalid",
    message: "Requested resource is not available in current API version"
  })

/** Worded as each version's docs word it: the 1.x users and leads scrolls lock the workspace, 2.x's companies the app. */
export const scrollExists = (major: 1 | 2) =>
  new ApiError({ status: 400, code: "scroll_exists", message: `scroll already exists for this ${major === 1 ? "workspace" : "app"}` })

export const scrollNotFound = () =>
  new ApiError({ status: 404, code: "not_found", message: "scroll parameter not found" })

export const routeNotFound = () => new ApiError({ status: 404, code: "not_found", message: "Resource Not Found" })

export const serverError = () =>
  new ApiError({
    status: 500,
    code: "server_error",
    message: "Request failed due to an internal network error. Please restart the scroll operation."
  })

export const rateLimited = (limit: number, windowSeconds: number) =>
  new ApiError({ status: 429, code: "rate_limit_exceeded", message: `Exceeded rate limit of ${limit} in ${windowSeconds}_seconds` })
