/**
 * The bench's results as a table (the console and README), JSON, and an SVG chart of throughput, time and memory.
 */

export interface ContenderResult {
  readonly name: string
  readonly unit: "records/s" | "s" | "MiB"
  readonly median: number
  readonly samples: ReadonlyArray<number>
}

export interface MeasureResult {
  readonly id: number
  readonly title: string
  readonly setup: string
  readonly contenders: ReadonlyArray<ContenderResult>
  /** The compared quantity (a ratio, or MiB for memory) and how it is read. */
  readonly result: number
  readonly resultText: string
  readonly goal: string
  readonly holds: boolean
}

export interface Results {
  readonly date: string
  readonly command: string
  readonly commit: string | undefined
  readonly machine: {
    readonly node: string
    readonly platform: string
    readonly cpus: number
    readonly cpuModel: string
    readonly loadAverageBefore: ReadonlyArray<number>
    readonly loadAverageAfter: ReadonlyArray<number>
    readonly memoryMethod: string
  }
  readonly rounds: Readonly<Record<string, number>>
  readonly measures: ReadonlyArray<MeasureResult>
  /** Every run of a worker process: records, wall seconds, CPU and GC time. */
  readonly runs: ReadonlyArray<{
    readonly contender: string
    readonly records: number
    readonly seconds: number
    readonly cpuMicros: number
    readonly gcMillis: number
  }>
  readonly seconds: number
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 })

export const formatValue = (value: number, unit: ContenderResult["unit"]): string =>
  unit === "records/s"
    ? `${integer.format(value)} records/s`
    : unit === "s"
    ? `${value.toFixed(2)} s`
    : `${integer.format(value)} MiB`

/** A markdown table: readable as is on a terminal, and pasted into the README as it stands. */
export const table = (results: Results): string => {
  const rows = results.measures.map((measure) => {
    const contenders = measure.contenders.map((c) => `${c.name}: ${formatValue(c.median, c.unit)}`).join("; ")
    return `| ${measure.id} | ${measure.title} (${measure.setup}) | ${contenders} | ${measure.resultText} | ${measure.goal} | ${measure.holds ? "✅ holds" : "❌ fails"} |`
  })
  return [
    "| # | measure | medians | result | goal | |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows
  ].join("\n")
}

const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

interface Bar {
  readonly label: string
  readonly value: number
  readonly text: string
  readonly colour: string
}

/** One panel of horizontal bars, scaled to its largest value. */
const panel = (x: number, y: number, width: number, title: string, subtitle: string, bars: ReadonlyArray<Bar>): string => {
  const labelWidth = 270
  const barHeight = 22
  const gap = 10
  const max = Math.max(...bars.map((bar) => bar.value), 1)
  const room = width - labelWidth - 150
  const body = bars.map((bar, i) => {
    const top = y + 48 + i * (barHeight + gap)
    const length = Math.max(1, (bar.value / max) * room)
    return [
      `<text x="${x + labelWidth - 8}" y="${top + 15}" text-anchor="end" class="label">${escape(bar.label)}</text>`,
      `<rect x="${x + labelWidth}" y="${top}" width="${length.toFixed(1)}" height="${barHeight}" rx="3" fill="${bar.colour}"/>`,
      `<text x="${(x + labelWidth + length + 6).toFixed(1)}" y="${top + 15}" class="value">${escape(bar.text)}</text>`
    ].join("")
  })
  return [
    `<text x="${x}" y="${y + 16}" class="title">${escape(title)}</text>`,
    `<text x="${x}" y="${y + 34}" class="subtitle">${escape(subtitle)}</text>`,
    ...body
  ].join("\n")
}

const ours = "#2f6fdf"
const theirs = "#9aa5b1"
const server = "#58a55c"

/** Hand-written SVG: throughput (1, 5), time under latency with a working consumer (2, 3), and CLI memory (4). */
export const chart = (results: Results): string => {
  const byId = new Map(results.measures.map((measure) => [measure.id, measure]))
  const bars = (id: number, colours: ReadonlyArray<string>): Array<Bar> =>
    (byId.get(id)?.contenders ?? []).map((c, i) => ({
      label: c.name,
      value: c.median,
      text: formatValue(c.median, c.unit),
      colour: colours[i] ?? theirs
    }))
  const width = 900
  const panels: Array<{ title: string; subtitle: string; bars: Array<Bar> }> = []
  const throughput = [...bars(1, [ours, theirs]), ...bars(5, [server])]
  if (throughput.length > 0) {
    panels.push({
      title: "Throughput (records/s, higher is better)",
      subtitle: `30,000 users over loopback, no latency; ${byId.get(1)?.resultText ?? ""}`,
      bars: throughput
    })
  }
  const time = [...bars(2, [ours, theirs]), ...bars(3, [ours, theirs])]
  if (time.length > 0) {
    panels.push({
      title: "Total time with 25 ms a page on the server and 25 ms of work a page (s, lower is better)",
      subtitle: `${byId.get(2)?.resultText ?? ""}; ${byId.get(3)?.resultText ?? ""}`,
      bars: time
    })
  }
  const memory = bars(4, [theirs, ours])
  if (memory.length > 0) {
    panels.push({
      title: "Peak RSS of the CLI exporting users, dedupe on (MiB)",
      subtitle: byId.get(4)?.resultText ?? "",
      bars: memory
    })
  }
  let y = 50
  const parts: Array<string> = []
  for (const p of panels) {
    parts.push(panel(20, y, width - 40, p.title, p.subtitle, p.bars))
    y += 48 + p.bars.length * 32 + 30
  }
  const height = y + 10
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">
<style>.title{font-size:15px;font-weight:600;fill:#1f2328}.subtitle{font-size:12px;fill:#59636e}.label{font-size:13px;fill:#1f2328}.value{font-size:12px;fill:#1f2328}.head{font-size:18px;font-weight:700;fill:#1f2328}.foot{font-size:11px;fill:#59636e}</style>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="20" y="30" class="head">intercom-scroll: pnpm bench, ${escape(results.date.slice(0, 10))}</text>
${parts.join("\n")}
<text x="20" y="${height - 8}" class="foot">${escape(`Node ${results.machine.node}, ${results.machine.cpus} CPUs; medians of interleaved runs against the standalone simulator`)}</text>
</svg>
`
}
