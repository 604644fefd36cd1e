import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Option } from "effect"
import * as ReportJob from "../src/ReportJob.ts"
import { copyFixture } from "./support.ts"

const args = (over: Partial<ReportJob.Arguments> = {}): ReportJob.Arguments => ({
  paths: [],
  compare: Option.none(),
  history: Option.none(),
  merge: Option.none(),
  output: Option.none(),
  experiment: Option.none(),
  formats: Option.none(),
  generatedAt: Option.none(),
  ...over
})

const usage = (a: ReportJob.Arguments) =>
  Effect.map(Effect.flip(ReportJob.fromArguments(a)), (e) => {
    assert.strictEqual(e._tag, "ReportUsage")
    return e.message
  })

describe("ReportJob", () => {
  it.effect("decodes each mode from the command line", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* ReportJob.fromArguments(args({ paths: ["run"] })), { _tag: "Render", run: "run" })
      assert.deepStrictEqual(
        yield* ReportJob.fromArguments(args({ compare: Option.some("a"), paths: ["b"], output: Option.some("o") })),
        { _tag: "Compare", baseline: "a", current: "b", output: "o" }
      )
      assert.deepStrictEqual(
        yield* ReportJob.fromArguments(args({ history: Option.some("outputs"), experiment: Option.some("nightly") })),
        { _tag: "History", directory: "outputs", experiment: "nightly" }
      )
      assert.deepStrictEqual(
        yield* ReportJob.fromArguments(
          args({ merge: Option.some("out"), paths: ["s1", "s2"], formats: Option.some(["html"]) })
        ),
        { _tag: "Merge", output: "out", runs: ["s1", "s2"], formats: ["html"] }
      )
    })
  )

  it.effect("says what is wrong with a command line instead of guessing", () =>
    Effect.gen(function* () {
      assert.include(yield* usage(args()), "which run?")
      assert.include(yield* usage(args({ paths: ["a", "b"] })), "--merge OUT RUN…")
      assert.include(yield* usage(args({ compare: Option.some("a") })), "--compare RUN_A RUN_B")
      assert.include(yield* usage(args({ compare: Option.some("a"), paths: ["b", "c"] })), "--compare RUN_A RUN_B")
      assert.include(yield* usage(args({ history: Option.some("d"), paths: ["x"] })), "--history DIR")
      assert.include(yield* usage(args({ merge: Option.some("out") })), "--merge OUT RUN…")
      assert.include(yield* usage(args({ compare: Option.some("a"), history: Option.some("d") })), "choose one")
      assert.include(
        yield* usage(args({ paths: ["a"], experiment: Option.some("x") })),
        "--experiment goes with --history"
      )
      assert.include(yield* usage(args({ paths: ["a"], output: Option.some("x") })), "--output goes with")
      assert.include(
        yield* usage(args({ history: Option.some("d"), formats: Option.some(["md"]) })),
        "--format goes with"
      )
      assert.include(yield* usage(args({ paths: ["a"], generatedAt: Option.some("yesterday") })), "is not a time")
    })
  )

  it.effect("a run path that names nothing fails with RunNotFound (exit code 2), naming it", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* copyFixture("history")
      const missing = yield* Effect.flip(ReportJob.run({ _tag: "Compare", baseline: `${dir}/nope`, current: dir }))
      assert.strictEqual(missing._tag, "RunNotFound")
      assert.include(missing.message, `${dir}/nope: no such file or directory`)
      // A directory that is no run (the history directory itself).
      const notRun = yield* Effect.flip(
        ReportJob.run({ _tag: "Compare", baseline: dir, current: `${dir}/nightly-20260314T020000Z` })
      )
      assert.strictEqual(notRun._tag, "RunNotFound")
      assert.include(notRun.message, "neither events.jsonl nor experiment_summary.json")
      assert.isFalse(yield* fs.exists(`${dir}/nightly-20260314T020000Z/comparison.md`))
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
