import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ExperimentConfig } from "../src/index.ts"

const problemsOf = (text: string) => Effect.flip(ExperimentConfig.parse(text, "exp.yaml"))

describe("ExperimentConfig problems point into the file", () => {
  it.effect("a YAML syntax error carries its line and column", () =>
    Effect.gen(function* () {
      const duplicate = yield* problemsOf("name: a\ntests: []\nname: b\n")
      assert.deepStrictEqual(
        duplicate.problems.map((p) => [p.line, p.column, p.message]),
        [[3, 1, "Map keys must be unique"]]
      )
      assert.include(duplicate.message, "exp.yaml:3:1: (file): Map keys must be unique")
      const unclosed = yield* problemsOf("tests:\n  - name: a\n    steps: [ { wait: 1 }\n")
      assert.isAbove(unclosed.problems.length, 0)
      for (const problem of unclosed.problems) assert.isDefined(problem.line)
    })
  )

  it.effect("every problem names its YAML path, line and column; the list is in file order", () =>
    Effect.gen(function* () {
      const tests = Array.from({ length: 12 }, (_, i) => `  - name: t${i}\n    timeout: ${i % 2 === 0 ? "soon" : 1}\n`)
      const error = yield* problemsOf(`tests:\n${tests.join("")}concurrency: 0\n`)
      assert.deepStrictEqual(
        error.problems.map((p) => [p.path, p.line, p.column]),
        [
          ["tests[0].timeout", 3, 14],
          ["tests[2].timeout", 7, 14],
          ["tests[4].timeout", 11, 14],
          ["tests[6].timeout", 15, 14],
          ["tests[8].timeout", 19, 14],
          ["tests[10].timeout", 23, 14],
          ["concurrency", 26, 14]
        ]
      )
      assert.include(error.message, "exp.yaml:23:14: tests[10].timeout: not a duration")
    })
  )

  it.effect("a missing key points at its mapping; an empty value just after its key", () =>
    Effect.gen(function* () {
      const error = yield* problemsOf(
        [
          "tests:",
          "  - name: t",
          "    assertions:",
          "      - type: output_matches",
          "        service: s",
          "    retries:"
        ].join("\n")
      )
      assert.deepStrictEqual(
        error.problems.map((p) => [p.path, p.line, p.column]),
        [
          ["tests[0].assertions[0].pattern", 4, 9],
          ["tests[0].retries", 6, 13]
        ]
      )
    })
  )

  it.effect("a union names the branch meant: the step key or assertion type nearest to the one written", () =>
    Effect.gen(function* () {
      const error = yield* problemsOf(
        [
          "tests:",
          "  - name: t",
          "    steps:",
          "      - runn: { command: [true] }",
          "    assertions:",
          "      - { type: exit_codes, service: s }"
        ].join("\n")
      )
      assert.deepStrictEqual(
        error.problems.map((p) => [p.path, p.line, p.message]),
        [
          [
            "tests[0].steps[0]",
            4,
            'expected one of the keys "wait", "run", "replay", "fleet", found "runn" (did you mean "run"?)'
          ],
          [
            "tests[0].assertions[0].type",
            6,
            'unknown type "exit_codes": expected one of "exit_code", "output_matches", "service_responsive", "file_exists", "resource_below", "memcheck_clean", "replay_passed" (did you mean "exit_code"?)'
          ]
        ]
      )
    })
  )
})
