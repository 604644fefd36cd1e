import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { lstatSync } from "node:fs"
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

  it.effect("never writes through a symbolic link planted at a temporary name or at a report's own name", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-reports-" })
      const outside = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-reports-victim-" })
      const victim = `${outside}/victim`
      yield* fs.writeFileString(victim, "keep me\n")
      yield* fs.copyFile(`${fixtures}passing/events.jsonl`, `${dir}/events.jsonl`)
      // The names an attacker with write access to the run directory could guess, pointing at the victim.
      for (const format of ReportWriter.formats) {
        yield* fs.symlink(victim, `${dir}/${ReportWriter.fileName(format)}.tmp`)
      }
      yield* fs.symlink(victim, `${dir}/report.html`)
      yield* ReportWriter.renderDirectory(dir, { generatedAt })
      assert.strictEqual(yield* fs.readFileString(victim), "keep me\n")
      // The link at the report's name was replaced by the report itself, not written through.
      assert.strictEqual((yield* fs.stat(`${dir}/report.html`)).type, "File")
      assert.isTrue(lstatSync(`${dir}/report.html`).isFile())
      assert.include(yield* fs.readFileString(`${dir}/report.html`), "<!DOCTYPE html>")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("a report that cannot be put in place fails with ReportWriteFailed and leaves no temporary file", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-reports-" })
      yield* fs.copyFile(`${fixtures}passing/events.jsonl`, `${dir}/events.jsonl`)
      // A non-empty directory where junit.xml should go: the rename into place fails.
      yield* fs.makeDirectory(`${dir}/junit.xml/inside`, { recursive: true })
      const error = yield* Effect.flip(ReportWriter.renderDirectory(dir, { formats: ["junit"], generatedAt }))
      assert.strictEqual(error._tag, "ReportWriteFailed")
      assert.include(error.message, `${dir}/junit.xml`)
      const left = (yield* fs.readDirectory(dir)).filter((name) => name.includes("tmp"))
      assert.deepStrictEqual(left, [])
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
