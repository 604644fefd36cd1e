// The CPU a runner spends per attempt, and a local run's per test, for builds side by side (A/B back to back).
// For each CLI entry given (default this checkout's scripts/testbed.ts): RUNNERS runners × 4 slots on one throwaway
// Postgres, warmed by a one-test run, then their CPU while idle for IDLE seconds, then while a coordinator runs
// TESTS tests of `exec sleep 1` at concurrency 12 (from /proc: user + system). Per attempt is the run's CPU less the
// idle rate over the run's wall time, over TESTS. With `local`, also `testbed run --plain` of the same TESTS tests
// and of one test: a local test's CPU is the difference over TESTS − 1. ROUNDS repeats the whole in rotating order.
// Run: node_modules/.bin/node bench/_runner-cpu.ts [tests=48] [runners=3] [rounds=1] [idle=5] [local] [CLI…]
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { freePort, Postgres } from "../packages/cluster/test/postgres.ts"
import { secret, waitForRunner } from "../packages/cluster/test/processes.ts"
import { cpuOf, helperCpuOf } from "./_proc-cpu.ts"

const args = process.argv.slice(2)
const numbers = args.filter((arg) => /^\d+$/.test(arg)).map(Number)
const [tests = 48, runners = 3, rounds = 1, idleSeconds = 5] = numbers
const local = args.includes("local")
const own = decodeURIComponent(new URL("../scripts/testbed.ts", import.meta.url).pathname)
const clis = args.filter((arg) => arg.endsWith(".ts"))
if (clis.length === 0) clis.push(own)
const dir = mkdtempSync(join(tmpdir(), "testbed-runner-cpu-"))

const experiment = (name: string, count: number) => {
  const file = join(dir, `${name}.yaml`)
  const lines = [`name: ${name}`, "concurrency: 12", "test_timeout: 2 minutes", "tests:"]
  for (let i = 0; i < count; i++) {
    lines.push(
      `  - name: t${i}`,
      "    services:",
      `      c: { implementation: exec, role: client, parameters: { program: "sleep", args: ["1"] } }`
    )
  }
  writeFileSync(file, `${lines.join("\n")}\n`)
  return file
}
const sleepers = experiment("sleepers", tests)
const one = experiment("one", 1)

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode)
    else child.once("exit", (code) => resolve(code))
  })

const start = (cli: string, argv: ReadonlyArray<string>) =>
  spawn(process.execPath, [cli, ...argv], {
    env: { ...process.env, TESTBED_CLUSTER_SECRET: secret },
    stdio: ["ignore", "ignore", "pipe"]
  })

/** Runs `testbed ARGV` to its end; its CPU (polled from /proc until it exits), wall time and exit code. */
const run = async (cli: string, argv: ReadonlyArray<string>) => {
  const began = performance.now()
  const child = start(cli, argv)
  let cpu = 0
  const poll = setInterval(() => {
    cpu = Math.max(cpu, cpuOf(child.pid) + helperCpuOf(child.pid))
  }, 20)
  const code = await exited(child)
  clearInterval(poll)
  return { cpu, wall: performance.now() - began, code }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Runners are never named twice: no round sees the directory row of an earlier round's runner. */
let measured = 0

const measure = (pg: { readonly url: string }, cli: string, label: string) =>
  Effect.gen(function* () {
    const started = yield* Effect.forEach(
      Array.from({ length: runners }, (_, i) => `m${measured}-r${i + 1}`),
      (name) =>
        Effect.gen(function* () {
          const port = yield* freePort
          const workdir = mkdtempSync(join(dir, `${name}-`))
          const child = start(cli, [
            "runner",
            ...["--cluster", pg.url, "--name", name, "--advertise", `127.0.0.1:${port}`, "--workdir", workdir],
            ...["--lock-expiry", "15s", "--no-detect", "--slots", "4"]
          ])
          yield* Effect.addFinalizer(() =>
            Effect.promise(async () => {
              child.kill("SIGTERM")
              const timer = setTimeout(() => child.kill("SIGKILL"), 20_000)
              await exited(child)
              clearTimeout(timer)
            })
          )
          yield* waitForRunner(pg.url, name, true)
          return child
        }),
      { concurrency: "unbounded" }
    )
    measured++
    const pids = started.map((child) => child.pid)
    console.log(`${label} runners: pids ${pids.join(" ")}`)
    const total = () => pids.reduce<number>((sum, pid) => sum + cpuOf(pid) + helperCpuOf(pid), 0)
    const out = join(dir, `out-${label}`)
    const cluster = ["--cluster", pg.url, "--lock-expiry", "15s", "--plain", "--output-dir", out]
    yield* Effect.promise(() => run(cli, ["run", one, ...cluster]))
    const idleBefore = total()
    yield* Effect.promise(() => sleep(idleSeconds * 1000))
    const idleRate = (total() - idleBefore) / (idleSeconds * 1000)
    const before = total()
    const ran = yield* Effect.promise(() => run(cli, ["run", sleepers, ...cluster]))
    const runCpu = total() - before
    // A fork copies the page tables of the resident memory, and write-protects it: the size says what a spawn costs.
    const rss = pids.map((pid) => {
      try {
        return /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "?"
      } catch {
        return "?"
      }
    })
    const perAttempt = (runCpu - idleRate * ran.wall) / tests
    console.log(
      `${label} cluster: runners idle ${(idleRate * 1000).toFixed(0)} ms/s (all ${runners}); run ${(ran.wall / 1000).toFixed(2)} s, exit ${ran.code}, runners ${runCpu.toFixed(0)} ms, ${(runCpu / tests).toFixed(1)} ms per attempt (${perAttempt.toFixed(1)} less idle), coordinator ${ran.cpu.toFixed(0)} ms; runners' RSS ${rss.map((kb) => `${Math.round(Number(kb) / 1024)} MB`).join(", ")}`
    )
    rmSync(out, { recursive: true, force: true })
  }).pipe(Effect.scoped)

const measureLocal = (cli: string, label: string) =>
  Effect.promise(async () => {
    const out = join(dir, `local-${label}`)
    const single = await run(cli, ["run", one, "--plain", "--output-dir", out])
    const all = await run(cli, ["run", sleepers, "--plain", "--output-dir", out])
    console.log(
      `${label} local: 1 test ${single.cpu.toFixed(0)} ms CPU, ${tests} tests ${all.cpu.toFixed(0)} ms in ${(all.wall / 1000).toFixed(2)} s (exit ${all.code}): ${((all.cpu - single.cpu) / (tests - 1)).toFixed(1)} ms per test`
    )
    rmSync(out, { recursive: true, force: true })
  })

const program = Effect.gen(function* () {
  const pg = yield* Postgres
  for (let round = 0; round < rounds; round++) {
    // Rotating order: neither build always runs first (the machine's load drifts).
    const order = clis.map((_, i) => (i + round) % clis.length)
    for (const i of order) yield* measure(pg, clis[i]!, `#${i}`)
    if (local) for (const i of order) yield* measureLocal(clis[i]!, `#${i}`)
  }
})

Effect.runPromise(program.pipe(Effect.provide(Layer.fresh(Postgres.layer)), Effect.scoped))
  .catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }))
