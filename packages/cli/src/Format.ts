/**
 * The export formats, each a transform from a stream of records to a stream of text:
 *
 * - `ndjson`: one record per line, every field as received.
 * - `json`: one array, written as the records come (never held in memory).
 * - `csv`: nested objects flattened into dotted columns (see the package README for the mapping).
 *
 * @example
 * ```ts
 * import { NodeContext } from "@effect/platform-node"
 * import { Format } from "@intercom-scroll/cli"
 * import { Effect, Stream } from "effect"
 *
 * const records = Stream.make({ type: "user", id: "1", tags: ["vip"] }, { type: "user", id: "2", name: null })
 *
 * // Each encoder is a stream transform; csv needs a FileSystem to stage its rows.
 * const text = (format: Format.Format) =>
 *   records.pipe(Format.encoder(format), Stream.mkString, Effect.provide(NodeContext.layer))
 *
 * Effect.runPromise(text("ndjson")).then((ndjson) =>
 *   assert.strictEqual(ndjson, "{\"type\":\"user\",\"id\":\"1\",\"tags\":[\"vip\"]}\n{\"type\":\"user\",\"id\":\"2\",\"name\":null}\n")
 * )
 * Effect.runPromise(text("json")).then((json) => assert.strictEqual(JSON.parse(json).length, 2))
 * ```
 *
 * @since 0.1.0
 */
import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Chunk, Effect, Sink, Stream } from "effect"
import { OutputError } from "./ExportError.js"

/**
 * @since 0.1.0
 * @category models
 */
export const formats = ["ndjson", "json", "csv"] as const

/**
 * @since 0.1.0
 * @category models
 */
export type Format = (typeof formats)[number]

/**
 * A record as parsed from Intercom's JSON.
 *
 * @since 0.1.0
 * @category models
 */
export interface JsonRecord {
  readonly [field: string]: unknown
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Encoder {
  <E, R>(records: Stream.Stream<JsonRecord, E, R>): Stream.Stream<string, E | OutputError, R | FileSystem.FileSystem>
}

/** Renders a chunk of records as one string, so the writer sees one write per page rather than per record. */
const mapEachChunk = <E, R>(records: Stream.Stream<JsonRecord, E, R>, render: (record: JsonRecord) => string) =>
  Stream.mapChunks(records, (chunk) => Chunk.of(Chunk.reduce(chunk, "", (text, record) => text + render(record))))

/**
 * One JSON document per line (`\n`), each record exactly as `JSON.stringify` gives it.
 *
 * @since 0.1.0
 * @category encoders
 */
export const ndjson = <E, R>(records: Stream.Stream<JsonRecord, E, R>): Stream.Stream<string, E, R> =>
  mapEachChunk(records, (record) => `${JSON.stringify(record)}\n`)

/**
 * A JSON array: `[`, the records separated by `,\n`, `]`. Written as it goes, so memory stays flat.
 *
 * @since 0.1.0
 * @category encoders
 */
export const json = <E, R>(records: Stream.Stream<JsonRecord, E, R>): Stream.Stream<string, E, R> =>
  Stream.suspend(() => {
    let separator = "\n"
    const elements = mapEachChunk(records, (record) => {
      const text = separator + JSON.stringify(record)
      separator = ",\n"
      return text
    })
    return Stream.succeed("[").pipe(Stream.concat(elements), Stream.concat(Stream.succeed("\n]\n")))
  })

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, a double quote, CR or LF, with quotes doubled.
 *
 * @since 0.1.0
 * @category csv
 */
export const csvField = (value: string): string => /[",\r\n]/.test(value) ? `"${value.replaceAll("\"", "\"\"")}"` : value

/**
 * One CSV row, ended by CRLF as RFC 4180 asks.
 *
 * @since 0.1.0
 * @category csv
 */
export const csvRow = (cells: ReadonlyArray<string>): string => `${cells.map(csvField).join(",")}\r\n`

const isPlainObject = (value: unknown): value is JsonRecord =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * A record's cells by dotted column name: nested objects are walked (`location_data.city_name`), arrays become
 * their JSON text, null and absent fields an empty cell, strings as they are, numbers and booleans as JSON writes
 * them. An empty nested object gives no column.
 *
 * @since 0.1.0
 * @category csv
 */
export const flatten = (record: JsonRecord): Array<readonly [column: string, cell: string]> => {
  const cells: Array<readonly [string, string]> = []
  const walk = (object: JsonRecord, prefix: string) => {
    for (const [key, value] of Object.entries(object)) {
      const column = prefix + key
      if (isPlainObject(value)) walk(value, `${column}.`)
      else cells.push([column, cellOf(value)])
    }
  }
  walk(record, "")
  return cells
}

const cellOf = (value: unknown): string => {
  if (value === null || value === undefined) return ""
  if (typeof value === "string") return value
  if (Array.isArray(value)) return JSON.stringify(value)
  return String(value)
}

/**
 * The columns seen so far, in the order they first appeared. Columns are only ever added, so a row laid out
 * against an earlier set is still aligned with a later one: it only lacks the trailing cells.
 */
const makeColumns = () => {
  const names: Array<string> = []
  const positions = new Map<string, number>()
  const cells = (record: JsonRecord): Array<string> => {
    const row: Array<string> = []
    for (const [column, cell] of flatten(record)) {
      let position = positions.get(column)
      if (position === undefined) {
        position = names.push(column) - 1
        positions.set(column, position)
      }
      row[position] = cell
    }
    // Fields a record lacks leave holes; fill them so the JSON below has "" there rather than null.
    return Array.from(row, (cell) => cell ?? "")
  }
  return { names, cells }
}

const stagingError = (path: string) => (error: PlatformError) =>
  new OutputError({ target: `the CSV staging file ${path}`, detail: error.message })

/**
 * CSV with a header that is the union of every record's columns, which is known only after the last record. So
 * it takes two passes without holding records in memory: the first writes each row (as a JSON array of its cells,
 * one a line) to a temporary staging file while collecting the columns; the second writes the header, then reads
 * the rows back and pads each to the full width. The staging file is removed when the stream ends, however it ends.
 * Nothing is emitted until the scroll has finished; no records give an empty output.
 *
 * @since 0.1.0
 * @category encoders
 */
export const csv = <E, R>(
  records: Stream.Stream<JsonRecord, E, R>
): Stream.Stream<string, E | OutputError, R | FileSystem.FileSystem> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const staging = yield* fs.makeTempFileScoped({ prefix: "intercom-scroll-csv-" }).pipe(
      Effect.mapError(stagingError("in the temporary directory"))
    )
    const columns = makeColumns()
    yield* mapEachChunk(records, (record) => `${JSON.stringify(columns.cells(record))}\n`).pipe(
      Stream.encodeText,
      Stream.run(Sink.mapError(fs.sink(staging), stagingError(staging)))
    )
    const width = columns.names.length
    // No records, no columns: an empty file rather than a blank header line.
    if (width === 0) return Stream.empty
    const rows = fs.stream(staging).pipe(
      Stream.mapError(stagingError(staging)),
      Stream.decodeText(),
      Stream.splitLines,
      Stream.mapChunks((lines) =>
        Chunk.of(Chunk.reduce(lines, "", (text, line) => {
          const cells = JSON.parse(line) as Array<string>
          while (cells.length < width) cells.push("")
          return text + csvRow(cells)
        }))
      )
    )
    return Stream.concat(Stream.succeed(csvRow(columns.names)), rows)
  }))

/**
 * @since 0.1.0
 * @category encoders
 */
export const encoder = (format: Format): Encoder => ({ ndjson, json, csv })[format]
