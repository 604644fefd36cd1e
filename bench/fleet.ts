// Fleet throughput: 1,000 agents on the embedded broker run a 1-step and a 3-step pipeline driven by the operator
// (signed commands, a state machine and events per step), first through an in-process CommandRunner (so MQTT and
// the protocol are measured, not process spawning), then with real `true` processes; beside a raw mqtt.js
// publish -> reply round-trip baseline (QoS 1, same number in flight) measured in the same run.
// Agents share connections: `pools` connections each serve agents/pools ids. Native mode (signed, per-agent command
// topics) and compat mode (the old protocol: unsigned, one shared command topic that every connection receives) run
// side by side.
// Each figure: after an untimed warm-up of both, 3 timed fleet runs, each right after a timed baseline run; the
// pair with the median ratio is reported (1 pair for real processes).
// Run: node_modules/.bin/node bench/fleet.ts [agents] [pools] [--no-processes]
import { loadavg } from "node:os"
import { NodeServices } from "@effect/platform-node"
import { Effect, Layer, Redacted, Semaphore } from "effect"
import { CommandRunner } from "../packages/commands/src/CommandRunner.ts"
import * as LocalRunner from "../packages/commands/src/LocalRunner.ts"
import type { EventBus } from "../packages/events/src/EventBus.ts"
import * as Agent from "../packages/fleet/src/Agent.ts"
import * as Broker from "../packages/fleet/src/Broker.ts"
import * as Operator from "../packages/fleet/src/Operator.ts"
import * as Security from "../packages/fleet/src/Security.ts"
import { inProcess, rawPair, runFleetBench } from "./_fleet-parts.ts"

const agentCount = Number(process.argv[2] ?? 1000)
const pools = Number(process.argv[3] ?? 10)
const withProcesses = process.argv[4] !== "--no-processes"
/** Timed (baseline, fleet) pairs per in-process figure. */
const repeats = 3
const signed = Security.signed(Redacted.make("bench secret"))

/** Native: signed, each agent's commands on its own topic. Compat: the old protocol, one shared command topic. */
interface Wire {
  readonly name: "native" | "compat"
  readonly signing: Security.Signing
}
const native: Wire = { name: "native", signing: signed }
const compat: Wire = { name: "compat", signing: Security.compat }
/** One machine hosts every agent here; real agents each have their own. Bound the spawns so the event loop keeps up. */
const spawnLimit = 16

const spawning = Layer.effect(
  CommandRunner,
  Effect.gen(function* () {
    const local = yield* CommandRunner
    const semaphore = yield* Semaphore.make(spawnLimit)
    return CommandRunner.of({ ...local, run: (command) => semaphore.withPermits(1)(local.run(command)) })
  })
).pipe(Layer.provide(LocalRunner.layer), Layer.provide(NodeServices.layer))

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0

interface Timed {
  readonly seconds: number
  readonly rate: number
  readonly p50: number
  readonly p99: number
}

/**
 * Timed runs alternate with the raw baseline (baseline, fleet, baseline, fleet, …), so each ratio compares two
 * runs a second apart under the same machine load; the pair with the median ratio is reported.
 */
const fleetRun = (
  label: string,
  wire: Wire,
  url: string,
  steps: number,
  repeats: number,
  baseline: Effect.Effect<Timed>
) =>
  Effect.gen(function* () {
    const signing = wire.signing
    const ids = Array.from({ length: agentCount }, (_, i) => `agent-${i}`)
    const perPool = Math.ceil(agentCount / pools)
    const operator = yield* Operator.start({
      connection: { url },
      signing,
      expectAgents: agentCount,
      stepTimeout: "60 seconds"
    })
    yield* Effect.forEach(
      Array.from({ length: pools }, (_, p) => ids.slice(p * perPool, (p + 1) * perPool)),
      (slice) => Agent.start({ ids: slice, connection: { url }, signing }),
      { concurrency: "unbounded" }
    )
    yield* operator.awaitRegistrations
    const pipeline = { name: "bench", steps: Array.from({ length: steps }, () => "true") }
    yield* operator.runPipelines([pipeline]) // warm-up
    yield* baseline // warm-up
    const results: Array<Timed & { readonly raw: Timed; readonly ratio: number }> = []
    for (let i = 0; i < repeats; i++) {
      const raw = yield* baseline
      const start = performance.now()
      const summary = yield* operator.runPipelines([pipeline])
      const seconds = (performance.now() - start) / 1000
      if (!summary.succeeded) return yield* Effect.die(new Error(`${label}: ${JSON.stringify(summary.counts)}`))
      const trips = summary.steps.map((s) => s.roundTripMs).sort((a, b) => a - b)
      const rate = summary.steps.length / seconds
      results.push({
        seconds,
        rate,
        p50: percentile(trips, 50),
        p99: percentile(trips, 99),
        raw,
        ratio: rate / raw.rate
      })
      if (process.env.BENCH_VERBOSE) console.error(label, seconds.toFixed(3), (rate / raw.rate).toFixed(2))
    }
    return { label, ...[...results].sort((a, b) => a.ratio - b.ratio)[Math.floor(results.length / 2)]! }
  }).pipe(Effect.scoped)

/** Raw mqtt.js: a requester publishes, a responder answers on another topic; `inFlight` at a time. */
const rawRoundTrips = (url: string, total: number, inFlight: number) =>
  Effect.promise(async () => {
    const { requester, responder } = await rawPair(url)
    const sentAt = new Map<string, number>()
    const trips: Array<number> = []
    let sent = 0
    const start = performance.now()
    await new Promise<void>((resolve) => {
      const send = () => {
        const id = String(sent++)
        sentAt.set(id, performance.now())
        requester.publish("raw/req", id, { qos: 1 })
      }
      requester.on("message", (_topic, payload) => {
        const id = payload.toString()
        trips.push(performance.now() - sentAt.get(id)!)
        if (trips.length === total) resolve()
        else if (sent < total) send()
      })
      for (let i = 0; i < Math.min(inFlight, total); i++) send()
    })
    const seconds = (performance.now() - start) / 1000
    await Promise.all([requester.endAsync(), responder.endAsync()])
    trips.sort((a, b) => a - b)
    return { seconds, rate: total / seconds, p50: percentile(trips, 50), p99: percentile(trips, 99) }
  })

const program = Effect.gen(function* () {
  const broker = yield* Broker.embedded({ port: 0 })
  const runs: Array<readonly [string, Wire, number, Layer.Layer<CommandRunner, never, EventBus>]> = [
    ["native, in-process runner, 1 step ", native, 1, inProcess],
    ["native, in-process runner, 3 steps", native, 3, inProcess],
    ["compat, in-process runner, 1 step ", compat, 1, inProcess],
    ["compat, in-process runner, 3 steps", compat, 3, inProcess]
  ]
  if (withProcesses)
    runs.push([`native, \`true\` processes, 3 steps (${spawnLimit} spawns at a time)`, native, 3, spawning])
  const lines = [
    `${agentCount} agents on ${pools} connections, embedded Aedes broker, node ${process.version}, load average ` +
      `${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")} at start`,
    "native: signed, per-agent command topics; compat: the old protocol (unsigned, one shared command topic)"
  ]
  let oneStepSeconds = 0
  for (const [label, wire, steps, runner] of runs) {
    const baseline = rawRoundTrips(broker.url, agentCount * steps, agentCount)
    // Real processes: one timed run (3,000 spawns take a minute or more here), after the warm-up.
    const r = yield* fleetRun(label, wire, broker.url, steps, runner === spawning ? 1 : repeats, baseline).pipe(
      Effect.provide(runner)
    )
    const raw = r.raw
    if (steps === 1 && wire === native) oneStepSeconds = r.seconds
    lines.push(
      `${r.label}: ${r.seconds.toFixed(3)} s, ${r.rate.toFixed(0)} commands/s, step round trip p50 ${r.p50} ms p99 ${r.p99} ms` +
        ` | raw mqtt.js publish->reply (QoS 1, ${agentCount} in flight) ${raw.rate.toFixed(0)}/s p50 ${raw.p50.toFixed(0)} ms` +
        ` p99 ${raw.p99.toFixed(0)} ms | ratio ${r.ratio.toFixed(2)} (aim >= 0.5)`
    )
  }
  lines.push(
    `load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")} at the end (2 cores: above 2 the figures are from a loaded machine)`,
    `1 step on ${agentCount} agents: ${oneStepSeconds.toFixed(3)} s (aim < 2 s). ` +
      `The old operator sleeps 1 s per command per client: ${agentCount * 3} s for the 3-step pipeline.`
  )
  for (const line of lines) console.log(line)
})

runFleetBench(program)
