// A sequence's logic on the scripted runner (CommandRunner.layerTest) and TestClock: non-critical failures are
// recorded and the rest continue, a critical one stops it, a timed-out step ends at its timeout on the Clock.
// The same sequence on real processes is LocalRunner.test's.
import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Duration, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { Command, CommandRunner, ScriptedRunner, Sequence } from "../src/index.ts"

const script = ScriptedRunner.rules([
  ["sh -c echo one", { stdout: "one\n" }],
  ["sh -c broken", { exitCode: 7, stderr: "broken\n" }],
  ["testbed-no-such-program-xyz", { cannotStart: "not-found" }],
  ["sh -c echo four", { stdout: "four\n" }],
  ["sh -c exit 1", { exitCode: 1 }],
  ["sleep 60", { duration: "60 seconds" }]
])

const layer = CommandRunner.CommandRunner.layerTest(script).pipe(Layer.provideMerge(EventBus.EventBus.layer))

const ran = ScriptedRunner.ScriptedRunner.use((scripted) => scripted.ran)

describe("Sequence (scripted runner, TestClock)", () => {
  it.effect("a non-critical failure is recorded and the rest continue", () =>
    Effect.gen(function* () {
      const outcome = yield* Sequence.run([
        Command.shell("echo one", { id: "one" }),
        Command.shell("broken", { id: "two", description: "allowed to fail" }),
        Command.make("testbed-no-such-program-xyz", [], { id: "three" }),
        Command.shell("echo four", { id: "four" })
      ])
      assert.isFalse(outcome.ok)
      assert.isUndefined(outcome.stoppedBy)
      assert.deepStrictEqual(Sequence.idsWith(outcome, "succeeded"), ["one", "four"])
      assert.deepStrictEqual(Sequence.idsWith(outcome, "failed"), ["two", "three"])
      const [, two, three, four] = outcome.steps
      assert.deepStrictEqual(
        [two?.error, two?.reason, two?.result?.stderr, two?.description],
        ["CommandFailed", "exit code 7", "broken\n", "allowed to fail"]
      )
      assert.deepStrictEqual([three?.error, three?.result], ["CommandNotFound", undefined])
      assert.strictEqual(four?.result?.stdout, "four\n")
      assert.strictEqual((yield* ran).length, 4)
    }).pipe(Effect.provide(layer))
  )

  it.effect("a critical failure stops the sequence; the rest are reported as skipped and never run", () =>
    Effect.gen(function* () {
      const outcome = yield* Sequence.run([
        Command.shell("echo one", { id: "setup" }),
        Command.shell("exit 1", { id: "migrate", critical: true }),
        Command.shell("echo four", { id: "serve" }),
        Command.make("echo", ["never"])
      ])
      assert.isFalse(outcome.ok)
      assert.strictEqual(outcome.stoppedBy, "migrate")
      assert.deepStrictEqual(
        outcome.steps.map((step) => [step.status, step.critical]),
        [
          ["succeeded", false],
          ["failed", true],
          ["skipped", false],
          ["skipped", false]
        ]
      )
      assert.strictEqual(outcome.steps[2]?.reason, "critical command migrate failed")
      assert.isString(outcome.steps[3]?.commandId)
      assert.deepStrictEqual((yield* ran).map(ScriptedRunner.commandLine), ["sh -c echo one", "sh -c exit 1"])
    }).pipe(Effect.provide(layer))
  )

  it.effect("a step that outlives its timeout fails at the timeout on the Clock, with its result; the next runs", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(
        Sequence.run([
          Command.make("sleep", ["60"], { id: "slow", timeout: Duration.seconds(5) }),
          Command.shell("echo four", { id: "after" })
        ])
      )
      yield* TestClock.adjust("4999 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const outcome = yield* Fiber.join(fiber)
      assert.deepStrictEqual(
        outcome.steps.map((step) => [step.commandId, step.status, step.error]),
        [
          ["slow", "failed", "CommandTimedOut"],
          ["after", "succeeded", undefined]
        ]
      )
      assert.isTrue(outcome.steps[0]?.result?.timedOut)
      assert.strictEqual(outcome.steps[0]?.result?.durationMs, 5000)
    }).pipe(Effect.provide(layer))
  )

  it.effect("all succeeding is ok", () =>
    Effect.gen(function* () {
      const outcome = yield* Sequence.run([Command.shell("echo one"), Command.shell("echo four", { critical: true })])
      assert.isTrue(outcome.ok)
      assert.deepStrictEqual(
        outcome.steps.map((step) => step.status),
        ["succeeded", "succeeded"]
      )
    }).pipe(Effect.provide(layer))
  )
})
