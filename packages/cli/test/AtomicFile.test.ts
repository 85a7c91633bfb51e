import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Stream } from "effect"
import { execFileSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as AtomicFile from "../src/internal/atomicFile.js"

const bytes = (text: string) => new TextEncoder().encode(text)

/** A directory holding `out.txt` with "previous", removed after the test. */
const withPreviousFile = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const directory = yield* fs.makeTempDirectoryScoped({ prefix: "atomic-file-test-" })
  const target = path.join(directory, "out.txt")
  yield* fs.writeFileString(target, "previous")
  const listing = () => fs.readDirectory(directory).pipe(Effect.map((names) => names.sort()))
  return { fs, directory, target, listing }
})

describe("AtomicFile.write", () => {
  it.scoped("replaces the target with the whole content and leaves no temporary file", () =>
    Effect.gen(function*() {
      const { fs, listing, target } = yield* withPreviousFile
      yield* AtomicFile.write(target, Stream.make(bytes("first,"), bytes("second")))
      expect(yield* fs.readFileString(target)).toBe("first,second")
      expect(yield* listing()).toEqual(["out.txt"])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("keeps the permissions of the file it replaces", () =>
    Effect.gen(function*() {
      const { fs, target } = yield* withPreviousFile
      yield* fs.chmod(target, 0o600)
      yield* AtomicFile.write(target, Stream.make(bytes("private")))
      expect(yield* fs.readFileString(target)).toBe("private")
      expect((yield* fs.stat(target)).mode & 0o777).toBe(0o600)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("writes the records into a file only its owner may read, whatever mode the target gets after", () =>
    Effect.gen(function*() {
      const { directory, fs, listing, target } = yield* withPreviousFile
      yield* fs.chmod(target, 0o640)
      let modeWhileWriting = -1
      const content = Stream.make(bytes("new")).pipe(
        Stream.concat(Stream.fromEffect(Effect.gen(function*() {
          const [temporary] = (yield* listing()).filter((name) => name.endsWith(".tmp"))
          modeWhileWriting = (yield* fs.stat(`${directory}/${temporary}`)).mode & 0o777
          return bytes("!")
        })))
      )
      yield* AtomicFile.write(target, content)
      expect(modeWhileWriting).toBe(0o600)
      expect((yield* fs.stat(target)).mode & 0o777).toBe(0o640)
      // A new file: the mode the shell's `>` gives it.
      const fresh = `${directory}/fresh.txt`
      yield* AtomicFile.write(fresh, Stream.make(bytes("new")))
      expect((yield* fs.stat(fresh)).mode & 0o777).toBe(0o666 & ~process.umask())
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped.skipIf(process.platform !== "linux")("writes into a file a descriptor of this process holds (/dev/fd/N, as `3>>log`), after what it holds", () =>
    Effect.gen(function*() {
      const { fs, target } = yield* withPreviousFile
      const descriptor = NodeFs.openSync(target, "a")
      yield* Effect.addFinalizer(() => Effect.sync(() => NodeFs.closeSync(descriptor)))
      yield* AtomicFile.write(`/dev/fd/${descriptor}`, Stream.make(bytes(" and new")))
      // Written into, not renamed over: the descriptor's file is the target still.
      NodeFs.writeSync(descriptor, ", then more")
      expect(yield* fs.readFileString(target)).toBe("previous and new, then more")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a target whose name leaves no room for the temporary file's suffix still gets one beside it", () =>
    Effect.gen(function*() {
      const { directory, fs, listing } = yield* withPreviousFile
      // 247 bytes, two-byte characters first: room for the file, none for ".<uuid>.tmp" beside it whole.
      const target = `${directory}/${"é".repeat(100)}${"a".repeat(40)}.ndjson`
      yield* AtomicFile.write(target, Stream.make(bytes("long")))
      expect(yield* fs.readFileString(target)).toBe("long")
      expect((yield* listing()).filter((name) => name.endsWith(".tmp"))).toEqual([])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("writes through a symbolic link to the file it points to, and the link stays", () =>
    Effect.gen(function*() {
      const { directory, fs, listing, target } = yield* withPreviousFile
      const path = yield* Path.Path
      const link = path.join(directory, "latest.txt")
      yield* fs.symlink(target, link)
      yield* AtomicFile.write(link, Stream.make(bytes("through the link")))
      expect(yield* fs.readLink(link)).toBe(target)
      expect(yield* fs.readFileString(target)).toBe("through the link")
      expect(yield* listing()).toEqual(["latest.txt", "out.txt"])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("through a link to a file not there yet (relative, and a link to that link), creates the file; the links stay", () =>
    Effect.gen(function*() {
      const { directory, fs } = yield* withPreviousFile
      const path = yield* Path.Path
      yield* fs.makeDirectory(path.join(directory, "real"))
      yield* fs.symlink("real/new.txt", path.join(directory, "dangling"))
      yield* fs.symlink("dangling", path.join(directory, "via"))
      yield* AtomicFile.write(path.join(directory, "via"), Stream.make(bytes("created at the end of the links")))
      expect(yield* fs.readLink(path.join(directory, "via"))).toBe("dangling")
      expect(yield* fs.readLink(path.join(directory, "dangling"))).toBe("real/new.txt")
      expect(yield* fs.readFileString(path.join(directory, "real", "new.txt"))).toBe("created at the end of the links")
      expect(yield* fs.readDirectory(path.join(directory, "real"))).toEqual(["new.txt"])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a link's .. is taken from where the link is, through a linked directory, as the shell's > takes it", () =>
    Effect.gen(function*() {
      const { directory, fs } = yield* withPreviousFile
      const path = yield* Path.Path
      // a/b is a link to c/d, and c/d/link a link to ../target: through a/b, the file is c/target.
      for (const made of ["a", "c/d"]) yield* fs.makeDirectory(path.join(directory, made), { recursive: true })
      yield* fs.symlink(path.join(directory, "c", "d"), path.join(directory, "a", "b"))
      yield* fs.symlink("../target", path.join(directory, "c", "d", "link"))
      yield* AtomicFile.write(path.join(directory, "a", "b", "link"), Stream.make(bytes("where the link points")))
      expect(yield* fs.readFileString(path.join(directory, "c", "target"))).toBe("where the link points")
      expect(yield* fs.exists(path.join(directory, "a", "target"))).toBe(false)
    }).pipe(Effect.provide(NodeContext.layer)))

  // Root alone may give a link to another user; the kernel's protected_symlinks binds root too.
  it.scoped.skipIf(process.getuid?.() !== 0)(
    "another user's link in a sticky directory anyone may write to (/tmp) is not followed, as the kernel's protected_symlinks has it",
    () =>
      Effect.gen(function*() {
        const { directory, fs, target } = yield* withPreviousFile
        const path = yield* Path.Path
        yield* fs.chmod(target, 0o600)
        const shared = path.join(directory, "shared")
        yield* fs.makeDirectory(shared)
        yield* fs.chmod(shared, 0o1777)
        const link = path.join(shared, "export.ndjson")
        yield* fs.symlink(target, link)
        NodeFs.lchownSync(link, 65534, 65534)
        const error = yield* Effect.flip(AtomicFile.write(link, Stream.make(bytes("over the victim's file"))))
        expect(error).toMatchObject({ _tag: "OutputError", target: link })
        expect(error.detail).toMatch(/is a symbolic link of another user \(uid 65534\) in a directory anyone may write to/)
        expect(yield* fs.readFileString(target)).toBe("previous")
        expect((yield* fs.stat(target)).mode & 0o777).toBe(0o600)
        // Its own link, or one of the directory's owner, is followed.
        NodeFs.lchownSync(link, 0, 0)
        yield* AtomicFile.write(link, Stream.make(bytes("through its own link")))
        expect(yield* fs.readFileString(target)).toBe("through its own link")
        NodeFs.chownSync(shared, 65534, 65534)
        NodeFs.lchownSync(link, 65534, 65534)
        yield* AtomicFile.write(link, Stream.make(bytes("through the directory owner's link")))
        expect(yield* fs.readFileString(target)).toBe("through the directory owner's link")
        // A link of another user on the way, to a directory, is not followed either: the kernel checks every link.
        NodeFs.chownSync(shared, 0, 0)
        const linkedDirectory = path.join(shared, "dir")
        yield* fs.symlink(directory, linkedDirectory)
        NodeFs.lchownSync(linkedDirectory, 65534, 65534)
        const through = yield* Effect.flip(AtomicFile.write(path.join(linkedDirectory, "out.txt"), Stream.make(bytes("over it"))))
        expect(through.detail).toMatch(/dir is a symbolic link of another user \(uid 65534\)/)
        expect(yield* fs.readFileString(target)).toBe("through the directory owner's link")
      }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("a loop of symbolic links is refused, as the shell's > refuses it, and stays as it was", () =>
    Effect.gen(function*() {
      const { directory, fs } = yield* withPreviousFile
      const path = yield* Path.Path
      yield* fs.symlink("loop2", path.join(directory, "loop1"))
      yield* fs.symlink("loop1", path.join(directory, "loop2"))
      const error = yield* Effect.flip(AtomicFile.write(path.join(directory, "loop1"), Stream.make(bytes("nowhere"))))
      expect(error).toMatchObject({ _tag: "OutputError", detail: "it is a loop of symbolic links (or a chain of more than 40)" })
      expect(yield* fs.readLink(path.join(directory, "loop1"))).toBe("loop2")
      expect(yield* fs.readLink(path.join(directory, "loop2"))).toBe("loop1")
      expect((yield* fs.readDirectory(directory)).sort()).toEqual(["loop1", "loop2", "out.txt"])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("writes through a temporary file beside the target, never into the target itself", () =>
    Effect.gen(function*() {
      const { fs, listing, target } = yield* withPreviousFile
      let seenWhileWriting: ReadonlyArray<string> = []
      let targetWhileWriting = ""
      const content = Stream.make(bytes("new")).pipe(
        Stream.concat(Stream.fromEffect(Effect.gen(function*() {
          seenWhileWriting = yield* listing()
          targetWhileWriting = yield* fs.readFileString(target)
          return bytes("!")
        })))
      )
      yield* AtomicFile.write(target, content)
      expect(seenWhileWriting).toHaveLength(2)
      expect(seenWhileWriting[0]).toMatch(/^\.out\.txt\..+\.tmp$/)
      expect(targetWhileWriting).toBe("previous")
      expect(yield* fs.readFileString(target)).toBe("new!")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a failure mid-stream keeps the previous file and removes the temporary file", () =>
    Effect.gen(function*() {
      const { fs, listing, target } = yield* withPreviousFile
      const content = Stream.make(bytes("partial")).pipe(Stream.concat(Stream.fail("scroll failed" as const)))
      const exit = yield* Effect.exit(AtomicFile.write(target, content))
      expect(exit).toEqual(Exit.fail("scroll failed"))
      expect(yield* fs.readFileString(target)).toBe("previous")
      expect(yield* listing()).toEqual(["out.txt"])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("an interruption mid-stream keeps the previous file and removes the temporary file", () =>
    Effect.gen(function*() {
      const { fs, listing, target } = yield* withPreviousFile
      const started = yield* Deferred.make<void>()
      const content = Stream.make(bytes("partial")).pipe(
        Stream.concat(Stream.fromEffect(Deferred.succeed(started, undefined)).pipe(Stream.drain)),
        Stream.concat(Stream.never)
      )
      const fiber = yield* Effect.fork(AtomicFile.write(target, content))
      yield* Deferred.await(started)
      expect(yield* listing()).toHaveLength(2)
      yield* Fiber.interrupt(fiber)
      expect(yield* fs.readFileString(target)).toBe("previous")
      expect(yield* listing()).toEqual(["out.txt"])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("flushes the file before the rename and the directory after it, so the new name survives a power loss", () =>
    Effect.gen(function*() {
      const { directory, fs, target } = yield* withPreviousFile
      const calls: Array<string> = []
      // The node file system, telling which files it syncs and when it renames.
      const recording: FileSystem.FileSystem = {
        ...fs,
        open: (path, options) =>
          Effect.map(fs.open(path, options), (file): FileSystem.File =>
            Object.create(file, {
              sync: { value: Effect.zipRight(Effect.sync(() => calls.push(`sync ${path === directory ? "directory" : "file"}`)), file.sync) }
            }) as FileSystem.File),
        rename: (from, to) => Effect.zipRight(Effect.sync(() => calls.push("rename")), fs.rename(from, to))
      }
      yield* AtomicFile.write(target, Stream.make(bytes("durable"))).pipe(
        Effect.provideService(FileSystem.FileSystem, recording)
      )
      expect(calls).toEqual(["sync file", "rename", "sync directory"])
      expect(yield* fs.readFileString(target)).toBe("durable")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("writes into a named pipe a reader holds open, which stays a pipe (renamed over, it would become a file)", () =>
    Effect.gen(function*() {
      const { directory, fs, listing } = yield* withPreviousFile
      const path = yield* Path.Path
      const pipe = path.join(directory, "reader.fifo")
      execFileSync("mkfifo", [pipe])
      // Opened without blocking, so that the write can open the pipe and the test never waits on it.
      const reader = yield* Effect.acquireRelease(
        Effect.sync(() => NodeFs.openSync(pipe, NodeFs.constants.O_RDONLY | NodeFs.constants.O_NONBLOCK)),
        (fd) => Effect.sync(() => NodeFs.closeSync(fd))
      )
      yield* AtomicFile.write(pipe, Stream.make(bytes("first,"), bytes("second")))
      expect((yield* fs.stat(pipe)).type).toBe("FIFO")
      const buffer = Buffer.alloc(64)
      expect(buffer.subarray(0, NodeFs.readSync(reader, buffer)).toString("utf8")).toBe("first,second")
      expect(yield* listing()).toEqual(["out.txt", "reader.fifo"])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("refuses a directory before it runs the content, not at the rename after it", () =>
    Effect.gen(function*() {
      const { directory, listing } = yield* withPreviousFile
      let pulled = false
      const content = Stream.fromEffect(Effect.sync(() => {
        pulled = true
        return bytes("x")
      }))
      const error = yield* Effect.flip(AtomicFile.write(directory, content))
      expect(error.message).toBe(`Could not write ${directory}: it is a directory`)
      expect(pulled).toBe(false)
      expect(yield* listing()).toEqual(["out.txt"])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a file in the way of its directory: an OutputError in the words of the path given, not the temporary file's", () =>
    Effect.gen(function*() {
      const { listing, target } = yield* withPreviousFile
      const under = `${target}/users.ndjson`
      const error = yield* Effect.flip(AtomicFile.write(under, Stream.make(bytes("x"))))
      expect(error.message).toBe(
        `Could not write ${under}: ${target} is not a directory`
      )
      expect(yield* listing()).toEqual(["out.txt"])
    }).pipe(Effect.provide(NodeContext.layer)))

  // Root may create files in any directory: only another user meets the refusal.
  it.scoped.skipIf(process.getuid?.() === 0)("a directory this user may not write in: an OutputError naming it, not the temporary file", () =>
    Effect.gen(function*() {
      const { directory, fs, listing } = yield* withPreviousFile
      yield* fs.chmod(directory, 0o500)
      yield* Effect.addFinalizer(() => Effect.orDie(fs.chmod(directory, 0o700)))
      const target = `${directory}/users.ndjson`
      const error = yield* Effect.flip(AtomicFile.write(target, Stream.make(bytes("x"))))
      expect(error.message).toBe(
        `Could not write ${target}: this user may not create files in its directory ${directory}: the export is written to a new file beside it, then renamed into place`
      )
      expect(yield* listing()).toEqual(["out.txt"])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("makes its missing directory and the parents it lacks, each flushed into its parent, before it runs the content", () =>
    Effect.gen(function*() {
      const { directory, fs } = yield* withPreviousFile
      const calls: Array<string> = []
      // The node file system, telling what it makes, syncs and renames, in turn.
      const recording: FileSystem.FileSystem = {
        ...fs,
        makeDirectory: (path, options) => Effect.zipRight(Effect.sync(() => calls.push(`make ${path}`)), fs.makeDirectory(path, options)),
        open: (path, options) =>
          Effect.map(fs.open(path, options), (file): FileSystem.File =>
            Object.create(file, {
              sync: { value: Effect.zipRight(Effect.sync(() => calls.push(`sync ${path.endsWith(".tmp") ? "file" : path}`)), file.sync) }
            }) as FileSystem.File),
        rename: (from, to) => Effect.zipRight(Effect.sync(() => calls.push("rename")), fs.rename(from, to))
      }
      const target = `${directory}/2026/12/users.ndjson`
      const content = Stream.fromEffect(Effect.sync(() => {
        calls.push("content")
        return bytes("made")
      }))
      yield* AtomicFile.write(target, content).pipe(Effect.provideService(FileSystem.FileSystem, recording))
      expect(calls).toEqual([
        `make ${directory}/2026/12`,
        `sync ${directory}/2026`,
        `sync ${directory}`,
        "content",
        "sync file",
        "rename",
        `sync ${directory}/2026/12`
      ])
      expect(yield* fs.readFileString(target)).toBe("made")
      expect(yield* fs.readDirectory(`${directory}/2026/12`)).toEqual(["users.ndjson"])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a file in the way of its missing directory: an OutputError naming the file, nothing made, before it runs the content", () =>
    Effect.gen(function*() {
      const { listing, target } = yield* withPreviousFile
      const under = `${target}/2026/users.ndjson`
      let pulled = false
      const content = Stream.fromEffect(Effect.sync(() => {
        pulled = true
        return bytes("x")
      }))
      const error = yield* Effect.flip(AtomicFile.write(under, content))
      expect(error.message).toBe(`Could not write ${under}: ${target} is not a directory`)
      expect(pulled).toBe(false)
      expect(yield* listing()).toEqual(["out.txt"])
    }).pipe(Effect.provide(NodeContext.layer)))

  // Root may create directories anywhere: only another user meets the refusal.
  it.scoped.skipIf(process.getuid?.() === 0)("a missing directory this user may not make: an OutputError naming where, before it runs the content", () =>
    Effect.gen(function*() {
      const { directory, fs, listing } = yield* withPreviousFile
      yield* fs.chmod(directory, 0o500)
      yield* Effect.addFinalizer(() => Effect.orDie(fs.chmod(directory, 0o700)))
      const target = `${directory}/missing/users.ndjson`
      const error = yield* Effect.flip(AtomicFile.write(target, Stream.make(bytes("x"))))
      expect(error.message).toBe(
        `Could not write ${target}: its directory ${directory}/missing is missing, and this user may not create directories in ${directory}`
      )
      expect(yield* listing()).toEqual(["out.txt"])
    }).pipe(Effect.provide(NodeContext.layer)))
})
