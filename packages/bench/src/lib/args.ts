/** The command line of a bench script: `--name VALUE` flags and bare switches. */
/** The arguments after the script, without the `--` that `pnpm <script> -- …` passes on. */
export const argv: ReadonlyArray<string> = process.argv[2] === "--" ? process.argv.slice(3) : process.argv.slice(2)

/** The value after `--name`, if the flag is there. */
export const flag = (name: string): string | undefined => {
  const at = argv.indexOf(name)
  return at === -1 ? undefined : argv[at + 1]
}

/** Whether `--name` is there. */
export const has = (name: string): boolean => argv.includes(name)
