// Where a remote test's time goes: one runner, N trivial tests (`exec true`) one at a time through a coordinator,
// with every Postgres statement logged (timestamp, backend, duration; copied to PGLOG-COPY when given) and the
// CPU time of the coordinator and of each runner. Run with NODE_OPTIONS="--cpu-prof --cpu-prof-dir=DIR" for
// profiles of every process (bench/_profile-summary.ts reads them).
// With `sleepers`: RUNNERS runners × 4 slots, N tests of `exec sleep 1` at concurrency 12 instead.
// Run: node_modules/.bin/node bench/_cluster-profile.ts [tests=8] [pglog-copy] [sleepers RUNNERS]
import { execFileSync } from "node:child_process"
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { runWithPostgres } from "./_main.ts"
import { cpuOf, postgresCpu } from "./_proc-cpu.ts"
import { freePort, Postgres } from "../packages/cluster/test/postgres.ts"
import { background, startRunner, stop, testbed } from "../packages/cluster/test/processes.ts"

const tests = Number(process.argv[2] ?? 8)
const copyTo = process.argv[3] === "-" ? undefined : process.argv[3]
const sleepers = process.argv[4] === "sleepers"
const runners = Number(process.argv[5] ?? 1)
const dir = mkdtempSync(join(tmpdir(), "testbed-profile-cluster-"))

const file = join(dir, "trivial.yaml")
const lines = ["name: trivial", `concurrency: ${sleepers ? 12 : 1}`, "test_timeout: 2 minutes", "tests:"]
const exec = sleepers ? `program: "sleep", args: ["1"]` : `program: "true", args: []`
for (let i = 0; i < tests; i++) {
  lines.push(
    `  - name: t${i}`,
    "    services:",
    `      c: { implementation: exec, role: client, parameters: { ${exec} } }`
  )
}
writeFileSync(file, `${lines.join("\n")}\n`)

const program = Effect.gen(function* () {
  const pg = yield* Postgres
  const psql = (sql: string) => execFileSync("psql", [pg.url, "-tAc", sql], { stdio: "pipe" }).toString().trim()
  const stored = () => ({
    replies: Number(psql("SELECT count(*) FROM testbed_cluster_replies")),
    // Requests (kind 0) and envelopes: acknowledgements of reply rows, interrupts.
    messages: Number(psql("SELECT count(*) FROM testbed_cluster_messages"))
  })
  const started = yield* Effect.forEach(
    Array.from({ length: runners }, (_, i) => `p${i + 1}`),
    (name) => Effect.flatMap(freePort, (port) => startRunner(pg.url, name, port, ["--no-detect", "--slots", "4"])),
    { concurrency: "unbounded" }
  )
  const cluster = ["--cluster", pg.url, "--lock-expiry", "6s", "--plain", "--output-dir", join(dir, "out")]
  yield* testbed(["run", file, ...cluster, "--filter", "t0"])
  psql("ALTER SYSTEM SET log_min_duration_statement = 0")
  psql("ALTER SYSTEM SET log_line_prefix = '%m [%p] '")
  psql("SELECT pg_reload_conf()")
  const before = stored()
  const logStart = readFileSync(join(pg.dir, "log")).length
  const start = performance.now()
  const cpuBefore = started.map((runner) => cpuOf(runner.child.pid))
  const postgresBefore = postgresCpu(pg.dir)
  const coordinator = background(["run", file, ...cluster])
  let coordinatorCpu = 0
  const poll = setInterval(() => {
    coordinatorCpu = Math.max(coordinatorCpu, cpuOf(coordinator.child.pid))
  }, 50)
  const code = yield* Effect.promise(() => coordinator.exited())
  clearInterval(poll)
  const ran = { code }
  const runnerCpu = started.map((runner, i) => cpuOf(runner.child.pid) - cpuBefore[i]!)
  const postgres = postgresCpu(pg.dir) - postgresBefore
  console.log(
    `cpu: coordinator ${coordinatorCpu} ms (whole process), runners ${runnerCpu.join(" + ")} ms, postgres ${postgres} ms (during the run)`
  )
  console.log(`${tests} tests in ${((performance.now() - start) / 1000).toFixed(2)} s, exit ${ran.code}`)
  const after = stored()
  const statements = readFileSync(join(pg.dir, "log"))
    .subarray(logStart)
    .toString()
    .split("\n")
    .filter((line) => / duration: .* (statement|execute [^:]*): /.test(line)).length
  console.log(
    `per test: ${((after.replies - before.replies) / tests).toFixed(1)} reply rows, ${((after.messages - before.messages) / tests).toFixed(1)} stored messages (request, acknowledgements), ${(statements / tests).toFixed(0)} Postgres statements (all processes)`
  )
  psql("ALTER SYSTEM RESET log_min_duration_statement")
  psql("SELECT pg_reload_conf()")
  yield* Effect.forEach(started, stop, { discard: true })
  if (copyTo !== undefined) copyFileSync(join(pg.dir, "log"), copyTo)
})

runWithPostgres(program, dir)
