#!/usr/bin/env node
// The CLI is one bundled file (src/bin.ts and all it imports, effect included), which `pnpm build` writes: it starts
// in a fraction of the time that loading effect, @effect/platform-node and @effect/cli module by module takes. A
// process of its own shares no Context with anyone, so its own copy of effect harms no one.
import "../dist/bin.js"
