// Replay benchmarks on loopback, each against a baseline measured in the same run:
//  1. bulk download through the RecordProxy (recording everything) vs a direct connection;
//  2. request/response latency added by the proxy (p50, p99 over 10,000 round trips of 64 bytes);
//  3. replayed round trips per second vs a plain echo server.
// The load client and the upstream servers run in child processes, so the proxy or replay server under test
// has the main process to itself, as it would in use.
// Run: node_modules/.bin/node bench/replay.ts [bulkMiB] [roundTrips]
import { spawn } from "node:child_process"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { NodeServices } from "@effect/platform-node"
import { Deferred, Duration, Effect, Fiber, FileSystem, Layer } from "effect"
import { BlobStore } from "../packages/replay/src/BlobStore.ts"
import type { Plan } from "../packages/replay/src/Plan.ts"
import * as RecordProxy from "../packages/replay/src/RecordProxy.ts"
import * as ReplayServer from "../packages/replay/src/ReplayServer.ts"

const role = process.argv[2]
const bulkMiB = Number(process.argv[2] === "servers" || process.argv[2] === "load" ? 0 : (process.argv[2] ?? 200))
const roundTrips = Number(process.argv[3] ?? 10_000)
const messageSize = 64

const message = (i: number) => Buffer.from(`ping ${String(i).padStart(8, "0")} `.padEnd(messageSize, "."))

// --- child: upstream servers (a bulk source and an echo server) -------------------------------------------------
if (role === "servers") {
  const source = Buffer.alloc(4 * 1024 * 1024, 0).map((_, i) => i % 251)
  const bulk = Net.createServer((socket) => {
    socket.once("data", (line) => {
      let left = Number(line.toString().trim())
      const pump = () => {
        while (left > 0) {
          const piece = source.subarray(0, Math.min(left, source.length))
          left -= piece.length
          if (!socket.write(piece)) return void socket.once("drain", pump)
        }
        socket.end()
      }
      pump()
    })
    socket.on("error", () => socket.destroy())
  })
  const echo = Net.createServer({ noDelay: true }, (socket) => {
    socket.on("data", (chunk) => socket.write(chunk))
    socket.on("error", () => socket.destroy())
  })
  bulk.listen(0, "127.0.0.1", () =>
    echo.listen(0, "127.0.0.1", () =>
      process.stdout.write(
        `${JSON.stringify({ bulk: (bulk.address() as Net.AddressInfo).port, echo: (echo.address() as Net.AddressInfo).port })}\n`
      )
    )
  )
}

// --- child: load client -----------------------------------------------------------------------------------------
if (role === "load") {
  const [, , , kind, portText, countText] = process.argv
  const port = Number(portText)
  const count = Number(countText)
  const socket = Net.connect({ host: "127.0.0.1", port, noDelay: true })
  const started = process.hrtime.bigint()
  if (kind === "bulk") {
    let received = 0
    socket.on("connect", () => socket.write(`${count}\n`))
    socket.on("data", (chunk) => {
      received += chunk.length
    })
    socket.on("end", () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      process.stdout.write(`${JSON.stringify({ bytes: received, seconds })}\n`)
      socket.end()
    })
  } else {
    const latencies = new Float64Array(count)
    let i = 0
    let got = 0
    let sentAt = 0n
    const send = () => {
      sentAt = process.hrtime.bigint()
      socket.write(message(i))
    }
    socket.on("connect", send)
    socket.on("data", (chunk) => {
      got += chunk.length
      while (got >= messageSize) {
        got -= messageSize
        latencies[i] = Number(process.hrtime.bigint() - sentAt) / 1000
        i++
        if (i === count) {
          const seconds = Number(process.hrtime.bigint() - started) / 1e9
          const sorted = Array.from(latencies).sort((a, b) => a - b)
          const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
          process.stdout.write(`${JSON.stringify({ p50: at(0.5), p99: at(0.99), perSecond: count / seconds })}\n`)
          socket.end()
          return
        }
        send()
      }
    })
  }
  socket.on("error", (error) => {
    console.error(error.message)
    process.exit(1)
  })
}

// --- main ---------------------------------------------------------------------------------------------------------
const child = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      spawn(process.execPath, [import.meta.filename, ...args], { stdio: ["ignore", "pipe", "inherit"] })
    ),
    (proc) => Effect.sync(() => proc.kill())
  )

const firstLine = <A>(args: ReadonlyArray<string>) =>
  Effect.scoped(
    Effect.flatMap(child(args), (proc) =>
      Effect.callback<A>((resume) => {
        let out = ""
        proc.stdout!.on("data", (chunk: Buffer) => {
          out += chunk.toString()
          const newline = out.indexOf("\n")
          if (newline >= 0) resume(Effect.succeed(JSON.parse(out.slice(0, newline)) as A))
        })
      })
    )
  )

interface Bulk {
  readonly bytes: number
  readonly seconds: number
}
interface PingPong {
  readonly p50: number
  readonly p99: number
  readonly perSecond: number
}

const load = {
  bulk: (port: number, bytes: number) => firstLine<Bulk>(["load", "bulk", String(port), String(bytes)]),
  pingPong: (port: number) => firstLine<PingPong>(["load", "pingpong", String(port), String(roundTrips)])
}

/** A recording proxy in this process, forwarding to `remote`; its script is written to a temp dir on stop. */
const proxyTo = (dir: string, remote: number) =>
  Effect.gen(function* () {
    const listening = yield* Deferred.make<number>()
    const fiber = yield* Effect.forkScoped(
      RecordProxy.record({
        listenHost: "127.0.0.1",
        listenPort: 0,
        remoteHost: "127.0.0.1",
        remotePort: remote,
        base: Path.join(dir, "bench"),
        connections: 1,
        onListening: (_, port) => Deferred.succeed(listening, port)
      }).pipe(Effect.provide(BlobStore.layer({ dir: Path.join(dir, "blobs") })), Effect.provide(NodeServices.layer))
    )
    return { port: yield* Deferred.await(listening), done: Fiber.join(fiber) }
  })

const echoServer = Effect.acquireRelease(
  Effect.callback<Net.Server>((resume) => {
    const server = Net.createServer({ noDelay: true }, (socket) => {
      socket.on("data", (chunk) => socket.write(chunk))
      socket.on("error", () => socket.destroy())
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.sync(() => server.close())
)

/** A bare node:net forwarder (socket.pipe both ways, nothing recorded): what forwarding alone costs here. */
const pipeProxy = (remote: number) =>
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
  ).pipe(Effect.map((server) => (server.address() as Net.AddressInfo).port))

const mbps = (b: Bulk) => b.bytes / 1024 / 1024 / b.seconds
const f = (n: number, digits = 1) => n.toFixed(digits)

const main = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-bench-replay-" })
  const servers = yield* Effect.flatMap(child(["servers"]), (proc) =>
    Effect.callback<{ bulk: number; echo: number }>((resume) => {
      proc.stdout!.once("data", (chunk: Buffer) => resume(Effect.succeed(JSON.parse(chunk.toString()))))
    })
  )
  console.log(`node ${process.version}, ${Os.cpus().length} CPU(s): ${Os.cpus()[0]?.model ?? "?"}`)

  const bytes = bulkMiB * 1024 * 1024
  yield* load.bulk(servers.bulk, 16 * 1024 * 1024) // warm-up
  const direct = yield* load.bulk(servers.bulk, bytes)
  const proxy = yield* proxyTo(dir, servers.bulk)
  const proxied = yield* load.bulk(proxy.port, bytes)
  yield* proxy.done
  const piped = yield* load.bulk(yield* pipeProxy(servers.bulk), bytes)
  console.log(
    `bulk ${bulkMiB} MiB download: direct ${f(mbps(direct))} MiB/s, through RecordProxy (recording) ${f(mbps(proxied))} MiB/s → ${f(mbps(proxied) / mbps(direct), 2)}× (aim ≥ 0.8×); ` +
      `bare node pipe proxy ${f(mbps(piped))} MiB/s → ${f(mbps(piped) / mbps(direct), 2)}×`
  )

  yield* load.pingPong(servers.echo) // warm-up
  const directRtt = yield* load.pingPong(servers.echo)
  const latencyProxy = yield* proxyTo(dir, servers.echo)
  const proxiedRtt = yield* load.pingPong(latencyProxy.port)
  yield* latencyProxy.done
  console.log(
    `round trips (${roundTrips} × ${messageSize} B): direct p50 ${f(directRtt.p50)} µs p99 ${f(directRtt.p99)} µs; ` +
      `through proxy p50 ${f(proxiedRtt.p50)} µs p99 ${f(proxiedRtt.p99)} µs; ` +
      `added p50 ${f(proxiedRtt.p50 - directRtt.p50)} µs, p99 ${f(proxiedRtt.p99 - directRtt.p99)} µs (aim p50 < 100 µs)`
  )

  const echo = yield* echoServer
  yield* load.pingPong((echo.address() as Net.AddressInfo).port) // warm-up
  const echoRtt = yield* load.pingPong((echo.address() as Net.AddressInfo).port)
  const plan: Plan = {
    _tag: "Single",
    steps: Array.from({ length: roundTrips }, (_, i) => ({
      _tag: "Exchange" as const,
      path: `recorded_script.scripts[${i}]`,
      command: message(i),
      response: message(i),
      fault: undefined
    }))
  }
  const replay = yield* ReplayServer.serve(plan, { announce: false, connections: 1, stepTimeout: Duration.seconds(30) })
  const replayRtt = yield* load.pingPong(replay.port)
  const outcome = yield* replay.done
  if (outcome.failures.length > 0) return yield* Effect.die(outcome.failures[0])
  console.log(
    `replayed round trips: ${f(replayRtt.perSecond, 0)}/s (p50 ${f(replayRtt.p50)} µs) vs plain echo server ${f(echoRtt.perSecond, 0)}/s (p50 ${f(echoRtt.p50)} µs) → ${f(replayRtt.perSecond / echoRtt.perSecond, 2)}×`
  )
})

if (role === undefined || !["servers", "load"].includes(role)) {
  Effect.runPromise(Effect.scoped(main).pipe(Effect.provide(Layer.mergeAll(NodeServices.layer)))).then(
    () => process.exit(0),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}
