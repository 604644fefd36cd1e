import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, FileSystem, Layer } from "effect"
import type { Plan } from "../src/Plan.ts"
import * as TestLauncher from "../src/TestLauncher.ts"
import { client, fixtures, loadIn, node, platform, runnerLayer, tempDir } from "./support.ts"

const layers = Layer.merge(runnerLayer, platform)
const empty: Plan = { _tag: "Single", steps: [] }

const launch = (
  plan: Plan,
  program: string,
  args: ReadonlyArray<string>,
  options: Partial<TestLauncher.TestOptions> = {}
) => TestLauncher.run(plan, { announce: false, program, args, ...options })

const greeting = loadIn(fixtures, "greeting-1.json")
const clientArgs = [client, "--long", "--blob", "40", "--blob", "5000"]

describe("TestLauncher", () => {
  it.live("gives the command the replay's address and a fresh channel db dir, removed afterwards", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const fs = yield* FileSystem.FileSystem
      const out = Path.join(dir, "env")
      const script = `echo "$NDS_TEST_HOST $NDS_TEST_PORT $NDS2_CHANNEL_DB_DIR $TESTBED_REPLAY_HOST $TESTBED_REPLAY_PORT $(ls -A "$NDS2_CHANNEL_DB_DIR" | wc -l)" > ${out}`
      const result = yield* launch(empty, "sh", ["-c", script])
      assert.strictEqual(result.exitCode, 0)
      const [host, port, db, host2, port2, entries] = (yield* fs.readFileString(out)).trim().split(" ")
      assert.strictEqual(host, "127.0.0.1")
      assert.isTrue(Number(port) > 0)
      assert.deepStrictEqual([host2, port2, entries], [host, port, "0"])
      assert.isFalse(yield* fs.exists(db!))
    }).pipe(Effect.provide(layers))
  )

  it.live("exits with the command's own code when the replay passed", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* launch(empty, "sh", ["-c", "exit 7"])).exitCode, 7)
      const passed = yield* launch((yield* greeting).plan, node, clientArgs)
      assert.strictEqual(passed.exitCode, 0)
      assert.strictEqual(passed.outcome.summary.stepsMatched, 6)
    }).pipe(Effect.provide(layers))
  )

  it.live("exits 1 when the replay failed, even if the command succeeded", () =>
    Effect.gen(function* () {
      const loaded = yield* greeting
      // The client never connects: the script is not exhausted.
      const multi: Plan = { _tag: "Multi", connections: [loaded.plan._tag === "Single" ? loaded.plan.steps : []] }
      const result = yield* launch(multi, "true", [])
      assert.strictEqual(result.exitCode, 1)
      assert.strictEqual(result.commandExitCode, 0)
      assert.strictEqual(result.outcome.failures[0]?._tag, "ScriptNotExhausted")
    }).pipe(Effect.provide(layers))
  )

  it.live(
    "once the replay failed, a client that lingers is stopped (TERM, then KILL) and the run exits 1 promptly",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const fs = yield* FileSystem.FileSystem
        const pidFile = Path.join(dir, "pid")
        // Connects, sends nothing (the step times out), ignores SIGTERM and would sleep for a minute.
        const lingering = [
          "-e",
          `require("fs").writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));` +
            `process.on("SIGTERM", () => {});` +
            `require("net").connect(Number(process.env.NDS_TEST_PORT), process.env.NDS_TEST_HOST).on("error", () => {});` +
            `setTimeout(() => {}, 60000)`
        ]
        const result = yield* launch((yield* greeting).plan, node, lingering, {
          stepTimeout: Duration.seconds(1),
          timeout: Duration.minutes(5)
        }).pipe(Effect.timeout(Duration.seconds(40)))
        assert.strictEqual(result.exitCode, 1)
        assert.isFalse(result.timedOut)
        assert.strictEqual(result.outcome.failures[0]?._tag, "StepTimedOut")
        const pid = Number(yield* fs.readFileString(pidFile))
        const alive = yield* Effect.sync(() => {
          try {
            process.kill(pid, 0)
            return true
          } catch {
            return false
          }
        })
        assert.isFalse(alive, "the client was left running")
      }).pipe(Effect.provide(layers)),
    60_000
  )

  it.live("a client that never connects fails the run, unless connections are optional", () =>
    Effect.gen(function* () {
      const plan = (yield* greeting).plan
      const never = yield* launch(plan, "true", [])
      assert.strictEqual(never.exitCode, 1)
      assert.strictEqual(never.commandExitCode, 0)
      const failure = never.outcome.failures[0]
      assert.isTrue(failure?._tag === "ScriptNotExhausted" && failure.message.includes("never opened"))
      const optional = yield* launch(plan, "true", [], { optionalConnections: true })
      assert.strictEqual(optional.exitCode, 0)
    }).pipe(Effect.provide(layers))
  )

  it.live("exits 124 when the overall timeout hits, and ends the command", () =>
    Effect.gen(function* () {
      const result = yield* launch(empty, "sleep", ["30"], { timeout: Duration.millis(500) })
      assert.strictEqual(result.exitCode, 124)
      assert.isTrue(result.timedOut)
    }).pipe(Effect.provide(layers))
  )

  it.live("faults from the command line test the client's robustness with the same recording", () =>
    Effect.gen(function* () {
      const plan = (yield* greeting).plan
      const chunked = yield* launch(plan, node, clientArgs, {
        faults: [{ step: undefined, fault: { delay: 0.01, chunk: { size: 7, pause: 0.001 } } }]
      })
      assert.strictEqual(chunked.exitCode, 0)
      assert.strictEqual(chunked.outcome.summary.faultsInjected, 6)
      // The client reports a cut or reset answer with its exit code 3; the replay itself did not fail.
      const truncated = yield* launch(plan, node, clientArgs, { faults: [{ step: 5, fault: { truncate: 100 } }] })
      assert.deepStrictEqual([truncated.exitCode, truncated.outcome.failures.length], [3, 0])
      const reset = yield* launch(plan, node, clientArgs, { faults: [{ step: 2, fault: { reset: true } }] })
      assert.deepStrictEqual([reset.exitCode, reset.outcome.failures.length], [3, 0])
    }).pipe(Effect.provide(layers))
  )
})
