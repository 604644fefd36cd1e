// Spawn overhead: runs of `true` through CommandRunner (LocalRunner), sequentially and 8 at a time, beside a raw
// node:child_process spawn baseline (stdout/stderr piped and read, wait for "close") measured in the same run.
// A second baseline spawns `detached` (its own process group, as LocalRunner must, to end grandchildren); a third
// is what a user would otherwise pick, `execa` (output captured, no process group, no watchdog).
// The four alternate in rounds (one small batch of each side per round, the order rotating, a full GC before each
// batch); it prints the median and quartiles of the per-round ratios, which a change in machine load (the machine
// is shared) moves less than the totals, and the load average of each mode.
// Run: node_modules/.bin/node bench/commands.ts [runs]
import { NodeServices } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { cpus, loadavg } from "node:os"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { execa } from "execa"
import { EventBus } from "../packages/events/src/EventBus.ts"
import * as Command from "../packages/commands/src/Command.ts"
import { CommandRunner } from "../packages/commands/src/CommandRunner.ts"
import * as LocalRunner from "../packages/commands/src/LocalRunner.ts"
import { rawOnce } from "./_raw-spawn.ts"

const runs = Number(process.argv[2] ?? 500)
const concurrency = 8

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

const execaRuns = (count: number, parallel: number) =>
  Effect.promise(async () => {
    let next = 0
    const worker = async () => {
      while (next < count) {
        next++
        await execa("true")
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

// A full collection before every batch, so no side pays for the garbage another side left (execa leaves the most);
// collecting inside a batch is still each side's own cost.
setFlagsFromString("--expose-gc")
const collectGarbage = runInNewContext("gc") as () => void

/** Wall seconds, and this process's CPU seconds (user + system): the CPU figure barely moves with machine load. */
const time = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    collectGarbage()
    const start = performance.now()
    const cpu = process.cpuUsage()
    yield* effect
    const used = process.cpuUsage(cpu)
    return { wall: (performance.now() - start) / 1000, cpu: (used.user + used.system) / 1e6 }
  })

const add = (a: Cost, b: Cost): Cost => ({ wall: a.wall + b.wall, cpu: a.cpu + b.cpu })

const quantile = (xs: ReadonlyArray<number>, q: number) =>
  [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? Number.NaN
const median = (xs: ReadonlyArray<number>) => quantile(xs, 0.5)
/** The median of paired ratios and their quartiles: `1.08x (0.97-1.19)`. */
const spread = (xs: ReadonlyArray<number>) =>
  `${median(xs).toFixed(2)}x (${quantile(xs, 0.25).toFixed(2)}-${quantile(xs, 0.75).toFixed(2)})`
const load = () => loadavg()[0]?.toFixed(1) ?? "?"

const sides = {
  raw: (batch: number, parallel: number) => rawRuns(batch, parallel),
  "raw detached": (batch: number, parallel: number) => rawRuns(batch, parallel, true),
  execa: execaRuns,
  "CommandRunner.run": ourRuns
} as const
type Side = keyof typeof sides
const names = Object.keys(sides) as Array<Side>

/**
 * One mode (sequential or `parallel` at a time): `batches` rounds, each running every side once, in an order that
 * rotates from round to round (no side always follows the same one); the ratio of ours to each side is taken within
 * the round, so a change of machine load between rounds cancels out.
 */
const measure = (batch: number, batches: number, parallel: number) =>
  Effect.gen(function* () {
    // Warm up every path so the JIT has seen them before the measured runs.
    for (const name of names) yield* sides[name](batch, parallel)
    const loadBefore = load()
    const totals = new Map<Side, Cost>(names.map((name) => [name, { wall: 0, cpu: 0 }]))
    const ratios = new Map<Side, Array<number>>(names.map((name) => [name, []]))
    for (let round = 0; round < batches; round++) {
      const costs = new Map<Side, Cost>()
      for (let i = 0; i < names.length; i++) {
        const name = names[(round + i) % names.length]!
        costs.set(name, yield* time(sides[name](batch, parallel)))
      }
      const ours = costs.get("CommandRunner.run")!.wall
      for (const name of names) {
        totals.set(name, add(totals.get(name)!, costs.get(name)!))
        ratios.get(name)!.push(ours / costs.get(name)!.wall)
      }
    }
    return { totals, ratios, loads: `${loadBefore} -> ${load()}` }
  })

const program = Effect.gen(function* () {
  const batches = 20
  const batch = Math.max(1, Math.round(runs / batches))
  const report: Array<string> = [
    `runs of \`true\`: ${batch * batches} per side and mode, in ${batches} rounds of a batch of ${batch} per side ` +
      `(order rotating, a full GC before each batch), node ${process.version}, ${cpus().length} cores`
  ]
  for (const parallel of [1, concurrency]) {
    const { totals, ratios, loads } = yield* measure(batch, batches, parallel)
    const total = batch * batches
    const rate = (name: Side) => (total / totals.get(name)!.wall).toFixed(0).padStart(5)
    const cpu = (name: Side) => ((totals.get(name)!.cpu / total) * 1000).toFixed(2)
    const ours = totals.get("CommandRunner.run")!
    const label = parallel === 1 ? "sequential" : `concurrency ${parallel}`
    const pad = " ".repeat(label.length)
    report.push(
      `${label} (1-minute load average ${loads}): ${names.map((name) => `${name} ${rate(name)} runs/s`).join(" | ")}`,
      `${pad}  wall, CommandRunner.run vs raw, median of the rounds' ratios (quartiles): ${spread(ratios.get("raw")!)} ` +
        `(aim <= 1.25x; over the totals ${(ours.wall / totals.get("raw")!.wall).toFixed(2)}x); ` +
        `vs raw detached ${spread(ratios.get("raw detached")!)}; vs execa ${spread(ratios.get("execa")!)}`,
      `${pad}  parent CPU per run: ${names.map((name) => `${name} ${cpu(name)} ms`).join(" | ")} | ours vs raw ${(ours.cpu / totals.get("raw")!.cpu).toFixed(2)}x`
    )
  }
  report.push(
    `1-minute load average at the end: ${load()} on ${cpus().length} cores${Number(load()) > cpus().length ? " (loaded: the machine is shared)" : ""}`
  )
  for (const line of report) console.log(line)
}).pipe(Effect.provide(LocalRunner.layer.pipe(Layer.provide(Layer.mergeAll(EventBus.layer, NodeServices.layer)))))

Effect.runPromise(program)
