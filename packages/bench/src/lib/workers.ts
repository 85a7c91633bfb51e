/** The bench's side of worker.ts: a contender's process, started once and asked for runs one at a time. */
import { Effect, type Scope } from "effect"
import { fork } from "node:child_process"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import type { Message, Reply, RunResult, Setup } from "./worker.js"

const workerPath = NodePath.join(NodePath.dirname(fileURLToPath(import.meta.url)), "worker.ts")
const tsx = import.meta.resolve("tsx")

export interface Worker {
  readonly run: () => Promise<RunResult>
}

export class WorkerFailed extends Error {}

export interface Options {
  /** Arguments of its node, such as --cpu-prof. */
  readonly nodeArgs?: ReadonlyArray<string>
  /** A network namespace to run it in (`ip netns exec`), such as `PacketLink`'s. */
  readonly netns?: string | undefined
}

/** Starts a contender's process (stopped when the scope closes). */
export const start = (setup: Setup, options: Options = {}): Effect.Effect<Worker, WorkerFailed, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly worker: Worker; readonly stop: () => Promise<void> }, WorkerFailed>((resume) => {
      const node = ["--import", tsx, ...(options.nodeArgs ?? [])]
      // `ip netns exec` keeps the IPC channel's descriptor as it executes node.
      const child = fork(workerPath, [], {
        ...(options.netns === undefined
          ? { execArgv: node }
          : { execPath: "ip", execArgv: ["netns", "exec", options.netns, process.execPath, ...node] }),
        env: { ...process.env, BENCH_WORKER_SETUP: JSON.stringify(setup) },
        stdio: ["ignore", "inherit", "inherit", "ipc"]
      })
      let pending: { resolve: (result: RunResult) => void; reject: (error: Error) => void } | undefined
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
      child.on("exit", (code) => pending?.reject(new WorkerFailed(`${setup.contender} exited with ${code}`)))
      child.on("message", (reply: Reply) => {
        switch (reply.type) {
          case "ready":
            resume(Effect.succeed({
              worker: {
                run: () =>
                  new Promise<RunResult>((resolve, reject) => {
                    pending = { resolve, reject }
                    child.send({ type: "run" } satisfies Message)
                  })
              },
              stop: () => {
                if (child.exitCode === null) child.send({ type: "stop" } satisfies Message)
                return exited
              }
            }))
            break
          case "result":
            pending?.resolve(reply.result)
            pending = undefined
            break
          case "error":
            pending?.reject(new WorkerFailed(`${setup.contender}: ${reply.message}`))
            pending = undefined
            break
        }
      })
      child.once("error", (error) => resume(Effect.fail(new WorkerFailed(`${setup.contender}: ${error.message}`))))
    }),
    ({ stop }) => Effect.promise(stop)
  ).pipe(Effect.map(({ worker }) => worker))
