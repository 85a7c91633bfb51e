/**
 * `pnpm start`, `pnpm -s cli …` and `pnpm -s simulator …`: `node scripts/run.mjs <package>/<program> [args]` brings the
 * program's bundle up to date (scripts/bundle.mjs: a fresh clone's first run builds it, later runs only check that
 * no source is newer) and runs it in this same process, with the arguments after the program's name, so that no
 * parent process of ours stands between the program and a signal.
 */
import * as NodePath from "node:path"
import { pathToFileURL } from "node:url"
import { ensureBundled, programs, root } from "./bundle.mjs"

const name = process.argv[2]
const program = programs().find((candidate) => candidate.name === name)
if (program === undefined) {
  console.error(`usage: node scripts/run.mjs <${programs().map((candidate) => candidate.name).join("|")}> [arguments]`)
  process.exit(2)
}
const started = Date.now()
if ((await ensureBundled([program])).length > 0) {
  console.error(`(built ${program.output} from source in ${((Date.now() - started) / 1000).toFixed(1)} s)`)
}
// pnpm runs the root's script in the repository's root; a relative path on its command line (`--out users.ndjson`,
// `sqlite:copy.sqlite`) means where the user called pnpm from, as it does for the installed bin. INIT_CWD is that
// directory, set afresh by pnpm for the script it runs now (not one left behind by a script further up, such as the
// tests' `pnpm test`, which start this file with a working directory of their own).
if (["start", "cli", "simulator"].includes(process.env.npm_lifecycle_event ?? "") && process.env.INIT_CWD) {
  process.chdir(process.env.INIT_CWD)
}
// The program reads its arguments from process.argv[2] on, as when its bin runs it.
process.argv.splice(2, 1)
// Through the file its bin runs (the CLI's: with its V8 flags and code cache), else the bundle itself.
await import(pathToFileURL(NodePath.join(root, program.runner)).href)
