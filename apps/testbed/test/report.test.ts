// The `report` command in process: its flags and arguments reach the library as the job they mean.
import { fileURLToPath } from "node:url"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { Command } from "effect/cli"
import { report } from "../src/commands/report.ts"

const fixtures = fileURLToPath(new URL("../../../fixtures/reports/", import.meta.url))
const run = Command.runWith(report, { version: "test" })

describe("testbed report", () => {
  it.effect("--compare RUN_A RUN_B writes the comparison into RUN_B; --history DIR writes the history into DIR", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-cli-report-" })
      yield* fs.copy(`${fixtures}history`, dir)
      yield* run(["--compare", `${dir}/nightly-20260313T020000Z`, `${dir}/nightly-20260314T020000Z`])
      assert.include(yield* fs.readFileString(`${dir}/nightly-20260314T020000Z/comparison.md`), "## Newly failing (2)")
      yield* run(["--history", dir, "--experiment", "nightly"])
      assert.isTrue(yield* fs.exists(`${dir}/history.html`))
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("--merge OUT RUN… takes the directory first, then every run", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-cli-report-" })
      yield* fs.copy(`${fixtures}shards`, dir)
      yield* run(["--merge", dir, `${dir}/shard-1`, `${dir}/shard-2`, "--format", "json"])
      const summary = JSON.parse(yield* fs.readFileString(`${dir}/experiment_summary.json`))
      assert.strictEqual(summary.tests.total, 4)
      assert.isFalse(yield* fs.exists(`${dir}/report.html`))
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("a command line that does not say one thing fails with ReportUsage (exit code 2)", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(run(["--compare", "a", "b", "--history", "c"]))
      assert.strictEqual(error._tag, "ReportUsage")
      assert.include(error.message, "choose one of --compare, --history and --merge")
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
