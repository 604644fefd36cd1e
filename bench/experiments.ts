// Per-test overhead of the experiment harness: an experiment of N trivial tests (each one `exec` client running
// `true`) against spawning the same N commands directly with node:child_process, measured in the same run.
// The experiment side includes everything a user pays for: planning, state machines and events, log files,
// the JSONL event log, and the five reports. Then the cost of resource sampling: the same sequential experiment with
// `--metrics-interval 1s` (every service's process tree read from /proc as it starts, then each second) against
// it without, in paired rounds whose order alternates; each pair gives one ratio, and the median and spread of the
// ratios are reported with the load average before and after (a 2-core machine shared with other work drifts more
// than 2 % between two runs). Run: node_modules/.bin/node bench/experiments.ts [tests] [--sampling-only]
// (SAMPLING_ROUNDS=N pairs, default 9)
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { Duration, Effect } from "effect"
import * as Experiment from "../packages/experiments/src/Experiment.ts"
import * as ProcessTree from "../packages/experiments/src/ProcessTree.ts"

const tests = Number(process.argv.slice(2).find((arg) => /^\d+$/.test(arg)) ?? 100)
const samplingOnly = process.argv.includes("--sampling-only")
const rounds = 3
const samplingRounds = Number(process.env.SAMPLING_ROUNDS ?? 9)

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

const loadAverage = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")

const percentile = (sorted: ReadonlyArray<number>, p: number) => {
  const at = (sorted.length - 1) * p
  const low = Math.floor(at)
  return sorted[low]! + (sorted[Math.min(low + 1, sorted.length - 1)]! - sorted[low]!) * (at - low)
}

/**
 * Sequential runs with and without sampling in pairs, the order alternating so a drift of the load hits both alike;
 * one ratio per pair, reported as median, quartiles and range.
 */
const samplingOverhead = (dir: string) =>
  Effect.gen(function* () {
    const file = join(dir, "bench-1.yaml")
    writeFileSync(file, config(1))
    const options = { outputDir: join(dir, "out"), progress: "none" as const }
    const sampled = { ...options, metricsInterval: Duration.seconds(1) }
    yield* Experiment.run(file, options)
    const loadBefore = loadAverage()
    const ratios: Array<number> = []
    const plainRuns: Array<number> = []
    for (let round = 0; round < samplingRounds; round++) {
      const plainRun = time(Experiment.run(file, options))
      const sampledRun = time(Experiment.run(file, sampled))
      const [[plainMs], [metricsMs, outcome]] =
        round % 2 === 0
          ? [yield* plainRun, yield* sampledRun]
          : yield* Effect.map(Effect.zip(sampledRun, plainRun), ([b, a]) => [a, b] as const)
      if (outcome.result?.tests.some((test) => test.status !== "passed")) throw new Error("a sampled test did not pass")
      ratios.push(((metricsMs - plainMs) / plainMs) * 100)
      plainRuns.push(plainMs)
    }
    const sorted = [...ratios].sort((a, b) => a - b)
    const sortedPlain = [...plainRuns].sort((a, b) => a - b)
    // The cost of one reading alone (this node process: a dozen threads), steadier than the difference above.
    const readings = 500
    const [readMs] = yield* time(
      Effect.forEach(Array.from({ length: readings }), () => ProcessTree.read(process.pid), { discard: true })
    )
    const pct = (value: number) => `${value >= 0 ? "+" : ""}${value.toFixed(1)} %`
    return [
      `sampling 1s    ${samplingRounds} interleaved pairs of ${tests} sequential tests; run without sampling: median ` +
        `${percentile(sortedPlain, 0.5).toFixed(0)} ms (${sortedPlain[0]!.toFixed(0)}–${sortedPlain[sortedPlain.length - 1]!.toFixed(0)})`,
      `               added by sampling: median ${pct(percentile(sorted, 0.5))}, quartiles ${pct(percentile(sorted, 0.25))} ` +
        `to ${pct(percentile(sorted, 0.75))}, range ${pct(sorted[0]!)} to ${pct(sorted[sorted.length - 1]!)} (aim < 2 %)`,
      `               load average ${loadBefore} before, ${loadAverage()} after; one reading of a node process tree ` +
        `${(readMs / readings).toFixed(2)} ms`
    ].join("\n")
  })

const program = Effect.gen(function* () {
  const dir = mkdtempSync(join(tmpdir(), "testbed-bench-experiments-"))
  const lines: Array<string> = [
    `${tests} trivial tests per experiment, best of ${rounds} rounds, node ${process.version}`
  ]
  for (const parallel of samplingOnly ? [] : [1, 4]) {
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
