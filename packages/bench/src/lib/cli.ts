/**
 * `intercom-scroll export users` as a user runs it (the package's bin, a token in the environment), with its peak
 * memory and the summary line it prints.
 */
import * as Memory from "./memory.js"
import { cliBin, root } from "./simulator.js"

export interface Export extends Memory.Finished {
  readonly records: number
  readonly pages: number
  readonly restarts: number
  readonly rateLimitWaits: number
}

const integer = (text: string | undefined) => Number((text ?? "NaN").replaceAll(",", ""))

export const exportUsers = async (
  baseUrl: string,
  token: string,
  out: string,
  flags: ReadonlyArray<string> = [],
  nodeFlags: ReadonlyArray<string> = []
): Promise<Export> => {
  const finished = await Memory.runNode([...nodeFlags, cliBin, "export", "users", "--out", out, ...flags], {
    env: { INTERCOM_ACCESS_TOKEN: token, INTERCOM_BASE_URL: baseUrl },
    cwd: root
  })
  const line = finished.stderr.split("\n").find((text) => text.startsWith("Exported ")) ?? ""
  const summary = /^Exported ([\d,]+) users? to .* in .*: ([\d,]+) pages?, ([\d,]+) restarts?/.exec(line)
  if (finished.exitCode !== 0 || summary === null) {
    throw new Error(`the CLI failed (exit ${finished.exitCode}):\n${finished.stderr.slice(-2000)}`)
  }
  return {
    ...finished,
    records: integer(summary[1]),
    pages: integer(summary[2]),
    restarts: integer(summary[3]),
    rateLimitWaits: integer(/([\d,]+) rate-limit waits?/.exec(line)?.[1] ?? "0")
  }
}

export interface Synced extends Memory.Finished {
  /** Records the sync saw: inserted, updated and unchanged. */
  readonly records: number
}

/** `intercom-scroll sync users --database URL`, as a user runs it. */
export const syncUsers = async (baseUrl: string, token: string, database: string): Promise<Synced> => {
  const finished = await Memory.runNode([cliBin, "sync", "users", "--database", database], {
    env: { INTERCOM_ACCESS_TOKEN: token, INTERCOM_BASE_URL: baseUrl },
    cwd: root
  })
  const line = finished.stderr.split("\n").find((text) => text.startsWith("Synced ")) ?? ""
  const summary = /: ([\d,]+) inserted, ([\d,]+) updated, ([\d,]+) unchanged/.exec(line)
  if (finished.exitCode !== 0 || summary === null) {
    throw new Error(`the CLI's sync failed (exit ${finished.exitCode}):\n${finished.stderr.slice(-2000)}`)
  }
  return { ...finished, records: integer(summary[1]) + integer(summary[2]) + integer(summary[3]) }
}
