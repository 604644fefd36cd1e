// Test cases across hosts: wall time of N tests whose only service sleeps 1 s, on 1 runner × 4 slots against
// 3 runners × 4 slots (same machine, same run: the "hosts" share its cores with Postgres), and the dispatch
// overhead per test: N trivial tests one at a time on 1 runner against the same N run locally; and that overhead
// split into the coordinator's fixed cost (one test, remote against local: loading the cluster code, connecting)
// and the per-test part (the difference of the two slopes). The ceiling: the same sleepers run locally (no cluster)
// at concurrency 4 against 12, i.e. 4 slots against 12 on this machine's cores with the local run's own cost per
// test: what no distribution of the work over runners on this one machine can beat.
// Needs Debian's postgresql (a throwaway server is started as user postgres).
// `--installed`: every process (coordinators, runners, the local runs) runs the CLI as a user installs it (the
// workspace packed and installed with npm in the bench's directory, `dist/` JavaScript), not from TypeScript sources.
// `--cli=PATH`: the same with a CLI installed before (PATH is its `dist/bin.js`), for A/B rounds without packing.
// Run: node_modules/.bin/node bench/cluster.ts [tests] [concurrency] [--installed | --cli=PATH]
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Effect, Layer, Redacted, Schedule } from "effect"
import * as Status from "../packages/cluster/src/Status.ts"
import { freePort, Postgres } from "../packages/cluster/test/postgres.ts"
import {
  placements,
  readEvents,
  type Runner,
  startRunner,
  stop,
  testbed,
  useCli
} from "../packages/cluster/test/processes.ts"
import { installWorkspace } from "../packages/cluster/test/runnerImage.ts"

const installed = process.argv.includes("--installed")
const given = process.argv.find((arg) => arg.startsWith("--cli="))?.slice("--cli=".length)
const positional = process.argv.slice(2).filter((arg) => !arg.startsWith("--"))
const tests = Number(positional[0] ?? 48)
// The run's concurrency: 12 is the three runners' slots exactly (nothing queued on them, so every dispatch's
// latency is on the path), while one runner has 8 attempts queued; 24 queues work on both.
const concurrency = Number(positional[1] ?? 12)
const dir = mkdtempSync(join(tmpdir(), "testbed-bench-cluster-"))

const experiment = (name: string, count: number, program: string, args: ReadonlyArray<string>, concurrency: number) => {
  const file = join(dir, `${name}.yaml`)
  const lines = [`name: ${name}`, `concurrency: ${concurrency}`, "test_timeout: 2 minutes", "tests:"]
  for (let i = 0; i < count; i++) {
    lines.push(
      `  - name: t${i}`,
      "    services:",
      `      c: { implementation: exec, role: client, parameters: { program: ${JSON.stringify(program)}, args: ${JSON.stringify(args)} } }`
    )
  }
  writeFileSync(file, `${lines.join("\n")}\n`)
  return file
}

/** Epoch milliseconds at which the last command of `timed` was started and seen to exit. */
const lastRun = { spawned: 0, exited: 0 }

const timed = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const start = performance.now()
    lastRun.spawned = performance.timeOrigin + start
    const ran = yield* testbed(args)
    const seconds = (performance.now() - start) / 1000
    lastRun.exited = performance.timeOrigin + performance.now()
    if (ran.code !== 0)
      return yield* Effect.die(new Error(`${args.join(" ")}: exit ${ran.code}\n${ran.stdout}${ran.stderr}`))
    return seconds
  })

/** Seconds from the run's first event to its last: the run without the command's start and its reports. */
const span = (runDir: string) => {
  const stamps = readEvents(runDir).map((event) => Date.parse(String((event as { timestamp?: string }).timestamp)))
  return (Math.max(...stamps) - Math.min(...stamps)) / 1000
}

/** Milliseconds outside the run's span: from the command's start to its first event, from its last event to its exit. */
const outside = (runDir: string) => {
  const stamps = readEvents(runDir).map((event) => Date.parse(String((event as { timestamp?: string }).timestamp)))
  return { start: Math.min(...stamps) - lastRun.spawned, end: lastRun.exited - Math.max(...stamps) }
}

/** Per runner, ms from the run's first event to its first attempt's start (the runner is in its metadata). */
const firstStarts = (runDir: string) => {
  const events = readEvents(runDir) as ReadonlyArray<{
    type: string
    timestamp?: string
    data?: { to?: string; metadata?: { runner?: string } }
  }>
  const first = Date.parse(String(events[0]?.timestamp))
  const starts = new Map<string, number>()
  for (const event of events) {
    const runner = event.data?.metadata?.runner
    if (event.type !== "test.state_changed" || event.data?.to !== "SETTING_UP" || runner === undefined) continue
    if (!starts.has(runner)) starts.set(runner, Date.parse(String(event.timestamp)) - first)
  }
  return [...starts].sort(([a], [b]) => a.localeCompare(b))
}

/** Attempts each runner ran (the runner is in the metadata of each attempt's first state change). */
const spread = (runDir: string) => {
  const counts = new Map<string, number>()
  for (const { runner } of placements(readEvents(runDir))) counts.set(runner, (counts.get(runner) ?? 0) + 1)
  return [...counts].sort(([a], [b]) => a.localeCompare(b))
}

/** The newest run directory under `out` whose name starts with `prefix`. */
const newest = (out: string, prefix: string) =>
  join(
    out,
    readdirSync(out)
      .filter((name) => name.startsWith(prefix))
      .sort()
      .at(-1)!
  )

const program = Effect.gen(function* () {
  if (given !== undefined) useCli(given)
  else if (installed) useCli(yield* installWorkspace(join(dir, "installed"), join(dir, "packs")))
  const { url } = yield* Postgres
  const runner = (name: string) =>
    Effect.flatMap(freePort, (port) => startRunner(url, name, port, ["--no-detect", "--slots", "4"]))
  const cluster = ["--cluster", url, "--lock-expiry", "6s", "--plain", "--output-dir", join(dir, "out")]
  const sleepers = experiment("sleepers", tests, "sleep", ["1"], concurrency)
  const trivial = experiment("trivial", Math.min(tests, 24), "true", [], 1)

  const r1: Runner = yield* runner("b1")
  // Runners warm themselves up before they take work (internal/warmUp.ts): b2 and b3, started later, are as warm as
  // b1. This run only puts the trivial experiment's bundle in b1's cache before the timed runs.
  yield* timed(["run", trivial, ...cluster, "--filter", "t0"])
  const local1 = yield* timed(["run", trivial, "--plain", "--output-dir", join(dir, "out"), "--filter", "t0"])
  const remote1 = yield* timed(["run", trivial, ...cluster, "--filter", "t0"])
  const local = yield* timed(["run", trivial, "--plain", "--output-dir", join(dir, "out")])
  const remote = yield* timed(["run", trivial, ...cluster])
  const localOut = ["--plain", "--output-dir", join(dir, "out")]
  const local4 = yield* timed(["run", sleepers, ...localOut, "--concurrency", "4"])
  const local12 = yield* timed(["run", sleepers, ...localOut, "--concurrency", String(3 * 4)])
  const one = yield* timed(["run", sleepers, ...cluster])
  const oneSpan = span(newest(join(dir, "out"), "sleepers-"))
  const oneOutside = outside(newest(join(dir, "out"), "sleepers-"))
  const more = yield* Effect.all([runner("b2"), runner("b3")], { concurrency: "unbounded" })
  // Runners are long-running: time the steady state, once the two that joined hold shards and the shards have
  // stopped moving (the same counts for 2 s): while they move, a request can go to a shard's old owner first.
  const settling = performance.now()
  let last = ""
  let same = 0
  const settled = yield* Status.runners(Redacted.make(url), Duration.seconds(6)).pipe(
    Effect.flatMap((rows) => {
      const live = rows.filter((row) => row.live && row.shards.length > 0)
      const counts = live
        .map((row) => `${row.name} ${row.shards.length}`)
        .sort()
        .join(", ")
      same = counts === last ? same + 1 : 0
      last = counts
      return live.length === 3 && same >= 4 ? Effect.succeed(counts) : Effect.fail("moving")
    }),
    Effect.retry({ schedule: Schedule.spaced("500 millis") }),
    Effect.timeout("90 seconds"),
    Effect.orDie
  )
  const settledAfter = (performance.now() - settling) / 1000
  const three = yield* timed(["run", sleepers, ...cluster])
  const threeRun = newest(join(dir, "out"), "sleepers-")
  const threeSpan = span(threeRun)
  const threeOutside = outside(threeRun)
  const threeFirst = firstStarts(threeRun)
  const threeSpread = spread(threeRun)
  yield* Effect.forEach([r1, ...more], stop, { discard: true })

  const trivialCount = Math.min(tests, 24)
  console.log(
    `cluster: ${tests} tests × 1 s (exec sleep 1), concurrency ${concurrency}, runners × 4 slots, one machine, CLI ${given ?? (installed ? "installed (dist)" : "from sources")}`
  )
  console.log(`1 runner  : ${one.toFixed(1)} s`)
  console.log(`3 runners : ${three.toFixed(1)} s`)
  console.log(`ratio 1/3 : ${(one / three).toFixed(2)}x (aim >= 2.5x)`)
  console.log(
    `ceiling   : the same tests locally (no cluster), concurrency 4 ${local4.toFixed(1)} s, 12 ${local12.toFixed(1)} s, ratio ${(local4 / local12).toFixed(2)}x (this machine's cores, no runner)`
  )
  console.log(
    `run span  : first to last event, 1 runner ${oneSpan.toFixed(1)} s, 3 runners ${threeSpan.toFixed(1)} s, ratio ${(oneSpan / threeSpan).toFixed(2)}x (without the command's start and reports)`
  )
  console.log(
    `outside   : command start to first event, last event to exit: 1 runner ${oneOutside.start.toFixed(0)} + ${oneOutside.end.toFixed(0)} ms, 3 runners ${threeOutside.start.toFixed(0)} + ${threeOutside.end.toFixed(0)} ms`
  )
  console.log(`shards    : settled ${settledAfter.toFixed(1)} s after b2 and b3 were live: ${settled}`)
  console.log(
    `first     : 3 runners, each one's first attempt after the run's first event: ${threeFirst.map(([name, ms]) => `${name} ${ms} ms`).join(", ")}`
  )
  console.log(
    `spread    : 3 runners, attempts each ran (an uneven spread costs wall time): ${threeSpread.map(([name, count]) => `${name} ${count}`).join(", ")}`
  )
  console.log(
    `dispatch  : ${trivialCount} trivial tests one at a time, local ${local.toFixed(1)} s, 1 runner ${remote.toFixed(1)} s`
  )
  console.log(
    `overhead  : ${(((remote - local) * 1000) / trivialCount).toFixed(0)} ms per test (aim < 50 ms), ratio ${(remote / local).toFixed(2)}x`
  )
  const perTest = ((remote - remote1 - (local - local1)) * 1000) / (trivialCount - 1)
  console.log(
    `split     : coordinator fixed ${((remote1 - local1) * 1000).toFixed(0)} ms (1 test: local ${local1.toFixed(1)} s, 1 runner ${remote1.toFixed(1)} s), per test ${perTest.toFixed(0)} ms`
  )
})

// Its directory (experiments, every run's output) goes once the runners have stopped: it was left behind at every run.
Effect.runPromise(
  program.pipe(
    Effect.provide(Layer.fresh(Postgres.layer)),
    Effect.scoped,
    Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  )
).catch((error) => {
  console.error(error)
  process.exit(1)
})
