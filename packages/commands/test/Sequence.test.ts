import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Command, Sequence } from "../src/index.ts"
import { LocalLayer } from "./fixtures/processes.ts"

describe("Sequence", () => {
  it.live("a non-critical failure is recorded and the rest continue", () =>
    Effect.gen(function* () {
      const outcome = yield* Sequence.run([
        Command.shell("echo one", { id: "one" }),
        Command.shell("echo broken >&2; exit 7", { id: "two", description: "allowed to fail" }),
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
    }).pipe(Effect.provide(LocalLayer))
  )

  it.live("a critical failure stops the sequence; the rest are reported as skipped", () =>
    Effect.gen(function* () {
      const outcome = yield* Sequence.run([
        Command.shell("true", { id: "setup" }),
        Command.shell("exit 1", { id: "migrate", critical: true }),
        Command.shell("echo never", { id: "serve" }),
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
    }).pipe(Effect.provide(LocalLayer))
  )

  it.live("all succeeding is ok", () =>
    Effect.gen(function* () {
      const outcome = yield* Sequence.run([Command.make("true"), Command.make("true", [], { critical: true })])
      assert.isTrue(outcome.ok)
      assert.deepStrictEqual(
        outcome.steps.map((step) => step.status),
        ["succeeded", "succeeded"]
      )
    }).pipe(Effect.provide(LocalLayer))
  )
})
