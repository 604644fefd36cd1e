// Replay benchmarks on loopback, each figure beside the baselines a user would otherwise pick, measured in the
// same run, in interleaved rounds (the median of each is reported):
//  1. replayed round trips (10,000 × 64 B, a 10,000-step script) vs a plain node echo server and vs a mountebank
//     2.9 TCP imposter answering the same exchanges (one stub, its responses in order: mountebank's cheapest form);
//  2. the same script served by the older Python replay server (bench/baselines/sock_test.py: byte-at-a-time
//     reads) vs ReplayServer, both driven by the same Python client (bench/baselines/pingpong_client.py);
//  3. a 200 MiB download through RecordProxy (recording every byte) vs direct, vs a `socat` forwarder and vs a
//     bare node `socket.pipe` forwarder (neither records);
//  4. the latency the proxy adds to 10,000 round trips (p50, p99).
// The load clients, the upstream servers and the baselines run in child processes, so the replay server or proxy
// under test has the main process to itself. The load average is printed with each figure: on this shared 2-core
// machine a figure taken with a load above the core count is marked "loaded".
// Run: node_modules/.bin/node bench/replay.ts [bulkMiB=200] [roundTrips=10000] [rounds=5] [sections=replay,python,proxy,latency]
import * as Path from "node:path"
import { NodeServices } from "@effect/platform-node"
import { Duration, Effect, FileSystem } from "effect"
import type { Plan } from "../packages/replay/src/Plan.ts"
import * as ReplayServer from "../packages/replay/src/ReplayServer.ts"
import * as ScriptSource from "../packages/replay/src/ScriptSource.ts"
import { message } from "./_replay-peers.ts"
import * as Peers from "./_replay-bench.ts"

const bulkMiB = Number(process.argv[2] ?? 200)
const roundTrips = Number(process.argv[3] ?? 10_000)
const rounds = Number(process.argv[4] ?? 5)
const sections = (process.argv[5] ?? "replay,python,proxy,latency").split(",")

const f = (n: number, digits = 1) => n.toFixed(digits)
const ratio = (a: number, b: number) => `${f(a / b, 2)}×`

/** A script of `roundTrips` exchanges: message i answered by itself. */
const writeScript = (dir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const file = Path.join(dir, "pingpong.json")
    const scripts = Array.from({ length: roundTrips }, (_, i) => {
      const text = message(i).toString("latin1")
      return { type: "script", command: text, response: text }
    })
    yield* fs.writeFileString(file, JSON.stringify({ recorded_script: { type: "compound", scripts } }))
    return file
  })

/** One replay of the script to one client: the client's figures; a failed replay stops the bench. */
const replayOnce = <A>(plan: Plan, client: (port: number) => Effect.Effect<A>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const server = yield* ReplayServer.serve(plan, {
        announce: false,
        connections: 1,
        stepTimeout: Duration.seconds(30)
      })
      const figures = yield* client(server.port)
      const outcome = yield* server.done
      if (outcome.failures.length > 0) return yield* Effect.die(outcome.failures[0])
      return figures
    })
  )

const replaySection = (file: string) =>
  Effect.gen(function* () {
    const { plan } = yield* ScriptSource.load({ file, modules: [] })
    const echo = yield* Peers.echoServer
    const mountebank = yield* Peers.mountebank(roundTrips)
    const figures = yield* Peers.rounds(rounds, {
      echo: Peers.withCpu(Peers.nodePingPong(echo, roundTrips)),
      replay: replayOnce(plan, (port) => Peers.withCpu(Peers.nodePingPong(port, roundTrips))),
      ...(mountebank === undefined
        ? {}
        : { mountebank: Peers.withCpuOf(mountebank.pid, Peers.nodePingPong(mountebank.port, roundTrips)) })
    })
    const { echo: e, replay: r, mountebank: m } = figures.medians
    const rate = (x: { readonly perSecond: number }) => x.perSecond
    const cpu = (c: { readonly cpuSeconds: number }) => `${f((c.cpuSeconds * 1e6) / roundTrips)} µs CPU`
    console.log(
      `replayed round trips (${roundTrips} × 64 B, node client, median of ${rounds}): ReplayServer ${f(r.perSecond, 0)}/s ` +
        `(p50 ${f(r.p50)} µs, ${cpu(r)} each) vs plain echo server ${f(e.perSecond, 0)}/s (p50 ${f(e.p50)} µs, ${cpu(e)}) → ` +
        `${Peers.paired(figures.runs.replay, figures.runs.echo, rate)} (median of the rounds' ratios, range; aim ≥ 0.9×)` +
        (m === undefined
          ? "; mountebank not installed"
          : `; vs mountebank 2.9 TCP imposter ${f(m.perSecond, 0)}/s (p50 ${f(m.p50)} µs, ${cpu(m)}) → ${Peers.paired(figures.runs.replay, figures.runs.mountebank!, rate)} (aim ≥ 2×), ` +
            `CPU per round trip ${ratio(m.cpuSeconds, r.cpuSeconds)} less; a plain echo server gets ${ratio(e.perSecond, m.perSecond)} of mountebank`) +
        ` ${figures.load}`
    )
  })

const pythonSection = (file: string) =>
  Effect.gen(function* () {
    const { plan } = yield* ScriptSource.load({ file, modules: [] })
    const python = yield* Peers.pythonServer(file)
    if (python === undefined) return console.log("python3 not found: the Python baseline is skipped")
    const echo = yield* Peers.echoServer
    const figures = yield* Peers.rounds(rounds, {
      python: Peers.withCpuOf(python.pid, Peers.pythonPingPong(python.port, roundTrips)),
      replay: replayOnce(plan, (port) => Peers.withCpu(Peers.pythonPingPong(port, roundTrips))),
      echo: Peers.pythonPingPong(echo, roundTrips),
      pythonNode: Peers.nodePingPong(python.port, roundTrips),
      replayNode: replayOnce(plan, (port) => Peers.nodePingPong(port, roundTrips))
    })
    const { python: p, replay: r, echo: e, pythonNode: pn, replayNode: rn } = figures.medians
    const rate = (x: { readonly perSecond: number }) => x.perSecond
    const { runs } = figures
    const cpu = (c: { readonly cpuSeconds: number }) => `${f((c.cpuSeconds * 1e6) / roundTrips)} µs CPU`
    console.log(
      `the same script, Python client (median of ${rounds}): ReplayServer ${f(r.perSecond, 0)}/s (p50 ${f(r.p50)} µs, ${cpu(r)} each) vs ` +
        `the older Python replay server ${f(p.perSecond, 0)}/s (p50 ${f(p.p50)} µs, ${cpu(p)}) → ` +
        `${Peers.paired(runs.replay, runs.python, rate)} (median of the rounds' ratios, range; aim ≥ 1.5×), ` +
        `CPU per round trip ${Peers.paired(runs.python, runs.replay, (x) => x.cpuSeconds)} less; ` +
        `the most this client allows: a plain echo server ${f(e.perSecond, 0)}/s (p50 ${f(e.p50)} µs) → ${Peers.paired(runs.echo, runs.python, rate)}; ` +
        `with the node client: ReplayServer ${f(rn.perSecond, 0)}/s vs the Python server ${f(pn.perSecond, 0)}/s → ${Peers.paired(runs.replayNode, runs.pythonNode, rate)} ${figures.load}`
    )
  })

const proxySection = (dir: string, servers: Peers.Servers) =>
  Effect.gen(function* () {
    const bytes = bulkMiB * 1024 * 1024
    const pipe = yield* Peers.pipeProxy(servers.bulk)
    yield* Peers.bulk(servers.bulk, 16 * 1024 * 1024) // warm-up
    const socat = yield* Peers.throughSocat(servers.bulk, 1024 * 1024)
    const figures = yield* Peers.rounds(rounds, {
      direct: Peers.bulk(servers.bulk, bytes),
      proxy: Peers.throughRecordProxy(dir, servers.bulk, (port) => Peers.withCpu(Peers.bulk(port, bytes))),
      ...(socat === undefined ? {} : { socat: Effect.map(Peers.throughSocat(servers.bulk, bytes), (b) => b!) }),
      pipe: Peers.bulk(pipe, bytes)
    })
    const m = figures.medians
    const mbps = (b: Peers.Bulk) => b.bytes / 1024 / 1024 / b.seconds
    const cpu = (b: { readonly cpuSeconds: number }) => `${f((b.cpuSeconds * 1000) / bulkMiB, 2)} ms CPU/MiB`
    console.log(
      `bulk ${bulkMiB} MiB download (median of ${rounds}): through RecordProxy (recording) ${f(mbps(m.proxy))} MiB/s ` +
        `(${cpu(m.proxy)}, recording included); direct ${f(mbps(m.direct))} MiB/s → ${ratio(mbps(m.proxy), mbps(m.direct))} (aim ≥ 0.6×); ` +
        (m.socat === undefined
          ? "socat not installed; "
          : `socat forwarder ${f(mbps(m.socat))} MiB/s (≥ ${cpu(m.socat)}) → ${ratio(mbps(m.proxy), mbps(m.socat))} (aim ≥ 1.0×); `) +
        `bare node pipe forwarder ${f(mbps(m.pipe))} MiB/s → ${ratio(mbps(m.proxy), mbps(m.pipe))} ${figures.load}`
    )
  })

const latencySection = (dir: string, servers: Peers.Servers) =>
  Effect.gen(function* () {
    yield* Peers.nodePingPong(servers.echo, roundTrips) // warm-up
    const figures = yield* Peers.rounds(rounds, {
      direct: Peers.nodePingPong(servers.echo, roundTrips),
      proxy: Peers.throughRecordProxy(dir, servers.echo, (port) => Peers.nodePingPong(port, roundTrips))
    })
    const { direct: d, proxy: p } = figures.medians
    console.log(
      `round trips through the proxy (${roundTrips} × 64 B, median of ${rounds}): direct p50 ${f(d.p50)} µs p99 ${f(d.p99)} µs; ` +
        `through RecordProxy p50 ${f(p.p50)} µs p99 ${f(p.p99)} µs; added p50 ${f(p.p50 - d.p50)} µs, ` +
        `p99 ${f(p.p99 - d.p99)} µs (aim p50 < 100 µs) ${figures.load}`
    )
  })

const main = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-bench-replay-" })
  console.log(Peers.machine())
  const file = yield* writeScript(dir)
  const servers = yield* Peers.servers
  if (sections.includes("replay")) yield* replaySection(file)
  if (sections.includes("python")) yield* pythonSection(file)
  if (sections.includes("proxy")) yield* proxySection(dir, servers)
  if (sections.includes("latency")) yield* latencySection(dir, servers)
})

Effect.runPromise(Effect.scoped(main).pipe(Effect.provide(NodeServices.layer))).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
