// Runs far larger than the fixtures: a generated event log of 140,000 tests (the size class of a 1.1 GB log that
// crashed the HTML renderer with "Maximum call stack size exceeded"), rendered end to end from the file.
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as HtmlReport from "../src/HtmlReport.ts"
import * as ReportWriter from "../src/ReportWriter.ts"
import { collecting, generatedAt, writeLargeLog } from "./support.ts"

describe("Large runs", () => {
  it.effect(
    "a log of 140,000 tests renders: HTML with an aggregated timeline, Markdown and JUnit in full",
    () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-reports-huge-" })
        const tests = 140_000
        writeLargeLog(`${dir}/${ReportWriter.eventLogName}`, tests)
        const written = yield* ReportWriter.renderDirectory(dir, { formats: ["md", "junit", "html"], generatedAt })
        assert.strictEqual(written.length, 3)

        const html = yield* fs.readFileString(`${dir}/report.html`)
        assert.include(html, "Timeline of 140000 tests (140000 attempts)")
        assert.notInclude(html, 'class="attempt')
        // 1 in 17 failed: those are listed, the passing ones are counted, not listed one by one.
        const failed = Math.ceil(tests / 17)
        assert.strictEqual(html.match(/<details/g)?.length, HtmlReport.detailLimit)
        assert.include(html, `not shown: ${tests - failed} passed and ${failed - HtmlReport.detailLimit} more`)
        assert.isBelow(html.length, 16 * 1024 * 1024)

        const md = yield* fs.readFileString(`${dir}/EXPERIMENT_REPORT.md`)
        assert.include(md, "| test-139999 |")
        const junit = yield* fs.readFileString(`${dir}/junit.xml`)
        assert.strictEqual(junit.match(/<testcase /g)?.length, tests)
      }).pipe(Effect.provide(NodeServices.layer)),
    300_000
  )

  it("JSON reports come in pieces no larger than one test, whatever the size of the run", () => {
    const { add, summary: summarize } = collecting()
    add("experiment.started", "run", { name: "run", settings: {} })
    for (let t = 0; t < 20_000; t++) {
      add("test.started", `t${t}`, { name: `t${t}`, attempt: 1 })
      add("test.finished", `t${t}`, { name: `t${t}`, attempt: 1, status: "passed", durationMs: 1 })
    }
    const summary = summarize()
    for (const format of ["json", "ctrf"] as const) {
      let longest = 0
      let total = 0
      for (const piece of ReportWriter.chunks(summary, format)) {
        longest = Math.max(longest, piece.length)
        total += piece.length
      }
      assert.isAbove(total, 1_000_000, format)
      assert.isBelow(longest, 4096, format)
    }
  })
})
