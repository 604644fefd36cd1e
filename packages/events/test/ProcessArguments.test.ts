import { assert, describe, it } from "@effect/vitest"
import { Effect, Result, Schema } from "effect"
import { ExitCode, ProcessArguments } from "../src/index.ts"

describe("ProcessArguments", () => {
  const shape = { switches: new Set(["insecure"]), repeatable: new Set(["allow"]) }

  it("reads values, switches and repeated flags; refuses strays, missing values and repeats", () => {
    const read = ProcessArguments.record(["--id", "a", "--insecure", "--allow", "x", "--allow", "y"], shape)
    assert.deepStrictEqual(Result.getOrThrow(read), { id: "a", insecure: true, allow: ["x", "y"] })
    const reason = (argv: ReadonlyArray<string>) => {
      const result = ProcessArguments.record(argv, shape)
      return Result.isFailure(result) ? result.failure : "accepted"
    }
    assert.strictEqual(reason(["a1"]), 'expected --FLAG VALUE, got "a1"')
    assert.strictEqual(reason(["--id"]), "--id needs a value")
    assert.strictEqual(reason(["--id", "a", "--id", "b"]), "--id is given twice")
  })

  it.effect("decodes with the entry point's Schema and refuses unknown flags with exit code 2", () =>
    Effect.gen(function* () {
      const Arguments = Schema.Struct({ id: Schema.String })
      assert.deepStrictEqual(yield* ProcessArguments.decode(Arguments, ["--id", "a"]), { id: "a" })
      const error = yield* Effect.flip(ProcessArguments.decode(Arguments, ["--id", "a", "--other", "b"]))
      assert.strictEqual(error._tag, "ArgumentsInvalid")
      assert.include(error.message, "other")
      assert.strictEqual(ExitCode.ofError(error), 2)
    })
  )
})
