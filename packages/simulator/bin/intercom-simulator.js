#!/usr/bin/env node
// The standalone simulator is one bundled file (src/bin.ts and all it imports, effect included), which `pnpm build`
// writes: it starts in a fraction of the time that loading its dependencies module by module takes, and a process of
// its own shares no Context with anyone.
import "../dist/bin.js"
