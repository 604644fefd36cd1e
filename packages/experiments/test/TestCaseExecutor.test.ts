// The seam: the manager runs every attempt through the TestCaseExecutor in context (the cluster's remote one in
// @testbed/cluster), and decides retries from what it answers; without one, attempts run here as before.
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Clock, Effect, FileSystem, Layer } from "effect"
import { Experiment, ExperimentManager, TestCaseExecutor } from "../src/index.ts"
import { fixtures } from "./support.ts"

describe("TestCaseExecutor", () => {
  it.effect("an executor in context runs every attempt; the manager retries what it fails", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-executor-" })
      const prepared = yield* Experiment.prepare(`${fixtures}quickstart.yaml`, { retries: 1 })
      const calls: Array<string> = []
      const executor = TestCaseExecutor.TestCaseExecutor.of({
        runAttempt: (test, attempt, context) =>
          Effect.gen(function* () {
            calls.push(`${test.name}#${attempt}`)
            // The first attempt of the first test fails: the manager's decision (a retry) comes back through decide.
            const status = calls.length === 1 ? ("failed" as const) : ("passed" as const)
            const { willRetry } = context.decide(status)
            yield* EventBus.emit({
              type: "test.finished",
              entityId: test.name,
              data: { name: test.name, attempt, status, durationMs: 0, ...(willRetry ? { willRetry } : {}) }
            })
            return { status, reason: undefined, durationMs: yield* Clock.currentTimeMillis, logsPath: runDir }
          })
      })
      const result = yield* ExperimentManager.run(prepared.plan, { runDir, registry: prepared.registry }).pipe(
        Effect.provide(Layer.succeed(TestCaseExecutor.TestCaseExecutor, executor))
      )
      assert.strictEqual(result.status, "completed")
      assert.deepStrictEqual([...calls].sort(), [
        "echo matrix [node-echo server, exec client]#1",
        "echo matrix [node-echo server, node-echo client]#1",
        "echo round trip#1",
        "echo round trip#2",
        "server log shows the connection#1"
      ])
      assert.isTrue(result.tests.find((test) => test.name === "echo round trip")?.flaky)
      // Nothing ran here: no attempt directory was made.
      assert.isFalse(yield* fs.exists(`${runDir}/tests`))
    }).pipe(Effect.provide(Layer.mergeAll(EventBus.EventBus.layer, NodeServices.layer)), Effect.scoped)
  )
})
