/**
 * Loaded into a contender's worker by `probeLink.ts --client` (`--import`): stamps, on the client's own clock, when
 * bytes arrive on a socket (`push`, before any JS of the client has seen them) and when a request's head is handed to
 * the socket (`_writeGeneric`, as it goes to the kernel). Written to `$PROBE_HOOK_OUT` when the worker exits.
 */
import * as Fs from "node:fs"
import * as Net from "node:net"

const micros = () => Number(process.hrtime.bigint() / 1000n)
/** [kind, µs]: "r" bytes arrived, "w" a request's head written. */
const events: Array<readonly [string, number]> = []

type Push = (this: Net.Socket, chunk: unknown, encoding?: BufferEncoding) => boolean
const proto = Net.Socket.prototype as unknown as {
  push: Push
  _writeGeneric: (this: Net.Socket, writev: boolean, data: unknown, encoding: string, cb: unknown) => unknown
}
const push = proto.push
proto.push = function(chunk, encoding) {
  if (chunk !== null) events.push(["r", micros()])
  return push.call(this, chunk, encoding)
}
const isGet = (chunk: unknown) =>
  typeof chunk === "string" ? chunk.startsWith("GET ") : chunk instanceof Uint8Array && chunk[0] === 0x47 && chunk[1] === 0x45 && chunk[2] === 0x54
const writeGeneric = proto._writeGeneric
proto._writeGeneric = function(writev, data, encoding, cb) {
  const chunks = writev ? (data as ReadonlyArray<{ readonly chunk: unknown }>).map((d) => d.chunk) : [data]
  if (chunks.some(isGet)) events.push(["w", micros()])
  return writeGeneric.call(this, writev, data, encoding, cb)
}

// A run's start (the bench's "run" message) and end (its result sent), to split what a run spends outside its exchanges.
const emit = process.emit.bind(process) as (event: string, ...args: Array<unknown>) => boolean
process.emit = ((event: string, ...args: Array<unknown>) => {
  if (event === "message" && (args[0] as { readonly type?: unknown } | undefined)?.type === "run") events.push(["s", micros()])
  return emit(event, ...args)
}) as typeof process.emit
const send = process.send?.bind(process)
if (send !== undefined) {
  process.send = ((message: unknown, ...rest: Array<unknown>) => {
    if ((message as { readonly type?: unknown }).type === "result") events.push(["e", micros()])
    return (send as (...a: Array<unknown>) => boolean)(message, ...rest)
  }) as NonNullable<typeof process.send>
}

const out = process.env.PROBE_HOOK_OUT
if (out !== undefined) process.on("exit", () => Fs.writeFileSync(`${out}.${process.pid}.json`, JSON.stringify(events)))
