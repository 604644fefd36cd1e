import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { Problems } from "../src/index.ts"

// A list of steps, each a one-key mapping, as in an experiment file.
const Step = Schema.Union([
  Schema.Struct({
    run: Schema.Struct({ command: Schema.Array(Schema.String), timeout: Schema.optionalKey(Schema.Int) })
  }),
  Schema.Struct({ wait: Schema.Int }),
  Schema.Struct({ fleet: Schema.Struct({ pipeline: Schema.Array(Schema.String) }) })
])
const Steps = Schema.Array(Step)

describe("Problems.decodeAll", () => {
  it("a union member with the input's keys is the one meant: only its problems are reported", () => {
    const decoded = Problems.decodeAll(Steps, [{ run: { command: ["true"], timeout: "soon" } }, { wait: 2 }], ["steps"])
    assert.isFalse(decoded.ok)
    if (!decoded.ok) {
      assert.deepStrictEqual(
        decoded.problems.map((p) => p.path),
        ["steps[0].run.timeout"]
      )
      assert.deepStrictEqual(decoded.at, [[0, "run", "timeout"]])
    }
  })

  it("when no member has the input's keys, every alternative is still reported", () => {
    const decoded = Problems.decodeAll(Steps, [{ sleep: 2 }])
    assert.isFalse(decoded.ok)
    if (!decoded.ok) {
      const paths = decoded.problems.map((p) => p.path)
      for (const key of ["run", "wait", "fleet"]) assert.include(paths, `[0].${key}`)
    }
  })
})
