// What ending commands with their agent costs: one agent on the embedded broker runs `true` through LocalRunner,
// driven by the operator (signed), 16 at a time across 16 agent ids, with its watchdog (each command writes its
// process group to a marker, then execs) and, as the baseline measured in the same run, without it
// (`endCommandsWithAgent: false`). Runs alternate, baseline first; the median of the paired ratios is reported.
// Run: node_modules/.bin/node bench/fleet-watchdog.ts [commands per run=320] [pairs=5]
import { NodeServices } from "@effect/platform-node"
import { Effect, Layer, Redacted, References } from "effect"
import * as LocalRunner from "../packages/commands/src/LocalRunner.ts"
import { EventBus } from "../packages/events/src/EventBus.ts"
import * as Agent from "../packages/fleet/src/Agent.ts"
import * as Broker from "../packages/fleet/src/Broker.ts"
import * as Operator from "../packages/fleet/src/Operator.ts"
import * as Security from "../packages/fleet/src/Security.ts"

const commands = Number(process.argv[2] ?? 320)
const pairs = Number(process.argv[3] ?? 5)
const signing = Security.signed(Redacted.make("bench secret"))
const ids = Array.from({ length: 16 }, (_, i) => `w${i}`)

/** Seconds for `commands` runs of `true`, `ids.length` at a time (one per agent id). */
const timed = (url: string, endCommandsWithAgent: boolean) =>
  Effect.gen(function* () {
    const operator = yield* Operator.start({ connection: { url }, signing, expectAgents: ids.length })
    yield* Agent.start({ ids, connection: { url }, signing, endCommandsWithAgent })
    yield* operator.awaitRegistrations
    yield* operator.runCommand("true") // warm-up
    const start = performance.now()
    for (let done = 0; done < commands; done += ids.length) {
      const reports = yield* operator.runCommand("true")
      if (reports.some((r) => r.state !== "succeeded")) return yield* Effect.die(new Error("a command failed"))
    }
    return (performance.now() - start) / 1000
  }).pipe(Effect.scoped)

const program = Effect.gen(function* () {
  const broker = yield* Broker.embedded({ port: 0 })
  const ratios: Array<{ readonly without: number; readonly with: number; readonly ratio: number }> = []
  for (let i = 0; i < pairs; i++) {
    const without = yield* timed(broker.url, false)
    const withWatchdog = yield* timed(broker.url, true)
    ratios.push({ without, with: withWatchdog, ratio: withWatchdog / without })
  }
  ratios.sort((a, b) => a.ratio - b.ratio)
  const median = ratios[Math.floor(ratios.length / 2)]!
  console.log(
    `${commands} commands (\`true\`, ${ids.length} at a time) per run, ${pairs} pairs, node ${process.version}\n` +
      `without watchdog ${median.without.toFixed(3)} s (${(commands / median.without).toFixed(0)}/s), ` +
      `with ${median.with.toFixed(3)} s (${(commands / median.with).toFixed(0)}/s): ` +
      `ratio ${median.ratio.toFixed(2)} (median pair; all: ${ratios.map((r) => r.ratio.toFixed(2)).join(" ")})`
  )
}).pipe(
  Effect.scoped,
  Effect.provide(LocalRunner.layer.pipe(Layer.provideMerge(EventBus.layer), Layer.provideMerge(NodeServices.layer))),
  Effect.provideService(References.MinimumLogLevel, "Warn")
)

Effect.runPromise(program).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
