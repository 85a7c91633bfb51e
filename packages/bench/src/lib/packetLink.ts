/**
 * A link at the packet level between this process and a network namespace of its own (scripts/packet-link.py): a
 * server here listens on `serverHost`, a contender started in `netns` (`Workers.start`'s option) reaches it through the
 * link, every packet both ways held for half the round trip after it is serialized at the link's rate. TCP's handshake,
 * slow start and acknowledgements then cost what they cost on a real link, where the simulator's link model (a wait
 * before each answer, its body paced) runs over loopback.
 *
 * It needs root, `/dev/net/tun`, iproute2's `ip` and python3; the kernel's netem is not needed (these machines lack
 * it). Without them, `make` fails with the reason, and the measure says it was not run.
 */
import { Data, Effect, type Scope } from "effect"
import { execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

export class PacketLinkUnavailable extends Data.TaggedError("PacketLinkUnavailable")<{ readonly reason: string }> {}

export interface PacketLink {
  /** This side's address: a server that should be reached through the link listens on it. */
  readonly serverHost: string
  /**
   * The name a client in the namespace reaches it by: `localhost` (its `/etc/hosts` there, as `ip netns exec` mounts
   * it), since the core sends a token over plain HTTP to this machine only, and the simulator speaks no TLS.
   */
  readonly serverName: string
  /** The network namespace a client runs in (`ip netns exec`). */
  readonly netns: string
  /** What a probe through the link read: the median of 10 round trips, and 2 MB's rate from a cold connection. */
  readonly calibration: { readonly roundTripMillis: number; readonly megabits: number }
  /**
   * The machine's TCP congestion control, the server's (`bbr` here: it paces a response of 12–24 packets, ~6 ms more
   * at 20 Mbit/s than `cubic`, which sends it at once).
   */
  readonly congestionControl: string
}

export interface Options {
  readonly roundTripMillis: number
  readonly megabits: number
}

const script = NodePath.join(NodePath.dirname(fileURLToPath(import.meta.url)), "..", "..", "scripts", "packet-link.py")

const ip = (...args: ReadonlyArray<string>) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] })

const unavailable = (reason: string) => new PacketLinkUnavailable({ reason })

/** Why this machine cannot make the link, if it cannot. */
const missing = (): string | undefined => {
  if (process.getuid?.() !== 0) return "not root (a network namespace and TUN devices need it)"
  if (!Fs.existsSync("/dev/net/tun")) return "no /dev/net/tun"
  for (const [command, flag] of [["ip", "-V"], ["python3", "--version"]] as const) {
    try {
      execFileSync(command, [flag], { stdio: "ignore" })
    } catch {
      return `no ${command}`
    }
  }
  return undefined
}

/** The namespace, the two TUN devices and their addresses; removed when the scope closes. */
const devices = (suffix: string, subnet: number) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        const netns = `isl-${suffix}`
        const here = `islr${suffix}`
        const there = `islc${suffix}`
        const [serverHost, clientHost] = [`10.78.${subnet}.1`, `10.78.${subnet}.2`]
        ip("netns", "add", netns)
        ip("tuntap", "add", "dev", here, "mode", "tun")
        ip("addr", "add", serverHost, "peer", clientHost, "dev", here)
        ip("link", "set", here, "up")
        ip("netns", "exec", netns, "ip", "tuntap", "add", "dev", there, "mode", "tun")
        ip("netns", "exec", netns, "ip", "addr", "add", clientHost, "peer", serverHost, "dev", there)
        ip("netns", "exec", netns, "ip", "link", "set", there, "up")
        ip("netns", "exec", netns, "ip", "link", "set", "lo", "up")
        Fs.mkdirSync(`/etc/netns/${netns}`, { recursive: true })
        Fs.writeFileSync(`/etc/netns/${netns}/hosts`, `${serverHost} localhost\n`)
        return { netns, here, there, serverHost }
      },
      catch: (error) => unavailable(`ip: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`)
    }),
    ({ here, netns }) =>
      Effect.sync(() => {
        Fs.rmSync(`/etc/netns/${netns}`, { recursive: true, force: true })
        // The namespace's own device goes with it.
        for (const args of [["link", "del", here], ["netns", "del", netns]]) {
          try {
            ip(...args)
          } catch {
            // Already gone.
          }
        }
      })
  )

const realTime = () => {
  try {
    execFileSync("chrt", ["-f", "10", "true"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

/** The forwarder, stopped when the scope closes (its stdin's end). */
const forwarder = (netns: string, here: string, there: string, options: Options) =>
  Effect.acquireRelease(
    Effect.async<ReturnType<typeof spawn>, PacketLinkUnavailable>((resume) => {
      // At a real-time priority where the machine allows it, so that its load delays no packet (`chrt` fails
      // otherwise, and the forwarder runs as any process).
      const [command, ...prefix] = realTime() ? ["chrt", "-f", "10", "python3"] : ["python3"]
      const child = spawn(command, [
        ...prefix,
        script,
        `/var/run/netns/${netns}`,
        here,
        there,
        String(options.roundTripMillis / 2),
        String(options.megabits)
      ], { stdio: ["pipe", "pipe", "inherit"] })
      child.stdout.once("data", (chunk: Buffer) =>
        resume(
          chunk.toString().startsWith("ready")
            ? Effect.succeed(child)
            : Effect.fail(unavailable(`the forwarder said ${chunk.toString().trim()}`))
        ))
      child.once("exit", (code) => resume(Effect.fail(unavailable(`the forwarder exited with ${code}`))))
    }),
    (child) =>
      Effect.async<void>((resume) => {
        if (child.exitCode !== null) return resume(Effect.void)
        child.once("exit", () => resume(Effect.void))
        child.stdin?.end()
        setTimeout(() => child.kill("SIGKILL"), 2_000).unref()
      })
  )

/** A client in the namespace: 10 round trips of a byte, then 2 MB, against an echo server on `host`. */
const calibrate = (netns: string, host: string) =>
  Effect.acquireUseRelease(
    Effect.async<Net.Server>((resume) => {
      const server = Net.createServer((socket) => {
        socket.setNoDelay(true)
        socket.on("data", (data) => socket.write(data[0] === 0x42 ? Buffer.alloc(2_000_000) : data))
      })
      server.listen(0, host, () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.tryPromise({
        try: () =>
          new Promise<PacketLink["calibration"]>((resolve, reject) => {
            const { port } = server.address() as Net.AddressInfo
            const client = spawn("ip", ["netns", "exec", netns, process.execPath, "-e", probe, host, String(port)], {
              stdio: ["ignore", "pipe", "inherit"]
            })
            let out = ""
            client.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
            client.once("exit", (code) =>
              code === 0 ? resolve(JSON.parse(out) as PacketLink["calibration"]) : reject(new Error(`exit ${code}`)))
          }),
        catch: (error) => unavailable(`the probe through the link failed: ${String(error)}`)
      }),
    (server) => Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
  )

const probe = `
const net = require("node:net")
const [host, port] = process.argv.slice(1)
const socket = net.connect(Number(port), host, async () => {
  socket.setNoDelay(true)
  const trips = []
  for (let i = 0; i < 10; i++) {
    const start = performance.now()
    socket.write("a")
    await new Promise((resolve) => socket.once("data", resolve))
    trips.push(performance.now() - start)
  }
  trips.sort((a, b) => a - b)
  let received = 0
  const start = performance.now()
  socket.on("data", (data) => {
    received += data.length
    if (received >= 2000000) {
      const seconds = (performance.now() - start) / 1000
      process.stdout.write(JSON.stringify({ roundTripMillis: (trips[4] + trips[5]) / 2, megabits: 16 / seconds }))
      process.exit(0)
    }
  })
  socket.write("B")
})
`

/** Whether process `pid` is alive. */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** The namespaces and devices of earlier runs that did not close their scope (a bench stopped by Ctrl-C). */
const sweepStale = () => {
  const listed = execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
  for (const [, pid] of listed.matchAll(/^isl-(\d+)/gm)) {
    if (alive(Number(pid))) continue
    for (const args of [["link", "del", `islr${pid}`], ["netns", "del", `isl-${pid}`]]) {
      try {
        ip(...args)
      } catch {
        // Already gone.
      }
    }
    Fs.rmSync(`/etc/netns/isl-${pid}`, { recursive: true, force: true })
  }
}

/** The link, its namespace and devices named after this process; all of it removed when the scope closes. */
export const make = (options: Options): Effect.Effect<PacketLink, PacketLinkUnavailable, Scope.Scope> =>
  Effect.gen(function*() {
    const reason = missing()
    if (reason !== undefined) return yield* Effect.fail(unavailable(reason))
    yield* Effect.sync(sweepStale)
    const suffix = String(process.pid)
    const { here, netns, serverHost, there } = yield* devices(suffix, process.pid % 250)
    yield* forwarder(netns, here, there, options)
    const calibration = yield* calibrate(netns, serverHost)
    const congestionControl = Fs.readFileSync("/proc/sys/net/ipv4/tcp_congestion_control", "utf8").trim()
    return { serverHost, serverName: "localhost", netns, calibration, congestionControl }
  })
