/**
 * What crosses between runners and senders of two versions of the fleet: a reply one sent, or stored before an upgrade,
 * that the other reads.
 */
import { Rpc } from "@effect/rpc"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Schema } from "effect"
import { Summary, WorkspaceSync } from "../src/index.js"

const exit = Schema.decodeUnknown(Rpc.exitSchema(WorkspaceSync.Sync))

describe("a Sync's reply across versions", () => {
  it.effect("a summary of a runner before Summary.app (e57f5d4) is read, its app absent rather than null", () =>
    Effect.gen(function*() {
      // The exit of a reply a runner of e57f5d4 stored in cluster_replies, as it stored it: no `app`.
      const stored = {
        _tag: "Success",
        value: [{
          runId: 1,
          workspace: "w1",
          resource: "users",
          inserted: 1500,
          updated: 0,
          unchanged: 0,
          deleted: 0,
          restarts: 0,
          duration: { _tag: "Millis", millis: 2851 }
        }]
      }
      const read = yield* exit(stored)
      // Every field as stored, the duration decoded.
      const { duration: _, ...counts } = stored.value[0]!
      expect(Exit.isSuccess(read) && read.value).toEqual([{ ...counts, duration: Duration.millis(2851) }])
      // Absent is not null: null says the run went unchecked, which that runner did not say.
      expect(Exit.isSuccess(read) && "app" in read.value[0]).toBe(false)
      // Nor did it count the runs cut before its own: absent, not 0.
      expect(Exit.isSuccess(read) && "cutBefore" in read.value[0]).toBe(false)
    }))

  it.effect("a summary with the runs cut before its own (cutBefore) is read as it was sent, and by a sender of the version before", () =>
    Effect.gen(function*() {
      const summary = { runId: 3, workspace: "w1", resource: "users", inserted: 0, updated: 0, unchanged: 1, deleted: 0, restarts: 0 }
      const sent = { _tag: "Success", value: [{ ...summary, duration: { _tag: "Millis", millis: 5 }, app: "7b02d412", cutBefore: 2 }] }
      const read = yield* exit(sent)
      expect(Exit.isSuccess(read) && read.value.map((one) => one.cutBefore)).toEqual([2])
      // The version before read summaries without it: the field is ignored there, not refused.
      const before = Schema.decodeUnknown(Schema.Array(Summary.Summary.pipe(Schema.omit("cutBefore"))))
      expect(yield* before(sent.value)).toEqual([{ ...summary, duration: Duration.millis(5), app: "7b02d412" }])
    }))

  it.effect("a summary of this version keeps its app, and null where the run went unchecked", () =>
    Effect.gen(function*() {
      const summary = { runId: 2, workspace: "w1", resource: "users", inserted: 0, updated: 0, unchanged: 1, deleted: 0, restarts: 0 }
      const read = yield* exit({
        _tag: "Success",
        value: [
          { ...summary, duration: { _tag: "Millis", millis: 5 }, app: "7b02d412" },
          { ...summary, resource: "leads", duration: { _tag: "Millis", millis: 5 }, app: null }
        ]
      })
      expect(Exit.isSuccess(read) && read.value.map((one) => one.app)).toEqual(["7b02d412", null])
    }))
})
