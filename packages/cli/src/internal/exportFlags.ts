/**
 * The `export` subcommand's argument and flags, and what its help says: all that `intercom-scroll --help` needs of
 * it. Apart from the export itself (`export.ts`), which the command loads only when it runs, so that `--help` never
 * loads the core, undici or the encoders.
 *
 * @since 0.1.0
 */
import { Args, type Command, HelpDoc, Options as Flag, ValidationError } from "@effect/cli"
import type { Resource } from "@intercom-scroll/core"
import { Effect, Either, Option } from "effect"
import * as Format from "./format.js"
import * as ScrollFlags from "./scrollFlags.js"

/**
 * How timestamps are written: `unix` as Intercom sends them (seconds since 1970), `iso` as ISO 8601 in UTC.
 *
 * @since 0.1.0
 * @category timestamps
 */
export const timestampStyles = ["unix", "iso"] as const

/**
 * @since 0.1.0
 * @category timestamps
 */
export type TimestampStyle = (typeof timestampStyles)[number]

/** A file's name that asks for gzip, as `gzip` names what it writes. */
const gzipped = /\.gz$/i

/** What names a file in a format, or a compression, that the export does not write: a name it would fill with NDJSON. */
const foreignExtensions: ReadonlySet<string> = new Set([
  "tsv", "xlsx", "xls", "ods", "parquet", "avro", "orc", "xml", "yaml", "yml", "zst", "bz2", "xz", "lz4", "br", "zip",
  "7z", "tar", "tgz"
])

/**
 * The format a file's name asks for, where `--format` is not given: `users.csv` is CSV and `users.json` one JSON
 * array, as a reader of the file takes them (and so are `users.csv.gz` and `users.json.gz`); `.ndjson`, `.jsonl`, or
 * any other name, NDJSON. A name of a format or compression the export does not write (`users.tsv`, `users.csv.zst`)
 * is refused, in words that say what to do.
 *
 * @since 0.1.0
 * @category flags
 */
export const formatOfFile = (file: string): Either.Either<Format.Format, string> => {
  const extension = /\.([^./\\]+)$/.exec(file.replace(gzipped, ""))?.[1]?.toLowerCase()
  if (extension !== undefined && foreignExtensions.has(extension)) {
    return Either.left(
      `--out ${JSON.stringify(file)} names a .${extension} file, which the export does not write: name it .ndjson, .json or .csv (.gz after one compresses it), or give --format`
    )
  }
  return Either.right(extension === "csv" ? "csv" : extension === "json" ? "json" : "ndjson")
}

/**
 * What `intercom-scroll export --help` says the subcommand does.
 *
 * @since 0.1.0
 * @category flags
 */
export const description = `Export every user, lead or company of an Intercom workspace over the Scroll API. ${ScrollFlags.workspaceSentence}`

/**
 * The `export` subcommand's own argument and flags. Where the workspace is and how to scroll it (`--base-url`,
 * `--region`, `--max-restarts`, `--prefetch`, `--wait-for-other-scroll`) are shared with `sync`
 * (`ScrollFlags.flags`), which the command line adds.
 *
 * @since 0.1.0
 * @category flags
 */
export const flags = {
  resource: Args.choice<Resource.Resource>([["users", "users"], ["leads", "leads"], ["companies", "companies"]], {
    name: "resource"
  }).pipe(Args.withDescription("What to export: users, leads or companies.")),
  output: Flag.all({
    out: Flag.text("out").pipe(
      Flag.filterMap((file) => file === "" ? Option.none() : Option.some(file), "--out must name a file: it is empty"),
      Flag.withPseudoName("FILE"),
      Flag.withDescription(
        "Write to FILE (atomically: a failed export leaves it as it was) instead of stdout; compressed with gzip where FILE ends with .gz."
      ),
      Flag.optional
    ),
    format: ScrollFlags.choice("format", Format.formats).pipe(
      Flag.withDescription(
        "ndjson (one record a line), json (one array) or csv (nested fields as dotted columns). By default the one --out's name ends with (.csv, .json), else ndjson."
      ),
      Flag.optional
    ),
    csvBom: Flag.boolean("csv-bom").pipe(
      Flag.withDescription(
        "Start the CSV with a UTF-8 byte-order mark, so that Excel reads São Paulo as São Paulo (by default there is none: other readers take it for part of the first column's name)."
      )
    )
  }).pipe(
    // A BOM before JSON makes it invalid (JSON.parse refuses it): asked for anywhere but CSV, it is a mistake to point out.
    Flag.mapEffect(({ csvBom, format, out }) => {
      const chosen = Option.match(format, {
        onSome: Either.right,
        onNone: () => Option.match(out, { onNone: () => Either.right("ndjson" as const), onSome: formatOfFile })
      })
      if (Either.isLeft(chosen)) return Effect.fail(ValidationError.invalidValue(HelpDoc.p(chosen.left)))
      return csvBom && chosen.right !== "csv"
        ? Effect.fail(ValidationError.invalidValue(HelpDoc.p("--csv-bom is for --format csv (or an --out named .csv): JSON and NDJSON never start with a byte-order mark")))
        : Effect.succeed({ out, format: chosen.right, csvBom, gzip: Option.exists(out, (file) => gzipped.test(file)) })
    })
  ),
  timestamps: ScrollFlags.choice("timestamps", timestampStyles).pipe(
    Flag.withDefault("unix"),
    Flag.withDescription(
      "unix (seconds since 1970, as Intercom sends them; the default) or iso (ISO 8601 in UTC: 2024-05-01T12:00:00Z), for created_at, updated_at and the other times of the records, in every format; custom attributes stay as they are."
    )
  ),
  noDedupe: Flag.boolean("no-dedupe").pipe(
    Flag.withDescription("Keep records a restart delivers again (by default each id is written once).")
  )
}

/**
 * The flags as parsed.
 *
 * @since 0.1.0
 * @category flags
 */
export type Flags = Command.Command.ParseConfig<typeof flags> & ScrollFlags.Parsed
