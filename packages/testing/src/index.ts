/**
 * Test harnesses shared by the packages (private: not published).
 */
export * as PostgresDatabase from "./PostgresDatabase.js"
export * as PostgresServer from "./PostgresServer.js"
export * as ClockSteps from "./ClockSteps.js"
export * as Settle from "./Settle.js"
export * as OtlpCollector from "./OtlpCollector.js"
export * as Watchdog from "./Watchdog.js"
export * as BlackHole from "./BlackHole.js"
export * as Standby from "./Standby.js"
export * as QueryPlan from "./QueryPlan.js"
