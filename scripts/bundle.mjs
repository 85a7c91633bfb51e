/**
 * The programs of the public packages, each bundled into one ES module with everything it imports, effect included:
 * `src/bin.ts` → `dist/bin.js` (what the package's bin runs) and `src/start.ts` → `dist/start.js` (`pnpm start`).
 *
 * Why a bundle: a program loading effect, @effect/platform-node and @effect/cli module by module from node_modules
 * spends most of a second and a half just loading them; one tree-shaken file starts in a fraction of that. A program
 * is a process of its own and shares no Context with anyone, so its own copy of effect costs nothing in correctness.
 * The packages' library entries (`exports`) stay plain modules over the app's peer copy of effect.
 *
 * Incremental: a bundle is rebuilt only when one of the files it was built from is newer than it, or gone, or this
 * script changed (the inputs are recorded beside it in build/). `node scripts/bundle.mjs` brings every bundle up to
 * date; `--force` rebuilds them all.
 */
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

export const root = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..")
const self = fileURLToPath(import.meta.url)

/** The program sources a public package may have, by name: `src/<name>.ts`. */
const programNames = ["bin", "start"]

/**
 * @typedef {{ readonly name: string, readonly source: string, readonly output: string, readonly record: string }} Program
 *   Paths relative to the repository root: `source` is bundled to `output`; `record` lists the files it was built from.
 */

/** Every program of every public (not private) package under packages/. @returns {Array<Program>} */
export const programs = () =>
  Fs.readdirSync(NodePath.join(root, "packages"), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((entry) => {
      const directory = NodePath.join("packages", entry.name)
      const manifest = NodePath.join(root, directory, "package.json")
      if (!Fs.existsSync(manifest) || JSON.parse(Fs.readFileSync(manifest, "utf8")).private === true) return []
      return programNames
        .filter((name) => Fs.existsSync(NodePath.join(root, directory, "src", `${name}.ts`)))
        .map((name) => ({
          name: `${entry.name}/${name}`,
          source: NodePath.join(directory, "src", `${name}.ts`),
          output: NodePath.join(directory, "dist", `${name}.js`),
          record: NodePath.join(directory, "build", `${name}.bundle.json`)
        }))
    })

const modified = (file) => {
  try {
    return Fs.statSync(NodePath.join(root, file)).mtimeMs
  } catch {
    return undefined
  }
}

/** Whether the bundle is newer than each file it was built from, and than this script. @param {Program} program */
export const isFresh = (program) => {
  const built = modified(program.output)
  if (built === undefined || modified(program.record) === undefined) return false
  const inputs = JSON.parse(Fs.readFileSync(NodePath.join(root, program.record), "utf8")).inputs
  return [NodePath.relative(root, self), ...inputs].every((input) => {
    const time = modified(input)
    return time !== undefined && time <= built
  })
}

/** Writes through a temporary file and a rename, so that two builds at once never leave a torn file. */
const writeAtomically = (file, contents) => {
  Fs.mkdirSync(NodePath.dirname(file), { recursive: true })
  const temporary = `${file}.${process.pid}.tmp`
  Fs.writeFileSync(temporary, contents)
  Fs.renameSync(temporary, file)
}

/** The package a bundled file came from, by its path under node_modules (undefined for the workspace's sources). */
const packageOf = (input) => {
  const match = /^(.*node_modules\/((?:@[^/]+\/)?[^/]+))\/(?!.*node_modules\/)/.exec(input)
  return match === null ? undefined : { name: match[2], directory: match[1] }
}

/**
 * The licences of the third-party packages a bundle carries (MIT, ISC and the like ask that their notice go with
 * every copy): name, version and licence file of each, written beside the bundle.
 */
const licences = (inputs) => {
  const packages = new Map()
  for (const input of inputs) {
    const found = packageOf(input)
    if (found !== undefined) packages.set(found.name, found.directory)
  }
  return [...packages].sort(([a], [b]) => a.localeCompare(b)).map(([name, directory]) => {
    const absolute = NodePath.join(root, directory)
    const manifest = JSON.parse(Fs.readFileSync(NodePath.join(absolute, "package.json"), "utf8"))
    const file = Fs.readdirSync(absolute).find((entry) => /^(licen[cs]e|copying)/i.test(entry))
    const text = file === undefined ? `License: ${manifest.license ?? "see the package"}` : Fs.readFileSync(NodePath.join(absolute, file), "utf8").trim()
    return `${name}@${manifest.version}\n\n${text}\n`
  }).join(`\n${"-".repeat(80)}\n\n`)
}

/**
 * Bundles the programs in one esbuild run (the modules they share are read once). The source map carries the text
 * of the workspace's own sources, which the packages do not ship, and only the positions of third-party code.
 * @param {ReadonlyArray<Program>} list
 */
export const bundle = async (list) => {
  if (list.length === 0) return
  const esbuild = await import("esbuild")
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: list.map((program) => ({ in: program.source, out: program.output.replace(/\.js$/, "") })),
    outdir: ".",
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    minify: true,
    sourcemap: "linked",
    metafile: true,
    write: false,
    logLevel: "warning",
    // SQLite's driver stands on better-sqlite3, a native addon that cannot be bundled and that its ES module imports
    // at once: bundled, the whole program would need it. Left out, it is what the user installs to sync into SQLite,
    // and the program imports it (SyncDatabase) only then. pg is plain JavaScript, bundled like the rest.
    external: ["@effect/sql-sqlite-node"],
    // Bundled CommonJS (undici, yaml, …) calls require() for Node's own modules; an ES module has none of its own.
    banner: { js: `import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);` }
  })
  for (const file of result.outputFiles) {
    let contents = file.contents
    if (file.path.endsWith(".map")) {
      const map = JSON.parse(file.text)
      map.sourcesContent = map.sourcesContent.map((content, index) => map.sources[index].includes("node_modules/") ? null : content)
      contents = JSON.stringify(map)
    }
    writeAtomically(file.path, contents)
  }
  for (const program of list) {
    const inputs = Object.keys(result.metafile.outputs[program.output].inputs)
    writeAtomically(NodePath.join(root, `${program.output}.LICENSES.txt`), licences(inputs))
    writeAtomically(NodePath.join(root, program.record), JSON.stringify({ source: program.source, inputs }, null, 1))
  }
}

/** Rebuilds the given programs (by default all) whose bundle is missing or older than its sources. */
export const ensureBundled = async (list = programs(), { force = false } = {}) => {
  const stale = list.filter((program) => force || !isFresh(program))
  await bundle(stale)
  return stale
}

if (process.argv[1] === self) {
  const started = Date.now()
  const built = await ensureBundled(programs(), { force: process.argv.includes("--force") })
  const names = built.map((program) => program.name).join(", ")
  console.log(built.length === 0 ? "bundles up to date" : `bundled ${names} in ${Date.now() - started} ms`)
}
