/**
 * What a child process writes, read as it comes.
 *
 * @internal
 */
import type { Readable } from "node:stream"

/** Resolves once `stream` has written `text`; each chunk is kept in `log` too. */
export const untilWritten = (stream: Readable, text: string, log: Array<string>): Promise<void> =>
  new Promise<void>((resolve) => {
    stream.on("data", (chunk: Buffer) => {
      log.push(chunk.toString("utf8"))
      if (chunk.toString("utf8").includes(text)) resolve()
    })
  })
