// Where a fleet step's time goes, without the raw baseline in the profile: 1,000 agents (10 pool connections) on the
// embedded broker, the in-process runner, `runs` timed 1-step pipelines after a warm-up, native or compat wire.
// Run: node_modules/.bin/node --cpu-prof --cpu-prof-dir=/tmp/fleet-prof bench/_fleet-profile.ts [native|compat|raw] [runs=10] [--no-events] [--no-tracer]
//      node_modules/.bin/node bench/_profile-summary.ts /tmp/fleet-prof/*.cpuprofile
import { Effect, Redacted, References } from "effect"
import * as Agent from "../packages/fleet/src/Agent.ts"
import * as Broker from "../packages/fleet/src/Broker.ts"
import * as Operator from "../packages/fleet/src/Operator.ts"
import * as Security from "../packages/fleet/src/Security.ts"
import { inProcess, rawPair, runFleetBench } from "./_fleet-parts.ts"

const wire = process.argv[2] ?? "native"
const runs = Number(process.argv[3] ?? 10)
const events = !process.argv.includes("--no-events")
const tracer = !process.argv.includes("--no-tracer")
const signing = wire === "compat" ? Security.compat : Security.signed(Redacted.make("bench secret"))

/** CPU per raw mqtt.js publish -> reply round trip (QoS 1, 1,000 in flight) on the same broker, for comparison. */
const rawCpu = (url: string, total: number) =>
  Effect.promise(async () => {
    const { requester, responder } = await rawPair(url)
    const cpu = process.cpuUsage()
    const start = performance.now()
    let sent = 0
    let back = 0
    await new Promise<void>((resolve) => {
      requester.on("message", () => {
        if (++back === total) resolve()
        else if (sent < total) requester.publish("raw/req", String(sent++), { qos: 1 })
      })
      for (let i = 0; i < 1000; i++) requester.publish("raw/req", String(sent++), { qos: 1 })
    })
    const seconds = (performance.now() - start) / 1000
    const used = process.cpuUsage(cpu)
    await Promise.all([requester.endAsync(), responder.endAsync()])
    console.log(
      `raw mqtt.js: ${(total / seconds).toFixed(0)} round trips/s, ${((used.user + used.system) / total).toFixed(0)} µs CPU per round trip`
    )
  })

const program = Effect.gen(function* () {
  const broker = yield* Broker.embedded({ port: 0 })
  if (wire === "raw") return yield* rawCpu(broker.url, runs * 1000)
  const ids = Array.from({ length: 1000 }, (_, i) => `agent-${i}`)
  const operator = yield* Operator.start({
    connection: { url: broker.url },
    signing,
    expectAgents: ids.length,
    stepTimeout: "60 seconds",
    events
  })
  yield* Effect.forEach(
    Array.from({ length: 10 }, (_, p) => ids.slice(p * 100, (p + 1) * 100)),
    (slice) => Agent.start({ ids: slice, connection: { url: broker.url }, signing }),
    { concurrency: "unbounded" }
  )
  yield* operator.awaitRegistrations
  const pipeline = { name: "profile", steps: ["true"] }
  yield* operator.runPipelines([pipeline])
  const start = performance.now()
  const cpu = process.cpuUsage()
  for (let i = 0; i < runs; i++) yield* operator.runPipelines([pipeline])
  const seconds = (performance.now() - start) / 1000
  const used = process.cpuUsage(cpu)
  const perCommand = (used.user + used.system) / (runs * ids.length)
  console.log(
    `${wire}${events ? "" : ", no events"}${tracer ? "" : ", no tracer"}: ${((runs * ids.length) / seconds).toFixed(0)} commands/s, ` +
      `${perCommand.toFixed(0)} µs CPU per command (operator, agents and broker together)`
  )
})

runFleetBench(program.pipe(Effect.provide(inProcess), Effect.provideService(References.TracerEnabled, tracer)))
