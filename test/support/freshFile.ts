/**
 * A vitest setup file (vitest.config.ts): runs before each test file, so that a file sharing its worker process with
 * the files before it (`isolate: false`) starts from what a process of its own would give it.
 * - @effect/vitest's `layer(…)(name, (it) => …)` assigns its own `effect`, `scoped`, … (over the layer's runtime, and
 *   without the TestClock when `excludeTestServices`) onto vitest's `it`, which is also the `it` @effect/vitest
 *   exports: every later `it.scoped` of the process ran in the last layer's runtime, its scope closed, its clock live
 *   (`testClock.adjust is not a function` in the fleet's entity tests after a process test). The library's own are put back.
 * - core's workspace locks are process-wide on purpose: a scroll a file before cut short is no business of this one.
 */
import { effect, flakyTest, layer, live, prop, scoped, scopedLive } from "@effect/vitest"
import { globalValue } from "effect/GlobalValue"
import { it } from "vitest"

Object.assign(it, { effect, flakyTest, layer, live, prop, scoped, scopedLive })
globalValue(Symbol.for("@intercom-scroll/core/internal/workspaceLock"), () => new Map<string, unknown>()).clear()
