import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as JsonReport from "../src/JsonReport.ts"
import * as Merge from "../src/Merge.ts"
import * as ReportJob from "../src/ReportJob.ts"
import * as RunDirectory from "../src/RunDirectory.ts"
import { collecting, copyFixture, fixtures, generatedAt } from "./support.ts"

describe("Merge", () => {
  it.effect("two shards of one experiment become one set of reports, links rebased onto the shards", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* copyFixture("shards")
      const written = yield* ReportJob.run({
        _tag: "Merge",
        output: dir,
        runs: [`${dir}/shard-1`, `${dir}/shard-2`],
        generatedAt
      })
      assert.strictEqual(written.length, 5)
      const s = yield* JsonReport.decode(yield* fs.readFileString(`${dir}/${JsonReport.fileName}`))
      assert.strictEqual(s.experiment_name, "sharded")
      assert.strictEqual(s.experiment_id, "sharded-20260317T010000Z+sharded-20260317T020000Z")
      assert.deepStrictEqual(
        s.tests.results.map((t) => [t.name, t.status]),
        [
          ["alpha", "passed"],
          ["beta", "failed"],
          ["gamma", "passed"],
          ["delta", "passed"]
        ]
      )
      assert.deepStrictEqual([s.tests.total, s.tests.failed, s.tests.success_rate], [4, 1, 75])
      assert.strictEqual(s.start_time, "2026-03-17T01:00:00.000Z")
      assert.strictEqual(s.matrices[0]!.columns.length, 4)
      // The failed step's log is read from its shard and linked through it.
      const beta = s.tests.results[1]!
      assert.deepStrictEqual(beta.attempts[0]!.steps[0]!.logs, [
        "shard-1/tests/beta/attempt-1/steps/check.stdout.log",
        "shard-1/tests/beta/attempt-1/steps/check.stderr.log"
      ])
      assert.strictEqual(beta.attempts[0]!.log_tails[0]!.text, "checking beta in shard 1")
      const html = yield* fs.readFileString(`${dir}/report.html`)
      assert.include(html, 'href="shard-1/tests/beta/attempt-1/steps/check.stdout.log"')
      // The merged directory reads back as a run (for --compare and --history).
      const again = yield* RunDirectory.read(dir)
      assert.strictEqual(again.tests.total, 4)
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect(
    "a test run in two shards keeps both attempts in the order they started; passed after a failure is flaky",
    () =>
      Effect.gen(function* () {
        const shard = (minute: number, status: string) => {
          const { add, summary } = collecting(`2026-01-01T00:${String(minute).padStart(2, "0")}:00.000Z`)
          add("experiment.started", "x", { name: "x", settings: {} })
          add("test.started", "t", { name: "t", attempt: 1 })
          add("test.finished", "t", { name: "t", attempt: 1, status, durationMs: 5 })
          add("test.registered", "only-here", { name: "only-here", participants: [] })
          return summary()
        }
        const merged = yield* Merge.merge(
          [
            { summary: shard(20, "passed"), prefix: "b" },
            { summary: shard(10, "failed"), prefix: "a" }
          ],
          { generatedAt }
        )
        const t = merged.tests.results[0]!
        // Shard b is given first but ran later: its attempt comes second, and decides the verdict.
        assert.deepStrictEqual(
          t.attempts.map((a) => [a.attempt, a.status]),
          [
            [1, "failed"],
            [2, "passed"]
          ]
        )
        assert.deepStrictEqual([t.status, t.retries, t.start_time], ["flaky", 1, "2026-01-01T00:10:00.001Z"])
        assert.deepStrictEqual([merged.tests.flaky, merged.tests.skipped], [1, 1])
        const failed = yield* Merge.merge(
          [
            { summary: shard(10, "passed"), prefix: "a" },
            { summary: shard(20, "failed"), prefix: "b" }
          ],
          { generatedAt }
        )
        assert.strictEqual(failed.tests.results[0]!.status, "failed")
      }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("refuses runs of different experiments, and a run directory as the target", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* copyFixture("shards")
      yield* fs.makeDirectory(`${dir}/other`)
      yield* fs.copyFile(`${fixtures}passing/events.jsonl`, `${dir}/other/events.jsonl`)
      const mixed = yield* Effect.flip(
        ReportJob.run({ _tag: "Merge", output: dir, runs: [`${dir}/shard-1`, `${dir}/other`] })
      )
      assert.strictEqual(mixed._tag, "ShardsDisagree")
      assert.include(mixed.message, "sharded, quic-smoke")
      const intoRun = yield* Effect.flip(
        ReportJob.run({ _tag: "Merge", output: `${dir}/shard-1`, runs: [`${dir}/shard-2`] })
      )
      assert.strictEqual(intoRun._tag, "MergeIntoRun")
      assert.isFalse(yield* fs.exists(`${dir}/shard-1/report.html`))
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
