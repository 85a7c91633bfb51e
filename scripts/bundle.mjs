/**
 * The programs of the public packages, each bundled into one ES module with everything it imports, effect included:
 * `src/bin.ts` → `dist/bin.js` (what the package's bin runs; the CLI's is a script, below) and `src/start.ts` →
 * `dist/start.js` (`pnpm start`).
 *
 * Why a bundle: a program loading effect, @effect/platform-node and @effect/cli module by module from node_modules
 * spends most of a second and a half just loading them; one tree-shaken file starts in a fraction of that. A program
 * is a process of its own and shares no Context with anyone, so its own copy of effect costs nothing in correctness.
 * The packages' library entries (`exports`) stay plain modules over the app's peer copy of effect.
 *
 * What a program imports with `import()` goes to chunks of its own (`dist/chunks/`), read only when that import runs:
 * the CLI's subcommands load what runs them that way, so that `--help` parses a third of the code
 * (packages/bench/NOTES.md, "Startup"). The programs of one package share their chunks; each package is built apart,
 * so that no package's program reads another package's files.
 *
 * A program named in `scripts` is one CommonJS file instead (`dist/<name>.cjs`, no chunks), which its package's bin
 * compiles from a V8 code cache (`packages/cli/bin/intercom-scroll.js`): Node 20 caches no ES module's code. What it
 * imports with `import()` is bundled in, but evaluated only when the import runs (esbuild wraps it), so its record's
 * `atStart` comes from the same program analysed as modules with chunks, which are not written.
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
 * The programs bundled as one CommonJS script, each with the file that runs it from a V8 code cache: the CLI's bin,
 * whose start-up is a goal of its own (packages/bench/NOTES.md, "Startup").
 */
const scripts = new Map([["cli/bin", "packages/cli/bin/intercom-scroll.js"]])

/**
 * @typedef {{ readonly name: string, readonly directory: string, readonly source: string, readonly output: string, readonly record: string, readonly runner: string }} Program
 *   Paths relative to the repository root: `source` is bundled to `output` (and chunks beside it, unless the program
 *   is a script); `record` lists the files it was built from; `directory` is its package's; `runner` is the file that
 *   runs it (`output` itself, or a script's bin).
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
        .map((name) => {
          const output = NodePath.join(directory, "dist", `${name}.${scripts.has(`${entry.name}/${name}`) ? "cjs" : "js"}`)
          return {
            name: `${entry.name}/${name}`,
            directory,
            source: NodePath.join(directory, "src", `${name}.ts`),
            output,
            record: NodePath.join(directory, "build", `${name}.bundle.json`),
            runner: scripts.get(`${entry.name}/${name}`) ?? output
          }
        })
    })

const modified = (file) => {
  try {
    return Fs.statSync(NodePath.join(root, file)).mtimeMs
  } catch {
    return undefined
  }
}

/**
 * Whether the bundle is newer than each file it was built from, than this script, and than the lockfile: a dependency
 * updated in place (effect 3.22.4 to 3.22.5) is bundled from new paths, while the old ones, which the record lists,
 * stay in the store unchanged and looked fresh.
 * @param {Pick<Program, "output" | "record">} program
 */
export const isFresh = (program) => {
  const built = modified(program.output)
  if (built === undefined || modified(program.record) === undefined) return false
  const inputs = JSON.parse(Fs.readFileSync(NodePath.join(root, program.record), "utf8")).inputs
  return [NodePath.relative(root, self), "pnpm-lock.yaml", ...inputs].every((input) => {
    const time = modified(input)
    return time !== undefined && time <= built
  })
}

/** Writes through a temporary file and a rename, so that two builds at once never leave a torn file. */
export const writeAtomically = (file, contents) => {
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

/** Where a package's programs put the chunks they share: under dist/, never imported by name. */
const chunks = "chunks"

/** `output` and every chunk it imports, with `import()` too, or (`atStart`) only those it reads before a line of it runs. */
const outputsOf = (metafile, output, { atStart = false } = {}) => {
  const seen = new Set()
  const visit = (file) => {
    if (seen.has(file) || metafile.outputs[file] === undefined) return
    seen.add(file)
    for (const imported of metafile.outputs[file].imports) {
      if (!atStart || imported.kind === "import-statement") visit(imported.path)
    }
  }
  visit(output)
  return seen
}

/**
 * The inputs of `output` and of every chunk it imports: with `import()` too, or (`atStart`) only the chunks it reads
 * before a line of it runs.
 */
const inputsOf = (metafile, output, options = {}) =>
  [...new Set([...outputsOf(metafile, output, options)].flatMap((file) => Object.keys(metafile.outputs[file].inputs)))]

/**
 * Bundles the programs of one package in one esbuild run (the modules they share are read once, and go to shared
 * chunks), and each of its scripts in one more. The source map carries the text of the workspace's own sources, which the packages do not ship, and only
 * the positions of third-party code. Chunks the build no longer writes are removed.
 * @param {string} directory
 * @param {ReadonlyArray<Program>} list
 */
const bundlePackage = async (directory, list) => {
  const esbuild = await import("esbuild")
  const outdir = NodePath.join(directory, "dist")
  const options = {
    absWorkingDir: root,
    outdir,
    bundle: true,
    platform: "node",
    target: "node20",
    minify: true,
    sourcemap: "linked",
    metafile: true,
    write: false,
    logLevel: "warning",
    // SQLite's driver, @effect/sql-sqlite-node, is bundled with the rest (SyncDatabase imports it with import(), so it
    // lands in what runs only for a SQLite database), over the program's own copy of effect: loaded from node_modules
    // it was ~500 CommonJS modules, a second effect and fast-check among them, ~0.35 s of CPU at each start. The native
    // addon it stands on, better-sqlite3, cannot be bundled: it is what the user installs to sync into SQLite, found
    // where the program is installed, and required only when the driver's code first runs.
    external: ["better-sqlite3"]
  }
  const entryPoint = (program) => ({ in: program.source, out: NodePath.basename(program.output, NodePath.extname(program.output)) })
  /** The programs as ES modules, what `import()` loads in chunks: written for the modules, analysed for the scripts. */
  const modules = await esbuild.build({
    ...options,
    entryPoints: list.map(entryPoint),
    splitting: true,
    chunkNames: `${chunks}/[hash]`,
    format: "esm",
    // Bundled CommonJS (undici, yaml, …) calls require() for Node's own modules; an ES module has none of its own.
    banner: { js: `import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);` }
  })
  const isScript = (program) => scripts.has(program.name)
  const moduleOutput = (program) => NodePath.join(outdir, `${entryPoint(program).out}.js`)
  // What the module programs read: the scripts' own entries and the chunks only they import are left unwritten.
  const read = new Set(list.filter((program) => !isScript(program)).flatMap((program) => [...outputsOf(modules.metafile, moduleOutput(program))]))
  const written = modules.outputFiles.filter((file) => read.has(NodePath.relative(root, file.path).replace(/\.map$/, "")))
  for (const program of list.filter(isScript)) {
    for (const stale of [moduleOutput(program), `${moduleOutput(program)}.map`, `${moduleOutput(program)}.LICENSES.txt`]) {
      Fs.rmSync(NodePath.join(root, stale), { force: true })
    }
    const script = await esbuild.build({
      ...options,
      entryPoints: [entryPoint(program)],
      format: "cjs",
      outExtension: { ".js": ".cjs" },
      // A script runs outside Node's module loader, where import() has no loader to ask: what a program imports with
      // import() is bundled in and evaluated when the import runs, better-sqlite3 then required.
      supported: { "dynamic-import": false }
    })
    written.push(...script.outputFiles)
  }
  for (const file of written) {
    let contents = file.contents
    if (file.path.endsWith(".map")) {
      const map = JSON.parse(file.text)
      map.sourcesContent = map.sourcesContent.map((content, index) => map.sources[index].includes("node_modules/") ? null : content)
      contents = JSON.stringify(map)
    }
    writeAtomically(file.path, contents)
  }
  const paths = new Set(written.map((file) => file.path))
  const chunkDirectory = NodePath.join(root, outdir, chunks)
  for (const entry of Fs.existsSync(chunkDirectory) ? Fs.readdirSync(chunkDirectory) : []) {
    if (!paths.has(NodePath.join(chunkDirectory, entry))) Fs.rmSync(NodePath.join(chunkDirectory, entry), { force: true })
  }
  for (const program of list) {
    // The modules' record, for a script too: the same inputs, and what its entry imports statically is what it evaluates first.
    const entry = moduleOutput(program)
    const inputs = inputsOf(modules.metafile, entry)
    writeAtomically(NodePath.join(root, `${program.output}.LICENSES.txt`), licences(inputs))
    // `atStart`: what the program reads and evaluates before it runs, whatever its arguments (see test/packages.test.ts).
    const atStart = inputsOf(modules.metafile, entry, { atStart: true })
    writeAtomically(NodePath.join(root, program.record), JSON.stringify({ source: program.source, inputs, atStart }, null, 1))
  }
}

/**
 * Bundles the programs, and the other programs of their packages with them (they share chunks).
 * @param {ReadonlyArray<Program>} list
 */
export const bundle = async (list) => {
  const directories = new Set(list.map((program) => program.directory))
  for (const directory of directories) {
    await bundlePackage(directory, programs().filter((program) => program.directory === directory))
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
