/**
 * Writes a file so that readers see either the previous file or the complete new one, never a part: the content
 * goes to a temporary file beside the target, is flushed to disk, and is renamed over the target only when the
 * whole stream succeeded; the directory is flushed after the rename. A failed or interrupted write removes the
 * temporary file and leaves the target alone. A target that is not a file (`/dev/null`, `/dev/stdout`, a named pipe a
 * reader waits on), or that names a descriptor of this process (`/dev/fd/3`), is written into as a shell's `>` would:
 * renamed over, the device or pipe itself would be replaced by a file (as root, `/dev/null`).
 *
 * @since 0.1.0
 */
import { randomUUID } from "node:crypto"
import * as NodeFs from "node:fs/promises"
import { FileSystem, Path } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Either, Exit, Option, Sink, Stream } from "effect"
import { OutputError } from "../ExportError.js"

/**
 * The temporary file for `target`: in the same directory (a rename across file systems would not be atomic),
 * hidden, and unique per write.
 *
 * @since 0.1.0
 * @category constructors
 */
export const temporaryPath = (path: Path.Path, target: string, unique: string): string => {
  // A name the file system takes wherever it takes the target's (255 bytes): the target's own, cut short if need be.
  const name = path.basename(target)
  const room = 255 - `..${unique}.tmp`.length
  const kept = Buffer.byteLength(name) <= room ? name : Buffer.from(name).subarray(0, room).toString("utf8").replace(/\uFFFD+$/, "")
  return path.join(path.dirname(target), `.${kept}.${unique}.tmp`)
}

/** What is written into rather than replaced: everything that is neither a file nor a directory. */
const writtenInto: ReadonlySet<FileSystem.File.Type> = new Set(["CharacterDevice", "BlockDevice", "FIFO", "Socket"])

/**
 * A path that names a descriptor of this process (`/dev/stderr`, `/dev/fd/3`, `/proc/self/fd/3`): whatever the shell
 * opened there is written into, a file too (`3>>log`). Replaced, the file would lose what the descriptor wrote before,
 * and what it writes after would go to the old file, unlinked.
 */
const descriptorPath = /^\/(?:dev\/(?:stdin|stdout|stderr|fd\/\d+)|proc\/(?:self|\d+)\/fd\/\d+)$/

/** Each chunk of bytes written whole; an empty one skipped, as platform's `writeAll` fails on zero bytes (WriteZero). */
const writeInto = (file: FileSystem.File, failed: (error: PlatformError) => OutputError) =>
  Sink.forEach((bytes: Uint8Array) => bytes.length === 0 ? Effect.void : Effect.mapError(file.writeAll(bytes), failed))

/**
 * Runs `content` into `target` atomically. Succeeds once the target holds all of it. Its directory is made if missing,
 * with its parents, before `content` runs. A target that is a symbolic link
 * stays one: the file it points to is replaced, as a shell's `>` would write there. The file replaced keeps its
 * permissions (an export of personal data kept at 0600 stays 0600); a new one gets the usual ones (umask). While it is
 * written, the temporary file is 0600. The file is a new one: its owner is whoever writes it, and a hard link to the
 * old one keeps the old content.
 *
 * @since 0.1.0
 * @category constructors
 */
export const write = Effect.fn("AtomicFile.write")(function*<E, R>(
  given: string,
  content: Stream.Stream<Uint8Array, E, R>
) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const failed = (error: PlatformError) => new OutputError({ target: given, detail: error.message })
  // What the path names, through any links (`/dev/stdout` is one to the process's own stdout).
  const previous = yield* Effect.option(fs.stat(given))
  if (Option.isSome(previous) && previous.value.type === "Directory") {
    // Refused before the scroll, not at the rename after it.
    return yield* new OutputError({ target: given, detail: "it is a directory" })
  }
  if (descriptorPath.test(given) || (Option.isSome(previous) && writtenInto.has(previous.value.type))) {
    // Opened by the path given: the real path of a process's pipe (`/proc/…/fd/1`) is a name no file has. "a": each
    // write goes where the device or pipe takes it, at no position (they cannot seek: ESPIPE). No sync: there is
    // nothing to flush to disk (fsync fails on a pipe).
    return yield* Effect.gen(function*() {
      const file = yield* fs.open(given, { flag: "a" }).pipe(Effect.mapError(failed))
      yield* Stream.run(content, writeInto(file, failed))
    }).pipe(Effect.scoped)
  }
  const target = yield* destinationOf(fs, path, given)
  const directory = path.dirname(target)
  // Before the scroll: a directory that cannot be made is said before any page is fetched.
  yield* madeIfMissing(fs, path, given, directory)
  // A new file's mode as the shell's `>` would make it (the umask's).
  const mode = Option.match(previous, { onNone: () => 0o666 & ~process.umask(), onSome: (info) => info.mode & 0o7777 })
  const temporary = temporaryPath(path, target, randomUUID())

  yield* Effect.gen(function*() {
    // Added first, so it runs last: after the file below is closed. A rename that happened leaves nothing to remove.
    yield* Effect.addFinalizer((exit) => Exit.isSuccess(exit) ? Effect.void : Effect.ignore(fs.remove(temporary)))
    yield* Effect.gen(function*() {
      // "wx": never reuse a file that happens to be there. 0600 while it is written: the records are no one else's
      // to read before the file takes the target's mode, nor after a kill leaves it behind.
      const file = yield* fs.open(temporary, { flag: "wx", mode: 0o600 }).pipe(Effect.mapError(cannotCreateIn(given, directory)))
      yield* Stream.run(content, writeInto(file, failed))
      yield* file.sync.pipe(Effect.mapError(failed))
    }).pipe(Effect.scoped)
    yield* fs.chmod(temporary, mode).pipe(Effect.mapError(failed))
    // Uninterruptible: a stop that came between the rename and its end would report the target as it was.
    yield* Effect.uninterruptible(Effect.zipRight(fs.rename(temporary, target).pipe(Effect.mapError(failed)), syncDirectory(fs, directory)))
  }).pipe(Effect.scoped)
})

/** The system's code of a failure (`ENOENT`), if it has one. */
const codeOf = (error: PlatformError): unknown =>
  error._tag === "SystemError" ? (error.cause as { readonly code?: unknown } | undefined)?.code : undefined

/**
 * Makes `directory` and the parents it lacks, as `mkdir -p` would and as `sync --database sqlite:dir/copy.db` makes its
 * file's. Each directory made is flushed into its parent, so that the export's name, flushed into `directory` after
 * the rename, does not survive a power loss without the directories that lead to it. Directories made stay, whatever
 * becomes of the export, as `mkdir -p` and the sync leave theirs.
 */
const madeIfMissing = (fs: FileSystem.FileSystem, path: Path.Path, given: string, directory: string) =>
  Effect.gen(function*() {
    // The directories missing, the deepest first, and the nearest ancestor there.
    const missing: Array<string> = []
    let nearest = directory
    for (;;) {
      const found = yield* Effect.either(fs.stat(nearest))
      if (Either.isRight(found)) {
        // What is there and not a directory: said of the one missing below it (`notes.txt/2026/users.ndjson`); of the
        // directory itself, by the temporary file's open, as before.
        if (missing.length > 0 && found.right.type !== "Directory") {
          return yield* new OutputError({ target: given, detail: `${nearest} is not a directory` })
        }
        break
      }
      // ENOTDIR: an ancestor is a file, found on the way up. Anything else (EACCES) is for the open to say.
      const code = codeOf(found.left)
      if ((code !== "ENOENT" && code !== "ENOTDIR") || path.dirname(nearest) === nearest) return
      missing.push(nearest)
      nearest = path.dirname(nearest)
    }
    if (missing.length === 0) return
    yield* fs.makeDirectory(directory, { recursive: true }).pipe(Effect.mapError((error) => {
      const code = codeOf(error)
      const detail = code === "EACCES" || code === "EPERM"
        ? `its directory ${directory} is missing, and this user may not create directories in ${nearest}`
        : `its directory ${directory} is missing, and could not be made (${typeof code === "string" ? code : error._tag})`
      return new OutputError({ target: given, detail })
    }))
    for (const made of missing) yield* syncDirectory(fs, path.dirname(made))
  })

/**
 * Why no file can be created beside `given`, in the words of the path given: the platform's message names the
 * temporary file (`FileSystem.open (/dir/.users.ndjson.<uuid>.tmp): EACCES …`), which is nothing the user typed.
 */
const cannotCreateIn = (given: string, directory: string) => (error: PlatformError): OutputError => {
  const code = codeOf(error)
  const detail = code === "ENOTDIR"
    ? `${directory} is not a directory`
    : code === "EACCES" || code === "EPERM"
    // The directory is what must be writable, not the file: said, since a writable file in it is not enough.
    ? `this user may not create files in its directory ${directory}: the export is written to a new file beside it, then renamed into place`
    : code === "EROFS"
    ? `its directory ${directory} is on a read-only file system`
    : `no file can be created in its directory ${directory} (${typeof code === "string" ? code : error._tag})`
  return new OutputError({ target: given, detail })
}

/** Links followed at most, as the kernel does (ELOOP past 40). */
const MAX_LINKS = 40

/**
 * The file writing `given` replaces: its real path; a path not there yet as it is; a link to a file not there yet (a
 * "dangling" link) the file it names, which is created, as the shell's `>` creates it, and the link stays. The links
 * are followed one at a time, each checked as the kernel checks it (`foreignLink`).
 */
const destinationOf = (fs: FileSystem.FileSystem, path: Path.Path, given: string) =>
  Effect.gen(function*() {
    // Walked a component at a time, as the kernel walks it: every link on the way (a directory's too) is checked, and
    // a link's `..` is taken from where the link really is, not from the path it was reached by.
    let done = path.isAbsolute(given) ? path.parse(given).root : process.cwd()
    let rest = given.split(path.sep).filter((name) => name !== "")
    let links = 0
    while (rest.length > 0) {
      const [name, ...after] = rest
      rest = after
      if (name === ".") continue
      if (name === "..") {
        done = path.dirname(done)
        continue
      }
      const next = path.join(done, name!)
      const link = yield* Effect.option(fs.readLink(next))
      if (Option.isNone(link)) {
        done = next
        continue
      }
      if (++links > MAX_LINKS) {
        // Refused, as the shell's `>` is (ELOOP), rather than a file put in place of a link of the loop.
        return yield* new OutputError({ target: given, detail: `it is a loop of symbolic links (or a chain of more than ${MAX_LINKS})` })
      }
      const owner = yield* foreignLink(fs, path, next)
      if (owner !== undefined) {
        return yield* new OutputError({
          target: given,
          detail: `${next} is a symbolic link of another user (uid ${owner}) in a directory anyone may write to: it is not followed, as the shell's > does not follow it`
        })
      }
      if (path.isAbsolute(link.value)) done = path.parse(link.value).root
      rest = [...link.value.split(path.sep).filter((part) => part !== ""), ...rest]
    }
    return done
  })

/**
 * The owner of the link `link` where the kernel's `protected_symlinks` would not follow it (most distributions set it,
 * and the shell's `>` then fails): in a sticky directory anyone may write to (`/tmp`), owned neither by this process's
 * user nor by the directory's owner. Followed, another local user's link would have the export renamed over any file
 * this user may replace. Refused whatever the setting, which a container may leave off.
 */
const foreignLink = (fs: FileSystem.FileSystem, path: Path.Path, link: string) =>
  Effect.gen(function*() {
    const user = process.getuid?.()
    if (user === undefined) return undefined // Windows: no such directories
    const directory = yield* Effect.option(fs.stat(path.dirname(link)))
    const linkOwner = yield* Effect.option(Effect.tryPromise(() => NodeFs.lstat(link)))
    if (Option.isNone(directory) || Option.isNone(linkOwner)) return undefined
    const { mode, uid } = directory.value
    const stickyAndOpen = (mode & 0o1002) === 0o1002
    const owner = linkOwner.value.uid
    return stickyAndOpen && owner !== user && !Option.contains(uid, owner) ? owner : undefined
  })

/**
 * Flushes a directory's entries, so that a rename just done survives a power loss: the file's own sync covers its
 * content, not the name it has. Best effort: where a directory cannot be opened and synced (Windows), the export
 * stands as it is.
 */
const syncDirectory = (fs: FileSystem.FileSystem, directory: string) =>
  fs.open(directory, { flag: "r" }).pipe(
    Effect.flatMap((handle) => handle.sync),
    Effect.scoped,
    Effect.ignore
  )
