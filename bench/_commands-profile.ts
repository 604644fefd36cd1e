// One side of bench/commands.ts alone in this process, for a profile or `perf stat` of it:
//   node_modules/.bin/node [--cpu-prof] bench/_commands-profile.ts ours|raw|detached|garbage [runs=500] [warmUp=50]
// (`garbage`: raw detached plus about 72 KB of short-lived objects per run, what ours allocates per command.)
// Prints the parent's CPU per run (user / system) and the minor page faults per run (the copy-on-write faults a
// fork leaves behind scale with the pages the parent writes after it).
import { NodeServices } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { EventBus } from "../packages/events/src/EventBus.ts"
import * as Command from "../packages/commands/src/Command.ts"
import { CommandRunner } from "../packages/commands/src/CommandRunner.ts"
import * as LocalRunner from "../packages/commands/src/LocalRunner.ts"
import { rawOnce } from "./_raw-spawn.ts"

const side = process.argv[2] ?? "ours"
const runs = Number(process.argv[3] ?? 500)
const warmUp = Number(process.argv[4] ?? 50)

const program = Effect.gen(function* () {
  const runner = yield* CommandRunner
  const once =
    side === "ours"
      ? Effect.asVoid(runner.run(Command.make("true")))
      : side === "garbage"
        ? Effect.promise(() => {
            // raw detached, plus about 72 KB of short-lived objects per run (what ours allocates, from --trace-gc)
            let keep: Array<{ a: number; b: string }> = []
            for (let i = 0; i < 1500; i++) keep.push({ a: i, b: `x${i}` })
            keep = []
            return rawOnce(true).then(() => void keep)
          })
        : Effect.promise(() => rawOnce(side === "detached"))
  for (let i = 0; i < warmUp; i++) yield* once
  const cpu = process.cpuUsage()
  const faults = process.resourceUsage().minorPageFault
  const start = performance.now()
  for (let i = 0; i < runs; i++) yield* once
  const wall = performance.now() - start
  const used = process.cpuUsage(cpu)
  const minor = process.resourceUsage().minorPageFault - faults
  console.log(
    `${side}: ${(wall / runs).toFixed(2)} ms wall, user ${(used.user / 1000 / runs).toFixed(2)} ms, system ${(used.system / 1000 / runs).toFixed(2)} ms, ${(minor / runs).toFixed(0)} minor faults per run`
  )
}).pipe(Effect.provide(LocalRunner.layer.pipe(Layer.provide(Layer.mergeAll(EventBus.layer, NodeServices.layer)))))

Effect.runPromise(program)
