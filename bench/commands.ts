// Spawn overhead: runs of `true` through CommandRunner (LocalRunner), sequentially and 8 at a time, beside a raw
// node:child_process spawn baseline (stdout/stderr piped and read, wait for "close") measured in the same run.
// A second baseline spawns `detached` (its own process group, as LocalRunner must, to end grandchildren).
// Run: node_modules/.bin/node bench/commands.ts [runs]
import { NodeServices } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import { EventBus } from "../packages/events/src/EventBus.ts"
import * as Command from "../packages/commands/src/Command.ts"
import { CommandRunner } from "../packages/commands/src/CommandRunner.ts"
import * as LocalRunner from "../packages/commands/src/LocalRunner.ts"

const runs = Number(process.argv[2] ?? 500)
const concurrency = 8

const rawOnce = (detached: boolean) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn("true", [], { stdio: ["ignore", "pipe", "pipe"], detached })
    child.stdout.on("data", () => {})
    child.stderr.on("data", () => {})
    child.on("error", reject)
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))))
  })

const rawRuns = (count: number, parallel: number, detached = false) =>
  Effect.promise(async () => {
    let next = 0
    const worker = async () => {
      while (next < count) {
        next++
        await rawOnce(detached)
      }
    }
    await Promise.all(Array.from({ length: parallel }, worker))
  })

const ourRuns = (count: number, parallel: number) =>
  Effect.flatMap(CommandRunner, (runner) =>
    Effect.forEach(Array.from({ length: count }), () => runner.run(Command.make("true")), {
      concurrency: parallel,
      discard: true
    })
  )

interface Cost {
  readonly wall: number
  readonly cpu: number
}

/** Wall seconds, and this process's CPU seconds (user + system): the CPU figure barely moves with machine load. */
const time = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const start = performance.now()
    const cpu = process.cpuUsage()
    yield* effect
    const used = process.cpuUsage(cpu)
    return { wall: (performance.now() - start) / 1000, cpu: (used.user + used.system) / 1e6 }
  })

const add = (a: Cost, b: Cost): Cost => ({ wall: a.wall + b.wall, cpu: a.cpu + b.cpu })

const program = Effect.gen(function* () {
  // Raw and ours alternate in small batches, so a change in machine load hits both alike.
  const batches = 20
  const batch = Math.max(1, Math.round(runs / batches))
  const report: Array<string> = [
    `runs of \`true\`: ${batch * batches} per side and mode, alternating in batches of ${batch}, node ${process.version}`
  ]
  for (const parallel of [1, concurrency]) {
    // Warm up both paths so the JIT has seen them before the measured runs.
    yield* rawRuns(batch, parallel)
    yield* rawRuns(batch, parallel, true)
    yield* ourRuns(batch, parallel)
    let raw: Cost = { wall: 0, cpu: 0 }
    let rawDetached: Cost = { wall: 0, cpu: 0 }
    let ours: Cost = { wall: 0, cpu: 0 }
    for (let round = 0; round < batches; round++) {
      raw = add(raw, yield* time(rawRuns(batch, parallel)))
      rawDetached = add(rawDetached, yield* time(rawRuns(batch, parallel, true)))
      ours = add(ours, yield* time(ourRuns(batch, parallel)))
    }
    const total = batch * batches
    const rate = (cost: Cost) => (total / cost.wall).toFixed(0).padStart(5)
    const cpu = (cost: Cost) => ((cost.cpu / total) * 1000).toFixed(2)
    const label = parallel === 1 ? "sequential" : `concurrency ${parallel}`
    report.push(
      `${label}: raw ${rate(raw)} runs/s | raw detached ${rate(rawDetached)} runs/s | CommandRunner.run ${rate(ours)} runs/s` +
        ` | wall overhead ${(ours.wall / raw.wall).toFixed(2)}x vs raw (aim <= 1.25x), ${(ours.wall / rawDetached.wall).toFixed(2)}x vs detached`,
      `${" ".repeat(label.length)}  parent CPU per run: raw ${cpu(raw)} ms | raw detached ${cpu(rawDetached)} ms | CommandRunner.run ${cpu(ours)} ms | ${(ours.cpu / raw.cpu).toFixed(2)}x`
    )
  }
  for (const line of report) console.log(line)
}).pipe(Effect.provide(LocalRunner.layer.pipe(Layer.provide(Layer.mergeAll(EventBus.layer, NodeServices.layer)))))

Effect.runPromise(program)
