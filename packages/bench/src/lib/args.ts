/** The command line of a bench script: `--name VALUE` flags and bare switches. */

/** A process's arguments after node's and the script's, without the `--` that `pnpm <script> -- …` passes on. */
export const scriptArguments = (processArgv: ReadonlyArray<string>): ReadonlyArray<string> =>
  processArgv[2] === "--" ? processArgv.slice(3) : processArgv.slice(2)

/** The arguments after the script. */
export const argv: ReadonlyArray<string> = scriptArguments(process.argv)

/** The value after `--name`, if the flag is there. */
export const flag = (name: string): string | undefined => {
  const at = argv.indexOf(name)
  return at === -1 ? undefined : argv[at + 1]
}

/** Whether `--name` is there. */
export const has = (name: string): boolean => argv.includes(name)
