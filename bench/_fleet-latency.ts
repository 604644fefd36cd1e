// Fleet latency, one command at a time (where Nagle's algorithm costs most: a small write after an unacknowledged
// small write waits for the peer's delayed ACK, up to 40 ms on Linux): the operator sends one 1-step pipeline to one
// agent (in-process runner, native mode) and waits for its answer, `rounds` times; beside raw mqtt.js QoS 1
// publish → reply round trips with one in flight, the responder answering a tick later as an agent does (mqtt.js's
// defaults, i.e. Nagle on, and with noDelay on its sockets), on the same broker in the same run. Brokers: the embedded
// Aedes, and Mosquitto with its default configuration (`set_tcp_nodelay false`) and with `set_tcp_nodelay true`.
// Blocks of each kind alternate (raw, raw noDelay, fleet, raw, …) so they share the load; medians are reported.
// Run: node_modules/.bin/node bench/_fleet-latency.ts [rounds=100] [blocks=4]
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer, Socket } from "node:net"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Redacted } from "effect"
import * as Agent from "../packages/fleet/src/Agent.ts"
import * as Broker from "../packages/fleet/src/Broker.ts"
import { withoutNagle } from "../packages/fleet/src/internal/noDelay.ts"
import * as Operator from "../packages/fleet/src/Operator.ts"
import * as Security from "../packages/fleet/src/Security.ts"
// mqtt is a dependency of @testbed/fleet, not of the repository root.
import { connect } from "../packages/fleet/node_modules/mqtt/build/index.js"
import { inProcess, runFleetBench } from "./_fleet-parts.ts"

const rounds = Number(process.argv[2] ?? 100)
const blocks = Number(process.argv[3] ?? 4)
const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")
const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN

type Client = ReturnType<typeof connect>

/** A raw mqtt.js client; with `noDelay`, every socket it opens has Nagle off (as `MqttConnection` does it). */
const open = (url: string, clientId: string, noDelay: boolean) =>
  new Promise<Client>((resolve) => {
    const c = connect(url, { clientId, manualConnect: true, log: () => {} })
    if (noDelay) withoutNagle(c)
    c.connect()
    c.once("connect", () => resolve(c))
  })

/** `rounds` sequential publish → reply round trips (ms each); the responder answers on the next turn, like an agent. */
const rawTrips = async (url: string, noDelay: boolean, tag: string) => {
  const requester = await open(url, `raw-req-${tag}`, noDelay)
  const responder = await open(url, `raw-rsp-${tag}`, noDelay)
  await responder.subscribeAsync(`lat/${tag}/req`, { qos: 1 })
  await requester.subscribeAsync(`lat/${tag}/rep`, { qos: 1 })
  responder.on("message", (_topic, payload) => {
    setImmediate(() => responder.publish(`lat/${tag}/rep`, payload, { qos: 1 }))
  })
  const trips: Array<number> = []
  for (let i = 0; i < rounds; i++) {
    const start = performance.now()
    await new Promise<void>((resolve) => {
      requester.once("message", () => resolve())
      requester.publish(`lat/${tag}/req`, "x".repeat(200), { qos: 1 })
    })
    trips.push(performance.now() - start)
  }
  await Promise.all([requester.endAsync(), responder.endAsync()])
  return trips
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

/** A Mosquitto of our own on a free port, with or without `set_tcp_nodelay true`; stopped with the scope. */
const mosquitto = (noDelay: boolean) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const port = await freePort()
      const dir = mkdtempSync(join(tmpdir(), "fleet-latency-"))
      const conf = [`listener ${port} 127.0.0.1`, "allow_anonymous true", "persistence false", "log_type error"]
      if (noDelay) conf.push("set_tcp_nodelay true")
      writeFileSync(join(dir, "mosquitto.conf"), `${conf.join("\n")}\n`)
      const child = spawn("/usr/sbin/mosquitto", ["-c", join(dir, "mosquitto.conf")], { stdio: "ignore" })
      // Wait until it accepts a connection.
      for (let i = 0; i < 200; i++) {
        const up = await new Promise<boolean>((resolve) => {
          const s = new Socket()
          s.once("connect", () => resolve(s.destroy() !== undefined))
          s.once("error", () => resolve(false))
          s.connect(port, "127.0.0.1")
        })
        if (up) break
        await new Promise((r) => setTimeout(r, 25))
      }
      return { url: `mqtt://127.0.0.1:${port}`, child, dir }
    }),
    ({ child, dir }: { readonly url: string; readonly child: ChildProcess; readonly dir: string }) =>
      Effect.sync(() => {
        child.kill("SIGKILL")
        rmSync(dir, { recursive: true, force: true })
      })
  )

const signing = Security.signed(Redacted.make("bench secret"))

/** Operator and one agent on `url`; `trips` times `rounds` one-command pipelines, one after another. */
const fleetOn = (url: string, tag: string) =>
  Effect.gen(function* () {
    const operator = yield* Operator.start({ connection: { url }, signing, expectAgents: 1, stepTimeout: "60 seconds" })
    yield* Agent.start({ ids: [`lat-agent-${tag}`], connection: { url }, signing })
    yield* operator.awaitRegistrations
    const pipeline = { name: "latency", steps: ["true"] }
    yield* operator.runPipelines([pipeline]) // warm-up
    const trips = Effect.gen(function* () {
      const out: Array<number> = []
      for (let i = 0; i < rounds; i++) {
        const start = performance.now()
        const summary = yield* operator.runPipelines([pipeline])
        if (!summary.succeeded) return yield* Effect.die(new Error(JSON.stringify(summary.counts)))
        out.push(performance.now() - start)
      }
      return out
    })
    return trips
  })

const measure = (name: string, url: string) =>
  Effect.gen(function* () {
    const fleet = yield* fleetOn(url, name)
    const raw: Array<number> = []
    const rawNoDelay: Array<number> = []
    const ours: Array<number> = []
    for (let b = 0; b < blocks; b++) {
      raw.push(...(yield* Effect.promise(() => rawTrips(url, false, `${name}-${b}`))))
      rawNoDelay.push(...(yield* Effect.promise(() => rawTrips(url, true, `${name}-nd-${b}`))))
      ours.push(...(yield* fleet))
    }
    const [r, n, f] = [median(raw), median(rawNoDelay), median(ours)]
    console.log(
      `${name}: fleet command p50 ${f.toFixed(2)} ms | raw mqtt.js round trip p50 ${r.toFixed(2)} ms (Nagle on), ` +
        `${n.toFixed(2)} ms (noDelay) | fleet ÷ raw noDelay ${(f / n).toFixed(2)}× | load ${load()}`
    )
  }).pipe(Effect.scoped)

const program = Effect.gen(function* () {
  console.log(`${rounds} sequential round trips × ${blocks} blocks each, node ${process.version}, load ${load()}`)
  const embedded = yield* Broker.embedded({ port: 0 })
  yield* measure("embedded Aedes", embedded.url)
  const plain = yield* mosquitto(false)
  yield* measure("Mosquitto (default: set_tcp_nodelay false)", plain.url)
  const fast = yield* mosquitto(true)
  yield* measure("Mosquitto (set_tcp_nodelay true)", fast.url)
})

runFleetBench(program.pipe(Effect.provide(inProcess)))
