// Two versions of the fleet code in one process, on one broker, interleaved: for each round, a raw mqtt.js baseline
// run, then version A's fleet run, then version B's (the order alternates by round), so both compare with a baseline
// taken a moment before them under the same machine load. Version A is a checkout of the repository elsewhere (e.g.
// `git archive main packages bench | tar -x -C /tmp/before`, with its node_modules linked to this one's), version B
// this one. Each version has its own operator and 1,000 agents (10 connections) on topics of its own.
// Run: node_modules/.bin/node bench/_fleet-ab.ts DIR_OF_A [rounds=8] [steps=1] [native|compat]
import { loadavg } from "node:os"
import { Effect, Redacted } from "effect"
import type * as AgentHere from "../packages/fleet/src/Agent.ts"
import * as Broker from "../packages/fleet/src/Broker.ts"
import type * as OperatorHere from "../packages/fleet/src/Operator.ts"
import type * as SecurityHere from "../packages/fleet/src/Security.ts"
import { inProcess, rawPair, runFleetBench } from "./_fleet-parts.ts"

const [dirA = "", roundsText = "8", stepsText = "1", wire = "native"] = process.argv.slice(2)
const rounds = Number(roundsText)
const steps = Number(stepsText)
const here = new URL("..", import.meta.url).pathname

type Fleet = { readonly run: Effect.Effect<number> }

/** The share of one core this process used since `cpu`/`start`: below 1, it waited (or the machine made it wait). */
const cpuShare = (cpu: NodeJS.CpuUsage, start: number) => {
  const used = process.cpuUsage(cpu)
  return (used.user + used.system) / 1000 / (performance.now() - start)
}
/** µs of process CPU per command (round trip) of the last run of each. */
const cpuPer: Record<string, number> = {}
const cpuPerItem = (cpu: NodeJS.CpuUsage, items: number) => {
  const used = process.cpuUsage(cpu)
  return (used.user + used.system) / items
}
const busy: Record<string, number> = {}

/** One version's operator and agents on its own topics; `run` times one pipeline (commands/s). */
const fleetOf = (dir: string, name: string, url: string) =>
  Effect.gen(function* () {
    // Typed as this checkout's modules: the other one has (at least) the same start functions.
    const Agent: typeof AgentHere = yield* Effect.promise(() => import(`${dir}/packages/fleet/src/Agent.ts`))
    const Operator: typeof OperatorHere = yield* Effect.promise(() => import(`${dir}/packages/fleet/src/Operator.ts`))
    const Security: typeof SecurityHere = yield* Effect.promise(() => import(`${dir}/packages/fleet/src/Security.ts`))
    const signing = wire === "compat" ? Security.compat : Security.signed(Redacted.make("bench secret"))
    const topics = {
      command: `${name}/commands`,
      response: `${name}/responses`,
      registration: `${name}/registration`,
      ack: `${name}/ack`,
      commandLoader: `${name}/loader`
    }
    const ids = Array.from({ length: 1000 }, (_, i) => `agent-${i}`)
    const operator = yield* Operator.start({
      connection: { url },
      topics,
      signing,
      expectAgents: ids.length,
      stepTimeout: "60 seconds"
    })
    for (let p = 0; p < 10; p++) {
      yield* Agent.start({ ids: ids.slice(p * 100, (p + 1) * 100), connection: { url }, topics, signing })
    }
    yield* operator.awaitRegistrations
    const pipeline = { name: "ab", steps: Array.from({ length: steps }, () => "true") }
    const run = Effect.gen(function* () {
      const cpu = process.cpuUsage()
      const start = performance.now()
      const summary = yield* operator.runPipelines([pipeline])
      if (!summary.succeeded) return yield* Effect.die(new Error(`${name}: ${JSON.stringify(summary.counts)}`))
      busy[name] = cpuShare(cpu, start)
      cpuPer[name] = cpuPerItem(cpu, summary.steps.length)
      return summary.steps.length / ((performance.now() - start) / 1000)
    })
    yield* run // warm-up
    return { run } satisfies Fleet
  })

const raw = (url: string, total: number) =>
  Effect.promise(async () => {
    const { requester, responder } = await rawPair(url)
    let sent = 0
    let back = 0
    const cpu = process.cpuUsage()
    const start = performance.now()
    await new Promise<void>((resolve) => {
      requester.on("message", () => {
        if (++back === total) resolve()
        else if (sent < total) requester.publish("raw/req", String(sent++), { qos: 1 })
      })
      for (let i = 0; i < Math.min(1000, total); i++) requester.publish("raw/req", String(sent++), { qos: 1 })
    })
    const rate = total / ((performance.now() - start) / 1000)
    busy.raw = cpuShare(cpu, start)
    cpuPer.raw = cpuPerItem(cpu, total)
    await Promise.all([requester.endAsync(), responder.endAsync()])
    return rate
  })

const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")

const program = Effect.gen(function* () {
  const broker = yield* Broker.embedded({ port: 0 })
  const a = yield* fleetOf(dirA, "a", broker.url)
  const b = yield* fleetOf(here, "b", broker.url)
  yield* raw(broker.url, 1000 * steps) // warm-up
  console.log(`A = ${dirA}, B = ${here}; ${wire}, 1000 agents × ${steps} step(s); load ${load()} at start`)
  const ratios = { a: [] as Array<number>, b: [] as Array<number>, ba: [] as Array<number> }
  const cpu = { raw: [] as Array<number>, a: [] as Array<number>, b: [] as Array<number> }
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? (["a", "b"] as const) : (["b", "a"] as const)
    const got: Record<string, number> = {}
    const shares: Array<string> = []
    for (const which of order) {
      const baseline = yield* raw(broker.url, 1000 * steps)
      const rate = yield* (which === "a" ? a : b).run
      shares.push(
        `raw ${busy.raw!.toFixed(2)} ${which.toUpperCase()} ${busy[which]!.toFixed(2)}; ` +
          `µs CPU raw ${cpuPer.raw!.toFixed(0)} ${which.toUpperCase()} ${cpuPer[which]!.toFixed(0)}`
      )
      got[which] = rate / baseline
      cpu.raw.push(cpuPer.raw!)
      cpu[which].push(cpuPer[which]!)
      ratios[which].push(rate / baseline)
    }
    ratios.ba.push(got.b! / got.a!)
    console.log(
      `round ${round + 1}: A ${got.a!.toFixed(2)}  B ${got.b!.toFixed(2)}  (load ${load()}; CPU share ${shares.join(", ")})`
    )
  }
  console.log(
    `median ratio to raw mqtt.js: A ${median(ratios.a).toFixed(2)}, B ${median(ratios.b).toFixed(2)}; ` +
      `median B/A per round ${median(ratios.ba).toFixed(2)}; median µs CPU per command: raw ${median(cpu.raw).toFixed(0)}, ` +
      `A ${median(cpu.a).toFixed(0)}, B ${median(cpu.b).toFixed(0)}; load ${load()} at the end`
  )
})

runFleetBench(program.pipe(Effect.provide(inProcess)))
