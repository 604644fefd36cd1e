import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as History from "../src/History.ts"
import * as HistoryReport from "../src/HistoryReport.ts"
import * as ReportJob from "../src/ReportJob.ts"
import { copyFixture, fixtures } from "./support.ts"

describe("History", () => {
  it.effect("pass rate per test and per matrix cell over the runs of an experiment, oldest run first", () =>
    Effect.gen(function* () {
      const dir = yield* copyFixture("history")
      const h = yield* History.collect(dir)
      assert.strictEqual(h.experiment_name, "nightly")
      assert.deepStrictEqual(
        h.runs.map((r) => [r.directory, r.success_rate]),
        [
          ["nightly-20260311T020000Z", 71.43],
          ["nightly-20260312T020000Z", 85.71],
          ["nightly-20260313T020000Z", 75],
          ["nightly-20260314T020000Z", 62.5]
        ]
      )
      const test = (name: string) => h.tests.find((t) => t.name === name)!
      assert.deepStrictEqual(test("resumption").statuses, ["failed", "failed", "failed", "passed"])
      assert.strictEqual(test("resumption").pass_rate, 25)
      assert.deepStrictEqual(test("migration").statuses, [null, null, "passed", "failed"])
      assert.strictEqual(test("migration").pass_rate, 50)
      assert.strictEqual(test("key-update").pass_rate, 100)
      // Lowest pass rate first.
      assert.strictEqual(h.tests[0]!.name, "resumption")
      assert.deepStrictEqual(
        h.cells.map((c) => [c.matrix, c.row, c.column, c.statuses, c.pass_rate]),
        [
          ["interop", "picoquic", "quant", ["passed", "passed", "passed", "passed"], 100],
          ["interop", "quant", "picoquic", ["failed", "passed", "passed", "failed"], 50]
        ]
      )
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("writes history.html with an SVG chart of the runs and history.json that reads back", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* copyFixture("history")
      const written = yield* ReportJob.run({ _tag: "History", directory: dir })
      assert.deepStrictEqual(written, [`${dir}/${HistoryReport.htmlFileName}`, `${dir}/${HistoryReport.jsonFileName}`])
      const html = yield* fs.readFileString(written[0]!)
      assert.strictEqual(html.match(/<circle class="run"/g)?.length, 4)
      assert.include(html, '<svg class="chart"')
      assert.notInclude(html, "<script")
      const json = JSON.parse(yield* fs.readFileString(written[1]!))
      assert.strictEqual(json.runs.length, 4)
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("runs of two experiments in one directory: a typed error naming both, or the one chosen", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* copyFixture("history")
      yield* fs.makeDirectory(`${dir}/other`)
      yield* fs.copyFile(`${fixtures}passing/events.jsonl`, `${dir}/other/events.jsonl`)
      // Not a run: ignored.
      yield* fs.makeDirectory(`${dir}/notes`)
      const error = yield* Effect.flip(History.collect(dir))
      assert.strictEqual(error._tag, "HistoryMixesExperiments")
      assert.include(error.message, "nightly (4 runs)")
      assert.include(error.message, "quic-smoke (1 runs)")
      assert.include(error.message, "--experiment")
      const chosen = yield* History.collect(dir, { experiment: "quic-smoke" })
      assert.strictEqual(chosen.runs.length, 1)
      const none = yield* Effect.flip(History.collect(dir, { experiment: "nope" }))
      assert.strictEqual(none._tag, "NoRunsFound")
      const empty = yield* Effect.flip(History.collect(`${dir}/notes`))
      assert.strictEqual(empty._tag, "NoRunsFound")
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
