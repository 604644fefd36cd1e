// The TLS interop matrix (fixtures/experiments/tls-matrix.yaml: 5 servers × 5 clients × 9 cases = 225 cells) run
// end to end by the CLI at concurrency 1, 2 and 4: wall time, time per cell, and the verdicts. The Go and Java peers
// are built first into a fresh cache, timed on their own (build time is not test time). Baseline in the same run:
// concurrency 1; the QUIC interop runner's published cost (about 15 minutes per pair for 23 cases) is quoted in
// BENCHMARKS.md for comparison.
// Usage: node_modules/.bin/node bench/interop.ts [concurrency ...]   (default 1 2 4)
//        node_modules/.bin/node bench/interop.ts --docker             (the docker subset)
import { spawnSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

// `--docker`: the docker subset instead (image build time from an empty cache and cached, per-cell time against
// the same cells on localhost); see bench/_interop-docker.ts.
if (process.argv.includes("--docker")) {
  await import("./_interop-docker.ts")
  process.exit(0)
}

const root = fileURLToPath(new URL("..", import.meta.url))
const levels = process.argv.slice(2).map(Number)
const concurrencies = levels.length > 0 ? levels : [1, 2, 4]
const work = mkdtempSync(join(tmpdir(), "testbed-bench-interop-"))
const env = { ...process.env, TESTBED_CACHE_DIR: join(work, "cache") }

interface Summary {
  readonly tests: {
    readonly total: number
    readonly results: ReadonlyArray<{
      readonly name: string
      readonly status: string
      readonly duration: number
      readonly error_message: string | null
    }>
  }
}

/** Builds one peer through its plugin's own build line (lib.sh's tb_cached_build) and times it. */
const build = (name: string, dir: string, command: string): number => {
  const started = performance.now()
  const script = `. "${root}packages/plugins/assets/tls/lib.sh"; DIR=$(mktemp -d); tb_cached_build ${name} "${root}packages/plugins/assets/tls/${dir}" sh -c '${command}'`
  const result = spawnSync("sh", ["-c", script], { env, encoding: "utf8" })
  if (result.status !== 0) throw new Error(`building ${name} failed: ${result.stderr}`)
  return performance.now() - started
}

const run = (concurrency: number) => {
  const output = join(work, `c${concurrency}`)
  const started = performance.now()
  spawnSync(
    process.execPath,
    [
      `${root}scripts/testbed.ts`,
      "run",
      `${root}fixtures/experiments/tls-matrix.yaml`,
      "--plain",
      "--concurrency",
      String(concurrency),
      "--output-dir",
      output
    ],
    { env, stdio: ["ignore", "ignore", "inherit"] }
  )
  const wall = performance.now() - started
  const [runDir] = readdirSync(output)
  const summary = JSON.parse(readFileSync(join(output, runDir!, "experiment_summary.json"), "utf8")) as Summary
  const counts = new Map<string, number>()
  for (const test of summary.tests.results) counts.set(test.status, (counts.get(test.status) ?? 0) + 1)
  const busy = summary.tests.results.reduce((sum, test) => sum + test.duration, 0)
  return { concurrency, wall, cells: summary.tests.total, busy, counts, results: summary.tests.results }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

console.log(
  `go build (fresh cache): ${seconds(build("tls-go", "go", 'GO111MODULE=off GOFLAGS= go build -o "$OUT/tls-peer" "$SRC/main.go"'))}`
)
console.log(`javac (fresh cache): ${seconds(build("tls-java", "java", 'javac -d "$OUT" "$SRC/TlsPeer.java"'))}`)

const runs = concurrencies.map(run)
const baseline = runs[0]!
for (const r of runs) {
  const verdicts = [...r.counts.entries()].map(([status, n]) => `${n} ${status}`).join(", ")
  console.log(
    `concurrency ${r.concurrency}: ${r.cells} cells in ${seconds(r.wall)} wall, ${(r.wall / r.cells / 1000).toFixed(2)} s per cell (wall), ` +
      `${(r.busy / r.cells).toFixed(2)} s per cell (its own duration); speed-up vs concurrency ${baseline.concurrency}: ` +
      `${(baseline.wall / r.wall).toFixed(2)}× — ${verdicts}`
  )
}
// Per case, from the first run: cells and seconds, so a slow case shows.
const perCase = new Map<string, { cells: number; seconds: number }>()
for (const test of baseline.results) {
  const name = test.name.split(" [")[0]!
  const entry = perCase.get(name) ?? { cells: 0, seconds: 0 }
  perCase.set(name, { cells: entry.cells + 1, seconds: entry.seconds + test.duration })
}
for (const [name, entry] of perCase) {
  console.log(`  ${name}: ${entry.cells} cells, ${(entry.seconds / entry.cells).toFixed(2)} s per cell`)
}
// What did not pass, and why (from the last run): the interop findings, and any cell the machine's load broke.
for (const test of runs.at(-1)!.results) {
  if (test.status === "failed" || test.status === "timeout") {
    console.log(`  ${test.status}: ${test.name}: ${(test.error_message ?? "").slice(0, 220)}`)
  }
}
// The interop runner's published cost: about 15 minutes per pair for 23 cases, i.e. about 39 s per cell.
const runnerPerCell = (15 * 60) / 23
console.log(
  `QUIC interop runner (published): ${runnerPerCell.toFixed(1)} s per cell; here at concurrency ${baseline.concurrency}: ` +
    `${(baseline.wall / baseline.cells / 1000).toFixed(2)} s per cell (${(runnerPerCell / (baseline.wall / baseline.cells / 1000)).toFixed(0)}× less)`
)
rmSync(work, { recursive: true, force: true })
