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

  it("when no member has the input's keys, one problem names the keys a step takes and the nearest", () => {
    const decoded = Problems.decodeAll(Steps, [{ runn: { command: ["true"] } }, { sleep: 2 }, { wait: 1, run: {} }])
    assert.isFalse(decoded.ok)
    if (!decoded.ok) {
      assert.deepStrictEqual(
        decoded.problems.map((p) => [p.path, p.message]),
        [
          ["[0]", 'expected one of the keys "run", "wait", "fleet", found "runn" (did you mean "run"?)'],
          ["[1]", 'expected one of the keys "run", "wait", "fleet", found "sleep"'],
          ["[2]", 'expected one of the keys "run", "wait", "fleet", found "run", "wait": give one per entry']
        ]
      )
    }
  })

  it("an entry with its member's key and more is that member: only its problems, unknown keys named", () => {
    const decoded = Problems.decodeAll(Steps, [{ run: { command: "true", timout: 2 } }])
    assert.isFalse(decoded.ok)
    if (!decoded.ok) {
      assert.deepStrictEqual(
        decoded.problems.map((p) => [p.path, p.message]),
        [
          ["[0].run.timout", 'unknown key (did you mean "timeout"?)'],
          ["[0].run.command", "Expected array"]
        ]
      )
    }
  })

  it("a union told apart by a literal names the values it takes when none matches", () => {
    const Assertion = Schema.Union([
      Schema.Struct({ type: Schema.Literal("exit_code"), equals: Schema.optionalKey(Schema.Int) }),
      Schema.Struct({ type: Schema.Literal("output_matches"), pattern: Schema.String })
    ])
    const decoded = Problems.decodeAll(Schema.Array(Assertion), [{ type: "exit_codes" }, { equals: 1 }])
    assert.isFalse(decoded.ok)
    if (!decoded.ok) {
      assert.deepStrictEqual(
        decoded.problems.map((p) => [p.path, p.message]),
        [
          [
            "[0].type",
            'unknown type "exit_codes": expected one of "exit_code", "output_matches" (did you mean "exit_code"?)'
          ],
          ["[1].type", 'missing: one of "exit_code", "output_matches"']
        ]
      )
    }
  })

  it("format names the file, line and column of each located problem", () => {
    assert.strictEqual(
      Problems.format(
        [
          { path: "tests[0].timeout", message: "not a duration", line: 4, column: 14 },
          { path: "", message: "x" }
        ],
        "e.yaml"
      ),
      "  e.yaml:4:14: tests[0].timeout: not a duration\n  (file): x"
    )
  })
})
