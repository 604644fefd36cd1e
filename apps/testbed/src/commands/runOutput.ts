/** What `testbed run` prints: the dry-run listing, the final counts and report, or one JSON document. */
import * as ExitCode from "@testbed/events/ExitCode"
import type { Experiment, ExperimentManager } from "@testbed/experiments"
import { Console, Effect } from "effect"

type Experiments = typeof import("@testbed/experiments")

/** `--dry-run`: the planned tests as JSON, or a line each (with execution tools this machine lacks). */
export const dryRunListing = Effect.fn("RunOutput.dryRunListing")(function* (
  lib: Experiments,
  file: string,
  prepared: Experiment.Prepared,
  json: boolean
) {
  const plan = prepared.plan
  if (json) {
    return yield* Console.log(
      JSON.stringify({
        ok: true,
        exitCode: ExitCode.passed,
        file,
        experiment: plan.name,
        concurrency: plan.concurrency,
        tests: plan.tests.map((test) => ({
          name: test.name,
          environment: test.environment,
          services: test.services.map((s) => ({ key: s.key, plugin: s.plugin.name, role: s.role })),
          steps: test.steps.length,
          retries: test.retries
        }))
      })
    )
  }
  yield* Console.log(
    `${file}: OK — experiment "${plan.name}", ${plan.tests.length} test(s), concurrency ${plan.concurrency}`
  )
  for (const test of plan.tests) {
    const services =
      test.services.length > 0
        ? test.services.map((s) => `${s.key}=${s.plugin.name}/${s.role}`).join(", ")
        : `steps only (${test.steps.length})`
    yield* Console.log(
      `  ${test.name} [${test.environment}] ${services}${test.retries > 0 ? ` retries=${test.retries}` : ""}`
    )
    for (const line of yield* lib.Experiment.unavailableEnvironments(test))
      yield* Console.log(`    unavailable: ${line}`)
  }
})

/** `3 test(s): 2 passed, 1 failed` (a flaky test counted as flaky). */
export const counts = (result: ExperimentManager.ExperimentResult): string => {
  const byStatus = new Map<string, number>()
  for (const test of result.tests) {
    const key = test.flaky ? "flaky" : test.status
    byStatus.set(key, (byStatus.get(key) ?? 0) + 1)
  }
  return `${result.tests.length} test(s): ${[...byStatus].map(([status, count]) => `${count} ${status}`).join(", ")}`
}
