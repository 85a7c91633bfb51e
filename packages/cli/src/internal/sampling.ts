/**
 * Which spans the telemetry sends: the sampler OTEL_TRACES_SAMPLER names (with OTEL_TRACES_SAMPLER_ARG), decided where
 * a trace begins and followed by its spans, across processes too (a fleet's runner follows the decision `fleet sync`
 * made, which the cluster carries with each request); and never a runner's background statements.
 *
 * @since 0.1.0
 */
import { type Context, type Exit, Option, Tracer } from "effect"

/**
 * A sampler, as the OpenTelemetry variables name them: `always_on`, `always_off`, `traceidratio` and their
 * `parentbased_` forms (`parentbased_always_on`, the default).
 *
 * @since 0.1.0
 * @category models
 */
export interface Sampler {
  /** A span with a parent is sent when its parent was, whatever `ratio` says of a trace's first span. */
  readonly parentBased: boolean
  /** The share of traces sent, from 0 to 1. */
  readonly ratio: number
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultSampler: Sampler = { parentBased: true, ratio: 1 }

/**
 * The sampler OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG name, or what is wrong with them, in words. A ratio
 * decides where a trace begins, and its spans follow, with or without `parentbased_`: a trace is sent whole or not at
 * all.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse = (
  name: string,
  arg: string | undefined
): Sampler | { readonly mistake: { readonly variable: string; readonly detail: string } } => {
  const parentBased = name.startsWith("parentbased_")
  const base = parentBased ? name.slice("parentbased_".length) : name
  if (base === "always_on") return { parentBased, ratio: 1 }
  if (base === "always_off") return { parentBased, ratio: 0 }
  if (base !== "traceidratio") {
    return {
      mistake: {
        variable: "OTEL_TRACES_SAMPLER",
        detail: `must be always_on, always_off, traceidratio or one of them after parentbased_, not ${JSON.stringify(name)}`
      }
    }
  }
  const ratio = arg === undefined ? 1 : Number(arg)
  return Number.isFinite(ratio) && ratio >= 0 && ratio <= 1 && (arg === undefined || arg.trim() !== "")
    ? { parentBased: true, ratio }
    : {
      mistake: {
        variable: "OTEL_TRACES_SAMPLER_ARG",
        detail: `must be a share of traces from 0 to 1, such as 0.1, not ${JSON.stringify(arg)}`
      }
    }
}

const hex = (bytes: number) =>
  Array.from(globalThis.crypto.getRandomValues(new Uint8Array(bytes)), (byte) => byte.toString(16).padStart(2, "0")).join("")

/**
 * A span that is not sent. Its trace id goes on to its children and, with its decision (`sampled: false`), to the
 * processes a request carries it to.
 */
class UnsentSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly sampled = false
  readonly spanId = hex(8)
  readonly traceId: string
  readonly attributes = new Map<string, unknown>()
  status: Tracer.SpanStatus
  constructor(
    readonly name: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Context.Context<never>,
    readonly links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind
  ) {
    this.traceId = Option.match(parent, { onNone: () => hex(16), onSome: (span) => span.traceId })
    this.status = { _tag: "Started", startTime }
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
  }
  attribute(key: string, value: unknown): void {
    this.attributes.set(key, value)
  }
  event(): void {}
  addLinks(): void {}
}

/**
 * `sent`, for the spans `sampler` keeps. The cluster's background statements (a runner's heartbeats, its lock refreshes,
 * its polls for messages) are each a `sql.execute` span without a parent, ~35,000 a day a runner that tell an operator
 * nothing: never sent. The statements of a sync, under its span, go with it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const tracer = (sent: Tracer.Tracer, sampler: Sampler): Tracer.Tracer =>
  Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      const send = Option.match(parent, {
        onNone: () => name !== "sql.execute" && (sampler.ratio === 1 || Math.random() < sampler.ratio),
        // A parent's decision is followed, unless the sampler decides alike for every span.
        onSome: (span) => sampler.parentBased || (sampler.ratio !== 0 && sampler.ratio !== 1) ? span.sampled : sampler.ratio === 1
      })
      return send
        ? sent.span(name, parent, context, links, startTime, kind, options)
        : new UnsentSpan(name, parent, context, links, startTime, kind)
    },
    context: (f, fiber) => sent.context(f, fiber)
  })
