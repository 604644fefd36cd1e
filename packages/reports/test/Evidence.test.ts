import { spawnSync } from "node:child_process"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as Evidence from "../src/Evidence.ts"
import type { ExperimentSummary, TestResult } from "../src/ExperimentSummary.ts"
import { collecting } from "./support.ts"

/** A failed test whose attempt names `artifacts` (service logs) and has a failed step and assertion. */
const failedRun = (
  artifacts: ReadonlyArray<readonly [string, string]>,
  step?: { readonly description?: string; readonly message?: string },
  assertion?: string
) => {
  const { add, summary } = collecting()
  add("test.started", "t", { name: "t", attempt: 1 })
  if (step !== undefined) {
    add("step.started", "t/step/0", {
      test: "t",
      index: 0,
      kind: "run",
      ...(step.description ? { description: step.description } : {})
    })
    add("step.finished", "t/step/0", {
      test: "t",
      index: 0,
      kind: "run",
      status: "failed",
      durationMs: 1,
      ...(step.message ? { message: step.message } : {})
    })
  }
  if (assertion !== undefined) {
    add("assertion.checked", "t/assertion/0", {
      test: "t",
      index: 0,
      kind: "output_matches",
      passed: false,
      message: assertion
    })
  }
  for (const [name, path] of artifacts) {
    add("test.artifact", "t", { name, kind: "log", path, service: name.split(" ")[0] })
  }
  add("test.finished", "t", { name: "t", attempt: 1, status: "failed", durationMs: 1, logsPath: "tests/t/attempt-1" })
  return summary()
}

const only = (s: ExperimentSummary): TestResult => s.tests.results[0]!

const runDir = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-evidence-" })
  yield* fs.makeDirectory(`${dir}/tests/t/attempt-1/steps`, { recursive: true })
  yield* fs.makeDirectory(`${dir}/tests/t/attempt-1/client`, { recursive: true })
  return dir
})

const lines = (n: number, width = 0) =>
  Array.from({ length: n }, (_, i) => `${`line ${i + 1}`.padEnd(width, ".")}\n`).join("")

describe("Evidence", () => {
  it.effect("a failed step's files are found by the name in its message, and their tails read", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* runDir
      yield* fs.writeFileString(`${dir}/tests/t/attempt-1/steps/probe.stdout.log`, lines(100))
      yield* fs.writeFileString(`${dir}/tests/t/attempt-1/steps/probe.stderr.log`, "")
      yield* fs.writeFileString(`${dir}/tests/t/attempt-1/steps/other.stdout.log`, "not this one\n")
      const s = yield* Evidence.attach(
        failedRun([], { description: "a probe", message: "step probe: exit code 3 (expected 0)" }),
        dir
      )
      const attempt = only(s).attempts[0]!
      assert.deepStrictEqual(attempt.steps[0]!.logs, [
        "tests/t/attempt-1/steps/probe.stdout.log",
        "tests/t/attempt-1/steps/probe.stderr.log"
      ])
      const [stdout, stderr] = attempt.log_tails
      assert.strictEqual(stdout!.name, "step probe stdout")
      assert.strictEqual(stdout!.text, lines(100).split("\n").slice(60, 100).join("\n"))
      assert.strictEqual(stdout!.bytes, lines(100).length)
      assert.strictEqual(stdout!.omitted_bytes, lines(60).length)
      // An empty output is evidence too ("it printed nothing").
      assert.deepStrictEqual([stderr!.stream, stderr!.bytes, stderr!.text], ["stderr", 0, ""])
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("a step whose name starts with another step's name is told apart from it", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* runDir
      yield* fs.writeFileString(`${dir}/tests/t/attempt-1/steps/probe.stdout.log`, "the short one\n")
      // Listed after `probe.stdout.log` (":" sorts after "."), and its message starts with `step probe:` too.
      yield* fs.writeFileString(`${dir}/tests/t/attempt-1/steps/probe: tls.stdout.log`, "the long one\n")
      const s = yield* Evidence.attach(failedRun([], { message: "step probe: tls: exit code 1 (expected 0)" }), dir)
      assert.deepStrictEqual(only(s).attempts[0]!.steps[0]!.logs, ["tests/t/attempt-1/steps/probe: tls.stdout.log"])
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect(
    "a step without a message is found by its default name; a tail is at most tailBytes, from a line start",
    () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* runDir
        const long = lines(200, 60)
        yield* fs.writeFileString(`${dir}/tests/t/attempt-1/steps/step0.stdout.log`, long)
        const s = yield* Evidence.attach(failedRun([], {}), dir)
        const [tail] = only(s).attempts[0]!.log_tails
        assert.isAtMost(tail!.text.length, Evidence.tailBytes)
        assert.isTrue(long.slice(tail!.omitted_bytes).startsWith(tail!.text))
        assert.strictEqual(long[tail!.omitted_bytes - 1], "\n")
        // One line longer than the whole window: its end is shown, not nothing.
        yield* fs.writeFileString(`${dir}/tests/t/attempt-1/steps/step0.stdout.log`, "x".repeat(10_000))
        const again = yield* Evidence.attach(failedRun([], {}), dir)
        assert.strictEqual(only(again).attempts[0]!.log_tails[0]!.text, "x".repeat(Evidence.tailBytes))
      }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("an output assertion points at the stream it read; terminal colours are dropped from tails", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* runDir
      yield* fs.writeFileString(`${dir}/tests/t/attempt-1/client/stdout.log`, "\u001b[32mecho line 1\u001b[0m\r\n")
      yield* fs.writeFileString(`${dir}/tests/t/attempt-1/client/stderr.log`, "warning\n")
      const s = yield* Evidence.attach(
        failedRun(
          [
            ["client stdout", "tests/t/attempt-1/client/stdout.log"],
            ["client stderr", "tests/t/attempt-1/client/stderr.log"]
          ],
          undefined,
          "service client stdout does not match /echo ok/"
        ),
        dir
      )
      const attempt = only(s).attempts[0]!
      assert.deepStrictEqual(attempt.assertions[0]!.logs, ["tests/t/attempt-1/client/stdout.log"])
      assert.deepStrictEqual(
        attempt.log_tails.map((t) => [t.name, t.text]),
        [
          ["client stdout", "echo line 1"],
          ["client stderr", "warning"]
        ]
      )
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("never reads outside the run directory: ../, absolute paths, links out, FIFOs", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* runDir
      const outside = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-evidence-secret-" })
      yield* fs.writeFileString(`${outside}/secret`, "SECRET\n")
      yield* fs.symlink(`${outside}/secret`, `${dir}/tests/t/attempt-1/client/link.log`)
      yield* fs.writeFileString(`${dir}/tests/t/attempt-1/client/real.log`, "inside\n")
      yield* fs.symlink(`${dir}/tests/t/attempt-1/client/real.log`, `${dir}/tests/t/attempt-1/client/alias.log`)
      const fifo = `${dir}/tests/t/attempt-1/client/fifo.log`
      assert.strictEqual(spawnSync("mkfifo", [fifo]).status, 0)
      const s = yield* Evidence.attach(
        failedRun([
          ["client up", `../${outside.split("/").pop()}/secret`],
          ["client absolute", `${outside}/secret`],
          ["client link", "tests/t/attempt-1/client/link.log"],
          ["client fifo", "tests/t/attempt-1/client/fifo.log"],
          ["client alias", "tests/t/attempt-1/client/alias.log"]
        ]),
        dir
      )
      const tails = only(s).attempts[0]!.log_tails
      assert.deepStrictEqual(
        tails.map((t) => [t.name, t.text]),
        [["client alias", "inside"]]
      )
      assert.notInclude(JSON.stringify(s), "SECRET")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect(
    "bounded: files per attempt, and tests per run",
    () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* runDir
        const many = Array.from(
          { length: 12 },
          (_, i) => [`client log${i}`, `tests/t/attempt-1/client/${i}.log`] as const
        )
        for (const [, path] of many) yield* fs.writeFileString(`${dir}/${path}`, "x\n")
        const s = yield* Evidence.attach(failedRun(many), dir)
        assert.strictEqual(only(s).attempts[0]!.log_tails.length, Evidence.filesPerAttempt)

        const { add, summary } = collecting()
        for (let t = 0; t <= Evidence.testLimit; t++) {
          add("test.started", `t${t}`, { name: `t${t}`, attempt: 1 })
          add("test.artifact", `t${t}`, { name: "log", kind: "log", path: "tests/t/attempt-1/client/0.log" })
          add("test.finished", `t${t}`, { name: `t${t}`, attempt: 1, status: "failed", durationMs: 1 })
        }
        const big = yield* Evidence.attach(summary(), dir)
        const withTails = big.tests.results.filter((t) => t.attempts[0]!.log_tails.length > 0)
        assert.strictEqual(withTails.length, Evidence.testLimit)
        assert.strictEqual(big.tests.results[Evidence.testLimit]!.attempts[0]!.log_tails.length, 0)
      }).pipe(Effect.provide(NodeServices.layer)),
    60_000
  )

  it.effect("passing tests get no evidence; a missing run directory leaves the summary as it was", () =>
    Effect.gen(function* () {
      const { add, summary } = collecting()
      add("test.started", "ok", { name: "ok", attempt: 1 })
      add("test.artifact", "ok", { name: "log", kind: "log", path: "x.log" })
      add("test.finished", "ok", { name: "ok", attempt: 1, status: "passed", durationMs: 1 })
      const before = summary()
      const dir = yield* runDir
      const fs = yield* FileSystem.FileSystem
      yield* fs.writeFileString(`${dir}/x.log`, "x\n")
      assert.deepStrictEqual(yield* Evidence.attach(before, dir), before)
      const failed = failedRun([["client stdout", "x.log"]])
      assert.deepStrictEqual(yield* Evidence.attach(failed, `${dir}/missing`), failed)
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
