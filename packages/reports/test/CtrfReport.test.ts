import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Ajv } from "ajv"
import formats from "ajv-formats"
import { Effect, FileSystem } from "effect"
import { fixtures, renderFixture, scenarios } from "./support.ts"

const validator = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const schema = JSON.parse(yield* fs.readFileString(`${fixtures}ctrf.schema.json`))
  const ajv = new Ajv({ allErrors: true, strict: true })
  // ajv-formats is CommonJS: under NodeNext its default import is the module, the plugin is `.default`.
  formats.default(ajv)
  return ajv.compile(schema)
})

describe("CtrfReport", () => {
  for (const scenario of scenarios) {
    it.effect(`the ${scenario} report validates against the CTRF JSON Schema`, () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const validate = yield* validator
        const { dir } = yield* renderFixture(scenario)
        const report = JSON.parse(yield* fs.readFileString(`${dir}/ctrf-report.json`))
        const valid = validate(report)
        assert.isTrue(valid, JSON.stringify(validate.errors, null, 2))
        const { summary, tests } = report.results
        assert.strictEqual(summary.tests, tests.length)
        assert.strictEqual(
          summary.passed + summary.failed + summary.skipped + summary.pending + summary.other,
          summary.tests
        )
      }).pipe(Effect.provide(NodeServices.layer))
    )
  }

  it.effect("a failed test carries its log tails: trace (what explains it), stdout and stderr", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const { dir } = yield* renderFixture("triage")
      const { tests } = JSON.parse(yield* fs.readFileString(`${dir}/ctrf-report.json`)).results
      const step = tests.find((t: { name: string }) => t.name === "step fails")
      assert.include(
        step.trace,
        "--- step probe stderr: tests/step-fails/attempt-1/steps/probe.stderr.log (whole file, 156 B) ---"
      )
      assert.include(step.trace, "handshake failed ]]> </system-err> <script>alert(1)</script>")
      assert.deepStrictEqual(step.stdout.slice(-2), [
        "--- server stdout: tests/step-fails/attempt-1/server/stdout.log (whole file, 28 B) ---",
        "listening on 127.0.0.1:4433"
      ])
      assert.include(step.stderr.join("\n"), "exit 3")
      assert.deepStrictEqual(step.steps[0].extra.logs, [
        "tests/step-fails/attempt-1/steps/probe.stdout.log",
        "tests/step-fails/attempt-1/steps/probe.stderr.log"
      ])
      const flaky = tests.find((t: { rawStatus: string }) => t.rawStatus === "flaky")
      // Passed in the end: the trace is the earlier failure's, also on that attempt; the passing one has none.
      assert.include(flaky.trace, "--- step step0 stderr:")
      assert.include(flaky.retryAttempts[0].trace, "--- step step0 stderr:")
      assert.isUndefined(flaky.retryAttempts[1].trace)
      assert.isUndefined(tests.find((t: { name: string }) => t.name === "m1 [echo server, echo client]").stdout)
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("the schema is really applied: a status CTRF does not know is rejected", () =>
    Effect.gen(function* () {
      const validate = yield* validator
      const report = {
        reportFormat: "CTRF",
        specVersion: "0.0.0",
        results: {
          tool: { name: "testbed" },
          summary: { tests: 1, passed: 1, failed: 0, skipped: 0, pending: 0, other: 0, start: 0, stop: 0 },
          tests: [{ name: "t", status: "flaky", duration: 1 }]
        }
      }
      assert.isFalse(validate(report))
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("maps our statuses onto CTRF's five and keeps the original in rawStatus", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const { dir } = yield* renderFixture("retries")
      const report = JSON.parse(yield* fs.readFileString(`${dir}/ctrf-report.json`))
      const byName = new Map<string, { status: string; rawStatus: string; flaky: boolean; retries: number }>(
        report.results.tests.map((t: { name: string }) => [t.name, t])
      )
      assert.deepStrictEqual(
        ["0-rtt/quant", "0-rtt/lsquic", "key-update/lsquic", "key-update/picoquic"].map((n) => {
          const t = byName.get(n)!
          return [t.status, t.rawStatus, t.flaky, t.retries]
        }),
        [
          ["passed", "flaky", true, 1],
          ["skipped", "unsupported", false, 0],
          ["failed", "failed", false, 1],
          ["skipped", "skipped", false, 0]
        ]
      )
      assert.strictEqual(report.results.summary.flaky, 1)
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
