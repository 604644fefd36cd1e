// Where a coordinator's start goes, before its first event: one runner, a one-test run (`exec true`), every Postgres
// statement logged with its timestamp and backend; prints the statements from the command's spawn to its first event
// (ms after the spawn), then the time from the last event to the exit. Run with NODE_OPTIONS="--cpu-prof
// --cpu-prof-dir=DIR" for CPU profiles (bench/_profile-summary.ts reads them).
// Run: node_modules/.bin/node bench/_coordinator-start.ts [runs=3]
import { execFileSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { runWithPostgres } from "./_main.ts"
import { freePort, Postgres } from "../packages/cluster/test/postgres.ts"
import { startRunner, stop, testbed } from "../packages/cluster/test/processes.ts"

const runs = Number(process.argv[2] ?? 3)
const dir = mkdtempSync(join(tmpdir(), "testbed-coordinator-start-"))
const file = join(dir, "one.yaml")
writeFileSync(
  file,
  [
    "name: one",
    "tests:",
    "  - name: t0",
    "    services:",
    `      c: { implementation: exec, role: client, parameters: { program: "true", args: [] } }`,
    ""
  ].join("\n")
)

/** Postgres log lines from `offset`: [ms since epoch, backend pid, text]. */
const logLines = (path: string, offset: number) =>
  readFileSync(path)
    .subarray(offset)
    .toString()
    .split("\n")
    .flatMap((line) => {
      const match = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+) \[(\d+)\] (.*)$/.exec(line)
      if (match === null) return []
      const at = Date.parse(match[1]!.replace(" ", "T").replace(/ (\w+)$/, "Z"))
      return [[at, Number(match[2]), match[3]!] as const]
    })

const events = (out: string) => {
  const runDir = join(
    out,
    readdirSync(out)
      .filter((name) => name.startsWith("one-"))
      .sort()
      .at(-1)!
  )
  return readFileSync(join(runDir, "events.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { type: string; timestamp: string })
}

const program = Effect.gen(function* () {
  const pg = yield* Postgres
  const psql = (sql: string) => execFileSync("psql", [pg.url, "-tAc", sql], { stdio: "pipe" }).toString().trim()
  const runner = yield* Effect.flatMap(freePort, (port) => startRunner(pg.url, "s1", port, ["--no-detect"]))
  const out = join(dir, "out")
  const cluster = ["--cluster", pg.url, "--lock-expiry", "6s", "--plain", "--output-dir", out]
  yield* testbed(["run", file, ...cluster])
  psql("ALTER SYSTEM SET log_min_duration_statement = 0")
  psql("ALTER SYSTEM SET log_line_prefix = '%m [%p] '")
  psql("SELECT pg_reload_conf()")
  const log = join(pg.dir, "log")
  for (let i = 0; i < runs; i++) {
    const offset = readFileSync(log).length
    const spawned = Date.now()
    yield* testbed(["run", file, ...cluster])
    const exited = Date.now()
    const stamps = events(out).map((event) => Date.parse(event.timestamp))
    const first = Math.min(...stamps)
    const last = Math.max(...stamps)
    console.log(`run ${i + 1}: first event +${first - spawned} ms, last event → exit ${exited - last} ms`)
    for (const [at, backend, text] of logLines(log, offset)) {
      if (at > first) break
      console.log(`  +${String(at - spawned).padStart(5)} [${backend}] ${text.slice(0, 150)}`)
    }
  }
  psql("ALTER SYSTEM RESET log_min_duration_statement")
  psql("SELECT pg_reload_conf()")
  yield* stop(runner)
})

runWithPostgres(program, dir)
