// `testbed fleet operator` in this process, on fleet's scripted operator (`Operator.layerTest`): the flags reach the
// session, the summary is printed as JSON, a failed step skips the rest of its pipeline and makes the command fail
// with exit code 1 — no broker, no agents, no child process. The real ones are in FleetJson.test / FleetCli.test.
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Operator } from "@testbed/fleet"
import { Effect, Exit } from "effect"
import { TestConsole } from "effect/testing"
import { run } from "../src/Cli.ts"
import { ExitWith } from "../src/ExitCode.ts"

const script: Operator.Script = {
  agents: ["sut-1", "sut-2"],
  answer: (agent, command) => ({ exitCode: command === "false" || (agent === "sut-2" && command === "b") ? 1 : 0 })
}

const operator = (...flags: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const argv = ["fleet", "operator", "--broker", "mqtt://127.0.0.1:1", "--compat", "--no-realtime", "--no-feedback"]
    const exit = yield* Effect.exit(run([...argv, ...flags, "--json"]))
    return { exit, out: (yield* TestConsole.logLines).map(String) }
  }).pipe(Effect.provide([Operator.layerTest(script), TestConsole.layer, NodeServices.layer]))

describe("testbed fleet operator in process", () => {
  it.effect("runs the --pipeline steps on every registered agent; a failure skips the rest and exits 1", () =>
    Effect.gen(function* () {
      const { exit, out } = yield* operator("--expect", "2", "--pipeline", "echo hi; false; echo never")
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
      assert.instanceOf(error, ExitWith)
      assert.strictEqual((error as ExitWith).code, 1)
      const summary = JSON.parse(out.at(-1)!)
      assert.deepStrictEqual(summary.agents, ["sut-1", "sut-2"])
      assert.deepInclude(summary.counts, { succeeded: 2, failed: 2, skipped: 2 })
      assert.deepStrictEqual(
        summary.steps.filter((s: { agent: string }) => s.agent === "sut-1").map((s: { state: string }) => s.state),
        ["succeeded", "failed", "skipped"]
      )
    })
  )

  it.effect("--on-failure continue runs every step; all succeeded is exit 0", () =>
    Effect.gen(function* () {
      const failing = yield* operator("--on-failure", "continue", "--pipeline", "a; b; c")
      const summary = JSON.parse(failing.out.at(-1)!)
      assert.deepInclude(summary.counts, { succeeded: 5, failed: 1, skipped: 0 })
      const passing = yield* operator("--pipeline", "a; c")
      assert.isTrue(Exit.isSuccess(passing.exit))
      assert.isTrue(JSON.parse(passing.out.at(-1)!).succeeded)
    })
  )
})
