/**
 * @since 0.1.0
 */
export * as IntercomClient from "./IntercomClient.js"

/**
 * @since 0.1.0
 */
export * as Models from "./Models.js"

/**
 * @since 0.1.0
 */
export * as Progress from "./Progress.js"

/**
 * @since 0.1.0
 */
export * as Resource from "./Resource.js"

/**
 * @since 0.1.0
 */
export * as Scroll from "./Scroll.js"

/**
 * @since 0.1.0
 */
export * as ScrollError from "./ScrollError.js"

/**
 * @since 0.1.0
 */
export * as ScrollMetrics from "./ScrollMetrics.js"
