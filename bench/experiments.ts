// Per-test overhead of the experiment harness: an experiment of N trivial tests (each one `exec` client running
// `true`) against spawning the same N commands directly with node:child_process, measured in the same run.
// The experiment side includes everything a user pays for: planning, state machines and events, log files,
// the JSONL event log, and the five reports. Then the cost of resource sampling: the same sequential experiment with
// `--metrics-interval 1s` (every service's process tree read from /proc as it starts, then each second) against
// it without, rounds interleaved. Run: node_modules/.bin/node bench/experiments.ts [tests]
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { Duration, Effect } from "effect"
import * as Experiment from "../packages/experiments/src/Experiment.ts"
import * as ProcessTree from "../packages/experiments/src/ProcessTree.ts"

const tests = Number(process.argv[2] ?? 100)
const rounds = 3

const rawOnce = () =>
  new Promise<void>((resolve, reject) => {
    const child = spawn("true", [], { stdio: ["ignore", "pipe", "pipe"] })
    child.stdout.on("data", () => {})
    child.stderr.on("data", () => {})
    child.on("error", reject)
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))))
  })

const rawRuns = (count: number, parallel: number) =>
  Effect.promise(async () => {
    let next = 0
    const worker = async () => {
      while (next < count) {
        next++
        await rawOnce()
      }
    }
    await Promise.all(Array.from({ length: parallel }, worker))
  })

const config = (parallel: number) =>
  [
    `name: bench-${parallel}`,
    `concurrency: ${parallel}`,
    "tests:",
    ...Array.from({ length: tests }, (_, i) =>
      [
        `  - name: trivial ${i}`,
        "    services:",
        "      client: { implementation: exec, role: client, parameters: { program: 'true' } }"
      ].join("\n")
    )
  ].join("\n")

const time = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const start = performance.now()
    const value = yield* effect
    return [performance.now() - start, value] as const
  })

/** Sequential runs with and without sampling, alternated so load drifts hit both alike; best of each. */
const samplingOverhead = (dir: string) =>
  Effect.gen(function* () {
    const file = join(dir, "bench-1.yaml")
    const options = { outputDir: join(dir, "out"), progress: "none" as const }
    const sampled = { ...options, metricsInterval: Duration.seconds(1) }
    let plain = Number.POSITIVE_INFINITY
    let withMetrics = Number.POSITIVE_INFINITY
    for (let round = 0; round < rounds + 2; round++) {
      const [plainMs] = yield* time(Experiment.run(file, options))
      const [metricsMs, outcome] = yield* time(Experiment.run(file, sampled))
      if (outcome.result?.tests.some((test) => test.status !== "passed")) throw new Error("a sampled test did not pass")
      plain = Math.min(plain, plainMs)
      withMetrics = Math.min(withMetrics, metricsMs)
    }
    const added = ((withMetrics - plain) / plain) * 100
    // The cost of one reading alone (this node process: a dozen threads), steadier than the difference above.
    const readings = 500
    const [readMs] = yield* time(
      Effect.forEach(Array.from({ length: readings }), () => ProcessTree.read(process.pid), { discard: true })
    )
    return (
      `sampling 1s    without ${plain.toFixed(0).padStart(6)} ms | with ${withMetrics.toFixed(0).padStart(6)} ms | ` +
      `adds ${added.toFixed(1)} % (aim < 2 %); one reading of a node process tree ${(readMs / readings).toFixed(2)} ms`
    )
  })

const program = Effect.gen(function* () {
  const dir = mkdtempSync(join(tmpdir(), "testbed-bench-experiments-"))
  const lines: Array<string> = [
    `${tests} trivial tests per experiment, best of ${rounds} rounds, node ${process.version}`
  ]
  for (const parallel of [1, 4]) {
    const file = join(dir, `bench-${parallel}.yaml`)
    writeFileSync(file, config(parallel))
    const options = { outputDir: join(dir, "out"), progress: "none" as const }
    // Warm-up: JIT, module loading, the first spawn.
    yield* rawRuns(5, parallel)
    yield* Experiment.run(file, options)
    let raw = Number.POSITIVE_INFINITY
    let ours = Number.POSITIVE_INFINITY
    for (let round = 0; round < rounds; round++) {
      const [rawMs] = yield* time(rawRuns(tests, parallel))
      const [ourMs, outcome] = yield* time(Experiment.run(file, options))
      if (outcome.result?.tests.some((test) => test.status !== "passed")) throw new Error("a trivial test did not pass")
      raw = Math.min(raw, rawMs)
      ours = Math.min(ours, ourMs)
    }
    const perTest = (ours - raw) / tests
    const label = parallel === 1 ? "sequential" : `concurrency ${parallel}`
    lines.push(
      `${label.padEnd(14)} direct spawns ${raw.toFixed(0).padStart(6)} ms | experiment ${ours.toFixed(0).padStart(6)} ms | ` +
        `overhead ${perTest.toFixed(1)} ms per test (aim < 50 ms)`
    )
  }
  lines.push(yield* samplingOverhead(dir))
  rmSync(dir, { recursive: true, force: true })
  for (const line of lines) console.log(line)
}).pipe(Effect.provide(NodeServices.layer))

Effect.runPromise(program)
