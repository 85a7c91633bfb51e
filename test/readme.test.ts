/**
 * The README's code is real code: its "library in 20 lines" is examples/src/readme-library.ts, which `pnpm check`
 * type-checks, and its commands name scripts that exist.
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodePath from "node:path"
import { root } from "./support/processes.js"

const read = (...segments: ReadonlyArray<string>) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(NodePath.join(root, ...segments)))

const scriptsOf = (...segments: ReadonlyArray<string>) =>
  Effect.map(read(...segments, "package.json"), (json) => Object.keys((JSON.parse(json) as { scripts: object }).scripts))

/** pnpm's own commands, which a README may show beside the scripts. */
const pnpmCommands = new Set(["install", "i", "approve-builds", "rebuild"])

describe("README.md", () => {
  it.effect("its library in 20 lines is examples/src/readme-library.ts, after that file's opening comment", () =>
    Effect.gen(function*() {
      const readme = yield* read("README.md")
      const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1]
      const source = (yield* read("examples", "src", "readme-library.ts")).replace(/^\/\*\*[\s\S]*?\*\/\n/, "")
      expect(block).toBe(source)
      expect(source.trim().split("\n").length).toBeLessThanOrEqual(20)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("the core package's library in 20 lines is examples/src/core-readme.ts, after that file's opening comment", () =>
    Effect.gen(function*() {
      const readme = yield* read("packages", "core", "README.md")
      const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1]
      const source = (yield* read("examples", "src", "core-readme.ts")).replace(/^\/\*\*[\s\S]*?\*\/\n/, "")
      expect(block).toBe(source)
      expect(source.trim().split("\n").length).toBeLessThanOrEqual(20)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("the fleet package's library route is examples/src/fleet-readme.ts, after that file's opening comment", () =>
    Effect.gen(function*() {
      const readme = yield* read("packages", "fleet", "README.md")
      const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1]
      const source = (yield* read("examples", "src", "fleet-readme.ts")).replace(/^\/\*\*[\s\S]*?\*\/\n/, "")
      expect(block).toBe(source)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("the simulator package's first example is test/simulator-readme.test.ts, after that file's opening comment", () =>
    Effect.gen(function*() {
      const readme = yield* read("packages", "simulator", "README.md")
      const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1]
      const source = (yield* read("test", "simulator-readme.test.ts")).replace(/^\/\*\*[\s\S]*?\*\/\n/, "")
      expect(block).toBe(source)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("the simulator package's test over a real port (its second and third examples) is in test/simulator-readme-port.test.ts", () =>
    Effect.gen(function*() {
      const readme = yield* read("packages", "simulator", "README.md")
      // The blocks sit in a list item, two spaces in.
      const blocks = [...readme.matchAll(/^( *)```ts\n([\s\S]*?)^ *```/gm)].map(([, indent, block]) =>
        block!.split("\n").map((line) => line.slice(indent!.length)).join("\n"))
      const source = yield* read("test", "simulator-readme-port.test.ts")
      expect(blocks.length).toBeGreaterThanOrEqual(3)
      for (const block of blocks.slice(1, 3)) expect(source).toContain(block)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("every `pnpm <script>` and `pnpm -C examples <script>` it shows exists", () =>
    Effect.gen(function*() {
      const readme = yield* read("README.md")
      const rootScripts = yield* scriptsOf()
      const exampleScripts = yield* scriptsOf("examples")
      // Commands, in backticks or at the start of a line of a code block; not the word in prose.
      const named = [...readme.matchAll(/(?:^|`)pnpm (?:-s )?(-C examples )?([a-z][a-z-]*)/gm)]
        .filter(([, , script]) => !pnpmCommands.has(script))
      expect(named.length).toBeGreaterThan(5)
      for (const [, examples, script] of named) {
        expect(examples === undefined ? rootScripts : exampleScripts).toContain(script)
      }
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("every effect package (and better-sqlite3) an `npm install` in a README names carries the range the packages ask for", () =>
    Effect.gen(function*() {
      // npm's `latest` of effect is a major the packages cannot run on, so an unversioned name fails the install.
      const packages = ["core", "sync", "fleet", "cli", "simulator"]
      const ranges = new Map<string, string>()
      for (const pkg of packages) {
        const manifest = JSON.parse(yield* read("packages", pkg, "package.json")) as {
          readonly peerDependencies?: Readonly<Record<string, string>>
        }
        for (const [name, range] of Object.entries(manifest.peerDependencies ?? {})) ranges.set(name, range)
      }
      const readmes = ["README.md", ...packages.map((pkg) => NodePath.join("packages", pkg, "README.md"))]
      let named = 0
      for (const readme of readmes) {
        // A command runs to the end of its line, or of its code line continued with a backslash, or of its backticks.
        const text = (yield* read(readme)).replace(/\\\n\s*/g, " ")
        for (const [command] of text.matchAll(/npm (?:install|i) [^`\n#]*/g)) {
          for (const [, name, range] of command.matchAll(/(?:^|\s)(effect|@effect\/[a-z-]+|better-sqlite3)(?:@(\S+))?/g)) {
            named++
            expect({ readme, name, range }).toEqual({ readme, name, range: ranges.get(name!) })
          }
        }
      }
      expect(named).toBeGreaterThan(10)
    }).pipe(Effect.provide(NodeContext.layer)))
})
