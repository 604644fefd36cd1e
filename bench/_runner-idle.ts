// Whether a runner's idle CPU grows as the cluster's tables fill, and whether `testbed cluster prune` brings it back:
// RUNNERS runners × 4 slots on one throwaway Postgres; ROUNDS times: their CPU while idle for IDLE seconds (from
// /proc), Postgres's too, the statements Postgres ran meanwhile, then a run of TESTS × `exec true` at concurrency
// 12; at the end `testbed cluster prune --older-than 0s` and the idle figures once more.
// Run: node_modules/.bin/node bench/_runner-idle.ts [rounds=4] [tests=96] [runners=3] [idle=10]
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { Effect } from "effect"
import { runWithPostgres } from "./_main.ts"
import { cpuOf, postgresCpu } from "./_proc-cpu.ts"
import { freePort, Postgres } from "../packages/cluster/test/postgres.ts"
import { startRunner, stop, testbed } from "../packages/cluster/test/processes.ts"

const [rounds = 4, tests = 96, runners = 3, idleSeconds = 10] = process.argv.slice(2).map(Number)
const dir = mkdtempSync(join(tmpdir(), "testbed-runner-idle-"))
const file = join(dir, "trivial.yaml")
const lines = ["name: trivial", "concurrency: 12", "test_timeout: 2 minutes", "tests:"]
for (let i = 0; i < tests; i++) {
  lines.push(
    `  - name: t${i}`,
    "    services:",
    `      c: { implementation: exec, role: client, parameters: { program: "true", args: [] } }`
  )
}
writeFileSync(file, `${lines.join("\n")}\n`)

const program = Effect.gen(function* () {
  const pg = yield* Postgres
  const psql = (sql: string) => execFileSync("psql", [pg.url, "-tAc", sql], { stdio: "pipe" }).toString().trim()
  psql("ALTER SYSTEM SET log_min_duration_statement = 0")
  psql("ALTER SYSTEM SET log_line_prefix = '%m [%p] '")
  psql("SELECT pg_reload_conf()")
  const started = yield* Effect.forEach(
    Array.from({ length: runners }, (_, i) => `i${i + 1}`),
    (name) => Effect.flatMap(freePort, (port) => startRunner(pg.url, name, port, ["--no-detect", "--slots", "4"])),
    { concurrency: "unbounded" }
  )
  const cluster = ["--cluster", pg.url, "--lock-expiry", "6s", "--plain", "--output-dir", join(dir, "out")]
  const log = join(pg.dir, "log")
  const idle = (label: string) =>
    Effect.promise(async () => {
      const offset = readFileSync(log).length
      const before = started.map((runner) => cpuOf(runner.child.pid))
      const pgBefore = postgresCpu(pg.dir)
      await sleep(idleSeconds * 1000)
      const cpu = started.map((runner, i) => cpuOf(runner.child.pid) - before[i]!)
      const pgCpu = postgresCpu(pg.dir) - pgBefore
      const statements = readFileSync(log)
        .subarray(offset)
        .toString()
        .split("\n")
        .flatMap((line) => {
          const match = / duration: ([\d.]+) ms {2}(?:statement|execute [^:]*): (.*)$/.exec(line)
          return match === null ? [] : [[Number(match[1]), match[2]!.slice(0, 70)] as const]
        })
      const byText = new Map<string, { count: number; ms: number }>()
      for (const [ms, text] of statements) {
        const entry = byText.get(text) ?? { count: 0, ms: 0 }
        entry.count++
        entry.ms += ms
        byText.set(text, entry)
      }
      const rows = psql(
        "SELECT (SELECT count(*) FROM testbed_cluster_messages) || ' messages, ' || (SELECT count(*) FROM testbed_cluster_replies) || ' replies'"
      )
      console.log(
        `${label}: runners idle ${cpu.map((ms) => (ms / idleSeconds).toFixed(0)).join(" + ")} ms/s, postgres ${(pgCpu / idleSeconds).toFixed(0)} ms/s, ${statements.length} statements in ${idleSeconds} s; ${rows}`
      )
      const top = [...byText].sort((a, b) => b[1].ms - a[1].ms).slice(0, 4)
      for (const [text, { count, ms }] of top) console.log(`    ${count} × ${(ms / count).toFixed(2)} ms  ${text}`)
    })
  yield* testbed(["run", file, ...cluster, "--filter", "t0"])
  for (let round = 1; round <= rounds; round++) {
    yield* idle(`round ${round} before its run`)
    const ran = yield* testbed(["run", file, ...cluster])
    if (ran.code !== 0) return yield* Effect.die(new Error(`run exit ${ran.code}: ${ran.stderr}`))
  }
  yield* idle("after the rounds")
  const pruned = yield* testbed(["cluster", "prune", "--cluster", pg.url, "--older-than", "0s"])
  console.log(`prune: exit ${pruned.code}: ${pruned.stdout.trim().split("\n").slice(0, 3).join(" | ")}`)
  yield* idle("after prune")
  yield* Effect.forEach(started, stop, { discard: true })
})

runWithPostgres(program, dir)
