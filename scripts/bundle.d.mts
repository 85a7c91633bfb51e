/** Types of bundle.mjs, for the TypeScript that calls it (the tests' global setup). */
export interface Program {
  readonly name: string
  readonly source: string
  readonly output: string
  readonly record: string
  /** The file that runs it: `output` itself, or a script's bin. */
  readonly runner: string
}
export declare const root: string
export declare const programs: () => Array<Program>
export declare const isFresh: (program: Pick<Program, "output" | "record">) => boolean
export declare const writeAtomically: (file: string, contents: string | Uint8Array) => void
export declare const bundle: (list: ReadonlyArray<Program>) => Promise<void>
export declare const ensureBundled: (
  list?: ReadonlyArray<Program>,
  options?: { readonly force?: boolean }
) => Promise<ReadonlyArray<Program>>
