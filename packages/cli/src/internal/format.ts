/**
 * The export formats, each a transform from a stream of records to a stream of text:
 *
 * - `ndjson`: one record per line, every field as received.
 * - `json`: one array, written as the records come (never held in memory).
 * - `csv`: nested objects flattened into dotted columns (see the package README for the mapping).
 *
 * @since 0.1.0
 */
import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Chunk, Effect, Sink, Stream } from "effect"
import { OutputError } from "../ExportError.js"

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

/**
 * Renders a chunk of records as one string, so the writer sees one write per page rather than per record. An empty
 * chunk (a page a restart sent again, all of whose records were written before) renders as nothing, not as "": a file's
 * `writeAll` fails on zero bytes.
 */
const mapEachChunk = <E, R>(records: Stream.Stream<JsonRecord, E, R>, render: (record: JsonRecord) => string) =>
  Stream.mapChunks(records, (chunk) =>
    Chunk.isEmpty(chunk) ? Chunk.empty<string>() : Chunk.of(Chunk.reduce(chunk, "", (text, record) => text + render(record))))

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
 * The columns seen so far, in the order they first appeared, and whether each has had a value. Columns are only ever
 * added, so a row laid out against an earlier set is still aligned with a later one: it only lacks the trailing cells.
 */
const makeColumns = () => {
  const names: Array<string> = []
  const filled: Array<boolean> = []
  const positions = new Map<string, number>()
  const cells = (record: JsonRecord): Array<string> => {
    const row: Array<string> = []
    for (const [column, cell] of flatten(record)) {
      let position = positions.get(column)
      if (position === undefined) {
        position = names.push(column) - 1
        filled.push(false)
        positions.set(column, position)
      }
      row[position] = cell
      if (cell !== "") filled[position] = true
    }
    // Fields a record lacks leave holes; fill them so the JSON below has "" there rather than null.
    return Array.from(row, (cell) => cell ?? "")
  }
  return { names, filled, cells }
}

const isCustomAttribute = (column: string) => column === "custom_attributes" || column.startsWith("custom_attributes.")

/**
 * The header, as positions among the columns seen (in the order they first appeared): the columns with a value in
 * some row, the schema's own (`known`) first in the schema's order, then every custom attribute sorted by name, then
 * the fields the schema does not name, in the order they first appeared. A column empty in every row is left out.
 *
 * @since 0.1.0
 * @category csv
 */
export const headerOrder = (
  seen: ReadonlyArray<string>,
  filled: ReadonlyArray<boolean>,
  known: ReadonlyArray<string>
): Array<number> => {
  const rank = new Map(known.map((column, index) => [column, index]))
  const group = (column: string) => isCustomAttribute(column) ? 1 : rank.has(column) ? 0 : 2
  const byName = (a: string, b: string) => a < b ? -1 : a > b ? 1 : 0
  return seen.flatMap((_, position) => filled[position] ? [position] : []).sort((a, b) => {
    const [columnA, columnB] = [seen[a]!, seen[b]!]
    const [groupA, groupB] = [group(columnA), group(columnB)]
    if (groupA !== groupB) return groupA - groupB
    if (groupA === 0) return rank.get(columnA)! - rank.get(columnB)!
    if (groupA === 1) return byName(columnA, columnB)
    return a - b
  })
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CsvOptions {
  /** The columns the records' schema names, in its order: they come first (`Fields.knownColumns`). */
  readonly knownColumns?: ReadonlyArray<string> | undefined
  /**
   * Starts the output with a UTF-8 byte-order mark, without which Excel reads UTF-8 as the system's legacy code page
   * ("SÃ£o Paulo" for "São Paulo"). Default false: most other readers take the mark for part of the first column's
   * name.
   */
  readonly bom?: boolean | undefined
}

/** U+FEFF, which UTF-8 encodes as EF BB BF. */
const byteOrderMark = "\uFEFF"

const stagingError = (path: string) => (error: PlatformError) =>
  new OutputError({ target: `the CSV staging file ${path}`, detail: error.message })

/**
 * CSV whose header holds every column with a value in some record (see `headerOrder`), which is known only after
 * the last record. So it takes two passes without holding records in memory: the first writes each row (as a JSON
 * array of its cells by first-seen column, one a line) to a temporary staging file while collecting the columns; the
 * second writes the header, then reads the rows back and lays each out in the header's order. The staging file is
 * removed when the stream ends, however it ends. Nothing is emitted until the scroll has finished; no records give
 * an empty output, without a byte-order mark.
 *
 * @since 0.1.0
 * @category encoders
 */
export const csv = (options: CsvOptions = {}) =>
<E, R>(
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
    const order = headerOrder(columns.names, columns.filled, options.knownColumns ?? [])
    // No records (or none with a value), no columns: an empty file rather than a blank header line.
    if (order.length === 0) return Stream.empty
    const rows = fs.stream(staging).pipe(
      Stream.mapError(stagingError(staging)),
      Stream.decodeText(),
      Stream.splitLines,
      Stream.mapChunks((lines) =>
        Chunk.of(Chunk.reduce(lines, "", (text, line) => {
          const cells = JSON.parse(line) as Array<string>
          return text + csvRow(order.map((position) => cells[position] ?? ""))
        }))
      )
    )
    const header = csvRow(order.map((position) => columns.names[position]!))
    return Stream.concat(Stream.succeed(options.bom === true ? byteOrderMark + header : header), rows)
  }))

/**
 * @since 0.1.0
 * @category encoders
 */
export const encoder = (format: Format, options: CsvOptions = {}): Encoder =>
  format === "csv" ? csv(options) : format === "json" ? json : ndjson
