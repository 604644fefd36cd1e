// What bench/replay.ts measures with: its peers and baselines as child processes (load clients, upstream servers,
// the Python replay server, mountebank, socat), the record proxy under test, interleaved rounds and the load average.
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { NodeServices } from "@effect/platform-node"
import { Deferred, Duration, Effect, Fiber, Option, Schedule, type Scope } from "effect"
import { BlobStore } from "../packages/replay/src/BlobStore.ts"
import * as RecordProxy from "../packages/replay/src/RecordProxy.ts"
import { distinctMessages, message, messageSize } from "./_replay-peers.ts"

const peers = Path.join(import.meta.dirname, "_replay-peers.ts")
const baselines = Path.join(import.meta.dirname, "baselines")
const repo = Path.join(import.meta.dirname, "..")

export interface Bulk {
  readonly bytes: number
  readonly seconds: number
}
export interface PingPong {
  readonly p50: number
  readonly p99: number
  readonly perSecond: number
}
export interface Servers {
  readonly bulk: number
  readonly echo: number
}

const cpus = Os.cpus().length

export const machine = () =>
  `node ${process.version}, ${cpus} CPU(s): ${Os.cpus()[0]?.model ?? "?"}; load average ${Os.loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`

/** A child process, ended (SIGTERM) when the scope closes; `lines` sees each line of its stdout and stderr. */
const child = (program: string, args: ReadonlyArray<string>, lines: (line: string) => void = () => {}) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const proc = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"] })
      let pending = ""
      const onData = (chunk: Buffer) => {
        pending += chunk.toString()
        const parts = pending.split("\n")
        pending = parts.pop() ?? ""
        for (const line of parts) lines(line)
      }
      proc.stdout.on("data", onData)
      proc.stderr.on("data", onData)
      proc.on("error", () => lines("(spawn failed)"))
      return proc
    }),
    (proc) => Effect.sync(() => proc.kill())
  )

/** Starts a child and waits (at most 30 s) for a line it prints that `pick` accepts; undefined if it cannot start. */
const startedChild = <A>(program: string, args: ReadonlyArray<string>, pick: (line: string) => A | undefined) =>
  Effect.gen(function* () {
    const found = yield* Deferred.make<A | undefined>()
    const proc = yield* child(program, args, (line) => {
      const value = line === "(spawn failed)" ? undefined : pick(line)
      if (value !== undefined || line === "(spawn failed)") Deferred.doneUnsafe(found, Effect.succeed(value))
    })
    const value = yield* Deferred.await(found).pipe(
      Effect.timeoutOrElse({ duration: Duration.seconds(30), orElse: () => Effect.succeed(undefined) })
    )
    return { value, pid: proc.pid ?? 0 }
  })

const started = <A>(program: string, args: ReadonlyArray<string>, pick: (line: string) => A | undefined) =>
  Effect.map(startedChild(program, args, pick), ({ value }) => value)

/** Runs a child to its first JSON line. */
const firstJson = <A>(program: string, args: ReadonlyArray<string>) =>
  Effect.scoped(
    Effect.flatMap(
      started(program, args, (line) => (line.startsWith("{") ? (JSON.parse(line) as A) : undefined)),
      (value) =>
        value === undefined
          ? Effect.die(new Error(`${program} ${args.join(" ")} printed nothing`))
          : Effect.succeed(value)
    )
  )

export const servers: Effect.Effect<Servers, never, Scope.Scope> = Effect.flatMap(
  started(process.execPath, [peers, "servers"], (line) =>
    line.startsWith("{") ? (JSON.parse(line) as Servers) : undefined
  ),
  (value) => (value === undefined ? Effect.die(new Error("the upstream servers did not start")) : Effect.succeed(value))
)

export const nodePingPong = (port: number, count: number) =>
  firstJson<PingPong>(process.execPath, [peers, "load", "pingpong", String(port), String(count)])
export const pythonPingPong = (port: number, count: number) =>
  firstJson<PingPong>("python3", [
    Path.join(baselines, "pingpong_client.py"),
    String(port),
    String(count),
    String(messageSize)
  ])
export const bulk = (port: number, bytes: number) =>
  firstJson<Bulk>(process.execPath, [peers, "load", "bulk", String(port), String(bytes)])

const listening = (server: Net.Server) => (server.address() as Net.AddressInfo).port

/** A plain node echo server in this process: what answering costs without matching anything. */
export const echoServer = Effect.acquireRelease(
  Effect.callback<Net.Server>((resume) => {
    const server = Net.createServer({ noDelay: true }, (socket) => {
      socket.on("data", (chunk) => socket.write(chunk))
      socket.on("error", () => socket.destroy())
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.sync(() => server.close())
).pipe(Effect.map(listening))

/** A bare node:net forwarder in this process (socket.pipe both ways, nothing recorded). */
export const pipeProxy = (remote: number) =>
  Effect.acquireRelease(
    Effect.callback<Net.Server>((resume) => {
      const server = Net.createServer((client) => {
        const upstream = Net.connect({ host: "127.0.0.1", port: remote })
        client.pipe(upstream).pipe(client)
        client.on("error", () => upstream.destroy())
        upstream.on("error", () => client.destroy())
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.sync(() => server.close())
  ).pipe(Effect.map(listening))

/** A free port, for tools that need one named (socat, mountebank). */
const freePort = Effect.callback<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = listening(server)
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** CPU seconds a process has used, from /proc (Linux); undefined once it is gone. */
const cpuOf = (pid: number): number | undefined => {
  const fields = Option.liftThrowable(() => readFileSync(`/proc/${pid}/stat`, "utf8"))()
  if (Option.isNone(fields)) return undefined
  const [utime, stime] = fields.value
    .slice(fields.value.lastIndexOf(")") + 2)
    .split(" ")
    .slice(11, 13)
  return (Number(utime) + Number(stime)) / 100
}

/**
 * A download through `socat TCP-LISTEN:… TCP:…` (Debian's socat, a forwarding process of its own, default 8 KiB
 * buffer), with the CPU socat used (read from /proc every 10 ms while it runs: a lower bound); undefined when
 * socat is missing.
 */
export const throughSocat = (remote: number, bytes: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const port = yield* freePort
      const args = ["-d", "-d", `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr`, `TCP:127.0.0.1:${remote}`]
      const socat = yield* startedChild("socat", args, (line) => (line.includes("listening on") ? true : undefined))
      if (socat.value === undefined) return undefined
      let cpuSeconds = 0
      const timer = setInterval(() => {
        cpuSeconds = cpuOf(socat.pid) ?? cpuSeconds
      }, 10)
      const figures = yield* bulk(port, bytes).pipe(Effect.ensuring(Effect.sync(() => clearInterval(timer))))
      return { ...figures, cpuSeconds }
    })
  )

/** A server in a child process: where it listens, and its pid (for its CPU). */
export interface Served {
  readonly port: number
  readonly pid: number
}

/** The CPU another (long-running) process used while `effect` ran, read from /proc before and after. */
export const withCpuOf = <A extends object, E, R>(pid: number, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const before = cpuOf(pid) ?? 0
    const figures = yield* effect
    return { ...figures, cpuSeconds: (cpuOf(pid) ?? before) - before }
  })

/**
 * The CPU this process used while `effect` ran: the server or proxy under test, which is the only thing running
 * here then (the proxy's script is written after the transfer, outside this measure).
 */
export const withCpu = <A extends object, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const before = process.cpuUsage()
    const figures = yield* effect
    const used = process.cpuUsage(before)
    return { ...figures, cpuSeconds: (used.user + used.system) / 1e6 }
  })

/** The older Python replay server serving `file`; its port, or undefined when python3 is missing. */
export const pythonServer = (file: string) =>
  Effect.map(
    startedChild("python3", [Path.join(baselines, "sock_test.py"), "-i", file, "-l", "127.0.0.1:0"], (line) => {
      const match = /Test server listening on [\d.]+:(\d+)/.exec(line)
      return match === null ? undefined : Number(match[1])
    }),
    ({ value, pid }): Served | undefined => (value === undefined ? undefined : { port: value, pid })
  )

/**
 * mountebank 2.9 (npm, a devDependency of the workspace) with a TCP imposter answering the exchanges in order: one
 * stub without predicates whose responses are one cycle of the messages (mountebank plays them in turn, over and
 * over), its cheapest way to play a session back. Logs at warn, as a user after speed would run it. Its imposter's
 * port, or undefined when it does not start.
 */
export const mountebank = (count: number) =>
  Effect.gen(function* () {
    const admin = yield* freePort
    const mb = Path.join(repo, "node_modules/mountebank/bin/mb")
    // mountebank writes mb.pid into its working directory unless told where: a temp file, not the checkout.
    const pidfile = Path.join(Os.tmpdir(), `testbed-bench-mb-${process.pid}-${admin}.pid`)
    const args = [mb, "--port", String(admin), "--loglevel", "warn", "--nologfile", "--pidfile", pidfile]
    const proc = yield* child(process.execPath, args)
    const responses = Array.from({ length: Math.min(count, distinctMessages) }, (_, i) => ({
      is: { data: message(i).toString("latin1") }
    }))
    const body = JSON.stringify({ protocol: "tcp", mode: "text", stubs: [{ responses }] })
    // mountebank says it is up only at info level: ask it, for at most 30 s.
    const created = yield* Effect.tryPromise(() =>
      fetch(`http://127.0.0.1:${admin}/imposters`, {
        method: "POST",
        body,
        headers: { "content-type": "application/json" }
      })
    ).pipe(
      Effect.flatMap((response) => Effect.promise(() => response.json() as Promise<{ port: number }>)),
      Effect.retry(Schedule.spaced(Duration.millis(100))),
      Effect.timeoutOption(Duration.seconds(30))
    )
    return created._tag === "Some" ? ({ port: created.value.port, pid: proc.pid ?? 0 } satisfies Served) : undefined
  }).pipe(Effect.catch(() => Effect.succeed(undefined)))

/** A recording proxy in this process, forwarding to `remote`, for one connection of `client`. */
export const throughRecordProxy = <A>(dir: string, remote: number, client: (port: number) => Effect.Effect<A>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const listeningOn = yield* Deferred.make<number>()
      const fiber = yield* Effect.forkScoped(
        RecordProxy.record({
          listenHost: "127.0.0.1",
          listenPort: 0,
          remoteHost: "127.0.0.1",
          remotePort: remote,
          base: Path.join(dir, "bench"),
          connections: 1,
          onListening: (_, port) => Deferred.succeed(listeningOn, port)
        }).pipe(Effect.provide(BlobStore.layer({ dir: Path.join(dir, "blobs") })), Effect.provide(NodeServices.layer))
      )
      const figures = yield* client(yield* Deferred.await(listeningOn))
      yield* Fiber.join(fiber)
      return figures
    })
  )

const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

/** The median round of each figure, field by field. */
const medianOf = <A extends object>(runs: ReadonlyArray<A>): A =>
  Object.fromEntries(
    Object.keys(runs[0]!).map((key) => [key, median(runs.map((run) => (run as Record<string, number>)[key]!))])
  ) as A

/**
 * Runs each measure once per round, the order rotating from round to round (no measure always follows the same one,
 * so a burst of load, or a peer's leftover work, hits them alike), and gives the medians, each measure's rounds (for
 * ratios paired within a round: `paired`) and the load average seen (marked "loaded" when above the core count).
 */
export const rounds = <M extends Record<string, Effect.Effect<object, unknown, never>>>(count: number, measures: M) =>
  Effect.gen(function* () {
    const runs: Record<string, Array<object>> = {}
    const loads: Array<number> = [Os.loadavg()[0]!]
    const entries = Object.entries(measures)
    for (let round = 0; round < count; round++) {
      for (let i = 0; i < entries.length; i++) {
        const [name, measure] = entries[(round + i) % entries.length]!
        const figures = yield* measure
        runs[name] = [...(runs[name] ?? []), figures]
        loads.push(Os.loadavg()[0]!)
      }
    }
    const medians = Object.fromEntries(Object.entries(runs).map(([name, values]) => [name, medianOf(values)]))
    const highest = Math.max(...loads)
    const load = `[load average ${Math.min(...loads).toFixed(1)}–${highest.toFixed(1)} on ${cpus} CPUs${highest > cpus ? ": loaded" : ""}]`
    return {
      medians: medians as { [K in keyof M]: Effect.Success<M[K]> },
      runs: runs as unknown as { [K in keyof M]: ReadonlyArray<Effect.Success<M[K]>> },
      load
    }
  })

/**
 * The median of the ratios `pick(a) / pick(b)` taken round by round, with their range: `1.62× (1.41–1.80)`. Both
 * measures of a round ran within seconds of each other, so a change of load between rounds cancels out.
 */
export const paired = <A>(a: ReadonlyArray<A>, b: ReadonlyArray<A>, pick: (figures: A) => number) => {
  const ratios = a.map((x, i) => pick(x) / pick(b[i]!)).sort((x, y) => x - y)
  return `${median(ratios).toFixed(2)}× (${ratios[0]!.toFixed(2)}–${ratios[ratios.length - 1]!.toFixed(2)})`
}
