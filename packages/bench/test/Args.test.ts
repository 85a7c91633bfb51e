import { describe, expect, it } from "vitest"
import { scriptArguments } from "../src/lib/args.js"

describe("a bench script's arguments", () => {
  it("are those after the script, with or without the `--` pnpm passes on", () => {
    expect(scriptArguments(["node", "chaos.ts", "--iterations", "6"])).toEqual(["--iterations", "6"])
    expect(scriptArguments(["node", "chaos.ts", "--", "--iterations", "6"])).toEqual(["--iterations", "6"])
    expect(scriptArguments(["node", "chaos.ts"])).toEqual([])
  })
})
