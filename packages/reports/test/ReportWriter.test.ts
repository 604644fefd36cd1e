import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as ReportWriter from "../src/ReportWriter.ts"
import { fixtures, generatedAt, golden, renderFixture, scenarios } from "./support.ts"

// UPDATE_GOLDEN=1 rewrites the golden files from the current renderers (review the diff before committing).
const update = process.env.UPDATE_GOLDEN === "1"

describe("ReportWriter", () => {
  for (const scenario of scenarios) {
    it.effect(`renders the ${scenario} log as its golden files`, () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const { dir, written } = yield* renderFixture(scenario)
        assert.deepStrictEqual(
          written,
          ReportWriter.formats.map((f) => `${dir}/${ReportWriter.fileName(f)}`)
        )
        const expectedDir = `${golden}${scenario}`
        if (update) yield* fs.makeDirectory(expectedDir, { recursive: true })
        for (const format of ReportWriter.formats) {
          const name = ReportWriter.fileName(format)
          const actual = yield* fs.readFileString(`${dir}/${name}`)
          if (update) yield* fs.writeFileString(`${expectedDir}/${name}`, actual)
          const expected = yield* fs.readFileString(`${expectedDir}/${name}`)
          assert.strictEqual(actual, expected, `${scenario}/${name} differs from its golden file`)
        }
      }).pipe(Effect.provide(NodeServices.layer))
    )
  }

  it.effect("gives the same bytes for the same log and generated_at, whatever the directory", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const first = yield* renderFixture("retries")
      const second = yield* renderFixture("retries")
      assert.notStrictEqual(first.dir, second.dir)
      for (const format of ReportWriter.formats) {
        const name = ReportWriter.fileName(format)
        assert.strictEqual(
          yield* fs.readFileString(`${first.dir}/${name}`),
          yield* fs.readFileString(`${second.dir}/${name}`)
        )
      }
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("writes only the formats asked for", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-reports-" })
      yield* fs.copyFile(`${fixtures}passing/events.jsonl`, `${dir}/events.jsonl`)
      const written = yield* ReportWriter.renderDirectory(dir, { formats: ["html", "junit"], generatedAt })
      assert.deepStrictEqual(written, [`${dir}/junit.xml`, `${dir}/report.html`])
      assert.isFalse(yield* fs.exists(`${dir}/experiment_summary.json`))
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("fails with EventLogUnreadable naming the log when a directory has none", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-reports-" })
      const error = yield* Effect.flip(ReportWriter.renderDirectory(dir))
      assert.strictEqual(error._tag, "EventLogUnreadable")
      assert.include(error.message, "events.jsonl")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("parses a comma-separated --format list and rejects unknown formats", () =>
    Effect.gen(function* () {
      const decode = ReportWriter.decodeFormatList
      assert.deepStrictEqual(yield* decode("json, md,html"), ["json", "md", "html"])
      const error = yield* Effect.flip(decode("json,pdf"))
      assert.include(error.message, `"json" | "md" | "junit" | "ctrf" | "html"`)
    })
  )
})
