// The comparison of a cluster run's report with a local run's (`content` in processes.ts): the artifacts a report
// lists come from the events, so a file the runner sent that never landed in the run directory went unnoticed.
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { content, temporaryDirectory } from "./processes.ts"

/** A run directory whose summary lists one test with a log artifact, its file written with `log` (or not at all). */
const runWith = (root: string, name: string, log: string | undefined) => {
  const runDir = join(root, name)
  const path = "tests/t/attempt-1/client/stdout.log"
  mkdirSync(join(runDir, "tests/t/attempt-1/client"), { recursive: true })
  if (log !== undefined) writeFileSync(join(runDir, path), log)
  const artifact = { name: "client stdout", kind: "log", path, service: "client", description: null, attempt: 1 }
  const test = { name: "t", status: "passed", participants: [], artifacts: [artifact], attempts: [] }
  writeFileSync(
    join(runDir, "experiment_summary.json"),
    JSON.stringify({ status: "passed", matrices: [], tests: { results: [test] } })
  )
  return runDir
}

describe("report content", () => {
  it.effect("a listed artifact whose file is missing makes two runs differ", () =>
    Effect.gen(function* () {
      const root = yield* temporaryDirectory("testbed-content-")
      const local = runWith(root, "local", "echo ok: 5 messages from 127.0.0.1:40001\n")
      assert.deepStrictEqual(
        content(runWith(root, "same", "echo ok: 5 messages from 127.0.0.1:51234\n")),
        content(local)
      )
      assert.notDeepEqual(content(runWith(root, "missing", undefined)), content(local))
    })
  )
})
