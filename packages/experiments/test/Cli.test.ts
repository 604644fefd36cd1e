// The real `testbed run` as a child process: its exit codes, and SIGINT in the middle of a run (no process is
// left behind and the reports of what ran are still written).
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { fixtures, readEvents } from "./support.ts"

const repo = decodeURIComponent(new URL("../../../", import.meta.url).pathname)

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const exitOf = (child: ChildProcess) =>
  Effect.callback<{ readonly code: number | null; readonly signal: string | null }>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resume(Effect.succeed({ code: child.exitCode, signal: child.signalCode }))
      return
    }
    child.once("exit", (code, signal) => resume(Effect.succeed({ code, signal })))
  })

const countLines = (file: string, type: string) =>
  existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter((line) => line.includes(`"type":"${type}"`)).length
    : 0

const cli = (...args: ReadonlyArray<string>) =>
  spawnSync(process.execPath, [`${repo}apps/testbed/src/bin.ts`, ...args], {
    cwd: repo,
    encoding: "utf8",
    timeout: 60_000
  })

describe("testbed run (the CLI)", () => {
  it("--dry-run exits 0 for a good file and lists its tests; 2 with every problem of a bad one", () => {
    const good = cli("run", `${fixtures}tls-interop.yaml`, "--dry-run")
    assert.strictEqual(good.status, 0, good.stderr)
    assert.include(good.stdout, `OK — experiment "tls-interop", 4 test(s)`)
    const bad = cli("run", `${fixtures}cases/invalid.yaml`, "--dry-run")
    assert.strictEqual(bad.status, 2)
    assert.include(bad.stderr, "10 problem(s)")
    assert.include(bad.stderr, "tests[0].services.client.parameters.count: expected an integer")
    assert.notInclude(bad.stderr, "ExitWith")
  }, 240_000)

  it("exits 1 when a test fails and points at the HTML report", () => {
    const output = mkdtempSync(join(tmpdir(), "testbed-cli-"))
    const run = cli("run", `${fixtures}cases/fast-fail.yaml`, "--output-dir", output, "--plain")
    rmSync(output, { recursive: true, force: true })
    assert.strictEqual(run.status, 1, run.stderr)
    assert.match(run.stdout, /HTML report: .*\/fast-fail-\d{8}-\d{6}\/report\.html/)
  }, 120_000)

  it.live(
    "SIGINT mid-run leaves no process and still writes the reports of what ran",
    () =>
      Effect.gen(function* () {
        const output = mkdtempSync(join(tmpdir(), "testbed-interrupt-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(output, { recursive: true, force: true })))
        const child = spawn(
          process.execPath,
          [
            `${repo}apps/testbed/src/bin.ts`,
            "run",
            `${fixtures}cases/interrupt.yaml`,
            "--output-dir",
            output,
            "--plain"
          ],
          { cwd: repo, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CI: "true" } }
        )
        let stdout = ""
        child.stdout?.on("data", (chunk) => (stdout += String(chunk)))
        child.stderr?.on("data", (chunk) => (stdout += String(chunk)))
        yield* Effect.addFinalizer(() => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL")))

        // Wait until the three long-running services (a server and two clients) are up.
        const runDir = yield* Effect.sync(() => {
          const dirs = existsSync(output) ? readdirSync(output) : []
          const dir = dirs.length === 1 ? join(output, dirs[0]!) : undefined
          return dir !== undefined && countLines(join(dir, "events.jsonl"), "service.started") >= 3 ? dir : undefined
        }).pipe(
          Effect.repeat({
            schedule: Schedule.spaced("50 millis"),
            until: (dir) => dir !== undefined || child.exitCode !== null
          }),
          Effect.timeout("60 seconds")
        )
        assert.isDefined(runDir, `the run never got going:\n${stdout}`)
        const pids = readEvents(runDir!).flatMap((e) =>
          e.type === "service.started" && e.data.pid !== undefined ? [e.data.pid] : []
        )
        assert.strictEqual(pids.length, 3)
        for (const pid of pids) assert.isTrue(alive(pid))

        child.kill("SIGINT")
        const exit = yield* Effect.timeout(exitOf(child), "30 seconds")
        assert.notStrictEqual(exit.code, 0, stdout)

        for (const pid of pids) assert.isFalse(alive(pid), `process ${pid} outlived the run`)
        const events = readEvents(runDir!)
        const finished = events.find((e) => e.type === "experiment.finished")
        assert.strictEqual(finished?.type === "experiment.finished" ? finished.data.status : undefined, "interrupted")
        const statuses = Object.fromEntries(
          events.flatMap((e) => (e.type === "test.finished" ? [[e.data.name, e.data.status]] : []))
        )
        assert.deepStrictEqual(statuses, {
          "long client": "interrupted",
          "another long client": "interrupted",
          "queued behind them": "skipped"
        })
        assert.strictEqual(events.filter((e) => e.type === "service.exited").length, 3)
        const summary = JSON.parse(readFileSync(join(runDir!, "experiment_summary.json"), "utf8"))
        assert.strictEqual(summary.tests.total, 3)
        assert.isTrue(existsSync(join(runDir!, "report.html")))
      }).pipe(Effect.scoped),
    150_000
  )
})
