// `Agent.layerTest`: agents that run no process, from `Agent.Agents`, with the live operator on the in-memory
// broker and TestClock — what other packages' unit tests use. Also the agent's order guarantee: one agent id runs
// its commands one at a time, in order, even when they come in together.
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ScriptedRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { Agent, MqttConnection, Operator, Security } from "../src/index.ts"
import { secret } from "./scenarios.ts"
import { drive } from "./testClock.ts"

const signing = Security.signed(secret)
const connection = { url: "mqtt://memory" }

const script = ScriptedRunner.rules([
  [/slow/, { duration: "30 seconds", stdout: "done\n" }],
  [/fail/, { exitCode: 4 }]
])

const layer = Layer.mergeAll(
  Agent.layerTest(script).pipe(Layer.provideMerge(EventBus.EventBus.layer)),
  MqttConnection.layerMemory,
  NodeServices.layer
)

const fleet = (ids: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const op = yield* Operator.start({ connection, signing, expectAgents: ids.length, stepTimeout: "2 minutes" })
    const agents = yield* Agent.Agents
    for (const id of ids) yield* agents.start({ ids: [id], connection, signing })
    yield* drive(yield* Effect.forkChild(op.awaitRegistrations))
    return op
  })

describe("Agent.layerTest", () => {
  it.effect("answers from the script on TestClock: a 30-second command ends after 30 s of the test's clock", () =>
    Effect.gen(function* () {
      const op = yield* fleet(["a1", "a2"])
      const run = yield* Effect.forkChild(op.runPipelines([{ name: "p", steps: ["slow job", "fail now", "never"] }]))
      yield* TestClock.adjust("29 seconds")
      assert.isUndefined(run.pollUnsafe(), "still running before the script's 30 s")
      const summary = yield* drive(run)
      assert.deepStrictEqual(
        summary.steps.map((s) => [s.agent, s.state, s.exitCode]),
        [
          ["a1", "succeeded", 0],
          ["a1", "failed", 4],
          ["a1", "skipped", null],
          ["a2", "succeeded", 0],
          ["a2", "failed", 4],
          ["a2", "skipped", null]
        ]
      )
      assert.strictEqual(summary.steps[0]!.response?.output, "done\n")
      const ran = yield* ScriptedRunner.ScriptedRunner.use((runner) => runner.ran)
      assert.deepStrictEqual(ran.map((command) => command.shell).sort(), [
        "fail now",
        "fail now",
        "slow job",
        "slow job"
      ])
    }).pipe(Effect.scoped, Effect.provide(layer))
  )

  it.effect("one agent runs commands that arrive together one at a time, in order", () =>
    Effect.gen(function* () {
      const op = yield* fleet(["solo"])
      const first = yield* Effect.forkChild(op.runCommand("slow first"))
      const second = yield* Effect.forkChild(op.runCommand("slow second"))
      yield* TestClock.adjust("31 seconds")
      yield* Effect.yieldNow
      assert.isDefined(first.pollUnsafe(), "the first ends after its 30 s")
      assert.isUndefined(second.pollUnsafe(), "the second waits behind the first, then runs its own 30 s")
      yield* TestClock.adjust("30 seconds")
      const [report] = yield* drive(second)
      assert.strictEqual(report?.state, "succeeded")
      // The second started when the first ended: its round trip is both commands' time.
      assert.isAtLeast(report!.roundTripMs, 60_000)
      yield* Fiber.join(first)
    }).pipe(Effect.scoped, Effect.provide(layer))
  )
})
