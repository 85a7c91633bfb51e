import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { readdirSync } from "node:fs"
import { tmpdir } from "node:os"
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
  it.effect("writes the union of every record's columns as the header, in first-seen order, rows padded and quoted", () =>
    Effect.gen(function*() {
      const text = yield* encode(Format.csv)
      expect(text).toBe(
        "type,id,name,location_data.city_name,location_data.country_code,custom_attributes.plan_tier," +
          "custom_attributes.note,tags.type,tags.tags,phone,anonymous,session_count,email,custom_attributes.nps,extra\r\n" +
          "user,1,\"Zoë, \"\"Z\"\"\",München,DEU,pro,\"line1\nline2\",tag.list,\"[{\"\"id\"\":\"\"t1\"\",\"\"name\"\":\"\"vip\"\"}]\"," +
          ",false,3,,,\r\n" +
          "user,2,,,,free,,,,,,,b@example.com,9,\"cr\rhere\"\r\n"
      )
    }))

  it.effect("includes a column first seen in the very last of many records, and pads every earlier row", () =>
    Effect.gen(function*() {
      const many = Array.from({ length: 3000 }, (_, i) => ({ id: String(i) }))
      const text = yield* encode(Format.csv, [...many, { id: "last", late: "x" }])
      const lines = text.split("\r\n")
      expect(lines[0]).toBe("id,late")
      expect(lines[1]).toBe("0,")
      expect(lines[3000]).toBe("2999,")
      expect(lines[3001]).toBe("last,x")
      expect(lines.length).toBe(3003)
    }))

  it.effect("writes nothing for no records", () =>
    Effect.gen(function*() {
      expect(yield* encode(Format.csv, [])).toBe("")
    }))

  it.effect("stages rows in a temporary file while the records come, and removes it at the end", () =>
    Effect.gen(function*() {
      const before = stagingFiles()
      let duringScroll: ReadonlyArray<string> = []
      const input = Stream.fromIterable(records).pipe(Stream.tap(() => Effect.sync(() => (duringScroll = stagingFiles()))))
      yield* Stream.runDrain(Format.csv(input)).pipe(Effect.provide(NodeContext.layer))
      expect(duringScroll.length).toBe(before.length + 1)
      expect(stagingFiles()).toEqual(before)
    }))
})
