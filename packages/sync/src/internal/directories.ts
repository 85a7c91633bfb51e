/**
 * A SQLite file's missing directories, made as `mkdir -p` would and each flushed into its parent: the file's own sync
 * (SQLite's, at each commit) covers its content, not the entries of the directories that lead to it, so that after a
 * power loss a directory just made, and the database in it, could be gone. As `export --out` makes its
 * file's (the CLI's `internal/atomicFile.ts`, which cannot be shared: this package cannot import the CLI, and the CLI
 * reaches only this package's public modules).
 */
import { Context, Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"

/**
 * The operations of the file system the directories are made and checked with: the node's, which a test replaces to
 * see what is made and flushed, and in which order, or to have a path refused.
 */
export class Directories extends Context.Reference<Directories>()("@intercom-scroll/sync/Directories", {
  defaultValue: () => ({
    /** `mkdir -p`: the first directory it made (the nearest to the root), or undefined when all were there. */
    make: (directory: string): Promise<string | undefined> => fs.mkdir(directory, { recursive: true }),
    /** Flushes a directory's entries to disk. */
    flush: async (directory: string): Promise<void> => {
      const handle = await fs.open(directory, "r")
      try {
        await handle.sync()
      } finally {
        await handle.close()
      }
    },
    /** Whether this process may write `target` (`access(2)`): true where it may, or where there is nothing there yet. */
    mayWrite: (target: string): Promise<boolean> =>
      fs.access(target, fs.constants.W_OK).then(() => true, (error: NodeJS.ErrnoException) => error.code === "ENOENT")
  })
}) {}

/**
 * What of a SQLite file this process may not write, `the file PATH` or `its directory DIR` (where SQLite makes the file
 * and, in WAL mode, its -wal and -shm files), or undefined when it may write both: as `access(2)` answers, so a
 * read-only mount counts, and root may write anything else.
 */
export const unwritable = (filename: string): Effect.Effect<string | undefined> =>
  Effect.gen(function*() {
    const { mayWrite } = yield* Directories
    const file = path.resolve(filename)
    if (!(yield* Effect.promise(() => mayWrite(file)))) return `the file ${file}`
    const directory = path.dirname(file)
    if (!(yield* Effect.promise(() => mayWrite(directory)))) return `its directory ${directory}`
    return undefined
  })

/**
 * Makes `directory` and the parents it lacks, then flushes each one made into its parent, the nearest to the root
 * first. Fails as `mkdir -p` does; a flush that fails (a file system that cannot sync a directory, Windows) is left
 * as it is: the database still opens.
 */
export const makeDurably = (directory: string) =>
  Effect.gen(function*() {
    const { flush, make } = yield* Directories
    const first = yield* Effect.tryPromise(() => make(directory))
    if (first === undefined) return
    // From the first made down to `directory`, each a child of the one before.
    const made = [directory]
    for (let parent = path.dirname(directory); made[0] !== first && parent !== made[0]; parent = path.dirname(parent)) {
      made.unshift(parent)
    }
    for (const each of made) yield* Effect.ignore(Effect.tryPromise(() => flush(path.dirname(each))))
  })
