/**
 * @effect/cli renders its help and its usage errors with ANSI escape codes whatever the output is. This console
 * takes them out of what goes to a stream that should not get them: one that is not a terminal, or when NO_COLOR
 * asks (https://no-color.org), or TERM is "dumb".
 *
 * @internal
 */
import { Config, type Console, Effect, Option } from "effect"

export interface Stream {
  readonly isTTY?: boolean | undefined
}

export interface Environment {
  readonly NO_COLOR?: string | undefined
  readonly TERM?: string | undefined
}

/** Whether text for `stream` may carry colours and styles. */
export const wantsStyles = (stream: Stream, env: Environment): boolean =>
  stream.isTTY === true && (env.NO_COLOR ?? "") === "" && env.TERM !== "dumb"

/** Control sequences (CSI): the styles @effect/printer-ansi writes, and any cursor movement. */
// eslint-disable-next-line no-control-regex -- the escape character is what this looks for
const controlSequence = /\u001b\[[0-?]*[ -/]*[@-~]/g

/** `text` without its styles. */
export const withoutStyles = (text: string): string => text.replace(controlSequence, "")

const plain = (argument: unknown): unknown => typeof argument === "string" ? withoutStyles(argument) : argument

/** `console`, writing to stdout (log, info, debug) and stderr (error, warn) with styles only where they are wanted. */
export const make = (
  console: Console.Console,
  styles: { readonly stdout: boolean; readonly stderr: boolean }
): Console.Console => {
  const writer = (wanted: boolean, write: (args: ReadonlyArray<unknown>) => Effect.Effect<void>) =>
  (...args: ReadonlyArray<unknown>) => write(wanted ? args : args.map(plain))
  return {
    ...console,
    log: writer(styles.stdout, (args) => console.log(...args)),
    info: writer(styles.stdout, (args) => console.info(...args)),
    debug: writer(styles.stdout, (args) => console.debug(...args)),
    error: writer(styles.stderr, (args) => console.error(...args)),
    warn: writer(styles.stderr, (args) => console.warn(...args))
  }
}

/** NO_COLOR and TERM, from the ConfigProvider (the environment unless a test says otherwise). */
const environment: Config.Config<Environment> = Config.all({
  NO_COLOR: Config.string("NO_COLOR").pipe(Config.option, Config.map(Option.getOrUndefined)),
  TERM: Config.string("TERM").pipe(Config.option, Config.map(Option.getOrUndefined))
})

/** Runs `effect` with the current console made plain where this process's stdout and stderr want it. */
export const forThisProcess = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.orElseSucceed(environment, () => ({})), (env) =>
    Effect.consoleWith((console) =>
      Effect.withConsole(
        effect,
        make(console, { stdout: wantsStyles(process.stdout, env), stderr: wantsStyles(process.stderr, env) })
      )
    ))
