import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { renderFixture } from "./support.ts"

// Cells of a GFM table row: split on pipes that are not escaped.
const cells = (row: string) => row.split(/(?<!\\)\|/).slice(1, -1)

describe("MarkdownReport", () => {
  it.effect("hostile names and messages cannot open HTML, break a table or close a code fence", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const { dir } = yield* renderFixture("failing")
      const md = yield* fs.readFileString(`${dir}/EXPERIMENT_REPORT.md`)
      // Outside code blocks (where text is shown as is) no raw `<` and no link to a script URL survives.
      const prose = md.replace(/^(`{3,})text\n[\s\S]*?\n\1$/gm, "")
      assert.notInclude(prose, "<")
      assert.notMatch(prose, /(?<!\\)\]\(javascript:/)
      assert.include(prose, "\\[link\\](javascript:alert(1))")
      const rows = md.split("\n").filter((l) => l.startsWith("| handshake &lt;b>"))
      assert.strictEqual(rows.length, 3, "tests table and the two service rows")
      assert.strictEqual(cells(rows[0]!).length, 5)
      assert.strictEqual(cells(rows[1]!).length, 7)
      // The message holds a run of three backticks: its fence is four long and closes only after it.
      const open = md.indexOf("````text\nassertion failed")
      assert.isTrue(open > 0)
      const body = md.slice(open + 8, md.indexOf("\n````\n", open))
      assert.include(body, "```")
      assert.include(body, "\\x01\\x1b[31mred")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("an output assertion's failure shows the tail of the actual output; a failed step links its logs", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const { dir } = yield* renderFixture("triage")
      const md = yield* fs.readFileString(`${dir}/EXPERIMENT_REPORT.md`)
      assert.include(
        md,
        "  - assertion 0 (output\\_matches) failed: service client stdout does not match /echo ok: 5 messages/ — [stdout.log](tests/output-mismatch/attempt-1/client/stdout.log)"
      )
      assert.include(
        md,
        "client stdout (last 40 lines, 521 B of 1.3 KiB, [tests/output-mismatch/attempt-1/client/stdout.log](tests/output-mismatch/attempt-1/client/stdout.log)):\n\n```text\necho line 61\n"
      )
      assert.include(md, "echo line 100\n```")
      assert.include(
        md,
        "step 0 (run) failed: step probe: exit code 3 (expected 0) — [probe.stdout.log](tests/step-fails/attempt-1/steps/probe.stdout.log) · [probe.stderr.log](tests/step-fails/attempt-1/steps/probe.stderr.log)"
      )
      // The two matrices are two grids, their axes named.
      assert.include(md, "### m1\n\n| server ↓ · client → | echo | exec |")
      assert.include(md, "### m2\n\n| server ↓ · client → | echo |")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("an interrupted run says why, and a test that never started is listed as not run", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const { dir } = yield* renderFixture("interrupted")
      const md = yield* fs.readFileString(`${dir}/EXPERIMENT_REPORT.md`)
      assert.include(md, "| Status | ⛔ interrupted — the event log ends before experiment.finished |")
      assert.include(md, "| transfer-100mib | ⛔ interrupted | 1 | 3.2 s |")
      assert.include(md, "```text\nthe event log ends before attempt 1 finished (test state EXECUTING_STEPS)\n```")
      assert.include(md, "| migration | ⏭️ skipped | 0 |")
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
