import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as Comparison from "../src/Comparison.ts"
import * as ComparisonReport from "../src/ComparisonReport.ts"
import * as ReportJob from "../src/ReportJob.ts"
import { collecting, copyFixture, golden } from "./support.ts"

const update = process.env.UPDATE_GOLDEN === "1"
const runs = "history/nightly-2026031"

describe("Comparison", () => {
  it.effect("compares two fixture runs: the Markdown and HTML are their golden files", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const baseline = yield* copyFixture(`${runs}3T020000Z`)
      const current = yield* copyFixture(`${runs}4T020000Z`)
      const written = yield* ReportJob.run({ _tag: "Compare", baseline, current })
      assert.deepStrictEqual(written, [
        `${current}/${ComparisonReport.markdownFileName}`,
        `${current}/${ComparisonReport.htmlFileName}`
      ])
      if (update) yield* fs.makeDirectory(`${golden}compare`, { recursive: true })
      for (const file of written) {
        const name = file.slice(file.lastIndexOf("/") + 1)
        const actual = yield* fs.readFileString(file)
        if (update) yield* fs.writeFileString(`${golden}compare/${name}`, actual)
        assert.strictEqual(actual, yield* fs.readFileString(`${golden}compare/${name}`), `compare/${name}`)
      }
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it("puts every test in at most one list, by what changed", () => {
    const run = (outcomes: Record<string, readonly [string, number]>) => {
      const { add, summary } = collecting()
      for (const [name, [status, ms]] of Object.entries(outcomes)) {
        add("test.started", name, { name, attempt: 1 })
        add("test.finished", name, { name, attempt: 1, status, durationMs: ms, errorMessage: `${name} says ${status}` })
      }
      return summary()
    }
    const c = Comparison.compare(
      run({ a: ["passed", 100], b: ["failed", 100], c: ["failed", 100], d: ["passed", 100], gone: ["passed", 1] }),
      run({ a: ["failed", 100], b: ["passed", 100], c: ["timeout", 100], d: ["passed", 1000], new: ["failed", 1] })
    )
    const names = (list: ReadonlyArray<Comparison.Change>) => list.map((x) => x.name)
    assert.deepStrictEqual(names(c.newly_failing), ["a", "new"])
    assert.deepStrictEqual(names(c.newly_passing), ["b"])
    assert.deepStrictEqual(names(c.still_failing), ["c"])
    assert.deepStrictEqual(names(c.removed), ["gone"])
    assert.deepStrictEqual(c.newly_failing[1], {
      name: "new",
      before: null,
      after: "failed",
      error_message: "new says failed"
    })
    assert.deepStrictEqual(c.timing, [{ name: "d", before_ms: 100, after_ms: 1000 }])
    assert.strictEqual(c.unchanged, 0)
  })

  it("a small change in duration is not a timing change", () => {
    const run = (ms: number) => {
      const { add, summary } = collecting()
      add("test.started", "t", { name: "t", attempt: 1 })
      add("test.finished", "t", { name: "t", attempt: 1, status: "passed", durationMs: ms })
      return summary()
    }
    // ×10, but only 90 ms: noise on a loaded machine.
    assert.deepStrictEqual(Comparison.compare(run(10), run(100)).timing, [])
    // 400 ms, but only ×1.2.
    assert.deepStrictEqual(Comparison.compare(run(2000), run(2400)).timing, [])
    assert.strictEqual(Comparison.compare(run(2000), run(2400)).unchanged, 1)
  })
})
