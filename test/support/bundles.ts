/**
 * Vitest's global setup for the tests that start our programs as processes: each bin runs a bundle built from the
 * source (scripts/bundle.mjs), brought up to date here, so that `pnpm test` alone always tests the current source.
 * A bundle whose sources have not changed since it was built is not rebuilt.
 */
import { ensureBundled } from "../../scripts/bundle.mjs"

export default async function setup(): Promise<void> {
  await ensureBundled()
}
