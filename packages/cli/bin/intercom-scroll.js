#!/usr/bin/env node
// Workspace packages ship TypeScript source; tsx runs it without a build step.
import { register } from "tsx/esm/api"

register()
await import("../src/bin.ts")
