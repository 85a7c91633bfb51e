import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, FastCheck as fc, Stream } from "effect"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Fields from "../src/internal/fields.js"
import * as Format from "../src/internal/format.js"

const zoe = {
  type: "user",
  id: "1",
  name: "Zoë, \"Z\"",
  location_data: { city_name: "München", country_code: "DEU" },
  custom_attributes: { plan_tier: "pro", note: "line1\nline2" },
  tags: { type: "tag.list", tags: [{ id: "t1", name: "vip" }] },
  phone: null,
  anonymous: false,
  session_count: 3
}
const bea = {
  type: "user",
  id: "2",
  email: "b@example.com",
  custom_attributes: { plan_tier: "free", nps: 9 },
  extra: "cr\rhere",
  location_data: {}
}
const records: ReadonlyArray<Format.JsonRecord> = [zoe, bea]

/** One record a chunk, so state carried across chunks is exercised too. */
const encode = (encoder: Format.Encoder, input: ReadonlyArray<Format.JsonRecord> = records) =>
  Stream.runCollect(encoder(Stream.fromIterable(input).pipe(Stream.rechunk(1)))).pipe(
    Effect.map((chunks) => Chunk.join(chunks, "")),
    Effect.provide(NodeContext.layer)
  )

const stagingFiles = () => readdirSync(tmpdir()).filter((name) => name.startsWith("intercom-scroll-csv-"))

/**
 * `effect` with a temporary directory of its own (`TMPDIR`, which `os.tmpdir()` reads at each call): in the shared one,
 * another process's CSV export (a CLI test in another worker, another run on the machine) stages its rows meanwhile.
 */
const inOwnTmpdir = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const previous = process.env.TMPDIR
      const own = mkdtempSync(join(tmpdir(), "format-test-"))
      process.env.TMPDIR = own
      return { previous, own }
    }),
    () => effect,
    ({ own, previous }) =>
      Effect.sync(() => {
        if (previous === undefined) delete process.env.TMPDIR
        else process.env.TMPDIR = previous
        rmSync(own, { recursive: true, force: true })
      })
  )

describe("Format.ndjson", () => {
  it.effect("writes one JSON.stringify'd record a line, every field (nested, null, unicode) as received", () =>
    Effect.gen(function*() {
      const text = yield* encode(Format.ndjson)
      expect(text).toBe(`${JSON.stringify(zoe)}\n${JSON.stringify(bea)}\n`)
      expect(text.trimEnd().split("\n").map((line) => JSON.parse(line))).toEqual(records)
    }))
})

describe("Format.json", () => {
  it.effect("writes one array: [, records separated by ,\\n, ]", () =>
    Effect.gen(function*() {
      const text = yield* encode(Format.json)
      expect(text).toBe(`[\n${JSON.stringify(zoe)},\n${JSON.stringify(bea)}\n]\n`)
      expect(JSON.parse(text)).toEqual(records)
    }))

  it.effect("writes a valid empty array for no records", () =>
    Effect.gen(function*() {
      const text = yield* encode(Format.json, [])
      expect(JSON.parse(text)).toEqual([])
    }))
})

describe("Format.csvField", () => {
  it("quotes only fields with a comma, a double quote, CR or LF, doubling quotes (RFC 4180)", () => {
    expect(Format.csvField("plain ünïcode 東京")).toBe("plain ünïcode 東京")
    expect(Format.csvField("a,b")).toBe("\"a,b\"")
    expect(Format.csvField("say \"hi\"")).toBe("\"say \"\"hi\"\"\"")
    expect(Format.csvField("a\nb")).toBe("\"a\nb\"")
    expect(Format.csvField("a\rb")).toBe("\"a\rb\"")
    expect(Format.csvField("")).toBe("")
  })
})

describe("Format.flatten", () => {
  it("walks nested objects into dotted columns and keeps arrays as JSON text", () => {
    expect(Format.flatten(zoe)).toEqual([
      ["type", "user"],
      ["id", "1"],
      ["name", "Zoë, \"Z\""],
      ["location_data.city_name", "München"],
      ["location_data.country_code", "DEU"],
      ["custom_attributes.plan_tier", "pro"],
      ["custom_attributes.note", "line1\nline2"],
      ["tags.type", "tag.list"],
      ["tags.tags", "[{\"id\":\"t1\",\"name\":\"vip\"}]"],
      ["phone", ""],
      ["anonymous", "false"],
      ["session_count", "3"]
    ])
  })
})

describe("Format.csv", () => {
  it.effect("header: the schema's columns in its order, then the custom attributes sorted, then the rest as they came", () =>
    Effect.gen(function*() {
      const text = yield* encode(Format.csv({ knownColumns: Fields.knownColumns("users") }))
      // phone is null in one record and absent from the other: no column.
      expect(text).toBe(
        "type,id,email,name,location_data.city_name,location_data.country_code,tags.type,tags.tags,session_count,anonymous," +
          "custom_attributes.note,custom_attributes.nps,custom_attributes.plan_tier,extra\r\n" +
          "user,1,,\"Zoë, \"\"Z\"\"\",München,DEU,tag.list,\"[{\"\"id\"\":\"\"t1\"\",\"\"name\"\":\"\"vip\"\"}]\",3,false," +
          "\"line1\nline2\",,pro,\r\n" +
          "user,2,b@example.com,,,,,,,,,9,free,\"cr\rhere\"\r\n"
      )
    }))

  it.effect("leaves out a column empty in every row: null, absent or the empty string", () =>
    Effect.gen(function*() {
      const text = yield* encode(Format.csv({ knownColumns: ["id"] }), [
        { id: "1", custom_attributes: { "ünïcödé_kéy": null, plan: "pro" }, note: "" },
        { id: "2", custom_attributes: { "ünïcödé_kéy": "" } },
        { id: "3", note: null, custom_attributes: {} }
      ])
      expect(text).toBe("id,custom_attributes.plan\r\n1,pro\r\n2,\r\n3,\r\n")
    }))

  it.effect("includes a column first seen in the very last of many records, and pads every earlier row", () =>
    Effect.gen(function*() {
      const many = Array.from({ length: 3000 }, (_, i) => ({ id: String(i) }))
      const text = yield* encode(Format.csv(), [...many, { id: "last", late: "x" }])
      const lines = text.split("\r\n")
      expect(lines[0]).toBe("id,late")
      expect(lines[1]).toBe("0,")
      expect(lines[3000]).toBe("2999,")
      expect(lines[3001]).toBe("last,x")
      expect(lines.length).toBe(3003)
    }))

  it.effect("writes nothing for no records, not even a byte-order mark", () =>
    Effect.gen(function*() {
      expect(yield* encode(Format.csv(), [])).toBe("")
      expect(yield* encode(Format.csv({ bom: true }), [])).toBe("")
    }))

  it.effect("with bom, starts with U+FEFF, once, before the header", () =>
    Effect.gen(function*() {
      const text = yield* encode(Format.csv({ bom: true }), [{ id: "1" }, { id: "2" }])
      expect(text).toBe("\uFEFFid\r\n1\r\n2\r\n")
      expect(yield* encode(Format.csv(), [{ id: "1" }])).toBe("id\r\n1\r\n")
    }))

  it.effect("stages rows in a temporary file while the records come, and removes it at the end", () =>
    inOwnTmpdir(Effect.gen(function*() {
      expect(stagingFiles()).toEqual([])
      let duringScroll: ReadonlyArray<string> = []
      const input = Stream.fromIterable(records).pipe(Stream.tap(() => Effect.sync(() => (duringScroll = stagingFiles()))))
      yield* Stream.runDrain(Format.csv()(input)).pipe(Effect.provide(NodeContext.layer))
      expect(duringScroll).toHaveLength(1)
      expect(stagingFiles()).toEqual([])
    })))

  /** Records over a few known, custom and other columns, with null and empty values; no text that needs quoting. */
  const Records = fc.array(
    fc.dictionary(
      fc.constantFrom("id", "email", "name", "extra", "zeta", "custom_attributes", "location_data"),
      fc.oneof(
        fc.constantFrom(null, ""),
        fc.stringMatching(/^[a-z0-9]{1,4}$/),
        fc.dictionary(fc.constantFrom("b", "a", "city_name", "ünï"), fc.oneof(fc.constant(null), fc.stringMatching(/^[a-z]{1,3}$/)))
      ),
      { maxKeys: 7 }
    ),
    { maxLength: 12 }
  )

  it.effect.prop("every value lands under its own column, every column has a value, and the groups keep their order", [Records], ([input]) =>
    Effect.gen(function*() {
      const known = ["id", "email", "name", "location_data", "location_data.city_name"]
      const text = yield* encode(Format.csv({ knownColumns: known }), input)
      // Every line ends with CRLF; a row of one empty cell is an empty line.
      const [header = [], ...rows] = text.split("\r\n").slice(0, -1).map((line) => line.split(","))
      const expected = input.map((record) => new Map(Format.flatten(record)))
      const withValue = new Set(expected.flatMap((cells) => [...cells].filter(([, cell]) => cell !== "").map(([column]) => column)))
      expect(new Set(header)).toEqual(withValue)
      expect(rows).toHaveLength(withValue.size === 0 ? 0 : input.length)
      rows.forEach((row, i) => header.forEach((column, j) => expect(row[j]).toBe(expected[i]!.get(column) ?? "")))
      const group = (column: string) => column.startsWith("custom_attributes") ? 1 : known.includes(column) ? 0 : 2
      const groups = header.map(group)
      expect(groups).toEqual([...groups].sort())
      const known0 = header.filter((column) => group(column) === 0)
      expect(known0).toEqual(known.filter((column) => known0.includes(column)))
      const custom = header.filter((column) => group(column) === 1)
      expect(custom).toEqual([...custom].sort())
    }), { fastCheck: { numRuns: 50 } })
})
