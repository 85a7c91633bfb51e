/**
 * @since 0.1.0
 */
export * as IntercomClient from "./IntercomClient.js"
export * as Models from "./Models.js"
export * as Progress from "./Progress.js"
export * as Resource from "./Resource.js"
export * as Scroll from "./Scroll.js"
export * as ScrollError from "./ScrollError.js"
export * as ScrollMetrics from "./ScrollMetrics.js"
