/**
 * @since 0.1.0
 */
export * as FaultPlan from "./FaultPlan.js"

/**
 * @since 0.1.0
 */
export * as Resource from "./Resource.js"

/**
 * @since 0.1.0
 */
export * as Simulator from "./Simulator.js"

/**
 * @since 0.1.0
 */
export * as Embedded from "./Embedded.js"
