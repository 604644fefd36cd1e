// `npx --yes pnpm@10.34.9 testbed …` from a checkout, exactly as the README has it: relative paths are the
// caller's, a SIGTERM (a CI timeout) reaches testbed itself, which stops the services and writes the reports
// (exit 130), and two runs started together get a run directory each.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
import * as Process from "./support/process.ts"

const repo = fileURLToPath(new URL("../../../", import.meta.url))

// A directory of the checkout that belongs to no workspace package (`.work/` is ignored by git), so pnpm finds
// the root's `testbed` script from there, as from any subdirectory a user would stand in.
const subdirectory = Effect.acquireRelease(
  Effect.sync(() => {
    mkdirSync(join(repo, ".work"), { recursive: true })
    return mkdtempSync(join(repo, ".work", "checkout-"))
  }),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

// What a user's shell has: no npm or pnpm variables of the test runner's own pnpm.
const env: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !/^(npm_|pnpm_|INIT_CWD$|VITEST|NODE_OPTIONS$)/i.test(key))
)

const pnpmTestbed = (cwd: string, args: ReadonlyArray<string>, options: Partial<Process.Options> = {}) =>
  Process.run("npx", ["--yes", "pnpm@10.34.9", "testbed", ...args], { cwd, env, timeoutMs: 180_000, ...options })

/** Processes whose command line holds this text (the services of a test, found by a marker of its own). */
const processesWith = (marker: string): ReadonlyArray<number> =>
  readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker)
      } catch {
        return false
      }
    })
    .map(Number)

const echoExperiment = (name: string, extraSteps: string) => `name: ${name}
test_timeout: 5 minutes
tests:
  - name: echo
    services:
      server: { implementation: node-echo, role: server }
      client: { implementation: node-echo, role: client, target: server, parameters: { count: 2 } }
${extraSteps}    assertions:
      - { type: output_matches, service: client, pattern: "echo ok: 2 messages" }
`

describe("pnpm testbed from a checkout", () => {
  it.live(
    "a relative path given from a subdirectory resolves against it",
    () =>
      Effect.gen(function* () {
        const dir = yield* subdirectory
        mkdirSync(join(dir, "experiments"))
        writeFileSync(join(dir, "experiments/mine.yaml"), echoExperiment("mine", ""))
        const dry = yield* pnpmTestbed(dir, ["run", "--dry-run", "experiments/mine.yaml"])
        assert.strictEqual(dry.code, 0, dry.output)
        assert.include(dry.stdout, `${join(dir, "experiments/mine.yaml")}: OK`)
        const run = yield* pnpmTestbed(dir, ["run", "experiments/mine.yaml", "--output-dir", "runs", "--plain"])
        assert.strictEqual(run.code, 0, run.output)
        assert.lengthOf(readdirSync(join(dir, "runs")), 1)
      }).pipe(Effect.scoped),
    240_000
  )

  it.live(
    "SIGTERM to npx pnpm testbed run stops the services, writes the reports, exits 130",
    () =>
      Effect.gen(function* () {
        const dir = yield* subdirectory
        const marker = `testbed-sigterm-${process.pid}-${Date.now()}`
        // The server is a one-line Node echo server carrying the marker in its arguments; the test then waits.
        writeFileSync(
          join(dir, "slow.yaml"),
          `name: slow
test_timeout: 5 minutes
tests:
  - name: waits
    services:
      server:
        implementation: exec
        role: server
        parameters:
          program: "{{ node }}"
          args: ["-e", "require('net').createServer((s) => s.pipe(s)).listen(+process.argv[1], '127.0.0.1', () => console.log('up'))", "{{ port }}", "${marker}"]
        readiness: { kind: port, timeout: 30 seconds }
    steps:
      - wait: 300
`
        )
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const pid of processesWith(marker)) process.kill(pid, "SIGKILL")
          })
        )
        let pid = 0
        const running = yield* Effect.forkChild(
          pnpmTestbed(dir, ["run", "slow.yaml", "--plain"], { onSpawn: (p) => (pid = p) })
        )
        // The service is up: its process exists.
        yield* Effect.suspend(
          (): Effect.Effect<void, string> =>
            processesWith(marker).length > 0 ? Effect.void : Effect.fail("the service has not started yet")
        ).pipe(Effect.retry(Schedule.spaced("200 millis")), Effect.timeout("120 seconds"))
        yield* Effect.sleep("500 millis")
        process.kill(pid, "SIGTERM") // npx's pid only, as a CI runner's timeout does
        const finished = yield* Fiber.join(running).pipe(Effect.timeout("60 seconds"))
        assert.strictEqual(finished.code, 130, finished.output)
        assert.deepStrictEqual(processesWith(marker), [], "service processes left running")
        const runs = readdirSync(join(dir, "outputs"))
        assert.lengthOf(runs, 1)
        const runDir = join(dir, "outputs", runs[0] ?? "")
        assert.include(readdirSync(runDir), "report.html")
        const summary = JSON.parse(readFileSync(join(runDir, "experiment_summary.json"), "utf8"))
        assert.strictEqual(summary.tests.results[0]?.status, "interrupted", JSON.stringify(summary.tests))
      }).pipe(Effect.scoped),
    240_000
  )

  it.live(
    "two runs started together write two run directories",
    () =>
      Effect.gen(function* () {
        const dir = yield* subdirectory
        writeFileSync(join(dir, "twice.yaml"), echoExperiment("twice", ""))
        const [first, second] = yield* Effect.all(
          [
            pnpmTestbed(dir, ["run", "twice.yaml", "--plain", "--output-dir", "out"]),
            pnpmTestbed(dir, ["run", "twice.yaml", "--plain", "--output-dir", "out"])
          ],
          { concurrency: 2 }
        )
        assert.strictEqual(first.code, 0, first.output)
        assert.strictEqual(second.code, 0, second.output)
        const runs = readdirSync(join(dir, "out"))
        assert.lengthOf(runs, 2)
        for (const run of runs) {
          const summary = JSON.parse(readFileSync(join(dir, "out", run, "experiment_summary.json"), "utf8"))
          assert.strictEqual(summary.tests.total, 1)
          assert.strictEqual(summary.tests.passed, 1)
        }
      }).pipe(Effect.scoped),
    240_000
  )
})
