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
 * The two operations of the file system the directories are made with: the node's, which a test replaces to see what
 * is made and flushed, and in which order.
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
    }
  })
}) {}

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
