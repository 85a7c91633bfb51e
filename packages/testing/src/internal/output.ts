/**
 * What a child process writes, read as it comes.
 *
 * @internal
 */
import type { Readable } from "node:stream"

/**
 * Resolves once `stream` has written `text`; each chunk is kept in `log` too. A pipe's read may cut a line, or a
 * character of several bytes, anywhere: the text is decoded across chunks and looked for in what came so far, where a
 * look at each chunk alone waited without end for a line cut in two.
 */
export const untilWritten = (stream: Readable, text: string, log: Array<string>): Promise<void> =>
  new Promise<void>((resolve) => {
    let tail = ""
    stream.setEncoding("utf8")
    stream.on("data", (chunk: string) => {
      log.push(chunk)
      const seen = tail + chunk
      if (seen.includes(text)) resolve()
      // What of it the next chunk may complete `text` with.
      tail = seen.slice(-text.length)
    })
  })
